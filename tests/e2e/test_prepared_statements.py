#!/usr/bin/python3
"""Server-side prepared statements across a seed's phases: statements a client prepared while the
seed was virtual keep returning the same rows, column names and type OIDs while it materializes
and once it is materialized (the proxy re-Parses them when the seed snapshot changes and hides the
answers to what it injected), through psycopg's prepared statements and raw pipelines with
several Syncs in flight and an error mid-pipeline; after a rollback the attribute is unknown
again (42703). Reads are counted once per Execute. The engine's phase changes are made by hand."""

import struct
import unittest
import urllib.request

import e2e_common
import psycopg
import psycopg2

from harness import wire
from harness.pgcluster import PgCluster, free_port

DB = "shop"
READ = {"database": DB, "entity": "public.item", "attribute": "total"}
NUMERIC, INT4 = 1700, 23

# (name, text, parameters): one selects *, one names the attribute, one orders by it.
STATEMENTS = [
    ("star", "SELECT * FROM item WHERE id = $1", ["2"]),
    ("named", "SELECT id, total FROM item WHERE id = $1", ["3"]),
    ("ordered", "SELECT id, total FROM item ORDER BY total DESC, id", []),
]
PSYCOPG_STATEMENTS = [
    ("SELECT * FROM item WHERE id = %s", (2,)),
    ("SELECT id, total FROM item WHERE id = %s", (3,)),
    ("SELECT id, total FROM item ORDER BY total DESC, id", None),
]

pg: PgCluster = None
px = None
metrics_port = 0


def setUpModule():
    global pg, px, metrics_port
    if e2e_common.direct_mode():
        raise unittest.SkipTest("re-Parse of prepared statements is the proxy's own")
    pg = PgCluster().start()
    with pg.connect() as conn:
        conn.execute(f"CREATE DATABASE {DB}")
    with pg.connect(DB) as conn:
        conn.execute("CREATE TABLE item (id int PRIMARY KEY, price numeric NOT NULL, qty int NOT NULL)")
        conn.execute("INSERT INTO item SELECT i, i * 1.5, 10 - i FROM generate_series(1, 6) i")
    metrics_port = free_port()
    px = e2e_common.Proxy(
        upstream_port=pg.port, instance="prepared-test", control={"user": "postgres"},
        metrics={"host": "127.0.0.1", "port": metrics_port}, admin={"users": ["postgres"]},
        materialization={"enabled": False},  # the test moves the phases by hand
        seeds=[dict(READ, type="numeric", expression="price * qty",
                    materialize={"policy": "manual"})])
    e2e_common.wait_until_readable(px, DB, "SELECT total FROM item WHERE id = 1",
                                   "the seed to be readable")


def tearDownModule():
    e2e_common.stop(px, pg)


def direct(sql: str, params=None):
    with pg.connect(DB) as conn:
        conn.execute(sql, params)


def proxy_phase() -> str:
    conn = psycopg2.connect(px.dsn("seedproxy"))  # the console speaks the simple protocol
    try:
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute("SHOW SEEDS")
            for row in cur.fetchall():
                if list(row[:3]) == [DB, "public.item", "total"]:
                    return row[4]
    finally:
        conn.close()
    return ""


def set_phase(phase: str) -> None:
    """The registry's phase, as the engine would publish it; returns once the proxy serves it."""
    with pg.connect(DB) as conn:
        conn.execute('UPDATE "seedproxy"."seeds" SET "phase" = %s WHERE "attribute_name" = %s',
                     (phase, "total"))
        conn.execute("SELECT pg_notify('seedproxy_registry', %s)", (DB,))
    e2e_common.poll(lambda: proxy_phase() == phase, 10, interval=0.02,
                    what=f"the proxy to serve phase {phase}")


def notify() -> None:
    direct("SELECT pg_notify('seedproxy_registry', %s)", (DB,))


