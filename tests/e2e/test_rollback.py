#!/usr/bin/python3
"""ROLLBACK at each phase restores the schema exactly.

`pg_dump --schema-only --exclude-schema=seedproxy` taken before any seed exists must be
byte-identical to the one taken after ROLLBACK of a seed that is
  - virtual,
  - mid-backfill and paused (column added, trigger installed, part of the table filled),
  - materialized,
  - mid-backfill and running (not paused): the backfill stops and the rollback finishes within a
    few seconds.
After each rollback SHOW SEEDS says rolled_back and a query naming the attribute through the proxy
fails exactly as PostgreSQL fails it for an unknown column (42703, same message). The registry's own
schema (`seedproxy`) keeps its DDL: only its rows change.
"""

from __future__ import annotations

import time
import unittest

import e2e_common
import materialize_common as mc
import psycopg

from harness.pgcluster import PgCluster

DB = "rbdb"
ITEM_ROWS = 30_000
BIG_ROWS = 200_000
TYPE = "bigint"
SEEDS = [
    {"database": DB, "entity": "public.item", "attribute": "r_virtual", "type": TYPE,
     "expression": "a::bigint + b", "materialize": {"policy": "manual"}},
    {"database": DB, "entity": "public.item", "attribute": "r_paused", "type": TYPE,
     "expression": "a::bigint * 2 + b", "materialize": {"policy": "manual"}},
    {"database": DB, "entity": "public.item", "attribute": "r_materialized", "type": TYPE,
     "expression": "a::bigint * 3 + b", "materialize": {"policy": "manual"}},
    {"database": DB, "entity": "public.big", "attribute": "r_running", "type": TYPE,
     "expression": "x::bigint * 5", "materialize": {"policy": "manual"}},
]

pg: PgCluster = None
px = None
schema_before: str = ""
registry_before: str = ""


def setUpModule():
    global pg, px, schema_before, registry_before
    if e2e_common.direct_mode():
        raise unittest.SkipTest("rollback is the proxy's own")
    pg = PgCluster().start()
    with pg.connect() as conn:
        conn.execute(f"CREATE DATABASE {DB}")
    with pg.connect(DB) as conn:
        conn.execute("CREATE TABLE item (id int PRIMARY KEY, a int NOT NULL, b int, note text DEFAULT 'n')")
        conn.execute("CREATE INDEX item_a ON item (a)")
        conn.execute("CREATE FUNCTION touch_note() RETURNS trigger LANGUAGE plpgsql AS "
                     "$$ BEGIN NEW.note := coalesce(NEW.note, 'n'); RETURN NEW; END $$")
        conn.execute("CREATE TRIGGER item_touch BEFORE UPDATE ON item FOR EACH ROW EXECUTE FUNCTION touch_note()")
        conn.execute("CREATE VIEW item_view AS SELECT id, a FROM item")
        conn.execute("INSERT INTO item SELECT i, (i * 7919) % 1000, CASE WHEN i % 13 = 0 THEN NULL ELSE i % 97 END "
                     f"FROM generate_series(1, {ITEM_ROWS}) i")
        conn.execute("CREATE TABLE big (id bigint PRIMARY KEY, x int NOT NULL)")
        conn.execute(f"INSERT INTO big SELECT i, i % 1000 FROM generate_series(1, {BIG_ROWS}) i")
        conn.execute("VACUUM ANALYZE")
    # before the proxy (and so before any seed) exists
    schema_before = mc.schema_dump(pg, DB, "--exclude-schema=seedproxy")
    px = mc.make_proxy(pg.port, SEEDS, instance="rollback-test")
    e2e_common.wait_until_readable(px, DB, "SELECT r_virtual, r_paused, r_materialized FROM item WHERE id = 1",
                                   "the seeds to be readable")
    registry_before = mc.schema_dump(pg, DB, "--schema=seedproxy")


def tearDownModule():
    e2e_common.stop(px, pg)


def unknown_column_error(dsn: str, table: str, attribute: str):
    try:
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(f"SELECT id, {attribute} FROM {table} WHERE id = 1").fetchall()
    except psycopg.Error as e:
        return e.diag.sqlstate, e.diag.message_primary
    return None


