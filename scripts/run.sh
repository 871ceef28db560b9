#!/usr/bin/env bash
# `make run`: the main job on the embedded defaults. Makes a development token for sandbox
# (kept in var/dev-token so that it stays the same across runs), prints a curl example, and
# runs `backbone serve`, which migrates both environments' stores (var/sandbox.db,
# var/production.db), provisions their topology in the embedded broker (var/broker), and
# serves the HTTP API on 127.0.0.1:8080 and the Pub/Sub v1 gRPC front on 127.0.0.1:8085 (where
# calls without credentials from this machine act in sandbox, as with Google's emulator) until
# Ctrl-C.
set -euo pipefail
bin=${1:-build/backbone}
mkdir -p var
if [ ! -s var/dev-token ]; then
  "$bin" token create --env sandbox --roles publish,read,subscribe,admin --name dev > var/dev-token
fi
token=$(cat var/dev-token)
listen=${BACKBONE_LISTEN:-127.0.0.1:8080}
pubsub=${BACKBONE_PUBSUB_LISTEN:-127.0.0.1:8085}
cat <<EOF_HELP
Development token for sandbox (publish, read, subscribe, admin):
  $token

The operators' console: http://$listen/console (sign in with the token above).

Post an event, then read the merged record back:
  curl -s -X POST http://$listen/v1/envs/sandbox/events \\
    -H "Authorization: Bearer $token" -H 'Content-Type: application/json' \\
    -d '{"record_type":"contact","record_id":"42","source":"crm","base_version":0,"changes":{"name":"Ada"}}'
  curl -s http://$listen/v1/envs/sandbox/records/contact/42 -H "Authorization: Bearer $token"

Google's Pub/Sub client libraries work against sandbox with no credentials (doc/pubsub_front.md):
  export PUBSUB_EMULATOR_HOST=$pubsub PUBSUB_PROJECT_ID=backbone-local

EOF_HELP
exec "$bin" serve --listen "$listen" --pubsub-listen "$pubsub" --pubsub-anonymous sandbox
