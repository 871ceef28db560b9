#!/usr/bin/env bash
# Installs the Debian packages that backbone needs to build, test and benchmark.
# Idempotent and quick when everything is present: it only calls apt-get when a package is missing.
set -euo pipefail

packages=(
  build-essential cmake ninja-build pkg-config clang-format
  lld                           # the linker (doc/build.md)
  libsqlite3-dev sqlite3        # the embedded event store, and the shell used by the trigger tests
  libpq-dev postgresql postgresql-client   # the postgresql:// store, and the server its tests start
  libmariadb-dev mariadb-server mariadb-client  # the mysql:// store, and the server its tests start
  libssl-dev                    # SHA-256 (OpenSSL EVP)
  zlib1g-dev                    # CRC-32 of the embedded broker's records
  nlohmann-json3-dev            # JSON parsing and building
  libboost1.74-dev              # Boost.Beast on Asio: the HTTP server of `backbone serve`
  libcpp-httplib-dev            # HTTP clients: member calls, `stress --url`, the tests
  wrk                           # HTTP load in bench/
  libcli11-dev                  # command-line parsing
  libtomlplusplus-dev           # backbone.toml
  libgtest-dev libgmock-dev     # tests
  nats-server libnats-dev       # the JetStream peer in bench/broker (and the nats:// backend)
  chromium                      # the console's browser tests (tests/console/), headless
  libgrpc++-dev libprotobuf-dev protobuf-compiler protobuf-compiler-grpc  # the Pub/Sub v1 front
                                # and the pubsub:// backend
  libavro-dev libprotoc-dev     # schemas: Avro's C library, protobuf's .proto parser
)
# npm fetches Google's Pub/Sub protos and Node client (scripts/fetch-npm.sh google-pubsub). Machines
# whose node comes from elsewhere (NodeSource's nodejs bundles npm) keep it.
command -v npm >/dev/null || packages+=(nodejs npm)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "install-deps: installing ${missing[*]}" >&2
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
