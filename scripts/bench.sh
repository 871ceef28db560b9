#!/usr/bin/env bash
# Runs every benchmark in bench/ (built in $1) and prints its figures. Results go in
# BENCHMARKS.md by hand, with the machine line each benchmark prints.
set -euo pipefail
build=${1:-build-bench}
mkdir -p var/bench
# store_append also measures PostgreSQL and MariaDB, on throwaway servers started for it.
scripts/with-test-servers.sh "$build/bench/bench_store_append" --dir var/bench
echo
"$build/bench/bench_broker_storage" --dir var/bench/storage
echo
"$build/bench/bench_broker" --dir var/bench/broker
echo
"$build/bench/bench_pipeline" --dir var/bench/pipeline
echo
# The HTTP server against cpp-httplib, the one it replaced, under wrk.
"$build/bench/bench_http_server" --dir var/bench/http --rounds 5 --seconds 4
echo
# Google's Node client against the Pub/Sub front and against Google's emulator.
scripts/bench-pubsub-front.sh "$build"
echo
# Several serve processes of one environment under CPU caps (needs root for the cgroups).
scripts/with-test-servers.sh scripts/bench-scale-out.sh "$build"
