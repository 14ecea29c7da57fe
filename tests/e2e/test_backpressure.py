#!/usr/bin/python3
"""Rewritten statements under back-pressure. A client pipelines thousands of Queries that read a
seed (each one rewritten by the proxy) and reads nothing back until the proxy stops taking its
bytes. By then every buffer on the way is full: the client's socket, the proxy's writes to the
client, PostgreSQL's writes to the proxy and the proxy's writes to PostgreSQL, so the proxy has
decided rewrites it cannot write yet. When the client reads, every answer must arrive, whole, in
order and with the right values, and the session must still work; another session is served
meanwhile. In plain text, and with TLS on both legs."""

import select
import ssl
import struct
import time
import unittest

import e2e_common
import materialize_common as mc
import psycopg
import tls_common

from harness import wire
from harness.pgcluster import PgCluster

DB = "pressure"
STATEMENTS = 3000
PADDING = 6000  # bytes of comment per statement: the Queries fill the sockets too
RESULT_BYTES = 12000  # bytes of each answer's row
STALL_SECONDS = 1.0  # the proxy took nothing from the client for this long: back-pressure
DEADLINE_SECONDS = 120

pg: PgCluster = None
px = None
world: tls_common.TlsWorld = None
tls_px = None


def seed_spec() -> dict:
    return {"database": DB, "entity": "public.t", "attribute": "label", "type": "text",
            "expression": "upper(name)", "materialize": {"policy": "manual"}}


def make_table(cluster: PgCluster) -> None:
    with cluster.connect() as conn:
        conn.execute(f"CREATE DATABASE {DB}")
    with cluster.connect(DB) as conn:
        conn.execute("CREATE TABLE t (id int PRIMARY KEY, name text)")
        conn.execute("INSERT INTO t SELECT i, 'name ' || i FROM generate_series(1, 100) i")
        conn.execute("GRANT SELECT ON t TO PUBLIC")


def setUpModule():
    global pg, px, world, tls_px
    if e2e_common.direct_mode():
        raise unittest.SkipTest("seeds are the proxy's own")
    pg = PgCluster().start()
    make_table(pg)
    px = mc.make_proxy(pg.port, [seed_spec()], instance="backpressure")
    e2e_common.wait_until_readable(px, DB, "SELECT label FROM t WHERE id = 1", "the seed")
    world = tls_common.TlsWorld()
    make_table(world.pg)
    tls_px = e2e_common.Proxy(upstream_port=world.pg.port, instance="backpressure-tls",
                              seeds=[seed_spec()], **world.proxy_config())


def tearDownModule():
    try:
        e2e_common.stop(px, pg)
    finally:
        try:
            e2e_common.finish(tls_px)
        finally:
            if world:
                world.close()


def statement(i: int) -> str:
    return (f"SELECT label, repeat('r', {RESULT_BYTES}) AS filler FROM t WHERE id = {i % 100 + 1}"
            f" /* {'p' * PADDING} */")


