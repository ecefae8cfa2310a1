#!/usr/bin/env bash
# Data flows one way: config -> plan -> (socket -> http -> event -> enrich ->
# mapping -> avro -> batch -> sink). A stage must not import a stage after it (avro's schema
# types are the one leaf mapping reads; see ARCHITECTURE.md). Fails listing
# every offending line.
set -uo pipefail
cd "$(dirname "$0")/../src"
status=0
check() {
    local stage=$1; shift
    local pattern
    pattern=$(printf 'crate::%s\\b|' "$@")
    pattern=${pattern%|}
    if grep -rnE "$pattern" "$stage" 2>/dev/null; then
        echo "layering: $stage must not import: $*" >&2
        status=1
    fi
}
check http event enrich mapping avro batch sink shard startup
check event enrich mapping avro batch sink shard startup
check enrich mapping avro batch sink shard startup
check mapping batch sink shard startup
check avro event enrich mapping batch sink shard startup
check batch sink shard startup
check sink shard startup
check config http event enrich mapping avro batch sink shard startup plan
check plan event enrich mapping avro batch sink shard startup
check metrics http event enrich mapping avro batch sink shard startup
check assets http event enrich mapping avro batch sink shard startup
check lifecycle.rs http event enrich mapping avro batch sink shard startup
check watchdog.rs http event enrich mapping avro batch sink shard startup
# Configuration becomes a plan once: only config, plan, startup and the
# binary's entry point see the whole tree; every stage takes its own part.
whole_tree='crate::config::(Config\b|\{[^}]*\bConfig\b)|&Config\b'
if grep -rnE "$whole_tree" . --include=*.rs | grep -vE '^\./(config/|plan/|startup/|main\.rs)'; then
    echo "layering: only config, plan and startup may take the whole Config" >&2
    status=1
fi
exit $status
