"""Independent reference for the collector's JSON output: prints every record
of every published .avro file in a directory in Avro's JSON encoding, one
record per line, as fastavro's json_writer writes it."""
import io
import pathlib
import sys

import fastavro
from fastavro import json_writer

for path in sorted(pathlib.Path(sys.argv[1]).glob("*.avro")):
    with open(path, "rb") as f:
        reader = fastavro.reader(f)
        out = io.StringIO()
        json_writer(out, reader.writer_schema, list(reader))
        sys.stdout.write(out.getvalue())
        if not out.getvalue().endswith("\n"):
            sys.stdout.write("\n")
