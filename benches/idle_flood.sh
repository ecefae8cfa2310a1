#!/usr/bin/env bash
# What 20,000 idle connections cost one shard: the release collector on one
# pinned core, wrk pinned to the other, 20,000 idle connections held open
# by two tests/hold_connections.py helpers (from 127.0.0.2 and 127.0.0.3).
#
#   bash benches/idle_flood.sh [max_connections=30000] [seconds=3]
#
# With max_connections above 20,000 every idle connection is held and wrk
# measures pixel requests before, during and after the flood. At the
# default 16,384 the shard is full during the flood, so wrk's own
# connections are refused: the "during" rate is then how fast the shard
# answers 503 and closes, with 16,384 idle connections beside it.
# Env: SERVER_CPU (1), LOAD_CPU (0), BIN (another collector binary to compare).
set -euo pipefail
cd "$(dirname "$0")/.."
. benches/lib.sh
MAX=${1:-30000}
SECS=${2:-3}
SERVER_CPU=${SERVER_CPU:-1}
LOAD_CPU=${LOAD_CPU:-0}
PORT=18392
need wrk
python3 -c 'import mmh3' 2>/dev/null || python3 -m pip install --quiet mmh3
cargo build --release --quiet

WORK=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; wait; rm -rf "$WORK"' EXIT
collector_config $PORT "$SERVER_CPU" "$WORK" | sed "s/^cores = .*/&\nmax_connections = $MAX/" >"$WORK/collector.toml"
mkdir -p "$WORK/work" "$WORK/publish"
# Each helper holds 10,000 descriptors, the collector all of them.
ulimit -n "$(ulimit -Hn)"
# A run just before may still be closing its 20,000 connections on the port.
for _ in $(seq 300); do [ -z "$(ss -tanH "sport = :$PORT")" ] && break; sleep 0.1; done
taskset -c "$SERVER_CPU" "${BIN:-target/release/divolte-collector}" --config "$WORK/collector.toml" 2>"$WORK/collector.log" &
DV_PID=$!
wait_port $PORT || { cat "$WORK/collector.log"; exit 1; }

URL="http://127.0.0.1:$PORT$(python3 benches/traffic.py 1 1 | cut -f1)"
rate() {
    taskset -c "$LOAD_CPU" wrk -t1 -c4 -d"${SECS}s" "$URL" |
        awk '/Requests\/sec/ {r = $2} /Non-2xx/ {n = $NF} END {printf "%s req/s%s", r, n ? " (" n " not 200)" : ""}'
}
metric() { curl -s "http://127.0.0.1:$PORT/metrics" | awk -v m="$1" '$1 == m {print $2}'; }

for i in 1 2 3; do echo "before: $(rate)"; done
exec 3> >(python3 tests/hold_connections.py $PORT 10000 127.0.0.2 >"$WORK/helper2")
exec 4> >(python3 tests/hold_connections.py $PORT 10000 127.0.0.3 >"$WORK/helper3")
until [ "$(cat "$WORK"/helper* | grep -c opened)" = 2 ]; do sleep 0.2; done
# Measure once the shard has taken every helper connection in (its accept
# queue is empty), then a little longer for the refused ones to close.
until [ "$(ss -ltnH "sport = :$PORT" | awk '{print $2}')" = 0 ]; do sleep 0.2; done
sleep 1
echo "flood: RSS $(rss_mib $DV_PID) MiB"
for i in 1 2 3; do echo "during: $(rate)"; done
echo >&3
echo >&4
exec 3>&- 4>&-
sleep 2
echo "flood: $(metric divolte_connections_accepted_total) accepted, $(metric divolte_connections_refused_total) refused"
for i in 1 2 3; do echo "after: $(rate)"; done
