#!/usr/bin/env bash
# Runs every fuzz target for a number of executions each (default ten
# million) and prints a line per target: executions, seconds, rate.
#
#   bash fuzz/run.sh [executions=10000000] [target...]
#
# FUZZ_DEV=1 builds without optimisation: a short smoke run then spends
# less time compiling than the optimised build saves in running.
#
# Seeds come from fuzz/corpus/<target> (python3 fuzz/seed.py writes them);
# what the fuzzer learns goes to a scratch corpus and is thrown away. A
# crash stops the run with the input under fuzz/artifacts/<target>/.
# Needs cargo-fuzz; stable Rust works with RUSTC_BOOTSTRAP (set here) and
# no sanitizer, which suits a crate whose only unsafe code is a few system
# calls, CPU hints, SSE2 loads and one unchecked UTF-8 conversion (behind a
# debug assertion, which cargo-fuzz builds keep): what is looked for is
# panics, hangs and runaway memory.
set -euo pipefail
cd "$(dirname "$0")"
RUNS=${1:-10000000}
shift || true
TARGETS=("$@")
[ ${#TARGETS[@]} -gt 0 ] || TARGETS=(http_request pixel_query mincode json_event mapping_language config_toml)
export RUSTC_BOOTSTRAP=1
command -v cargo-fuzz >/dev/null || cargo install --locked cargo-fuzz
PROFILE=()
[ "${FUZZ_DEV:-0}" = 1 ] && PROFILE=(--dev)
cargo fuzz build "${PROFILE[@]}" -s none >/dev/null
SCRATCH=$(mktemp -d)
trap 'rm -rf "$SCRATCH"' EXIT
for t in "${TARGETS[@]}"; do
    mkdir -p "$SCRATCH/$t"
    start=$(date +%s)
    log="$SCRATCH/$t.log"
    if ! cargo fuzz run "${PROFILE[@]}" -s none "$t" "$SCRATCH/$t" "corpus/$t" -- \
        -runs="$RUNS" -rss_limit_mb=512 -timeout=10 -max_len=8192 -print_final_stats=1 >"$log" 2>&1; then
        grep -E "panicked|ERROR|SUMMARY|Test unit written" -A3 "$log" | head -40 >&2
        echo "$t: FAILED" >&2
        exit 1
    fi
    secs=$(( $(date +%s) - start ))
    execs=$(awk '/stat::number_of_executed_units/ {print $2}' "$log")
    printf '%-18s %12s executions %6s s %10s exec/s, no crash\n' "$t" "$execs" "$secs" \
        "$(awk '/stat::average_exec_per_sec/ {print $2}' "$log")"
done
