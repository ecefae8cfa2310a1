#!/usr/bin/env python3
"""What clients that pipeline and never read cost a running collector.

    python3 benches/pipeline_flood.py PORT PID [connections]

Opens `connections` (default 4,000) with a 2 KB receive window, each
sending 100 pipelined `GET /divolte.js` and then FIN, never reading; prints
the collector's RSS before, three seconds into the flood, and three
seconds after every client closed, and how long `/ping` took meanwhile.
"""

import socket
import sys
import time


def rss_mib(pid):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS"):
            return int(line.split()[1]) / 1024
    return 0.0


def main():
    port, pid = int(sys.argv[1]), int(sys.argv[2])
    n = int(sys.argv[3]) if len(sys.argv) > 3 else 4000
    print(f"before: {rss_mib(pid):.1f} MiB")
    requests = b"GET /divolte.js HTTP/1.1\n\n" * 100
    clients = []
    for _ in range(n):
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 2048)
        s.connect(("127.0.0.1", port))
        s.sendall(requests)
        s.shutdown(socket.SHUT_WR)
        clients.append(s)
    time.sleep(3)
    print(f"during: {rss_mib(pid):.1f} MiB")
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", port)) as s:
        s.sendall(b"GET /ping HTTP/1.1\r\nConnection: close\r\n\r\n")
        s.recv(200)
    print(f"/ping: {(time.monotonic() - started) * 1000:.1f} ms")
    for s in clients:
        s.close()
    time.sleep(3)
    print(f"after: {rss_mib(pid):.1f} MiB")


if __name__ == "__main__":
    main()