def reads_total() -> float:
    with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5) as r:
        body = r.read().decode()
    labels = ",".join(f'{k}="{v}"' for k, v in
                      sorted({"attribute": "total", "database": DB, "entity": "public.item"}.items()))
    total = 0.0
    for line in body.splitlines():
        if line.startswith("seedproxy_attribute_reads_total{"):
            name_labels, value = line.rsplit(" ", 1)
            inner = name_labels[len("seedproxy_attribute_reads_total{"):-1]
            if ",".join(sorted(inner.split(","))) == labels:
                total += float(value)
    return total


EXPECTED = []  # [(column names, type OIDs, rows)] per statement, taken while virtual


def psycopg_result(cur):
    return ([d.name for d in cur.description], [d.type_code for d in cur.description],
            [tuple(str(v) for v in row) for row in cur.fetchall()])


def execute_batch(name: str, params: list, describe: bool = False) -> bytes:
    out = wire.describe("S", name) if describe else b""
    return out + wire.bind("", name, params) + wire.describe("P") + wire.execute() + wire.sync()


def batch_result(messages):
    """(column names, type OIDs, rows) of one Bind/Describe/Execute/Sync batch, or its error."""
    types = [t for t, _ in messages]
    errors = [wire.parse_error(b) for t, b in messages if t == "E"]
    if errors:
        return ("error", errors[0].get("C"), errors[0].get("M"))
    assert "1" not in types and "3" not in types, f"injected answers reached the client: {types}"
    columns = [wire.parse_row_description(b) for t, b in messages if t == "T"][-1]
    rows = [tuple(v.decode() for v in wire.parse_data_row(b)) for t, b in messages if t == "D"]
    return ([c["name"] for c in columns], [c["type_oid"] for c in columns], rows)


