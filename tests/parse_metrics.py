"""Independent parser for the collector's /metrics: reads Prometheus text on
stdin with prometheus_client's parser (which rejects malformed exposition)
and prints every sample as one JSON line: name, labels, value, family type."""
import json
import sys

from prometheus_client.parser import text_string_to_metric_families

for family in text_string_to_metric_families(sys.stdin.read()):
    for sample in family.samples:
        print(json.dumps({"family": family.name, "type": family.type, "help": family.documentation,
                          "name": sample.name, "labels": sample.labels, "value": sample.value}))
