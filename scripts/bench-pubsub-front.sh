#!/usr/bin/env bash
# The Pub/Sub front benchmark: Google's official Node client (bench/pubsub/front_bench.cjs)
# against `backbone serve`'s front (embedded broker, fsync before every publish and ack answer)
# and against Google's emulator (in memory), alternating rounds in the same run; and, for the
# client's own ceiling, publishing to a server that keeps nothing (bench/pubsub/null_server.cc);
# then one round each of the ordered case (the shape of Google's ordered-messages acceptance test).
# Prints the medians and the ratios. Usage: bench-pubsub-front.sh BUILD [ROUNDS] [MESSAGES] [SIZE]
set -euo pipefail
build=${1:?build folder}
rounds=${2:-5}
messages=${3:-20000}
size=${4:-256}
src="$(cd "$(dirname "$0")/.." && pwd)"
bin="$(cd "$build" && pwd)/backbone"
node_modules="$(cd "$build" && pwd)/google-pubsub/node_modules"
emulator=/usr/lib/google-cloud-sdk/platform/pubsub-emulator/bin/cloud-pubsub-emulator
work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -9 -- "-$p" 2>/dev/null || kill -9 "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

free_port() { # a port nothing listens on now
  local p
  while :; do
    p=$((20000 + RANDOM % 20000))
    (echo >"/dev/tcp/127.0.0.1/$p") 2>/dev/null || { echo "$p"; return; }
  done
}
wait_port() {
  for _ in $(seq 1 600); do
    (echo >"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.1
  done
  echo "nothing listens on $1" >&2
  return 1
}

http=$(free_port)
front=$(free_port)
cat >"$work/backbone.toml" <<EOF_TOML
store = "sqlite://$work/{env}.db"
broker = "embedded://$work/broker"
tokens = "$work/tokens.json"
durability = "fsync"
EOF_TOML
token=$("$bin" --config "$work/backbone.toml" token create --env sandbox --roles admin --name bench)
setsid "$bin" --config "$work/backbone.toml" --env sandbox serve --listen "127.0.0.1:$http" \
  --pubsub-listen "127.0.0.1:$front" >"$work/serve.log" 2>&1 &
pids+=($!)
wait_port "$front"

have_emulator=0
if [ -x "$emulator" ]; then
  emu=$(free_port)
  setsid "$emulator" --host=127.0.0.1 --port="$emu" >"$work/emulator.log" 2>&1 &
  pids+=($!)
  wait_port "$emu"
  have_emulator=1
else
  echo "Google's Pub/Sub emulator is not installed ($emulator): backbone only" >&2
fi

setsid "$build/bench/bench_pubsub_null_server" >"$work/null.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 100); do grep -q listening "$work/null.log" && break; sleep 0.1; done
null_port=$(awk '/listening/{print $2}' "$work/null.log")

round() { # target port [token [phases]]
  local token=()
  [ -n "${3:-}" ] && token=(BACKBONE_PUBSUB_TOKEN="$3")
  env NODE_PATH="$node_modules" PUBSUB_EMULATOR_HOST="127.0.0.1:$2" PUBSUB_PROJECT_ID=backbone-local \
    PUBSUB_TARGET="$1" "${token[@]}" BENCH_MESSAGES="$messages" BENCH_SIZE="$size" \
    BENCH_PHASES="${4:-publish,pull}" node "$src/bench/pubsub/front_bench.cjs"
}
results="$work/results.jsonl"
for r in $(seq 1 "$rounds"); do
  round backbone "$front" "$token" | tee -a "$results"
  if [ "$have_emulator" = 1 ]; then round emulator "$emu" | tee -a "$results"; fi
  round null "$null_port" "" publish | tee -a "$results"
done
# The ordered case (the acceptance fixture's shape, front_bench.cjs): one round each, as the
# front takes minutes over it.
round backbone "$front" "$token" ordered | tee -a "$results"
if [ "$have_emulator" = 1 ]; then round emulator "$emu" "" ordered | tee -a "$results"; fi

echo "machine: $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
node -e '
const rows = require("fs").readFileSync(process.argv[1], "utf8").trim().split("\n").map(JSON.parse);
const median = (xs) => { const s = [...xs].sort((a, b) => a - b); return s[Math.floor(s.length / 2)]; };
const of = (t, k) => rows.filter((r) => r.target === t && r[k] !== undefined).map((r) => r[k]);
const size = rows[0].size, n = rows[0].messages;
console.log(`pubsub front: ${n} messages of ${size} B per round, ${of("backbone", "publish_per_s").length} rounds, Node client @google-cloud/pubsub 4.11.0`);
console.log("durability: backbone fsyncs before it answers a publish or an ack; the emulator keeps messages in memory");
console.log(`client ceiling: publishing to a server that keeps nothing, ${median(of("null", "publish_per_s"))} msg/s, the Node client busy ${median(of("null", "publish_client_cpu"))} of a core`);
const ord = (t) => of(t, "ordered_seconds").filter((x) => x !== undefined);
if (ord("backbone").length) {
  const b = median(ord("backbone")), e = ord("emulator").length ? median(ord("emulator")) : NaN;
  console.log(`ordered (10,000 messages: 4 keys of 1,600, 1,600 unkeyed, 2,000 keys of one): backbone ${b.toFixed(1)} s, emulator ${e.toFixed(1)} s, ratio ${(e / b).toFixed(3)} (emulator time / backbone time)`);
}
for (const [k, what] of [["publish_per_s", "publish"], ["pull_ack_per_s", "StreamingPull+ack"]]) {
  const b = median(of("backbone", k)), e = of("emulator", k).length ? median(of("emulator", k)) : NaN;
  const cpu = k.replace("_per_s", "_client_cpu");
  console.log(`${what}: backbone ${b} msg/s, emulator ${e} msg/s, ratio ${(b / e).toFixed(2)} (medians);` +
              ` the Node client busy ${median(of("backbone", cpu))} / ${median(of("emulator", cpu))} of a core`);
}' "$results"
