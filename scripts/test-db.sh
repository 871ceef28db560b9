#!/usr/bin/env bash
# Throwaway database servers for the tests: PostgreSQL 15 and MariaDB 10.11, each in its own
# temporary folder, listening on loopback on a non-default port, with fsync on.
#
#   test-db.sh start postgres|mariadb DIR PORT   initialise DIR (when empty) and start
#   test-db.sh stop  postgres|mariadb DIR        stop (fast shutdown), keep DIR
#   test-db.sh kill  postgres|mariadb DIR        SIGKILL the server (a crash)
#
# When started, the server has an administrator that logs in over TCP with a password:
#   PostgreSQL: postgres / backbone-admin    MariaDB: root@127.0.0.1 / backbone-admin
# and `start` prints the admin URL (postgresql://... or mysql://...) on standard output.
# As root, the servers run as the postgres and mysql system users (neither runs as root).
set -euo pipefail

admin_password=backbone-admin
# A password for the clients in the environment (a test may have set one) must not apply here.
unset MYSQL_PWD PGPASSWORD
cmd=${1:?usage: test-db.sh start|stop|kill postgres|mariadb DIR [PORT]}
kind=${2:?postgres or mariadb}
dir=${3:?data folder}
port=${4:-}

as_user() {  # as_user USER CMD...: runs CMD as USER when we are root
  local user=$1
  shift
  if [ "$(id -u)" -eq 0 ]; then runuser -u "$user" -- "$@"; else "$@"; fi
}

pg_bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)

start_postgres() {
  local owner=postgres
  [ "$(id -u)" -eq 0 ] || owner=$(id -un)
  mkdir -p "$dir"
  chown "$owner" "$dir"
  chmod 700 "$dir"
  if [ ! -f "$dir/data/PG_VERSION" ]; then
    as_user "$owner" bash -c "echo '$admin_password' > '$dir/pw'"
    as_user "$owner" "$pg_bin/initdb" -D "$dir/data" -U postgres --pwfile="$dir/pw" \
      --auth=scram-sha-256 -E UTF8 --locale=C.UTF-8 >"$dir/initdb.log" 2>&1
  fi
  as_user "$owner" "$pg_bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
    -o "-p $port -k '$dir' -c listen_addresses=127.0.0.1 -c fsync=on -c max_connections=400" \
    start >/dev/null || {
    echo "test-db.sh: PostgreSQL in $dir did not start:" >&2
    tail -20 "$dir/server.log" >&2 || true
    return 1
  }
  echo "postgresql://postgres:$admin_password@127.0.0.1:$port/postgres"
}

stop_postgres() {
  local owner=postgres
  [ "$(id -u)" -eq 0 ] || owner=$(id -un)
  [ -f "$dir/data/postmaster.pid" ] || return 0
  as_user "$owner" "$pg_bin/pg_ctl" -D "$dir/data" -m fast -w -t 60 stop >/dev/null || true
}

alive() {  # alive PID: the process runs (a zombie does not count)
  [ -r "/proc/$1/stat" ] && [ "$(awk '{print $3}' "/proc/$1/stat")" != Z ]
}

kill_postgres() {
  [ -f "$dir/data/postmaster.pid" ] || return 0
  local pid
  pid=$(head -1 "$dir/data/postmaster.pid")
  kill -9 "$pid" 2>/dev/null || true
  # Its backends exit when they see the postmaster gone; a new one refuses to start while any
  # of them still holds the shared memory.
  for _ in $(seq 1 100); do
    local left=0
    for p in $(pgrep -P "$pid" 2>/dev/null) $pid; do alive "$p" && left=1; done
    [ $left -eq 0 ] && break
    sleep 0.1
  done
  rm -f "$dir/data/postmaster.pid" "$dir"/.s.PGSQL.*.lock
}

mariadb_args() {
  local user=mysql
  [ "$(id -u)" -eq 0 ] || user=$(id -un)
  echo --no-defaults --datadir="$dir/data" --socket="$dir/mysqld.sock" \
    --pid-file="$dir/mysqld.pid" --user="$user"
}

