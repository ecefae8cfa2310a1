"""Writes the fuzz targets' seed corpora (fuzz/corpus/<target>/) from real
requests: the load kit's traffic generator, the example mapping, the
shipped configurations, and hand-picked edge cases.

    python3 fuzz/seed.py
"""
import gzip
import os
import subprocess
import sys
import urllib.parse

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CORPUS = os.path.join(ROOT, "fuzz", "corpus")


def write(target, name, data):
    d = os.path.join(CORPUS, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode())


def main():
    traffic = subprocess.run(
        [sys.executable, os.path.join(ROOT, "benches", "traffic.py"), "24", "8"],
        check=True, capture_output=True, text=True).stdout.splitlines()
    for i, line in enumerate(traffic):
        path, agent = line.split("\t")[:2]
        query = path.split("?", 1)[1]
        write("pixel_query", f"traffic-{i:02}", query)
        write("http_request", f"pixel-{i:02}", (
            f"GET {path} HTTP/1.1\r\nHost: collector.example.com\r\nUser-Agent: {agent}\r\n"
            "Accept: image/avif,image/webp,*/*\r\nReferer: https://shop.example.com/\r\n"
            "Cookie: _dvp=0:a:b; _dvs=0:a:c\r\nX-Forwarded-For: 198.51.100.7, 192.0.2.1\r\n\r\n"))
        for key, value in urllib.parse.parse_qsl(query):
            if key == "u":
                write("mincode", f"traffic-{i:02}", value)
    write("mincode", "nested", "(sa!b!jc!1.5!ld!t!n!(se!f)!a(j1!j2!sthree)!)")

    body = ('{"session_id":"0:is8wamy0:hd1K9FdT6DwYGxXRuFDr8Ir2Ge3ewpL6","event_id":"e1",'
            '"is_new_party":true,"is_new_session":false,"client_timestamp_iso":"2026-11-24T10:00:00.000+01:00",'
            '"event_type":"purchase","parameters":{"sku":"x","n":[1,2,{"a":null}]}}')
    write("json_event", "purchase", body)
    write("json_event", "minimal", body.split(',"event_type"')[0] + "}")
    write("http_request", "json", (
        "POST /json?p=0:is8wamy0:xyz HTTP/1.1\r\nHost: c\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n{body}"))
    chunks = "".join(f"{len(body[i:i + 40]):x}\r\n{body[i:i + 40]}\r\n" for i in range(0, len(body), 40))
    write("http_request", "json-chunked", (
        "POST /json?p=0:is8wamy0:xyz HTTP/1.1\r\nHost: c\r\nContent-Type: application/json\r\n"
        f"Transfer-Encoding: chunked\r\nExpect: 100-continue\r\n\r\n{chunks}0\r\n\r\n"))
    write("http_request", "pipelined", (
        "GET /ping HTTP/1.1\r\nHost: c\r\n\r\nHEAD /divolte.js HTTP/1.1\r\nAccept-Encoding: gzip\r\n\r\n"
        "GET /metrics HTTP/1.0\r\nConnection: keep-alive\r\n\r\nGET /a/../index.html HTTP/1.1\r\n\r\n"
        "GET /csc-event HTTP/1.1\r\nIf-None-Match: \"6b3edc43-20ec-4078-bc47-e965dd76b88a\"\r\n\r\n"))
    queries = [line.split("\t")[0].split("?", 1)[1] for line in traffic[:4]]
    batch = "\n".join(queries).encode()
    write("http_request", "batch", (
        "POST /csc-batch HTTP/1.1\r\nHost: c\r\nContent-Type: text/plain;charset=UTF-8\r\n"
        f"Origin: https://shop.example.com\r\nSec-GPC: 0\r\nContent-Length: {len(batch)}\r\n\r\n").encode() + batch)
    zipped = gzip.compress(batch)
    write("http_request", "batch-gzip", (
        "POST /csc-batch HTTP/1.1\r\nHost: c\r\nContent-Encoding: gzip\r\n"
        f"Content-Length: {len(zipped)}\r\n\r\n").encode() + zipped)
    write("http_request", "preflight", (
        "OPTIONS /json HTTP/1.1\r\nHost: c\r\nOrigin: https://app.example.org\r\n"
        "Access-Control-Request-Method: POST\r\nAccess-Control-Request-Headers: content-type, content-encoding\r\n\r\n"
        "OPTIONS /csc-batch HTTP/1.1\r\nOrigin: https://shop.example.com\r\n\r\n"))
    write("http_request", "smuggling", (
        "POST /json HTTP/1.1\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
        "POST /json HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd"))

    with open(os.path.join(ROOT, "examples", "pagetype", "mapping.groovy")) as f:
        write("mapping_language", "pagetype", f.read())
    write("mapping_language", "values", (
        "mapping {\n  map { parse cookie('x') to int32 } onto 'searchPage'\n"
        "  def h = header('Accept').commaSeparated()\n  map h.get(-1) onto 'shop'\n"
        "  map eventParameters().path('$.a[0].b') onto 'section'\n"
        "  when not(query().isPresent()) apply { stop() }\n}\n"))

    for name, path in [("reference", "config/divolte-collector.toml"),
                       ("packaged", "packaging/divolte-collector.toml"),
                       ("pagetype", "examples/pagetype/divolte-collector.toml")]:
        with open(os.path.join(ROOT, path)) as f:
            write("config_toml", name, f.read())


if __name__ == "__main__":
    main()
