#!/usr/bin/env python3
"""Repeats the burst that once left a shard asleep for good, until a shard
stops answering or the rounds run out.

    python3 benches/stall_hunt.py BINARY [rounds] [connections]

Starts BINARY on one shard (CPU 1, idle and write timeouts of 2 s, so that
blocked writers' timeouts expire while bursts go on) and, each round, opens
`connections` (default 1,500) from one client, a third each:
  - half a request head, then FIN;
  - 100 pipelined `GET /divolte.js` with a 2 KB receive window, never read,
    then FIN;
  - a head with `Content-Length: 100`, 2 body bytes, then FIN.
After each round it times `/ping` and prints the shard's io_uring rings
from /proc, right after the burst and after `/ping` (operations in flight
= submitted - completed, and completions waiting in the overflow list). A `/ping` that takes over 5 s is a stall: the
script prints the shard threads' kernel wait channels, the sockets in
CLOSE-WAIT, and exits 1.
"""

import os
import socket
import subprocess
import sys
import tempfile
import time


def rings(pid):
    """(in flight, overflow lines) per io_uring of the process."""
    out = []
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            if "io_uring" not in os.readlink(f"/proc/{pid}/fd/{fd}"):
                continue
            info = open(f"/proc/{pid}/fdinfo/{fd}").read().splitlines()
        except OSError:
            continue
        fields = dict(line.split(":", 1) for line in info if ":" in line)
        submitted = int(fields.get("SqHead", "0").strip())
        completed = int(fields.get("CqTail", "0").strip())
        # Completions the ring had no room for are listed after this line.
        listed = [i for i, line in enumerate(info) if line.startswith("CqOverflowList:")]
        overflow = sum(1 for line in info[listed[0] + 1 :] if line.startswith((" ", "\t"))) if listed else 0
        out.append(((submitted - completed) % (1 << 32), overflow))
    return out


def ping(port, limit):
    started = time.monotonic()
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=limit) as s:
            s.sendall(b"GET /ping HTTP/1.1\r\nConnection: close\r\n\r\n")
            answer = s.recv(200)
    except OSError:
        return None
    return time.monotonic() - started if answer.startswith(b"HTTP/1.1 200") else None


def burst(port, n):
    held = []
    tag = b"GET /divolte.js HTTP/1.1\r\n\r\n" * 100
    for i in range(n):
        s = socket.socket()
        if i % 3 == 1:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 2048)
        try:
            s.connect(("127.0.0.1", port))
            s.sendall([b"GET /csc-event HTTP/1.1\r\nHo", tag, b"POST /ping HTTP/1.1\r\nContent-Length: 100\r\n\r\nab"][i % 3])
            s.shutdown(socket.SHUT_WR)
        except OSError:
            pass
        held.append(s)
    return held


def main():
    binary = sys.argv[1]
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 200
    n = int(sys.argv[3]) if len(sys.argv) > 3 else 1500
    work = tempfile.mkdtemp()
    port = 20000 + os.getpid() % 10000
    config = os.path.join(work, "hunt.toml")
    with open(config, "w") as f:
        f.write(
            f'[global.server]\nport = {port}\ncores = [1]\nidle_timeout = "2 seconds"\n'
            f'header_read_timeout = "2 seconds"\nwatchdog_timeout = "0 seconds"\n'
            f'[sinks.hdfs]\ntype = "hdfs"\n[sinks.hdfs.file_strategy]\n'
            f'working_dir = "{work}"\npublish_dir = "{work}"\n'
        )
    collector = subprocess.Popen([binary, "--config", config], stderr=subprocess.DEVNULL)
    try:
        while ping(port, 1) is None:
            time.sleep(0.05)
        for r in range(rounds):
            held = burst(port, n)
            busy = rings(collector.pid)
            took = ping(port, 5)
            print(
                f"round {r}: /ping {'STALLED' if took is None else f'{took * 1000:.1f} ms'}; "
                f"rings (in flight, overflowed) after the burst {busy}, after /ping {rings(collector.pid)}",
                flush=True,
            )
            if took is None:
                for task in os.listdir(f"/proc/{collector.pid}/task"):
                    name = open(f"/proc/{collector.pid}/task/{task}/comm").read().strip()
                    wchan = open(f"/proc/{collector.pid}/task/{task}/wchan").read().strip()
                    print(f"  thread {name}: {wchan}")
                print(subprocess.run(["ss", "-tan", "state", "close-wait", f"sport = :{port}"], capture_output=True, text=True).stdout.count("\n"), "sockets in CLOSE-WAIT")
                sys.exit(1)
            # Half of the rounds close the clients at once, half leave them
            # to the write timeouts.
            if r % 2 == 0:
                for s in held:
                    s.close()
            else:
                time.sleep(2.5)
                for s in held:
                    s.close()
        print(f"no stall in {rounds} rounds of {n} connections")
    finally:
        collector.terminate()
        collector.wait()


if __name__ == "__main__":
    main()
