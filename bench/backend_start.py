#!/usr/bin/python3
"""How much of a PostgreSQL login is the backend's start, which a proxy can overlap with the
client's TLS handshake (seedproxy's connect_early, auth.mode relay).

PostgreSQL forks a backend when a TCP connection arrives, before any byte is read. This script
starts its own PostgreSQL 15 (trust for local TCP) and times, interleaved, two kinds of login:
the startup packet sent as soon as the connection is up, and sent BENCH_DELAY_MS later. For
each, the time from sending the startup packet to ReadyForQuery; the difference of the medians
is what a proxy saves by connecting that much earlier.

Usage: bench/backend_start.py   (env BENCH_LOGINS [200] per kind, BENCH_DELAY_MS [4])
"""

from __future__ import annotations

import os
import socket
import statistics
import struct
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests"))

from harness.pgcluster import PgCluster  # noqa: E402

READY = b"Z\0\0\0\5I"


def startup_packet(user: str, database: str) -> bytes:
    body = struct.pack("!I", 3 << 16) + b"user\0" + user.encode() + b"\0database\0" + \
        database.encode() + b"\0\0"
    return struct.pack("!I", len(body) + 4) + body


def login_ms(port: int, packet: bytes, delay: float) -> float:
    """Milliseconds from sending the startup packet to ReadyForQuery; `delay` seconds between the
    connection and the packet."""
    with socket.create_connection(("127.0.0.1", port)) as s:
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if delay:
            time.sleep(delay)
        began = time.perf_counter()
        s.sendall(packet)
        received = b""
        while READY not in received:
            chunk = s.recv(4096)
            if not chunk:
                raise SystemExit(f"the server closed the connection: {received[-200:]!r}")
            received += chunk
        elapsed = time.perf_counter() - began
        s.sendall(b"X\0\0\0\4")
    return elapsed * 1e3


def main() -> int:
    logins = int(os.environ.get("BENCH_LOGINS", "200"))
    delay_ms = float(os.environ.get("BENCH_DELAY_MS", "4"))
    with PgCluster() as pg:
        packet = startup_packet("postgres", "postgres")
        login_ms(pg.port, packet, 0)  # the first backend warms the caches
        at_once, later = [], []
        load = open("/proc/loadavg").read().split()[:3]
        for _ in range(logins):
            at_once.append(login_ms(pg.port, packet, 0))
            later.append(login_ms(pg.port, packet, delay_ms / 1e3))
        a, b = statistics.median(at_once), statistics.median(later)
        print(f"load average at start {' '.join(load)}; {logins} logins of each kind, interleaved")
        print(f"startup packet at once:          median {a:.3f} ms to ReadyForQuery")
        print(f"startup packet {delay_ms:g} ms after connecting: median {b:.3f} ms")
        print(f"the backend's start a proxy can overlap: {a - b:.3f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
