#!/usr/bin/env bash
# Load benchmark: the release collector on one pinned core against nginx
# `return 200` on the same core, driven by wrk pinned to the other core,
# with the same realistic pixel request (~600-byte query, browser headers).
#
#   bash benches/load.sh [runs=3] [seconds=10] [connections=64]
#
# Prints each run's requests/second, the medians and their ratio.
set -euo pipefail
cd "$(dirname "$0")/.."
. benches/lib.sh
RUNS=${1:-3}
SECS=${2:-10}
CONNS=${3:-64}
SERVER_CPU=${SERVER_CPU:-1}
LOAD_CPU=${LOAD_CPU:-0}

command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk; }
command -v nginx >/dev/null || { apt-get update -qq && apt-get install -y -qq nginx; }
cargo build --release --quiet

WORK=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$WORK"' EXIT
DV_PORT=18390
NG_PORT=18391

collector_config $DV_PORT "$SERVER_CPU" "$WORK" > "$WORK/collector.toml"

cat > "$WORK/nginx.conf" <<NGINX
worker_processes 1;
worker_cpu_affinity 1$(printf '0%.0s' $(seq 1 "$SERVER_CPU"));
daemon off;
pid $WORK/nginx.pid;
error_log $WORK/nginx-error.log;
events { worker_connections 4096; }
http {
    access_log off;
    keepalive_requests 100000000;
    server {
        listen 127.0.0.1:$NG_PORT;
        location / { return 200; }
    }
}
NGINX


wait_port() {
    for _ in $(seq 100); do
        curl -s -o /dev/null "http://127.0.0.1:$1/ping" && return 0
        sleep 0.1
    done
    echo "server on port $1 did not start" >&2
    return 1
}

run_wrk() {
    taskset -c "$LOAD_CPU" wrk -t1 -c"$CONNS" -d"${SECS}s" "${HEADERS[@]}" "http://127.0.0.1:$1/csc-event?$QUERY" \
        | awk '/Requests\/sec/ {print $2}'
}

taskset -c "$SERVER_CPU" target/release/divolte-collector --config "$WORK/collector.toml" 2>"$WORK/collector.log" &
DV_PID=$!
taskset -c "$SERVER_CPU" nginx -c "$WORK/nginx.conf" &
NG_PID=$!
wait_port $DV_PORT
wait_port $NG_PORT

dv=(); ng=()
for i in $(seq "$RUNS"); do
    d=$(run_wrk $DV_PORT); n=$(run_wrk $NG_PORT)
    dv+=("$d"); ng+=("$n")
    printf 'run %d: collector %s req/s, nginx %s req/s, ratio %.3f\n' "$i" "$d" "$n" "$(echo "$d / $n" | bc -l)"
done
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
md=$(median "${dv[@]}"); mn=$(median "${ng[@]}")
printf 'median: collector %s req/s, nginx %s req/s, ratio %.3f\n' "$md" "$mn" "$(echo "$md / $mn" | bc -l)"

kill -TERM $DV_PID; wait $DV_PID || true
kill -QUIT $NG_PID 2>/dev/null; wait $NG_PID 2>/dev/null || true
records=$(grep -o 'records=[0-9]*' "$WORK/collector.log" | awk -F= '{s+=$2} END {print s+0}')
echo "collector published $records records; dropped: $(grep -c 'Dropping' "$WORK/collector.log" || true) warnings"
