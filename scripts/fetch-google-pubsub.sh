#!/usr/bin/env bash
# Installs Google's published Pub/Sub npm packages (third_party/google-pubsub, pinned by its
# package-lock.json) into DEST/node_modules: the google.pubsub.v1 and google.api protos that the
# build compiles, and the official Node client that the Pub/Sub tests and benchmark drive.
# Quick when DEST already holds this lock's packages. Usage: fetch-google-pubsub.sh DEST
set -euo pipefail

dest=${1:?usage: fetch-google-pubsub.sh DEST}
src="$(cd "$(dirname "$0")/.." && pwd)/third_party/google-pubsub"
mkdir -p "$dest"
want=$(sha256sum "$src/package-lock.json" | cut -d' ' -f1)
if [ -f "$dest/.installed" ] && [ "$(cat "$dest/.installed")" = "$want" ] &&
   [ -d "$dest/node_modules/@google-cloud/pubsub" ]; then
  exit 0
fi
cp "$src/package.json" "$src/package-lock.json" "$dest/"
echo "fetch-google-pubsub: npm ci in $dest" >&2
# No install scripts run: nothing here needs one.
(cd "$dest" && npm ci --no-audit --no-fund --ignore-scripts --loglevel=error)
echo "$want" > "$dest/.installed"
