#!/usr/bin/env bash
# Runs every libFuzzer program of a BACKBONE_FUZZ tree (`make fuzz`) for SECONDS each, from the
# committed corpus (fuzz/corpus/<target>/) plus what earlier runs found (var/fuzz/<target>/).
# New interesting inputs go to var/fuzz/<target>/; a crash leaves var/fuzz/<target>-crash-*,
# and the script exits non-zero. Prints each target's executions and corpus.
#   scripts/fuzz.sh [BUILD] [SECONDS]
set -uo pipefail
build=${1:-build-fuzz}
seconds=${2:-60}
status=0
for program in "$build"/fuzz/fuzz_*; do
  [ -x "$program" ] || continue
  target=${program##*/fuzz_}
  work=var/fuzz/$target
  mkdir -p "$work"
  echo "== $target: $seconds s"
  "$program" -max_total_time="$seconds" -print_final_stats=1 -artifact_prefix="var/fuzz/$target-" \
    -max_len=65536 -timeout=10 -rss_limit_mb=4096 "$work" "fuzz/corpus/$target" 2>"$work.log"
  rc=$?
  grep -E "stat::number_of_executed_units|stat::new_units_added|stat::peak_rss_mb" "$work.log" |
    sed 's/^/   /'
  echo "   corpus: $(ls "$work" | wc -l) inputs found this far; exit $rc"
  if [ $rc -ne 0 ]; then
    status=1
    grep -E "ERROR|SUMMARY|Test unit written" "$work.log" | head -5 | sed 's/^/   /'
  fi
done
exit $status
