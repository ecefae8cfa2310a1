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

cat > "$WORK/collector.toml" <<TOML
[global.server]
port = $DV_PORT
cores = [$SERVER_CPU]
[sinks.hdfs]
type = "hdfs"
[sinks.hdfs.file_strategy]
working_dir = "$WORK/work"
publish_dir = "$WORK/publish"
TOML

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

QUERY='p=0%3Ai1t84hgy%3A5AF359Zjq5kUy98u4wQjlIZzWGhN~GlG&s=0%3Ai1t84hgy%3A95CbiPCYln_1e0a6rFvuRkDkeNnc6KC8&v=0%3A1fF6GFGjDOQiEx_OxnTm_tl4BH91eGLF&e=0%3A1fF6GFGjDOQiEx_OxnTm_tl4BH91eGLF0&c=i1t8q2b6&n=f&f=f&l=https%3A%2F%2Fshop.example.com%2Fcategory%2Fshoes%2Frunning%3Futm_source%3Dnewsletter%26utm_medium%3Demail%26utm_campaign%3Dspring-sale%23reviews&r=https%3A%2F%2Fwww.google.com%2Fsearch%3Fq%3Drunning%2Bshoes%2Bsale%26hl%3Den&i=1ak&j=sj&k=2&w=uq&h=qd&t=pageView&u=(sproduct!sku-12345!dquantity!2!jprice!89.95!)&x=-1f8gq3c'
HEADERS=(
    -H 'User-Agent: Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36'
    -H 'Accept: image/avif,image/webp,image/apng,image/svg+xml,image/*,*/*;q=0.8'
    -H 'Accept-Encoding: gzip, deflate, br'
    -H 'Accept-Language: en-US,en;q=0.9,nl;q=0.8'
    -H 'Referer: https://shop.example.com/category/shoes/running'
    -H 'Cookie: _dvp=0:i1t84hgy:5AF359Zjq5kUy98u4wQjlIZzWGhN~GlG; _dvs=0:i1t84hgy:95CbiPCYln_1e0a6rFvuRkDkeNnc6KC8'
)

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
