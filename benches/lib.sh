# Shared by the benchmark scripts: the collector configuration they run.
# Source it; it defines collector_config. The traffic they send comes from
# benches/traffic.py, replayed by benches/traffic.lua.

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
# (topic "bench") instead of files.
collector_kafka_config() {
    cat <<TOML
[global.server]
port = $1
cores = [$2]
[global.kafka]
enabled = true
[global.kafka.producer]
"bootstrap.servers" = "$3"
[sinks.kafka]
type = "kafka"
topic = "bench"
TOML
}
