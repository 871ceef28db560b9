#!/usr/bin/env bash
# `make test`: every test in the plain build and in the ASan+UBSan build. The plain build's tests
# run while the sanitizer build compiles (they spend most of their time waiting on servers and
# child processes, doc/build.md), then the sanitizer build's tests run. Each ctest run has its
# own throwaway servers (scripts/with-test-servers.sh). Exits non-zero if anything failed.
# Usage: test-all.sh MAKE PLAIN_BUILD ASAN_BUILD JOBS
set -euo pipefail
make=${1:?usage: test-all.sh MAKE PLAIN_BUILD ASAN_BUILD JOBS}
plain=$2
asan=$3
jobs=$4
here=$(cd "$(dirname "$0")" && pwd)
log=$(mktemp /tmp/backbone-plain-tests-XXXXXX.log)
ctest_of() { "$here/with-test-servers.sh" ctest --output-on-failure -j"$jobs" --test-dir "$1"; }

ctest_of "$plain" >"$log" 2>&1 &
plain_pid=$!
trap 'kill -- "$plain_pid" 2>/dev/null || true; rm -f "$log"' EXIT

asan_build_rc=0
$make --no-print-directory build-asan || asan_build_rc=$?
plain_rc=0
wait "$plain_pid" || plain_rc=$?
echo "== the tests of $plain (run while $asan compiled)"
cat "$log"

# A fresh tree has no ctest cost data and runs its tests in their order, so the few long ones
# (ServeStress, ServeFault, NatsCluster: 40-50 s each under ASan) would start last and leave one
# core idle at the end. The plain tree's tests have the same names and just ran: their timings
# put the long ones first.
cost=Testing/Temporary/CTestCostData.txt
if [ ! -e "$asan/$cost" ] && [ -e "$plain/$cost" ]; then
  mkdir -p "$(dirname "$asan/$cost")"
  cp "$plain/$cost" "$asan/$cost"
fi

asan_rc=0
if [ "$asan_build_rc" -eq 0 ]; then
  echo "== the tests of $asan"
  ctest_of "$asan" || asan_rc=$?
else
  echo "test-all: the build of $asan failed" >&2
fi
echo "test-all: $plain tests rc=$plain_rc; $asan build rc=$asan_build_rc, tests rc=$asan_rc" >&2
[ "$plain_rc" -eq 0 ] && [ "$asan_build_rc" -eq 0 ] && [ "$asan_rc" -eq 0 ]
