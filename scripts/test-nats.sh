#!/usr/bin/env bash
# Throwaway NATS servers with JetStream for the tests, on loopback, in a temporary folder.
#
#   test-nats.sh start DIR PORT [NAME CLUSTER_PORT ROUTES]   start one server (DIR/NAME); with
#                                                           a cluster port and routes
#                                                           ("127.0.0.1:P1,127.0.0.1:P2") it
#                                                           joins the JetStream cluster
#                                                           "backbone-test"
#   test-nats.sh stop  DIR [NAME]                           stop it (SIGTERM, then wait)
#   test-nats.sh kill  DIR [NAME]                           SIGKILL it (a crash)
#
# `start` waits until the server answers and prints its URL (nats://127.0.0.1:PORT).
set -euo pipefail
cmd=${1:?usage: test-nats.sh start|stop|kill DIR [PORT [NAME CLUSTER_PORT ROUTES]]}
dir=${2:?folder}

start() {
  local port=${1:?port} name=${2:-n1} cport=${3:-} routes=${4:-}
  local home="$dir/$name"
  mkdir -p "$home/js"
  {
    echo "server_name: $name"
    echo "listen: 127.0.0.1:$port"
    echo "jetstream { store_dir: \"$home/js\" }"
    if [ -n "$cport" ]; then
      echo "cluster {"
      echo "  name: backbone-test"
      echo "  listen: 127.0.0.1:$cport"
      echo -n "  routes: ["
      local sep="" r
      IFS=, read -ra rs <<<"$routes"
      for r in "${rs[@]}"; do
        echo -n "$sep nats-route://$r"
        sep=","
      done
      echo " ]"
      echo "}"
    fi
  } >"$home/server.conf"
  [ -f "$home/extra.conf" ] && echo "include ./extra.conf" >>"$home/server.conf"
  nats-server -c "$home/server.conf" -l "$home/server.log" -P "$home/pid" >/dev/null 2>&1 &
  for _ in $(seq 1 200); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
      echo "nats://127.0.0.1:$port"
      return 0
    fi
    sleep 0.05
  done
  echo "test-nats.sh: nats-server $name did not start:" >&2
  tail -20 "$home/server.log" >&2 || true
  return 1
}

signal() {
  local sig=$1 name=${2:-n1}
  local pidfile="$dir/$name/pid"
  [ -f "$pidfile" ] || return 0
  local pid
  pid=$(cat "$pidfile")
  kill "-$sig" "$pid" 2>/dev/null || true
  for _ in $(seq 1 200); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.05
  done
  rm -f "$pidfile"
}

case "$cmd" in
  start) start "${3:-}" "${4:-}" "${5:-}" "${6:-}" ;;
  stop) signal TERM "${3:-}" ;;
  kill) signal KILL "${3:-}" ;;
  *)
    echo "test-nats.sh: unknown command $cmd" >&2
    exit 2
    ;;
esac
