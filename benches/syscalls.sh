#!/usr/bin/env bash
# System calls, context switches and reschedule interrupts per request, and
# CPU per request split into user and kernel time: the release collector
# and nginx `return 200`, each on CPU 1 under the load kit's traffic from
# wrk on CPU 0 (64 connections). Counted by the kernel's tracepoints
# (`perf stat`), which do not slow the server the way strace does, so the
# waits (epoll_wait, io_uring_enter, futex) are counted at full speed.
#
#   bash benches/syscalls.sh [seconds=5]
#
# BIN= another collector binary.
set -euo pipefail
cd "$(dirname "$0")/.."
. benches/lib.sh
SECS=${1:-5}
need perf linux-perf
need wrk
need nginx
if [ -z "${BIN:-}" ]; then
    cargo build --release --quiet
    BIN=target/release/divolte-collector
fi
PORT=18397
profile_setup $PORT
nginx_config $PORT "$WORK" "master_process off;" > "$WORK/nginx.conf"
CALLS="recvfrom sendto writev epoll_wait io_uring_enter sched_yield futex write fdatasync fcntl close"
EVENTS=$(for c in $CALLS; do printf 'syscalls:sys_enter_%s,' "$c"; done)context-switches,irq_vectors:reschedule_entry

# ticks PID: "name user system" per thread, in clock ticks.
ticks() {
    local t
    for t in /proc/"$1"/task/*; do
        printf '%s %s\n' "$(tr ' ' _ < "$t/comm")" "$(sed 's/.*) //' "$t/stat" | awk '{print $12, $13}')"
    done
}

# count NAME COMMAND...: runs COMMAND on CPU 1, warms it up, and prints its
# counts per request answered while perf watched.
count() {
    local name=$1 pid perf req hz
    shift
    taskset -c 1 "$@" > "$WORK/$name.out" 2>&1 &
    pid=$!
    wait_port $PORT 20
    taskset -c 0 wrk -t1 -c64 -d3s -s benches/traffic.lua "http://127.0.0.1:$PORT" > /dev/null
    ticks $pid > "$WORK/before"
    perf stat -x, -e "$EVENTS" -p $pid -o "$WORK/$name.perf" &
    perf=$!
    req=$(taskset -c 0 wrk -t1 -c64 -d"${SECS}s" -s benches/traffic.lua "http://127.0.0.1:$PORT" |
        sed -n 's/^RESULT .*requests=\([0-9]*\).*/\1/p')
    kill -INT $perf
    wait $perf || true
    ticks $pid > "$WORK/after"
    kill -TERM $pid
    wait $pid 2>/dev/null || true
    hz=$(getconf CLK_TCK)
    echo "== $name requests=$req"
    awk -F, -v r="$req" '$1 ~ /^[0-9]+$/ && $1 > 0 {sub("syscalls:sys_enter_", "", $3); printf "%-30s %8.3f per request\n", $3, $1 / r}' \
        "$WORK/$name.perf"
    paste -d' ' "$WORK/before" "$WORK/after" | awk -v r="$req" -v hz="$hz" '{
        u = ($5 - $2) * 1e6 / hz / r; s = ($6 - $3) * 1e6 / hz / r
        if (u + s > 0) printf "cpu %-18s user %5.2f  kernel %5.2f us per request\n", $1, u, s }'
}
count collector "$BIN" --config "$WORK/collector.toml"
count nginx nginx -c "$WORK/nginx.conf"