class Pipeline:
    """One connection's pipelined Queries and their answers, driven by select() on one thread
    (an ssl socket must not be used by two threads at once)."""

    def __init__(self, client: wire.WireClient):
        self.sock = client.sock
        self.payload = b"".join(wire.query(statement(i)) for i in range(STATEMENTS))
        self.sent = 0
        self.received = bytearray(client._buf)
        self.sock.setblocking(False)

    def send_some(self) -> bool:
        """Sends what the socket takes; False when it took nothing."""
        try:
            n = self.sock.send(self.payload[self.sent:self.sent + 65536])
        except (BlockingIOError, ssl.SSLWantWriteError, ssl.SSLWantReadError):
            return False
        self.sent += n
        return n > 0

    def send_until_stalled(self) -> None:
        """Sends without reading until the proxy takes nothing for STALL_SECONDS (or all went)."""
        deadline = time.monotonic() + DEADLINE_SECONDS
        while self.sent < len(self.payload):
            assert time.monotonic() < deadline, "the proxy kept taking bytes"
            _, writable, _ = select.select([], [self.sock], [], STALL_SECONDS)
            if not writable:
                return
            self.send_some()

    def receive_some(self) -> None:
        while True:
            try:
                chunk = self.sock.recv(1 << 20)
            except (BlockingIOError, ssl.SSLWantReadError, ssl.SSLWantWriteError):
                return
            if not chunk:
                raise wire.ConnectionClosed(f"EOF after {len(self.received)} bytes")
            self.received += chunk

    def messages(self):
        """Yields each whole message received, reading and sending on as needed."""
        deadline = time.monotonic() + DEADLINE_SECONDS
        at = 0
        while True:
            while len(self.received) - at >= 5:
                (length,) = struct.unpack_from("!I", self.received, at + 1)
                if len(self.received) - at < 1 + length:
                    break
                yield chr(self.received[at]), bytes(self.received[at + 5:at + 1 + length])
                at += 1 + length
            del self.received[:at]
            at = 0
            assert time.monotonic() < deadline, "the answers stopped coming"
            pending = isinstance(self.sock, ssl.SSLSocket) and self.sock.pending() > 0
            wants_write = [self.sock] if self.sent < len(self.payload) else []
            readable, writable, _ = select.select([self.sock], wants_write, [],
                                                  0 if pending else 1.0)
            if writable:
                self.send_some()
            if readable or pending:
                self.receive_some()


class Backpressure(unittest.TestCase):
    def check_pipeline(self, client: wire.WireClient, other_dsn: str) -> None:
        pipeline = Pipeline(client)
        pipeline.send_until_stalled()
        self.assertLess(pipeline.sent, len(pipeline.payload),
                        "the proxy took every statement: no back-pressure reached it")
        # Another session is served while this one is stuck.
        with psycopg.connect(other_dsn, autocommit=True) as other:
            self.assertEqual(other.execute("SELECT label FROM t WHERE id = 7").fetchone(),
                             ("NAME 7",))
        answers = pipeline.messages()
        for i in range(STATEMENTS):
            types = ""
            row = None
            while not types.endswith("Z"):
                t, body = next(answers)
                types += t
                if t == "D":
                    row = wire.parse_data_row(body)
                self.assertNotEqual(t, "E", f"statement {i}: {t} {body[:200]!r}")
            self.assertEqual(types, "TDCZ", f"statement {i}")
            self.assertEqual(row[0], f"NAME {i % 100 + 1}".encode(), f"statement {i}")
            self.assertEqual(len(row[1]), RESULT_BYTES, f"statement {i}")
        self.assertEqual(pipeline.sent, len(pipeline.payload))
        client.sock.setblocking(True)
        rows, _, _ = client.simple_query("SELECT label FROM t WHERE id = 100")
        self.assertEqual(rows, [["NAME 100"]])

    def test_plain(self):
        with wire.WireClient(px.port, timeout=DEADLINE_SECONDS) as c:
            c.connect(database=DB)
            self.check_pipeline(c, px.dsn(DB))

    def test_tls_on_both_legs(self):
        dsn = world.dsn(tls_px, "md5_user", tls_common.MD5_PW, DB)

        def seed_readable():
            try:
                with psycopg.connect(dsn) as conn:
                    return conn.execute("SELECT label FROM t WHERE id = 1").fetchone()
            except psycopg.Error:
                return None
        e2e_common.poll(seed_readable, 20, what="the seed through the TLS proxy")
        with wire.WireClient(tls_px.port, timeout=DEADLINE_SECONDS) as c:
            self.assertEqual(c.request_tls(world.client_context(), "127.0.0.1"), b"S")
            c.startup(user="md5_user", database=DB)
            c.authenticate(password=tls_common.MD5_PW)
            self.check_pipeline(c, dsn)


if __name__ == "__main__":
    e2e_common.main()
