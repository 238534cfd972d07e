#!/bin/bash
# console.sh: the web console's speed with the demo plus a million events.
# Starts `veritrail serve --demo` on a fresh data directory, sends
# EVENTS (1,000,000) more sample events, and measures in Chromium (headless,
# Debian's): first rows painted after navigation, a filter change to new
# rows, the stats endpoint (p50/p95), and the JavaScript the page loads
# (gzip). Usage, from the repository root:
#   docs/bench/console.sh            # builds ./veritrail first
#   EVENTS=100000 ROUNDS=10 docs/bench/console.sh
# Needs node, npm and chromium; installs the pinned npm packages
# (group console of internal/npmtest/packages.txt) into
# VERITRAIL_NPM_CACHE/console.
set -euo pipefail
cd "$(dirname "$0")/../.."
EVENTS=${EVENTS:-1000000}
ADDR=${ADDR:-127.0.0.1:18480}
export VERITRAIL_NPM_CACHE="${VERITRAIL_NPM_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/veritrail/npm}"
export VERITRAIL_CHROMIUM="${VERITRAIL_CHROMIUM:-/usr/bin/chromium}"
export VERITRAIL_TEST_ARTIFACTS="${VERITRAIL_TEST_ARTIFACTS:-$(mktemp -d)}"
export VERITRAIL_NPM_MODULES="$VERITRAIL_NPM_CACHE/console"
missing=()
while read -r prefix pkg; do
	[ "$prefix" = console ] || continue
	name=${pkg%@*}; version=${pkg##*@}
	grep -q "\"version\": \"$version\"" "$VERITRAIL_NPM_MODULES/node_modules/$name/package.json" 2>/dev/null || missing+=("$pkg")
done < internal/npmtest/packages.txt
if [ ${#missing[@]} -gt 0 ]; then
	npm install --no-audit --no-fund --save-exact --prefix "$VERITRAIL_NPM_MODULES" "${missing[@]}" >/dev/null
fi
go build -o veritrail ./cmd/veritrail
DATA=$(mktemp -d)
TOKEN=vt_console-benchmark-token-0123456789abcdef
VERITRAIL_BOOTSTRAP_TOKEN=$TOKEN ./veritrail serve --demo --data "$DATA" --addr "$ADDR" --rate-limit 0 --log-level warn &
SERVER=$!
trap 'kill $SERVER 2>/dev/null; wait $SERVER 2>/dev/null; rm -rf "$DATA"' EXIT
until curl -sf "http://$ADDR/healthz" >/dev/null; do sleep 0.5; done
./veritrail demo --server "http://$ADDR" --token "$TOKEN" --count "$EVENTS" --seed 2 --days 30
BASE="http://$ADDR" TOKEN=$TOKEN ROUNDS=${ROUNDS:-15} node web/browsertest/bench.mjs
