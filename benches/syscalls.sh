#!/usr/bin/env bash
# System calls per request: the release collector and nginx `return 200`,
# each on CPU 1 under the load kit's traffic from wrk on CPU 0, counted with
# `strace -c -f` for five seconds. strace slows both servers many times
# over, which changes how often they wait (futex, io_uring_enter,
# epoll_wait); the reads and writes per request do not change.
#
#   bash benches/syscalls.sh
#
# BIN= another collector binary.
set -euo pipefail
cd "$(dirname "$0")/.."
. benches/lib.sh
command -v strace >/dev/null || { apt-get update -qq && apt-get install -y -qq strace; }
command -v nginx >/dev/null || { apt-get update -qq && apt-get install -y -qq nginx; }
if [ -z "${BIN:-}" ]; then
    cargo build --release --quiet
    BIN=target/release/divolte-collector
fi
PORT=18397
profile_setup $PORT
nginx_config $PORT "$WORK" "master_process off;" > "$WORK/nginx.conf"
# count NAME COMMAND...: runs COMMAND on CPU 1, warms it up, and prints its
# most frequent system calls per request answered while strace watched.
count() {
  local name=$1; shift
  taskset -c 1 "$@" > "$WORK/$name.out" 2>&1 &
  local pid=$!
  wait_port $PORT 20
  taskset -c 0 wrk -t1 -c64 -d3s -s benches/traffic.lua "http://127.0.0.1:$PORT" > /dev/null
  strace -c -f -p $pid -o "$WORK/$name.strace" 2>/dev/null &
  local st=$!
  sleep 0.5
  local req
  req=$(taskset -c 0 wrk -t1 -c64 -d5s -s benches/traffic.lua "http://127.0.0.1:$PORT" | sed -n 's/^RESULT .*requests=\([0-9]*\).*/\1/p')
  kill -INT $st; wait $st || true
  kill -TERM $pid; wait $pid 2>/dev/null || true
  echo "== $name requests=$req"
  awk -v r="$req" 'NR>2 && $4 ~ /^[0-9]+$/ && $NF != "total" {printf "%-20s %8.3f per request\n", $NF, $4/r}' "$WORK/$name.strace" | sort -k2 -nr | head -12
}
count collector "$BIN" --config "$WORK/collector.toml"
count nginx nginx -c "$WORK/nginx.conf"
