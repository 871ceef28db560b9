#!/usr/bin/env bash
# Installs the npm packages of third_party/NAME (pinned by its package-lock.json) into
# DEST/node_modules, with `npm ci`; quick when DEST already holds this lock's packages.
#   google-pubsub   Google's published Pub/Sub packages: the google.pubsub.v1 and google.api protos
#                   that the build compiles, and the official Node client that the Pub/Sub tests
#                   and benchmark drive
#   console-test    playwright-core, which drives Debian's chromium in the console's tests
# Usage: fetch-npm.sh NAME DEST
set -euo pipefail

name=${1:?usage: fetch-npm.sh NAME DEST}
dest=${2:?usage: fetch-npm.sh NAME DEST}
src="$(cd "$(dirname "$0")/.." && pwd)/third_party/$name"
[ -f "$src/package-lock.json" ] || { echo "fetch-npm: no $src/package-lock.json" >&2; exit 2; }
mkdir -p "$dest"
want=$(sha256sum "$src/package-lock.json" | cut -d' ' -f1)
if [ -f "$dest/.installed" ] && [ "$(cat "$dest/.installed")" = "$want" ] &&
   [ -d "$dest/node_modules" ]; then
  exit 0
fi
cp "$src/package.json" "$src/package-lock.json" "$dest/"
echo "fetch-npm: npm ci of third_party/$name in $dest" >&2
# No install scripts run: nothing here needs one (playwright-core's would fetch no browser
# anyway; the tests use /usr/bin/chromium).
(cd "$dest" && npm ci --no-audit --no-fund --ignore-scripts --loglevel=error)
echo "$want" > "$dest/.installed"
