#!/usr/bin/env bash
# Counts user-space instructions per request under the realistic traffic
# of benches/load.sh: the server runs under valgrind's callgrind on CPU 1,
# wrk sends the traffic for a while to warm it up, the counters are zeroed,
# wrk sends it again, and the total is divided by the requests answered.
# Kernel work (TCP) is not counted. Unlike a rate, the figure does not move
# with other load on the machine, so it can compare two builds on a noisy
# host, and the collector with nginx answering a constant.
#
#   bash benches/instructions.sh [seconds=10] [collector|nginx|both]
#
# BIN= another collector binary. "both" measures the collector, then nginx
# `return 200` (one worker, no master process) with the same traffic, and
# prints the ratio. Leaves each profile in $OUT.<server> (default
# /tmp/<server>.callgrind) for `callgrind_annotate --inclusive=yes`.
set -euo pipefail
cd "$(dirname "$0")/.."
. benches/lib.sh
SECS=${1:-10}
WHICH=${2:-collector}
OUT=${OUT:-/tmp}
need valgrind
need wrk
python3 -c 'import mmh3' 2>/dev/null || python3 -m pip install --quiet mmh3
if [ "$WHICH" != nginx ] && [ -z "${BIN:-}" ]; then
    cargo build --release --quiet
    BIN=target/release/divolte-collector
fi
if [ "$WHICH" != collector ]; then
    need nginx
fi

PORT=18396
profile_setup $PORT
nginx_config $PORT "$WORK" "master_process off;" > "$WORK/nginx.conf"
VG=
# Run down before the next server starts: a collector still draining
# under valgrind shares the port (SO_REUSEPORT) and takes half its
# connections.
trap '[ -n "$VG" ] && { kill -TERM $VG 2>/dev/null; wait $VG 2>/dev/null; }; rm -rf "$WORK"' EXIT

# measure NAME COMMAND...: runs COMMAND under callgrind and prints
# "NAME requests=R instructions=I per_request=P profile=FILE".
measure() {
    local name=$1 out="$OUT/$1.callgrind" requests dump instructions
    shift
    rm -f "$out" "$out".*
    # Every thread on CPU 1: callgrind runs one thread at a time anyway,
    # and with the collector's flush threads confined to CPU 0 it never
    # saw the SIGTERM that ends it.
    taskset -c 1 valgrind --tool=callgrind --callgrind-out-file="$out" "$@" 2>"$WORK/$name.log" &
    VG=$!
    wait_port $PORT 60    # valgrind starts it slowly
    wrk -t1 -c16 -d5s -s benches/traffic.lua "http://127.0.0.1:$PORT" > /dev/null
    callgrind_control -z "$VG" > /dev/null 2>&1
    requests=$(wrk -t1 -c16 -d"${SECS}s" -s benches/traffic.lua "http://127.0.0.1:$PORT" |
        sed -n 's/^RESULT .*requests=\([0-9]*\).*/\1/p')
    callgrind_control -d "$VG" > /dev/null 2>&1
    sleep 1
    # sed, not head: head exits after one line, ls then dies of SIGPIPE,
    # and pipefail ends the script when several dumps are there.
    dump=$(ls -t "$out".* | sed -n 1p)
    instructions=$(callgrind_annotate "$dump" 2>/dev/null | awk '/PROGRAM TOTALS/ {gsub(",", "", $1); print $1}')
    kill -TERM "$VG"
    wait "$VG" 2>/dev/null || true
    VG=
    echo "$name requests=$requests instructions=$instructions per_request=$((instructions / requests)) profile=$dump"
}

case $WHICH in
    collector) measure collector "$BIN" --config "$WORK/collector.toml" ;;
    nginx) measure nginx nginx -c "$WORK/nginx.conf" ;;
    both)
        c=$(measure collector "$BIN" --config "$WORK/collector.toml")
        echo "$c"
        n=$(measure nginx nginx -c "$WORK/nginx.conf")
        echo "$n"
        cp=${c##*per_request=}; cp=${cp%% *}
        np=${n##*per_request=}; np=${np%% *}
        printf 'collector / nginx instructions per request: %.3f\n' "$(echo "$cp / $np" | bc -l)"
        ;;
    *) echo "usage: $0 [seconds] [collector|nginx|both]" >&2; exit 2 ;;
esac
