#!/usr/bin/env python3
"""Prints MaxMind's own reading of a database for the tests: one JSON line
per address given, the record as the `maxminddb` package decodes it (or
null when the address is not in the database).

    python3 tests/read_mmdb.py DATABASE(.mmdb or .mmdb.gz) ADDRESS...
"""

import gzip
import io
import json
import sys

import maxminddb


def main():
    path, addresses = sys.argv[1], sys.argv[2:]
    if path.endswith(".gz"):
        with gzip.open(path, "rb") as f:
            reader = maxminddb.open_database(io.BytesIO(f.read()), maxminddb.MODE_FD)
    else:
        reader = maxminddb.open_database(path)
    for address in addresses:
        print(json.dumps(reader.get(address)))


if __name__ == "__main__":
    main()