class Rollback(unittest.TestCase):
    maxDiff = None

    def assert_rolled_back(self, table: str, attribute: str) -> None:
        e2e_common.poll(lambda: mc.seed_phase(px, attribute) == "rolled_back", 15, 0.05,
                        f"SHOW SEEDS phase rolled_back for {attribute}")
        after = mc.schema_dump(pg, DB, "--exclude-schema=seedproxy")
        self.assertTrue(after == schema_before,
                        f"schema after ROLLBACK of {attribute} differs:\n{mc.first_difference(schema_before, after)}")
        want = unknown_column_error(pg.dsn(DB), table, attribute)
        self.assertEqual(want[0], "42703", want)
        got = e2e_common.poll(lambda: unknown_column_error(px.dsn(DB), table, attribute), 10, 0.05,
                              f"{attribute} to be unknown through the proxy")
        self.assertEqual(got, want, f"{attribute} through the proxy after ROLLBACK")

    def test_1_virtual(self):
        self.assertEqual(mc.seed_phase(px, "r_virtual"), "virtual")
        self.assertEqual(mc.command(px, "ROLLBACK item.r_virtual"), ["ROLLBACK"])
        self.assert_rolled_back("item", "r_virtual")

    def test_2_paused_mid_backfill(self):
        # the backfill stalls two thirds into the table (mc.BackfillStall), so PAUSE lands mid-backfill
        with mc.BackfillStall(pg, DB, "item", "id", ITEM_ROWS * 2 // 3):
            self.assertEqual(mc.command(px, "MATERIALIZE item.r_paused"), ["MATERIALIZE"])
            mc.wait_backfilling(px, "r_paused")
            row = mc.pause(px, "item.r_paused", "r_paused")
        with pg.connect(DB) as conn:
            filled, empty = conn.execute("SELECT count(r_paused), count(*) - count(r_paused) FROM item").fetchone()
            objects = mc.engine_objects(conn, "item", "r_paused")
        print(f"\n  paused at {row['rows_done']}/{row['rows_total']}: {filled} rows filled, {empty} not; {objects}")
        self.assertGreater(filled, 0)
        self.assertGreater(empty, 0)
        self.assertEqual(len(objects["triggers"]), 1, objects)
        self.assertEqual(mc.command(px, "ROLLBACK item.r_paused"), ["ROLLBACK"])
        mc.wait_step(px, "r_paused", "rolled_back", timeout=15)
        self.assert_rolled_back("item", "r_paused")

    def test_3_materialized(self):
        self.assertEqual(mc.command(px, "MATERIALIZE item.r_materialized"), ["MATERIALIZE"])
        mc.wait_step(px, "r_materialized", "materialized", timeout=90)
        self.assertEqual(mc.seed_phase(px, "r_materialized"), "materialized")
        self.assertEqual(mc.command(px, "ROLLBACK item.r_materialized"), ["ROLLBACK"])
        mc.wait_step(px, "r_materialized", "rolled_back", timeout=15)
        self.assert_rolled_back("item", "r_materialized")

    def test_4_running_backfill_stops_promptly(self):
        self.assertEqual(mc.command(px, "MATERIALIZE big.r_running"), ["MATERIALIZE"])
        row = mc.wait_backfilling(px, "r_running")
        self.assertEqual(row["paused"], "f")
        self.assertLess(int(row["rows_done"]), BIG_ROWS, row)
        started = time.monotonic()
        self.assertEqual(mc.command(px, "ROLLBACK big.r_running"), ["ROLLBACK"])
        done = mc.wait_materialization(px, "r_running", lambda r: r["step"] == "rolled_back", 5,
                                       "step rolled_back within 5s of ROLLBACK", passing=("materialized",))
        took = time.monotonic() - started
        print(f"\n  ROLLBACK of a running backfill at {row['rows_done']}/{row['rows_total']}: rolled_back in "
              f"{took:.2f}s ({done})")
        self.assert_rolled_back("big", "r_running")

    def test_5_registry_schema_keeps_its_ddl(self):
        after = mc.schema_dump(pg, DB, "--schema=seedproxy")
        self.assertTrue(after == registry_before,
                        f"the seedproxy schema's DDL changed:\n{mc.first_difference(registry_before, after)}")


if __name__ == "__main__":
    e2e_common.main()
