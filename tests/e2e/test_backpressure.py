#!/usr/bin/python3
"""Rewritten statements under back-pressure. A client pipelines thousands of Queries that read a
seed (each one rewritten by the proxy) and reads nothing back until the proxy stops taking its
bytes. By then every buffer on the way is full: the client's socket, the proxy's writes to the
client, PostgreSQL's writes to the proxy and the proxy's writes to PostgreSQL, so the proxy has
decided rewrites it cannot write yet. When the client reads, every answer must arrive, whole, in
order and with the right values, and the session must still work; another session is served
throughout."""

import select
import threading
import time
import unittest

import e2e_common
import materialize_common as mc
import psycopg

from harness import wire
from harness.pgcluster import PgCluster

DB = "pressure"
STATEMENTS = 3000
PADDING = 6000     # bytes of comment per statement: the Queries fill the sockets too
RESULT_BYTES = 12000  # bytes of each answer's row
STALL_SECONDS = 1.0  # the proxy took nothing from the client for this long: back-pressure

pg: PgCluster = None
px = None


def setUpModule():
    global pg, px
    if e2e_common.direct_mode():
        raise unittest.SkipTest("seeds are the proxy's own")
    pg = PgCluster().start()
    with pg.connect() as conn:
        conn.execute(f"CREATE DATABASE {DB}")
    with pg.connect(DB) as conn:
        conn.execute("CREATE TABLE t (id int PRIMARY KEY, name text)")
        conn.execute("INSERT INTO t SELECT i, 'name ' || i FROM generate_series(1, 100) i")
    seed = {"database": DB, "entity": "public.t", "attribute": "label", "type": "text",
            "expression": "upper(name)", "materialize": {"policy": "manual"}}
    px = mc.make_proxy(pg.port, [seed], instance="backpressure")
    e2e_common.wait_until_readable(px, DB, "SELECT label FROM t WHERE id = 1", "the seed")


def tearDownModule():
    e2e_common.stop(px, pg)


def statement(i: int) -> str:
    key = i % 100 + 1
    return (f"SELECT label, repeat('r', {RESULT_BYTES}) AS filler FROM t WHERE id = {key}"
            f" /* {'p' * PADDING} */")


class Sender(threading.Thread):
    """Sends every Query without reading; notes when the proxy stopped taking bytes."""

    def __init__(self, sock, payload: bytes):
        super().__init__(daemon=True)
        self.sock, self.payload = sock, payload
        self.stalled = threading.Event()
        self.error = None

    def run(self):
        try:
            sent = 0
            while sent < len(self.payload):
                _, writable, _ = select.select([], [self.sock], [], STALL_SECONDS)
                if not writable:
                    self.stalled.set()
                    continue
                sent += self.sock.send(self.payload[sent:sent + 65536])
        except Exception as e:  # reported by the test
            self.error = e
        finally:
            self.stalled.set()


class Backpressure(unittest.TestCase):
    def test_rewritten_pipeline_against_full_sockets(self):
        with wire.WireClient(px.port, timeout=120) as c:
            c.connect(database=DB)
            c.sock.setblocking(False)
            sender = Sender(c.sock, b"".join(wire.query(statement(i)) for i in range(STATEMENTS)))
            sender.start()
            self.assertTrue(sender.stalled.wait(120), "the sender neither stalled nor finished")
            # Another session is served while this one is stuck.
            with psycopg.connect(px.dsn(DB), autocommit=True) as other:
                self.assertEqual(other.execute("SELECT label FROM t WHERE id = 7").fetchone(),
                                 ("NAME 7",))
            c.sock.setblocking(True)
            for i in range(STATEMENTS):
                messages = c.read_until("Z", raise_on_error=True)
                self.assertEqual("".join(t for t, _ in messages), "TDCZ", f"statement {i}")
                row = wire.parse_data_row(messages[1][1])
                key = i % 100 + 1
                self.assertEqual(row[0], f"NAME {key}".encode(), f"statement {i}")
                self.assertEqual(len(row[1]), RESULT_BYTES, f"statement {i}")
            sender.join(60)
            self.assertIsNone(sender.error)
            self.assertFalse(sender.is_alive())
            rows, _, _ = c.simple_query("SELECT label FROM t WHERE id = 100")
            self.assertEqual(rows, [["NAME 100"]])


if __name__ == "__main__":
    e2e_common.main()
