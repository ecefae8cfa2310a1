#!/usr/bin/env bash
# Kafka sink throughput against a bare librdkafka producer, on a local tansu
# broker (memory storage), three runs:
#
#   bash benches/kafka.sh [runs=3]
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${1:-3}
command -v tansu >/dev/null || cargo install --locked tansu --features dynostore
PORT=19092
tansu broker --storage-engine memory://tansu/ --listener-url "tcp://127.0.0.1:$PORT" \
    --advertised-listener-url "tcp://127.0.0.1:$PORT" >/dev/null 2>&1 &
BROKER=$!
trap 'kill $BROKER 2>/dev/null || true' EXIT
for _ in $(seq 100); do (echo >/dev/tcp/127.0.0.1/$PORT) 2>/dev/null && break; sleep 0.1; done
tansu topic create --broker "tcp://127.0.0.1:$PORT" --partitions 4 bench >/dev/null
for i in $(seq "$RUNS"); do
    DIVOLTE_BENCH_BROKER=127.0.0.1:$PORT cargo bench --quiet --bench kafka_sink 2>/dev/null | grep '^kafka:' | sed "s/^/run $i: /"
done
