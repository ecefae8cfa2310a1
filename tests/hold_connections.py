"""Holds many idle TCP connections to a server, from one source address.

    python3 hold_connections.py PORT COUNT SOURCE_IP

Opens COUNT connections to 127.0.0.1:PORT from SOURCE_IP (a separate
loopback address per helper gives each its own port range), prints
"opened N" once they are all up, then waits for a line on stdin. Then it
reads what each connection got without blocking and prints
"answered_503 A closed C open O": A were refused with 503, C were closed
by the server without an answer, O are still open and silent.
"""
import errno
import socket
import sys


def main():
    port, count, source = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
    conns = []
    for _ in range(count):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.bind((source, 0))
        s.connect(("127.0.0.1", port))
        conns.append(s)
    print(f"opened {len(conns)}", flush=True)
    sys.stdin.readline()
    answered = closed = still_open = 0
    for s in conns:
        s.setblocking(False)
        try:
            data = s.recv(4096)
            if data.startswith(b"HTTP/1.1 503"):
                answered += 1
            elif not data:
                closed += 1
            else:
                raise SystemExit(f"unexpected answer {data[:80]!r}")
        except OSError as e:
            if e.errno in (errno.EAGAIN, errno.EWOULDBLOCK):
                still_open += 1
            elif e.errno == errno.ECONNRESET:
                closed += 1
            else:
                raise
        s.close()
    print(f"answered_503 {answered} closed {closed} open {still_open}", flush=True)


if __name__ == "__main__":
    main()
