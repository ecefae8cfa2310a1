#!/usr/bin/env bash
# Counts the collector's user-space instructions per request under the
# realistic traffic of benches/load.sh: the release binary runs under
# valgrind's callgrind, wrk sends the traffic for a while to warm it up,
# the counters are zeroed, wrk sends it again, and the total is divided by
# the requests answered. Kernel work (TCP) is not counted. Unlike a rate,
# the figure does not move with other load on the machine, so it can
# compare two builds on a noisy host.
#
#   bash benches/instructions.sh [seconds=10]     # BIN= another binary
#
# Leaves the profile in $OUT (default /tmp/collector.callgrind) for
# `callgrind_annotate --inclusive=yes`.
set -euo pipefail
cd "$(dirname "$0")/.."
. benches/lib.sh
SECS=${1:-10}
OUT=${OUT:-/tmp/collector.callgrind}
command -v valgrind >/dev/null || { apt-get update -qq && apt-get install -y -qq valgrind; }
command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk; }
python3 -c 'import mmh3' 2>/dev/null || python3 -m pip install --quiet mmh3
if [ -z "${BIN:-}" ]; then
    cargo build --release --quiet
    BIN=target/release/divolte-collector
fi

PORT=18396
profile_setup $PORT
# Every thread on CPU 1: callgrind runs one thread at a time anyway, and
# with the flush threads confined to CPU 0 the collector under valgrind
# never saw the SIGTERM that ends it.
rm -f "$OUT" "$OUT".*
taskset -c 1 valgrind --tool=callgrind --callgrind-out-file="$OUT" "$BIN" --config "$WORK/collector.toml" 2>"$WORK/log" &
VG=$!
# Run down before the next run starts: a collector still draining under
# valgrind shares the port (SO_REUSEPORT) and takes half its connections.
trap 'kill -TERM $VG 2>/dev/null; wait $VG 2>/dev/null; rm -rf "$WORK"' EXIT
wait_port $PORT 60    # valgrind starts it slowly
wrk -t1 -c16 -d5s -s benches/traffic.lua "http://127.0.0.1:$PORT" > /dev/null
callgrind_control -z "$VG" > /dev/null 2>&1
requests=$(wrk -t1 -c16 -d"${SECS}s" -s benches/traffic.lua "http://127.0.0.1:$PORT" |
    sed -n 's/^RESULT .*requests=\([0-9]*\).*/\1/p')
callgrind_control -d "$VG" > /dev/null 2>&1
sleep 1
# sed, not head: head exits after one line, ls then dies of SIGPIPE, and
# pipefail ends the script when several dumps are there.
dump=$(ls -t "$OUT".* | sed -n 1p)
instructions=$(callgrind_annotate "$dump" 2>/dev/null | awk '/PROGRAM TOTALS/ {gsub(",", "", $1); print $1}')
echo "requests=$requests instructions=$instructions per_request=$((instructions / requests)) profile=$dump"
