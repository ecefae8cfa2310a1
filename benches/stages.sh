#!/usr/bin/env bash
# Instructions per event for each stage of the request path, over the load
# kit's traffic (benches/traffic.py), counted by callgrind in
# benches/stages.rs. Deterministic: two builds compare exactly.
#
#   bash benches/stages.sh [rounds=5]
#
# Prints one line per stage: inclusive instructions per event. Leaves the
# profile in $OUT (default /tmp/stages.callgrind) for callgrind_annotate.
set -euo pipefail
cd "$(dirname "$0")/.."
. benches/lib.sh
ROUNDS=${1:-5}
OUT=${OUT:-/tmp/stages.callgrind}
need valgrind
bin=$(cargo bench --bench stages --no-run --message-format=json 2>/dev/null |
    grep '"kind":\["bench"\],[^}]*"name":"stages"' | sed -n 's/.*"executable":"\([^"]*\)".*/\1/p')
traffic=$(mktemp)
trap 'rm -f "$traffic"' EXIT
python3 benches/traffic.py 20000 3000 > "$traffic"
events=$(TRAFFIC=$traffic ROUNDS=$ROUNDS valgrind --tool=callgrind --callgrind-out-file="$OUT" "$bin" 2>/dev/null |
    sed -n 's/^events=//p')
report=$(callgrind_annotate --inclusive=yes "$OUT" 2>/dev/null)
# stage LABEL PATTERN: the largest inclusive count of a function matching
# PATTERN (callgrind splits a function by the files its inlined code came
# from; the largest row is the whole), per event.
stage() {
    local count
    count=$( (grep -E "$2( \[|$)" <<< "$report" || true) | awk '{gsub(",", "", $1); if ($1 + 0 > max) max = $1 + 0} END {print max + 0}')
    if [ "$count" -gt 0 ]; then
        printf '%-24s %8d\n' "$1" $((count / events))
    else
        printf '%-24s %8s\n' "$1" inlined
    fi
}
echo "events=$events rounds=$ROUNDS"
stage "http head (httparse)" 'stages::parse_head'
stage "pixel parse" 'PixelScratch::parse'
stage "  canonical form" 'checksum::canonical_form(_of_sections)?'
stage "  identifiers" 'pixel::normalised_id'
stage "checksum verify" 'checksum::verify'
stage "duplicate probe" 'DuplicateMemory::probe'
stage "user agent cache" 'UserAgentCache::get'
stage "mapping and Avro" '(Mapping::map_into|DefaultMapping::write)'
stage "whole loop" 'stages::main'
