#!/usr/bin/env bash
# The file sink against a real HDFS, which the test machines cannot run:
# starts the collector with a `type = "hdfs"` sink on HDFS_URL, sends
# events, lets the file roll, and checks with the cluster's own `hdfs dfs`
# and fastavro that every event was published once in a complete Avro
# file and that no .partial file is left.
#
#   HDFS_URL=hdfs://namenode:8020 bash tests/hdfs-smoke.sh [events=200]
#
# Needs the Hadoop CLI (`hdfs`) on PATH, configured for the cluster, and
# python3 with fastavro. Uses HADOOP_USER_NAME if set.
set -euo pipefail
cd "$(dirname "$0")/.."
: "${HDFS_URL:?set HDFS_URL=hdfs://namenode:port}"
EVENTS=${1:-200}
command -v hdfs >/dev/null || { echo "the Hadoop CLI (hdfs) is needed to read the results" >&2; exit 2; }
cargo build --release --quiet
WORK=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$WORK"' EXIT
ROOT="/divolte-smoke/$(date +%s)-$$"
PORT=18397
cat > "$WORK/collector.toml" <<TOML
[global.server]
port = $PORT
[sinks.hdfs]
type = "hdfs"
replication = 1
staging_dir = "$WORK/staging"
[sinks.hdfs.file_strategy]
working_dir = "$HDFS_URL$ROOT/inflight"
publish_dir = "$HDFS_URL$ROOT/published"
roll_every = "2 seconds"
TOML
target/release/divolte-collector --config "$WORK/collector.toml" 2> "$WORK/log" &
for _ in $(seq 50); do curl -sf "http://127.0.0.1:$PORT/ping" >/dev/null && break; sleep 0.1; done
for i in $(seq "$EVENTS"); do
    curl -sf -o /dev/null "http://127.0.0.1:$PORT/csc-event?p=0%3Aa%3Ab&s=0%3Aa%3Ac&v=v&e=smoke$i&c=1&n=t&f=f&l=http%3A%2F%2Fsmoke%2F$i&t=pageView"
done
sleep 5
kill -TERM %1
wait %1 || true
hdfs dfs -mkdir -p "$WORK/out" 2>/dev/null || true
hdfs dfs -get "$HDFS_URL$ROOT/published" "$WORK/out"
if hdfs dfs -ls "$HDFS_URL$ROOT/inflight" 2>/dev/null | grep -q partial; then
    echo "FAIL: .partial files left in $ROOT/inflight" >&2
    exit 1
fi
python3 - "$WORK/out/published" "$EVENTS" <<'PY'
import collections, pathlib, sys
import fastavro
seen = collections.Counter()
for path in sorted(pathlib.Path(sys.argv[1]).glob("*.avro")):
    with open(path, "rb") as f:
        for record in fastavro.reader(f):
            seen[record["location"]] += 1
want = {f"http://smoke/{i}" for i in range(1, int(sys.argv[2]) + 1)}
missing, doubled = want - set(seen), [l for l, n in seen.items() if n > 1]
print(f"{sum(seen.values())} records in published files; missing {len(missing)}, doubled {len(doubled)}")
sys.exit(1 if missing or doubled else 0)
PY
echo "OK: $HDFS_URL$ROOT/published"
