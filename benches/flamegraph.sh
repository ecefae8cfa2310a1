#!/usr/bin/env bash
# Profiles the release collector under the load of benches/load.sh (the
# realistic traffic of benches/traffic.py) and writes
# flamegraphs/pixel-load.svg (perf cpu-clock samples, inferno).
#
#   bash benches/flamegraph.sh [seconds=8]
set -euo pipefail
cd "$(dirname "$0")/.."
. benches/lib.sh
SECS=${1:-8}
need perf linux-perf
need wrk
python3 -c 'import mmh3' 2>/dev/null || python3 -m pip install --quiet mmh3
command -v inferno-flamegraph >/dev/null || cargo install --locked inferno
cargo build --release --quiet

PORT=18395
profile_setup $PORT
taskset -c 1 target/release/divolte-collector --config "$WORK/collector.toml" 2>"$WORK/log" &
PID=$!
sleep 1
taskset -c 0 wrk -t1 -c64 -d"$((SECS + 4))s" -s benches/traffic.lua "http://127.0.0.1:$PORT" > "$WORK/wrk.txt" &
sleep 2
perf record -e cpu-clock -F 2999 -g -p "$PID" -o "$WORK/perf.data" -- sleep "$SECS" 2>/dev/null
wait %2 || true
grep RESULT "$WORK/wrk.txt"
mkdir -p flamegraphs
perf script -i "$WORK/perf.data" 2>/dev/null | inferno-collapse-perf | inferno-flamegraph --title "divolte-collector: pixel events under wrk (one core)" > flamegraphs/pixel-load.svg
echo "wrote flamegraphs/pixel-load.svg"
