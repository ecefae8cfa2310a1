"""Batch bodies for benches/batch.sh: the pixel queries of a traffic file
(benches/traffic.py) grouped N to a body, one query per line, as the tag's
beacon sends them; gzip-compressed with --gzip.

    python3 benches/batches.py TRAFFIC N [--gzip] > batches.bin

Each record is "<user agent>\t<body length>\n" followed by the body.
"""
import gzip
import sys

traffic, n = sys.argv[1], int(sys.argv[2])
compress = "--gzip" in sys.argv[3:]
lines = [l.rstrip("\n").split("\t", 1) for l in open(traffic, encoding="utf-8")]
out = sys.stdout.buffer
for i in range(0, len(lines) - n + 1, n):
    group = lines[i:i + n]
    body = "\n".join(path.split("?", 1)[1] for path, _ in group).encode()
    if compress:
        body = gzip.compress(body, compresslevel=6)
    out.write(f"{group[0][1]}\t{len(body)}\n".encode() + body)
