#!/usr/bin/env bash
# The batch endpoint against single pixels: the release collector on one
# pinned core takes the load kit's traffic once as pixel GETs and once as
# beacons (POST /csc-batch, N queries per body, optionally gzip), in turns,
# and prints events per second and the collector's CPU per event of each.
#
#   bash benches/batch.sh [runs=3] [seconds=10] [lines=10] [connections=64]
#
# Env: SERVER_CPU (1), LOAD_CPU (0), GZIP=1 (compressed bodies), BIN.
set -euo pipefail
cd "$(dirname "$0")/.."
. benches/lib.sh
RUNS=${1:-3}
SECS=${2:-10}
LINES=${3:-10}
CONNS=${4:-64}
SERVER_CPU=${SERVER_CPU:-1}
LOAD_CPU=${LOAD_CPU:-0}
need wrk
python3 -c 'import mmh3' 2>/dev/null || python3 -m pip install --quiet mmh3
if [ -z "${BIN:-}" ]; then
    cargo build --release --quiet
    BIN=target/release/divolte-collector
fi

WORK=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$WORK"' EXIT
PORT=18397
export TRAFFIC=$WORK/traffic.txt BATCHES=$WORK/batches.bin GZIP=${GZIP:-0}
python3 benches/traffic.py 20000 3000 > "$TRAFFIC"
gzip_flag=()
[ "$GZIP" = 1 ] && gzip_flag=(--gzip)
python3 benches/batches.py "$TRAFFIC" "$LINES" "${gzip_flag[@]}" > "$BATCHES"
collector_config $PORT "$SERVER_CPU" "$WORK" > "$WORK/collector.toml"
taskset -c "$SERVER_CPU" "$BIN" --config "$WORK/collector.toml" 2>"$WORK/collector.log" &
PID=$!
wait_port $PORT

# one SCRIPT EVENTS_PER_REQUEST: prints "events/s cpu_us_per_event p99_us errors".
one() {
    local before after out requests
    before=$(cpu_ticks $PID)
    out=$(taskset -c "$LOAD_CPU" wrk -t1 -c"$CONNS" -d"${SECS}s" -s "$1" "http://127.0.0.1:$PORT" | grep '^RESULT')
    after=$(cpu_ticks $PID)
    requests=$(sed 's/.* requests=\([0-9]*\).*/\1/' <<<"$out")
    printf '%.0f %.2f %s %s\n' "$(echo "$(sed 's/.*rate=\([0-9.]*\).*/\1/' <<<"$out") * $2" | bc -l)" \
        "$(echo "($after - $before) * 1000000 / $(getconf CLK_TCK) / ($requests * $2)" | bc -l)" \
        "$(sed 's/.*p99_us=\([0-9]*\).*/\1/' <<<"$out")" "$(sed 's/.*errors=\([0-9]*\).*/\1/' <<<"$out")"
}

taskset -c "$LOAD_CPU" wrk -t1 -c"$CONNS" -d2s -s benches/traffic.lua "http://127.0.0.1:$PORT" >/dev/null
taskset -c "$LOAD_CPU" wrk -t1 -c"$CONNS" -d2s -s benches/batch.lua "http://127.0.0.1:$PORT" >/dev/null
printf '%-4s %-22s %10s %12s %8s %6s\n' run traffic events/s cpu_us/event p99_us errors
px=(); bx=(); ratios=()
for i in $(seq "$RUNS"); do
    read -r pr pc p99 perr < <(one benches/traffic.lua 1)
    read -r br bc b99 berr < <(one benches/batch.lua "$LINES")
    printf '%-4s %-22s %10s %12s %8s %6s\n' "$i" "pixel GET" "$pr" "$pc" "$p99" "$perr"
    printf '%-4s %-22s %10s %12s %8s %6s\n' "$i" "batch of $LINES (gzip=$GZIP)" "$br" "$bc" "$b99" "$berr"
    px+=("$pc"); bx+=("$bc"); ratios+=("$(echo "$bc / $pc" | bc -l)")
done
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
printf 'median CPU per event: pixel %.2f us, batch %.2f us; median of run ratios (batch/pixel) %.3f\n' \
    "$(median "${px[@]}")" "$(median "${bx[@]}")" "$(median "${ratios[@]}")"
curl -s "http://127.0.0.1:$PORT/metrics" | grep -E '^divolte_(events_rejected_total|records_dropped_total)' || true
kill -TERM $PID; wait $PID || true
