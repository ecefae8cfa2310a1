#!/usr/bin/env bash
# Installs what the tests need and runs every test. Safe to run repeatedly:
# each install step is skipped when its tool is already present.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"

log() { printf '\n== %s\n' "$*"; }

# Python's fastavro (the independent Avro reader of the integration tests)
# and mmdb-writer (builds the geo tests' MaxMind databases).
if ! python3 -c 'import fastavro, mmdb_writer' 2>/dev/null; then
    log "Installing fastavro and mmdb-writer"
    python3 -m pip install --quiet --disable-pip-version-check fastavro mmdb-writer
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
