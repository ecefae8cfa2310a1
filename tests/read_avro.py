"""Independent reader for the collector's Avro files: prints every record of
every published .avro file in a directory as one JSON line (fastavro)."""
import json
import pathlib
import sys

import fastavro

for path in sorted(pathlib.Path(sys.argv[1]).glob("*.avro")):
    with open(path, "rb") as f:
        reader = fastavro.reader(f)
        schema = reader.writer_schema
        assert schema["name"].endswith("DefaultEventRecord") or schema["type"] == "record"
        for record in reader:
            print(json.dumps(record, sort_keys=True))
