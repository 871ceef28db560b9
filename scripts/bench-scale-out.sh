#!/usr/bin/env bash
# bench/scale_out (issue 18): 1, 2 and 3 `backbone serve` processes of one environment on
# PostgreSQL and NATS, each held to the same CPU share by the cgroup v1 `cpu` controller
# (cpu.cfs_quota_us of cpu.cfs_period_us; the database, nats-server and the load run
# uncapped); the same `stress --url` workload spread over the processes; end-to-end ev/s for
# each N and its ratio to N = 1. Then the takeover times, with three processes: after SIGKILL of
# one (its buckets wait for its lease to run out) and after SIGTERM of another (handed over at
# once), each until a survivor's view has every bucket owned by a live member.
#
# Needs root (the cgroups) and the test servers: run it as
#   scripts/with-test-servers.sh scripts/bench-scale-out.sh [BUILD] [EVENTS] [QUOTA_US]
# (`make bench` does). QUOTA_US is each process's CPU per 100,000 us period (default 30,000:
# 0.3 of a core, so that three capped processes and the uncapped servers fit on two cores).
# Environment: BENCH_COUNTS (1 2 3), BENCH_RECORDS (300), BENCH_CONNECTIONS (stress's posting
# connections, 1), BENCH_LEASE_MS (10000), BENCH_KEEP (keep the work folder and logs).
# Each run prints the cores in use: the machine's, the capped processes', stress's, the rest.
set -euo pipefail
build=${1:-build-bench}
events=${2:-20000}
quota=${3:-30000}
bin=$build/backbone
lease_ms=${BENCH_LEASE_MS:-10000}
records=${BENCH_RECORDS:-300}
connections=${BENCH_CONNECTIONS:-1}
cg=/sys/fs/cgroup/cpu
[ -w "$cg" ] || { echo "bench-scale-out: $cg is not writable (needs root and cgroup v1 cpu)" >&2; exit 2; }
[ -n "${BACKBONE_TEST_POSTGRES_URL:-}" ] && [ -n "${BACKBONE_TEST_NATS_URL:-}" ] || {
  echo "bench-scale-out: run it under scripts/with-test-servers.sh" >&2; exit 2; }
work=$(mktemp -d /tmp/backbone-bench-scale-out-XXXXXX)
pids=()
groups=()
cleanup() {
  for p in "${pids[@]}"; do kill -KILL "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
  for g in "${groups[@]}"; do rmdir "$g" 2>/dev/null || true; done
  [ -n "${BENCH_KEEP:-}" ] && echo "bench-scale-out: kept $work" >&2 || rm -rf "$work"
}
trap cleanup EXIT
for r in MIGRATOR SYNC_WORKER MERGE_WORKER READER; do
  export "BACKBONE_ROLE_PASSWORD_$r=bench-$r"
done
json() { python3 -c "import json,sys; d=json.load(sys.stdin); print($1)"; }
now_ms() { date +%s%3N; }
# CPU clock ticks: of the whole machine (busy and total, from /proc/stat), and of processes.
machine_ticks() { awk '/^cpu / {print $2+$3+$4+$7+$8, $2+$3+$4+$5+$6+$7+$8}' /proc/stat; }
process_ticks() { local t=0 p; for p in "$@"; do t=$((t + $(awk '{print $14+$15}' "/proc/$p/stat" 2>/dev/null || echo 0))); done; echo "$t"; }

# A fresh environment: its own database and NATS namespace, and a backbone.toml; prints the
# config's path.
environment() {
  local name=$1 dir=$work/$1
  mkdir -p "$dir"
  local store="${BACKBONE_TEST_POSTGRES_URL%/*}/bso_${name}_{env}"
  cat > "$dir/backbone.toml" <<EOF
store = "$store"
broker = "$BACKBONE_TEST_NATS_URL?namespace=bso$name$$"
tokens = "$dir/tokens.json"
pubsub_listen = "off"
environments = ["sandbox"]
[cluster]
buckets = 64
lease_ttl_ms = $lease_ms
EOF
  "$bin" --config "$dir/backbone.toml" --env sandbox db grant > /dev/null
  echo "$dir/backbone.toml"
}

# Starts `serve` on `port` inside a cgroup of its own capped at $quota; sets $started.
start_serve() {
  local config=$1 port=$2 group=$cg/backbone-bench-$$-$port
  mkdir -p "$group"
  echo 100000 > "$group/cpu.cfs_period_us"
  echo "$quota" > "$group/cpu.cfs_quota_us"
  groups+=("$group")
  sh -c 'echo $$ > "$1/cgroup.procs"; shift; exec "$@"' sh "$group" \
    "$bin" --config "$config" --env sandbox serve --listen "127.0.0.1:$port" \
    > "$work/serve-$port.log" 2>&1 &
  started=$!
  pids+=("$started")
  for _ in $(seq 1 300); do
    curl -sf "http://127.0.0.1:$port/readyz" > /dev/null && return 0
    sleep 0.1
  done
  echo "bench-scale-out: serve on $port did not become ready" >&2
  cat "$work/serve-$port.log" >&2
  exit 1
}

