#!/usr/bin/env bash
# Runs a command with throwaway PostgreSQL and MariaDB servers (scripts/test-db.sh) and a NATS
# server with JetStream (scripts/test-nats.sh) on free loopback ports, their URLs in
# BACKBONE_TEST_POSTGRES_URL, BACKBONE_TEST_MYSQL_URL and BACKBONE_TEST_NATS_URL, and
# BACKBONE_TEST_SERVERS_REQUIRED=1 (a server test that finds no server fails, not skips).
# The servers are stopped and their folders removed when the command ends, however it ends.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(mktemp -d /tmp/backbone-test-servers-XXXXXX)
chmod 755 "$root"

free_port() {  # a loopback port nobody listens on, away from the servers' defaults
  local p
  for _ in $(seq 1 200); do
    p=$((20000 + RANDOM % 20000))
    (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null || { echo "$p"; return; }
  done
  echo "with-test-servers: no free port" >&2
  return 1
}

cleanup() {
  "$here/test-db.sh" stop postgres "$root/pg" || true
  "$here/test-db.sh" stop mariadb "$root/my" || true
  "$here/test-nats.sh" stop "$root/nats" || true
  rm -rf "$root"
}
trap cleanup EXIT

BACKBONE_TEST_POSTGRES_URL=$("$here/test-db.sh" start postgres "$root/pg" "$(free_port)")
BACKBONE_TEST_MYSQL_URL=$("$here/test-db.sh" start mariadb "$root/my" "$(free_port)")
BACKBONE_TEST_NATS_URL=$("$here/test-nats.sh" start "$root/nats" "$(free_port)")
export BACKBONE_TEST_POSTGRES_URL BACKBONE_TEST_MYSQL_URL BACKBONE_TEST_NATS_URL
export BACKBONE_TEST_SERVERS_REQUIRED=1
echo "with-test-servers: PostgreSQL, MariaDB and NATS up (folders in $root)" >&2
"$@"