start_mariadb() {
  local user=mysql
  [ "$(id -u)" -eq 0 ] || user=$(id -un)
  mkdir -p "$dir"
  chown "$user" "$dir"
  # BACKBONE_MARIADB_STOCK=1: a server as mariadb-install-db makes it by default (its anonymous
  # accounts ''@'localhost' and ''@'<hostname>' included) and as it runs by default (client
  # addresses resolved to names); the admin is then backbone_admin, at 'localhost' and '%'.
  local stock=${BACKBONE_MARIADB_STOCK:-0} install_args="--auth-root-authentication-method=normal --skip-test-db"
  [ "$stock" = 1 ] && install_args=
  if [ ! -d "$dir/data/mysql" ]; then
    # shellcheck disable=SC2046,SC2086
    mariadb-install-db $(mariadb_args) $install_args >"$dir/install.log" 2>&1 || {
      echo "test-db.sh: mariadb-install-db failed:" >&2
      tail -20 "$dir/install.log" >&2
      return 1
    }
  fi
  # shellcheck disable=SC2046
  local resolve=--skip-name-resolve
  [ "$stock" = 1 ] && resolve=
  # shellcheck disable=SC2046,SC2086
  nohup mariadbd $(mariadb_args) --port="$port" --bind-address=127.0.0.1 $resolve \
    --skip-log-bin --innodb-flush-log-at-trx-commit=1 --max-connections=400 \
    --log-error="$dir/server.log" >/dev/null 2>&1 &
  for _ in $(seq 1 300); do
    mariadb-admin --no-defaults --socket="$dir/mysqld.sock" -uroot ping >/dev/null 2>&1 && break
    sleep 0.1
  done
  # root@localhost (the socket) keeps no password; root@127.0.0.1 (TCP) gets the admin's. The
  # server may answer a ping before it takes statements: try again for a while.
  local ok=0 admin=root admin_sql="
        CREATE USER IF NOT EXISTS 'root'@'127.0.0.1';
        ALTER USER 'root'@'127.0.0.1' IDENTIFIED BY '$admin_password';
        GRANT ALL PRIVILEGES ON *.* TO 'root'@'127.0.0.1' WITH GRANT OPTION;"
  if [ "$stock" = 1 ]; then
    admin=backbone_admin
    admin_sql=""
    for host in localhost %; do
      admin_sql+="CREATE USER IF NOT EXISTS 'backbone_admin'@'$host';
        ALTER USER 'backbone_admin'@'$host' IDENTIFIED BY '$admin_password';
        GRANT ALL PRIVILEGES ON *.* TO 'backbone_admin'@'$host' WITH GRANT OPTION;"
    done
  fi
  for _ in $(seq 1 100); do
    if mariadb --no-defaults --socket="$dir/mysqld.sock" -uroot -e "$admin_sql" 2>"$dir/admin.err"; then
      ok=1
      break
    fi
    sleep 0.1
  done
  if [ $ok -eq 0 ]; then
    echo "test-db.sh: MariaDB in $dir did not start:" >&2
    cat "$dir/admin.err" >&2
    tail -20 "$dir/server.log" >&2 || true
    return 1
  fi
  echo "mysql://$admin:$admin_password@127.0.0.1:$port/mysql"
}

stop_mariadb() {
  [ -f "$dir/mysqld.pid" ] || return 0
  local pid
  pid=$(cat "$dir/mysqld.pid")
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 1 600); do
    alive "$pid" || break
    sleep 0.1
  done
  rm -f "$dir/mysqld.pid"
}

kill_mariadb() {
  [ -f "$dir/mysqld.pid" ] || return 0
  local pid
  pid=$(cat "$dir/mysqld.pid")
  kill -9 "$pid" 2>/dev/null || true
  for _ in $(seq 1 100); do
    alive "$pid" || break
    sleep 0.1
  done
  rm -f "$dir/mysqld.pid"
}

case "$kind" in
  postgres | mariadb) ;;
  *) echo "test-db.sh: unknown server $kind (want postgres or mariadb)" >&2; exit 2 ;;
esac
case "$cmd" in
  start) [ -n "$port" ] || { echo "test-db.sh: start needs a PORT" >&2; exit 2; }; "start_$kind" ;;
  stop) "stop_$kind" ;;
  kill) "kill_$kind" ;;
  *) echo "test-db.sh: unknown command $cmd" >&2; exit 2 ;;
esac