base_port=$((21000 + RANDOM % 5000))
echo "bench/scale_out  machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo); PostgreSQL + NATS uncapped"
echo "each serve capped at $quota us of CPU per 100000 us; $events events over $records records, stress --url spread over the processes on $connections connections; durability: the server's commit (fsync), NATS file storage"
declare -A rate
for n in ${BENCH_COUNTS:-1 2 3}; do
  config=$(environment "n$n")
  urls=()
  serve_pids=()
  for i in $(seq 1 "$n"); do
    port=$((base_port + 10 * n + i))
    start_serve "$config" "$port"
    serve_pids+=("$started")
    urls+=(--url "http://127.0.0.1:$port")
  done
  # Let the members split the buckets before the load.
  token=$("$bin" --config "$config" --env sandbox --json token create --roles publish,read,subscribe,admin --name bench | json 'd["token"]')
  for _ in $(seq 1 100); do
    unowned=$(curl -s -H "Authorization: Bearer $token" "http://127.0.0.1:$((base_port + 10 * n + 1))/v1/envs/sandbox/cluster" | json 'd.get("unowned", 64)')
    members=$(curl -s -H "Authorization: Bearer $token" "http://127.0.0.1:$((base_port + 10 * n + 1))/v1/envs/sandbox/cluster" | json 'sum(1 for m in d.get("members", []) if m["buckets"] > 0)')
    [ "$unowned" = 0 ] && [ "$members" = "$n" ] && break
    sleep 0.2
  done
  read -r busy0 total0 < <(machine_ticks)
  serve0=$(process_ticks "${serve_pids[@]}")
  report=$(/usr/bin/time -f "%U %S" -o "$work/stress-time" "$bin" --config "$config" --env sandbox \
    --json stress "${urls[@]}" --token "$token" --events "$events" --records "$records" --connections "$connections" --timeout 600)
  read -r busy1 total1 < <(machine_ticks)
  serve1=$(process_ticks "${serve_pids[@]}")
  # Cores in use over the run: the machine's, the capped processes', the stress client's; the
  # rest is PostgreSQL's, nats-server's and the system's.
  cores=$(python3 -c "
n = $(nproc); busy = ($busy1 - $busy0) / ($total1 - $total0) * n
wall = ($total1 - $total0) / n / $(getconf CLK_TCK)
serves = ($serve1 - $serve0) / $(getconf CLK_TCK) / wall
u, s = open('$work/stress-time').read().split()[-2:]
stress = (float(u) + float(s)) / wall
print(f'{busy:.2f} of {n} cores busy: serves {serves:.2f}, stress {stress:.2f}, the rest {busy - serves - stress:.2f}')")
  ok=$(echo "$report" | json 'd["ok"]')
  e2e=$(echo "$report" | json 'round(d["end_to_end_events_per_second"])')
  p50=$(echo "$report" | json 'd["latency_ms"]["p50"]')
  p99=$(echo "$report" | json 'd["latency_ms"]["p99"]')
  ingest=$(echo "$report" | json 'round(d["ingest_events_per_second"])')
  rate[$n]=$e2e
  # How often each capped process wanted more CPU than its share (cpu.stat: periods throttled).
  throttled=""
  for i in $(seq 1 "$n"); do
    st=$cg/backbone-bench-$$-$((base_port + 10 * n + i))/cpu.stat
    throttled+=" $(awk '/^nr_periods/ {p=$2} /^nr_throttled/ {t=$2} END {printf "%.0f%%", p ? 100*t/p : 0}' "$st")"
  done
  printf "N=%d  end to end %6d ev/s  (x%.2f of N=1)  ingest %6d ev/s  latency p50 %.0f ms p99 %.0f ms  periods throttled:%s  checks ok: %s\n" \
    "$n" "$e2e" "$(python3 -c "print($e2e / ${rate[1]})")" "$ingest" "$p50" "$p99" "$throttled" "$ok"
  echo "     $cores"
  if [ "$n" -lt 3 ]; then
    for p in "${serve_pids[@]}"; do kill -TERM "$p"; wait "$p" 2>/dev/null || true; done
    continue
  fi
  # Takeovers, with the three processes of N=3.
  a=$((base_port + 31)); b=$((base_port + 32)); c=$((base_port + 33))
  member_of() {  # the member id of the process on port $1, as it says itself
    curl -s -H "Authorization: Bearer $token" "http://127.0.0.1:$1/v1/envs/sandbox/cluster" | json 'd["member"]'
  }
  # ms until the view from port $1 has no bucket of member $2 and none unowned
  until_taken() {
    local t0 step
    t0=$(now_ms)
    while :; do
      step=$(curl -s -H "Authorization: Bearer $token" "http://127.0.0.1:$1/v1/envs/sandbox/cluster" | \
        json "sum(1 for l in d['leases'] if l['owner'] in (None, '$2'))")
      [ "$step" = 0 ] && break
      [ $(( $(now_ms) - t0 )) -gt 60000 ] && { echo "never taken over" >&2; break; }
      sleep 0.02
    done
    echo $(( $(now_ms) - t0 ))
  }
  killed=$(member_of "$c")
  kill -KILL "${serve_pids[2]}"
  kill_ms=$(until_taken "$a" "$killed")
  left=$(member_of "$b")
  kill -TERM "${serve_pids[1]}"
  term_ms=$(until_taken "$a" "$left")
  wait "${serve_pids[1]}" 2>/dev/null || true
  echo "takeover after SIGKILL: $kill_ms ms (lease $lease_ms ms; target: at most the lease + 2000 ms)"
  echo "takeover after SIGTERM: $term_ms ms (target: at most 1000 ms)"
  kill -TERM "${serve_pids[0]}"; wait "${serve_pids[0]}" 2>/dev/null || true
done
if [ -n "${rate[3]:-}" ]; then
  echo "ratios: x$(python3 -c "print(round(${rate[2]} / ${rate[1]}, 2))") at 2, x$(python3 -c "print(round(${rate[3]} / ${rate[1]}, 2))") at 3 (targets: 1.8 and 2.5)"
fi
