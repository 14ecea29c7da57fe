#!/usr/bin/python3
"""Memory per idle client connection of a proxy: open N connections through it, compare its RSS.

Each connection completes the PostgreSQL startup (StartupMessage, authentication, ReadyForQuery)
and then sits idle; then each runs one `SELECT 1` and sits idle again, the way an application's
pool holds connections it has used. The proxy process's resident set size (VmRSS) is read before
the first measured connection, after all startups and after all queries, each time once things
settle; with --upstream-port, so is the number of server connections PostgreSQL sees.

Before the first reading, --warmup connections (as many as run at once) open, run one query and
close: what a proxy pays once, not per client (its code paged in from the executable and its
libraries as each path first runs, a database's catalog loaded, control connections opened, pools
at the concurrency's size), stays out of the per-connection figure, for every proxy alike; that
one-time growth is reported on its own. The anonymous part of the resident set (RssAnon: heap and
stacks, no file-backed pages) is reported too. Prints one JSON
object. Raw sockets, not a driver: the client side stays small and fast, so
1,000 connections open in a few seconds. Expects trust authentication. --tls asks for TLS first
(SSLRequest, then a TLS handshake without certificate checks), as sslmode=require does.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import ssl
import struct
import sys
import time


def status_kib(pid: int, field: str) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"no {field} for pid {pid}")


def rss_kib(pid: int) -> int:
    return status_kib(pid, "VmRSS")


def count_backends(port: int, database: str) -> int:
    """Client backends PostgreSQL has for the database, not counting the one asking: how many
    server connections the proxy holds while its clients idle."""
    import psycopg
    with psycopg.connect(host="127.0.0.1", port=port, user="postgres", dbname="postgres") as conn:
        return conn.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = %s"
                            " AND backend_type = 'client backend' AND pid <> pg_backend_pid()",
                            (database,)).fetchone()[0]


def startup_message(user: str, database: str) -> bytes:
    params = b"".join(k.encode() + b"\0" + v.encode() + b"\0"
                      for k, v in (("user", user), ("database", database),
                                   ("application_name", "idle_connections")))
    body = struct.pack("!I", 196608) + params + b"\0"  # protocol 3.0
    return struct.pack("!I", len(body) + 4) + body


async def read_message(reader: asyncio.StreamReader) -> tuple[bytes, bytes]:
    header = await reader.readexactly(5)
    length = struct.unpack("!I", header[1:])[0]
    return header[:1], await reader.readexactly(length - 4)


async def open_one(host: str, port: int, startup: bytes, tls: ssl.SSLContext | None = None):
    reader, writer = await asyncio.open_connection(host, port)
    if tls is not None:
        writer.write(struct.pack("!II", 8, 80877103))  # SSLRequest
        await writer.drain()
        if await reader.readexactly(1) != b"S":
            raise RuntimeError("the proxy does not offer TLS")
        await writer.start_tls(tls)
    writer.write(startup)
    await writer.drain()
    while True:
        kind, body = await read_message(reader)
        if kind == b"R":
            code = struct.unpack("!I", body[:4])[0]
            if code != 0:
                raise RuntimeError(f"server asks for authentication (code {code}); use trust")
        elif kind == b"E":
            fields = dict((f[:1].decode(), f[1:].decode(errors="replace"))
                          for f in body.split(b"\0") if f)
            raise RuntimeError(f"server refused the connection: {fields.get('C')} {fields.get('M')}")
        elif kind == b"Z":
            return reader, writer


async def query_one(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    query = b"SELECT 1\0"
    writer.write(b"Q" + struct.pack("!I", len(query) + 4) + query)
    await writer.drain()
    while True:
        kind, _body = await read_message(reader)
        if kind == b"E":
            raise RuntimeError("SELECT 1 failed on an idle connection")
        if kind == b"Z":
            return


async def run(args) -> dict:
    startup = startup_message(args.user, args.database)
    tls = None
    if args.tls:
        tls = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        tls.check_hostname = False
        tls.verify_mode = ssl.CERT_NONE
    gate = asyncio.Semaphore(args.concurrency)

    def measure() -> tuple[int, int | None]:
        backends = count_backends(args.upstream_port, args.database) if args.upstream_port else None
        return rss_kib(args.pid), backends

    async def gated(make):
        async with gate:
            return await make()

    async def warm_one():
        reader, writer = await open_one(args.host, args.port, startup, tls)
        await query_one(reader, writer)
        writer.write(b"X\0\0\0\4")  # Terminate
        writer.close()
        await writer.wait_closed()

    cold = rss_kib(args.pid)
    if args.warmup > 0:
        await asyncio.gather(*(gated(warm_one) for _ in range(args.warmup)))
        await asyncio.sleep(args.settle)
    before, backends_before = measure()
    anon_before = status_kib(args.pid, "RssAnon")
    started = time.monotonic()
    conns = await asyncio.gather(
        *(gated(lambda: open_one(args.host, args.port, startup, tls)) for _ in range(args.count)))
    opened_in = time.monotonic() - started
    await asyncio.sleep(args.settle)
    after_startup, backends_startup = measure()

    # Then one query on every connection, and idle again: the state of a connection that an
    # application pool has used. A pooler that defers the server connection until the first
    # query (PgBouncer does) holds one from here on, in session mode.
    await asyncio.gather(*(gated(lambda c=c: query_one(*c)) for c in conns))
    await asyncio.sleep(args.settle)
    after_query, backends_query = measure()
    anon_after_query = status_kib(args.pid, "RssAnon")

    for _reader, writer in conns:
        writer.write(b"X\0\0\0\4")  # Terminate
        writer.close()
    await asyncio.gather(*(w.wait_closed() for _r, w in conns), return_exceptions=True)
    n = args.count
    return {
        "connections": n,
        "open_seconds": round(opened_in, 2),
        "warmup_connections": args.warmup,
        "rss_cold_kib": cold,
        "rss_warmup_growth_kib": before - cold,
        "rss_before_kib": before,
        "backends_before": backends_before,
        "rss_after_startup_kib": after_startup,
        "kib_per_connection_after_startup": round((after_startup - before) / n, 2),
        "backends_after_startup": backends_startup,
        "rss_after_query_kib": after_query,
        "kib_per_connection_after_query": round((after_query - before) / n, 2),
        "anon_kib_per_connection_after_query": round((anon_after_query - anon_before) / n, 2),
        "backends_after_query": backends_query,
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--pid", type=int, required=True, help="the proxy process whose RSS is measured")
    ap.add_argument("--count", type=int, default=1000)
    ap.add_argument("--user", default="postgres")
    ap.add_argument("--database", default="postgres")
    ap.add_argument("--tls", action="store_true", help="TLS to the proxy (sslmode=require)")
    ap.add_argument("--concurrency", type=int, default=16, help="startups in flight at once")
    ap.add_argument("--upstream-port", type=int,
                    help="PostgreSQL's own port: also count the server connections held")
    ap.add_argument("--warmup", type=int, default=16,
                    help="connections opened, queried and closed before the first reading")
    ap.add_argument("--settle", type=float, default=2.0, help="seconds to wait before measuring")
    args = ap.parse_args()

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = args.count + 64
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(want, hard), hard))
    try:
        result = asyncio.run(asyncio.wait_for(run(args), timeout=300))
    except Exception as e:  # a report, not a traceback, for the benchmark's log
        print(f"idle_connections.py: {type(e).__name__}: {e}", file=sys.stderr)
        return 1
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
