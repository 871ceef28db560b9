#!/usr/bin/env bash
# `make run`: the main job on the embedded defaults. Until `backbone serve` exists this migrates
# both environments' stores (var/sandbox.db, var/production.db), publishes a short demo to
# sandbox, prints the record's history, and verifies the audit chain.
set -euo pipefail
bin=${1:-build/backbone}

"$bin" migrate --env sandbox
"$bin" migrate --env production

demo_id="demo-$(date +%s)"
echo
echo "Publishing three changes to contact/$demo_id in sandbox:"
"$bin" publish --env sandbox <<EOF_EVENTS
{"record_type":"contact","record_id":"$demo_id","source":"crm","base_version":0,"changes":{"name":"Ada Lovelace","email":"ada@example.test"}}
{"record_type":"contact","record_id":"$demo_id","source":"billing","base_version":1,"changes":{"plan":"pro"}}
{"record_type":"contact","record_id":"$demo_id","source":"crm","base_version":2,"changes":{"email":null,"phone":"+44 20 7946 0000"}}
EOF_EVENTS

echo
echo "Sending the first change again (same content, new delivery) is answered as a duplicate:"
"$bin" publish --env sandbox <<EOF_EVENTS
{"record_type":"contact","record_id":"$demo_id","source":"crm","base_version":0,"changes":{"email":"ada@example.test","name":"Ada Lovelace"}}
EOF_EVENTS

echo
echo "History of contact/$demo_id:"
"$bin" events history contact "$demo_id" --env sandbox
echo
"$bin" audit verify --env sandbox
"$bin" audit verify --env production
