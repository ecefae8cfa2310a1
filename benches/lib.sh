# Shared by the benchmark scripts: the collector configuration they run
# and helpers to start and watch it. Source it. The traffic they send
# comes from benches/traffic.py, replayed by benches/traffic.lua.

# need COMMAND [PACKAGE]: installs PACKAGE (COMMAND by default) from
# Debian when COMMAND is missing.
need() {
    command -v "$1" >/dev/null || { apt-get update -qq && apt-get install -y -qq "${2:-$1}"; }
}

# collector_config PORT CPU DIR: a configuration on one core with the file
# sink writing under DIR.
collector_config() {
    cat <<TOML
[global.server]
port = $1
cores = [$2]
[sinks.hdfs]
type = "hdfs"
[sinks.hdfs.file_strategy]
working_dir = "$3/work"
publish_dir = "$3/publish"
TOML
}

# collector_kafka_config PORT CPU BROKER: the same, with a Kafka sink
# (topic "bench") instead of files. KAFKA_PRODUCER adds lines to the
# producer table (e.g. '"linger.ms" = 50').
collector_kafka_config() {
    cat <<TOML
[global.server]
port = $1
cores = [$2]
[global.kafka]
enabled = true
[global.kafka.producer]
"bootstrap.servers" = "$3"
${KAFKA_PRODUCER:-}
[sinks.kafka]
type = "kafka"
topic = "bench"
TOML
}

# collector_store_config PORT CPU KIND ENDPOINT STAGING: the same, with an
# S3 or GCS file sink (bucket "bench") rolled every second. GCS takes its
# endpoint from STORAGE_EMULATOR_HOST.
collector_store_config() {
    local endpoint=
    [ "$3" = s3 ] && endpoint="endpoint = \"$4\""
    cat <<TOML
[global.server]
port = $1
cores = [$2]
[global.$3]
enabled = true
[sinks.store]
type = "$3"
bucket = "bench"
$endpoint
staging_dir = "$5"
[sinks.store.file_strategy]
publish_dir = "/bench"
roll_every = "1 second"
TOML
}

# profile_setup PORT: for the scripts that profile one collector on CPU 1:
# a work directory $WORK (removed, and background jobs killed, on exit),
# the collector's configuration in it, and the realistic traffic in
# $TRAFFIC.
profile_setup() {
    WORK=$(mktemp -d)
    trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$WORK"' EXIT
    collector_config "$1" 1 "$WORK" > "$WORK/collector.toml"
    export TRAFFIC=$WORK/traffic.txt
    python3 benches/traffic.py 20000 3000 > "$TRAFFIC"
}

# nginx_config PORT DIR [DIRECTIVE...]: nginx answering `return 200` on
# PORT with one worker, its pid and error log under DIR; each DIRECTIVE is
# a line added to the main context (a CPU affinity, `master_process off;`).
nginx_config() {
    local port=$1 dir=$2
    shift 2
    printf '%s\n' "$@"
    cat <<NGINX
worker_processes 1;
daemon off;
pid $dir/nginx.pid;
error_log $dir/nginx-error.log;
events { worker_connections 4096; }
http {
    access_log off;
    keepalive_requests 100000000;
    server {
        listen 127.0.0.1:$port;
        location / { return 200; }
    }
}
NGINX
}

# wait_port PORT [SECONDS=10]: until /ping on PORT answers 200. Polls
# through bash's /dev/tcp, without a pause: with a curl process and a
# sleep per attempt the measured startup was mostly the polling.
wait_port() {
    local deadline=$((SECONDS + ${2:-10})) status
    while [ $SECONDS -lt $deadline ]; do
        # In a subshell: a connection reset while the server starts (a
        # SIGPIPE on the write) ends the probe, not the script. The read
        # times out: a connection the server never answers (one taken
        # while it was still starting under valgrind) hung the script.
        status=$( { exec 3<>"/dev/tcp/127.0.0.1/$1" &&
            printf 'GET /ping HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n' >&3 &&
            read -r -t 5 _ code _ <&3 && echo "$code"; } 2>/dev/null) || true
        [ "$status" = 200 ] && return 0
    done
    echo "server on port $1 did not start" >&2
    return 1
}

# stat_ticks FILE: user + system CPU ticks from a /proc stat file. The
# fields are counted after the name, which may hold spaces: utime is the
# 12th of them.
stat_ticks() {
    local stat
    stat=$(cat "$1") && awk '{print $12 + $13}' <<<"${stat##*) }"
}

cpu_ticks() { stat_ticks "/proc/$1/stat"; }

# thread_ticks PID: "name ticks" for each thread of PID, numbered names
# folded into one group (librdkafka's "rdk:broker1", "rdk:broker2"...).
thread_ticks() {
    local task ticks
    for task in /proc/"$1"/task/*; do
        ticks=$(stat_ticks "$task/stat") || continue
        printf '%s %s\n' "$(tr -d ' \n' < "$task/comm" | sed 's/[0-9-]*$//')" "$ticks"
    done 2>/dev/null
}

# per_request_by_thread BEFORE AFTER REQUESTS: CPU per request (µs) of
# each thread group between two thread_ticks snapshots.
per_request_by_thread() {
    awk -v n="$3" -v hz="$(getconf CLK_TCK)" '
        FILENAME == ARGV[1] { before[$1] += $2; next }
        { after[$1] += $2 }
        END { for (t in after) if (after[t] > before[t]) printf "%s=%.2f ", t, (after[t] - before[t]) * 1e6 / hz / n; print "" }
    ' "$1" "$2"
}
rss_mib() { awk '/VmRSS/ {printf "%.1f", $2 / 1024}' "/proc/$1/status"; }