class PreparedStatementsAcrossPhases(unittest.TestCase):
    def test_1_reads_are_counted_per_execute(self):
        before = reads_total()
        with psycopg.connect(px.dsn(DB), autocommit=True) as conn:
            for _ in range(5):
                conn.execute("SELECT total FROM item WHERE id = %s", (1,), prepare=True).fetchone()
        e2e_common.poll(lambda: reads_total() - before == 5, 5,
                        what="5 reads for 5 executions of one prepared statement")
        with wire.WireClient(px.port) as c:
            c.connect(database=DB)
            c.send(wire.parse("SELECT total FROM item WHERE id = $1", "r", [INT4]) + wire.sync())
            self.assertEqual([t for t, _ in c.read_until("Z")], ["1", "Z"])
            before = reads_total()
            # Three executions in one pipeline; a portal executed twice (suspended) is one read;
            # a statement that reads no seed counts nothing.
            c.send(wire.parse("SELECT price FROM item", "plain") +
                   b"".join(wire.bind("", "r", [str(i)]) + wire.execute() for i in (1, 2, 3)) +
                   wire.bind("cursor", "r", ["4"]) + wire.execute("cursor", 1) +
                   wire.execute("cursor", 1) + wire.bind("", "plain") + wire.execute() +
                   wire.sync())
            types = [t for t, _ in c.read_until("Z")]
            self.assertNotIn("E", types)
            e2e_common.poll(lambda: reads_total() - before == 4, 5, what="4 reads in the pipeline")

    def test_2_phases_keep_rows_names_and_types(self):
        psy = psycopg.connect(px.dsn(DB), autocommit=True)
        raw = wire.WireClient(px.port)
        raw.connect(database=DB)
        try:
            self.run_phases(psy, raw)
        finally:
            psy.close()
            raw.close()

    def psycopg_all(self, psy):
        return [psycopg_result(psy.execute(sql, params, prepare=True))
                for sql, params in PSYCOPG_STATEMENTS]

    def raw_all(self, raw, describe=False):
        """Every statement in one pipeline, one Sync each, all sent before reading."""
        raw.send(b"".join(execute_batch(name, params, describe) for name, _, params in STATEMENTS))
        return [batch_result(raw.read_until("Z")) for _ in STATEMENTS]

    def check(self, psy, raw, phase):
        for i, result in enumerate(self.psycopg_all(psy)):
            self.assertEqual(result, EXPECTED[i], f"psycopg, {PSYCOPG_STATEMENTS[i][0]!r}, {phase}")
        for describe in (False, True):
            for i, result in enumerate(self.raw_all(raw, describe)):
                self.assertEqual(result, EXPECTED[i], f"wire, {STATEMENTS[i][1]!r}, {phase}")

    def run_phases(self, psy, raw):
        # Virtual: prepare everything, take the answers every later phase must repeat.
        EXPECTED.extend(self.psycopg_all(psy))
        self.assertEqual(EXPECTED[0][0], ["id", "price", "qty", "total"])
        self.assertEqual(EXPECTED[0][1], [INT4, NUMERIC, INT4, NUMERIC])
        self.assertEqual(EXPECTED[0][2], [("2", "3.0", "8", "24.0")])
        raw.send(b"".join(wire.parse(sql, name, [INT4] * len(params))
                          for name, sql, params in STATEMENTS) +
                 wire.parse("SELECT total FROM item WHERE id = $1", "gone") + wire.sync())
        self.assertEqual([t for t, _ in raw.read_until("Z")], ["1", "1", "1", "1", "Z"])
        self.assertEqual(raw.simple_query("DEALLOCATE gone")[1], ["DEALLOCATE"])
        self.assertEqual(self.raw_all(raw), EXPECTED)

        # Materializing, before the column exists.
        set_phase("materializing")
        self.check(psy, raw, "materializing")
        # Back to virtual (the texts change again). An error early in a pipeline skips the
        # re-Parse the proxy put in front of a Bind; the batches after its Sync keep their
        # answers in place, a statement the client deallocated stays unknown, and the next Bind
        # re-Parses it after all.
        set_phase("virtual")
        raw.send(wire.parse("SELEC broken", "broken") + execute_batch("star", ["2"]) +
                 execute_batch("star", ["2"]) + wire.bind("", "gone", ["1"]) + wire.execute() +
                 wire.sync() + execute_batch("named", ["3"]))
        first = raw.read_until("Z")
        self.assertEqual([t for t, _ in first], ["E", "Z"])
        self.assertEqual(wire.parse_error(first[0][1])["C"], "42601")
        self.assertEqual(batch_result(raw.read_until("Z")), EXPECTED[0])
        gone = batch_result(raw.read_until("Z"))
        self.assertEqual(gone[:2], ("error", "26000"), gone)
        self.assertEqual(batch_result(raw.read_until("Z")), EXPECTED[1])
        self.check(psy, raw, "virtual again")
        set_phase("materializing")
        self.check(psy, raw, "materializing again")

        # The engine adds the column and backfills it (the catalog reload follows the NOTIFY).
        direct("ALTER TABLE item ADD COLUMN total numeric")
        direct("UPDATE item SET total = price * qty")
        notify()
        self.check(psy, raw, "materializing, column added")
        # Statements prepared now are checked against the same answers too.
        with psycopg.connect(px.dsn(DB), autocommit=True) as late:
            for i, result in enumerate(self.psycopg_all(late)):
                self.assertEqual(result, EXPECTED[i], "prepared while materializing")

        set_phase("materialized")
        self.check(psy, raw, "materialized")

        # Rollback: the column goes, the attribute is unknown again.
        set_phase("rolled_back")
        direct("ALTER TABLE item DROP COLUMN total")
        notify()
        with self.assertRaises(psycopg.errors.UndefinedColumn):
            psy.execute(*PSYCOPG_STATEMENTS[1], prepare=True)
        raw.send(execute_batch("named", ["3"]) + execute_batch("ordered", []))
        for _ in range(2):
            result = batch_result(raw.read_until("Z"))
            self.assertEqual(result[:2], ("error", "42703"), result)


if __name__ == "__main__":
    e2e_common.main()
