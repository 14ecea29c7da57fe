#!/usr/bin/python3
"""DDL that breaks what a materialized cross-table seed reads is noticed (issue 17).

txn_count (over txn) is materialized; its referenced column txn.account_id is renamed, directly on
the database and then through the proxy: SHOW SEEDS' dependency_error names the column and says to
ROLLBACK the seed or undo the DDL, seedproxy_seed_dependency_broken is 1 and /status.json carries the
sentence; renaming it back clears all three. region (over customer) is materialized and customer is
dropped through the proxy: the same error, and MATERIALIZE of another seed over customer is refused
with it. ROLLBACK of both broken seeds succeeds, and once the DDL is undone pg_dump --schema-only
equals the dump taken before the proxy existed, and no row of seedproxy.dependency_locks is left.

Then ROLLBACK of a seed reading both txn and customer at each step of its materialization (virtual,
paused mid-backfill, blocked mid-backfill while running, materialized), with writes to both
referenced tables before it: every trigger and function on every table is gone, pg_dump
--schema-only is identical to the dump before the proxy, and seedproxy.dependency_locks is empty.
"""

from __future__ import annotations

import json
import unittest
import urllib.request

import e2e_common
import materialize_common as mc
import psycopg

from harness import wire
from harness.pgcluster import PgCluster, free_port

DB = "depdb"
SEEDS = {
    "txn_count": ("bigint", "(SELECT count(*) FROM txn t WHERE t.account_id = account.id)"),
    "region": ("text", "(SELECT c.region FROM customer c WHERE c.id = account.customer_id)"),
    "region_len": ("integer", "(SELECT length(c.region) FROM customer c WHERE c.id = account.customer_id)"),
}
# Reads both referenced tables; one seed per step its ROLLBACK comes at (test_3).
ACTIVITY = ("(SELECT count(*) FROM txn t WHERE t.account_id = account.id)"
            " + coalesce((SELECT length(c.region) FROM customer c WHERE c.id = account.customer_id), 0)")
for _step in ("virtual", "paused", "blocked", "materialized"):
    SEEDS[f"act_{_step}"] = ("bigint", ACTIVITY)
ACCOUNTS = 1000
STALL_AT = 500  # the backfill's first batch (200 rows) passes, a later one stalls here
CUSTOMER = "CREATE TABLE customer (id int PRIMARY KEY, region text)"

pg: PgCluster = None
px = None
metrics_port = 0
schema_before = ""


def setUpModule():
    global pg, px, metrics_port, schema_before
    if e2e_common.direct_mode():
        raise unittest.SkipTest("materialization is the proxy's own")
    pg = PgCluster().start()
    with pg.connect() as conn:
        conn.execute(f"CREATE DATABASE {DB}")
    with pg.connect(DB) as conn:
        conn.execute(CUSTOMER)
        conn.execute("CREATE TABLE account (id int PRIMARY KEY, customer_id int, balance int NOT NULL)")
        conn.execute("CREATE TABLE txn (id bigint PRIMARY KEY, account_id bigint, amount int)")
        conn.execute("INSERT INTO customer SELECT i, 'r' || i FROM generate_series(1, 4) i")
        conn.execute(f"INSERT INTO account SELECT i, 1 + i % 4, i FROM generate_series(1, {ACCOUNTS}) i")
        conn.execute("INSERT INTO txn SELECT i, 1 + i % 20, i FROM generate_series(1, 100) i")
    schema_before = mc.schema_dump(pg, DB, "--exclude-schema=seedproxy")
    metrics_port = free_port()
    seeds = [{"database": DB, "entity": "public.account", "attribute": name, "type": type_,
              "expression": expression, "materialize": {"policy": "manual"}}
             for name, (type_, expression) in SEEDS.items()]
    px = mc.make_proxy(pg.port, seeds, instance="crossdep-test",
                       metrics={"host": "127.0.0.1", "port": metrics_port})
    e2e_common.wait_until_readable(px, DB, "SELECT txn_count, region FROM account WHERE id = 1",
                                   "the cross-table seeds to be readable")


def tearDownModule():
    e2e_common.stop(px, pg)


def seed_row(attribute: str) -> dict:
    return [r for r in mc.show(px, "SEEDS") if r["attribute"] == attribute][0]


def broken_metric(attribute: str) -> float | None:
    with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5) as response:
        for line in response.read().decode().splitlines():
            if line.startswith("seedproxy_seed_dependency_broken{") and f'attribute="{attribute}"' in line:
                return float(line.rsplit(" ", 1)[1])
    return None


def status_seed(attribute: str) -> dict:
    with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/status.json", timeout=5) as response:
        return [s for s in json.loads(response.read())["seeds"] if s["attribute"] == attribute][0]


def run_directly(sql: str) -> None:
    with pg.connect(DB) as conn:
        conn.execute(sql)


def leftovers() -> dict:
    """What seedproxy left in the database outside its registry's tables: triggers and functions of
    its name on any table or schema, and key lock rows."""
    with pg.connect(DB) as conn:
        return {
            "triggers": conn.execute("SELECT tgrelid::regclass::text, tgname FROM pg_trigger "
                                     "WHERE tgname LIKE '%%seedproxy%%' ORDER BY 1, 2").fetchall(),
            "functions": conn.execute("SELECT proname FROM pg_proc WHERE proname LIKE 'seedproxy%%' "
                                      "ORDER BY 1").fetchall(),
            "dependency_locks": conn.execute('SELECT count(*) FROM "seedproxy"."dependency_locks"').fetchone()[0],
        }


def dependency_lock_rows() -> int:
    with pg.connect(DB) as conn:
        return conn.execute('SELECT count(*) FROM "seedproxy"."dependency_locks"').fetchone()[0]


def run_through_proxy(sql: str) -> None:
    with psycopg.connect(px.dsn(DB), autocommit=True) as conn:
        conn.execute(sql)


class CrossTableDependencyBroken(unittest.TestCase):
    maxDiff = None

    def wait_error(self, attribute: str, broken: bool) -> str | None:
        e2e_common.poll(lambda: (seed_row(attribute)["dependency_error"] is not None) == broken
                        and broken_metric(attribute) in ((1.0,) if broken else (0.0, None)), 30, 0.1,
                        f"{attribute}'s dependency_error and metric to be {'set' if broken else 'clear'}")
        return seed_row(attribute)["dependency_error"]

    def test_1_renamed_column_directly_and_through_the_proxy(self):
        self.assertEqual(mc.command(px, "MATERIALIZE account.txn_count"), ["MATERIALIZE"])
        mc.wait_step(px, "txn_count", "materialized", timeout=60)
        self.assertIsNone(self.wait_error("txn_count", False))
        # writes to the referenced table take key locks (rows of seedproxy.dependency_locks)
        run_directly("INSERT INTO txn VALUES (1001, 2, 1), (1002, 3, 1)")
        run_directly("DELETE FROM txn WHERE id IN (1001, 1002)")
        self.assertGreater(dependency_lock_rows(), 0)
        for run in (run_directly, run_through_proxy):
            run("ALTER TABLE txn RENAME COLUMN account_id TO acct_id")
            error = self.wait_error("txn_count", True)
            print(f"\n  {run.__name__}: {error}")
            self.assertIn("account_id", error)
            self.assertIn(f"run ROLLBACK {DB}.public.account.txn_count", error)
            self.assertIn("undo the DDL", error)
            status = status_seed("txn_count")
            self.assertTrue(status["dependency_broken"])
            self.assertEqual(status["dependency_error"], error)
            self.assertIn(error, status["problem"])
            # mended: the error goes
            run("ALTER TABLE txn RENAME COLUMN acct_id TO account_id")
            self.wait_error("txn_count", False)
            self.assertFalse(status_seed("txn_count")["dependency_broken"])
        # broken again, then rolled back while broken
        run_directly("ALTER TABLE txn RENAME COLUMN account_id TO acct_id")
        self.wait_error("txn_count", True)
        self.assertEqual(mc.command(px, "ROLLBACK account.txn_count"), ["ROLLBACK"])
        e2e_common.poll(lambda: mc.seed_phase(px, "txn_count") == "rolled_back", 30, 0.1, "rolled_back")
        self.wait_error("txn_count", False)  # a rolled back seed reads nothing
        run_directly("INSERT INTO txn VALUES (1000, 1, 1)")  # no trigger of ours is left to fail
        run_directly("ALTER TABLE txn RENAME COLUMN acct_id TO account_id")
        run_directly("DELETE FROM txn WHERE id = 1000")
        # nothing left: the rollback of a broken seed cannot read its dependencies, and still
        # forgets its key locks
        self.assertEqual(leftovers(), {"triggers": [], "functions": [], "dependency_locks": 0})

    def test_2_dropped_table_through_the_proxy(self):
        self.assertEqual(mc.command(px, "MATERIALIZE account.region"), ["MATERIALIZE"])
        mc.wait_step(px, "region", "materialized", timeout=60)
        run_directly("UPDATE customer SET region = region || '' WHERE id = 2")
        self.assertGreater(dependency_lock_rows(), 0)
        run_through_proxy("DROP TABLE customer")
        error = self.wait_error("region", True)
        print(f"\n  dropped table: {error}")
        self.assertIn("customer", error)
        self.assertIn(f"run ROLLBACK {DB}.public.account.region", error)
        # the virtual seed over the same table cannot start materializing
        other = self.wait_error("region_len", True)
        with self.assertRaises(wire.ServerError) as raised:
            mc.command(px, "MATERIALIZE account.region_len")
        self.assertEqual(raised.exception.sqlstate, "55000")
        self.assertIn(other, raised.exception.fields.get("M", ""))
        for name in ("region", "region_len"):
            self.assertEqual(mc.command(px, f"ROLLBACK account.{name}"), ["ROLLBACK"])
        for name in ("region", "region_len"):
            e2e_common.poll(lambda: mc.seed_phase(px, name) == "rolled_back", 30, 0.1, f"{name} rolled back")
        run_directly(CUSTOMER)
        run_directly("INSERT INTO customer SELECT i, 'r' || i FROM generate_series(1, 4) i")
        after = mc.schema_dump(pg, DB, "--exclude-schema=seedproxy")
        self.assertTrue(after == schema_before,
                        f"schema after ROLLBACK differs:\n{mc.first_difference(schema_before, after)}")
        self.assertEqual(leftovers(), {"triggers": [], "functions": [], "dependency_locks": 0})

    def write_both_referenced_tables(self) -> None:
        """Changes rows both tables tie to accounts (below STALL_AT and above), and undoes them."""
        for run in (run_directly, run_through_proxy):
            run("INSERT INTO txn VALUES (2001, 7, 1), (2002, 900, 2)")
            run("UPDATE txn SET account_id = 8 WHERE id = 2001")
            run("DELETE FROM txn WHERE id IN (2001, 2002)")
            run("UPDATE customer SET region = region || '' WHERE id = 3")

    def assert_nothing_left(self, name: str) -> None:
        e2e_common.poll(lambda: mc.seed_phase(px, name) == "rolled_back", 30, 0.05, f"{name} rolled back")
        after = mc.schema_dump(pg, DB, "--exclude-schema=seedproxy")
        self.assertTrue(after == schema_before,
                        f"schema after ROLLBACK of {name} differs:\n{mc.first_difference(schema_before, after)}")
        self.assertEqual(leftovers(), {"triggers": [], "functions": [], "dependency_locks": 0}, name)
        with pg.connect(DB) as conn:
            self.assertEqual(conn.execute("SELECT count(*) FROM txn").fetchone()[0], 100)

    def test_3_rollback_at_each_step(self):
        for name in ("act_paused", "act_blocked", "act_materialized"):  # customer is back (test_2)
            self.wait_error(name, False)
        # virtual: nothing was ever added
        self.assertEqual(mc.command(px, "ROLLBACK account.act_virtual"), ["ROLLBACK"])
        self.assert_nothing_left("act_virtual")
        # paused mid-backfill: column, row trigger, dependency triggers on txn and customer
        with mc.BackfillStall(pg, DB, "account", "id", STALL_AT):
            self.assertEqual(mc.command(px, "MATERIALIZE account.act_paused"), ["MATERIALIZE"])
            mc.wait_backfilling(px, "act_paused")
            mc.pause(px, "account.act_paused", "act_paused")
        found = leftovers()
        self.assertEqual(sorted({table for table, _ in found["triggers"]}), ["account", "customer", "txn"], found)
        self.write_both_referenced_tables()
        self.assertGreater(dependency_lock_rows(), 0)
        self.assertEqual(mc.command(px, "ROLLBACK account.act_paused"), ["ROLLBACK"])
        mc.wait_step(px, "act_paused", "rolled_back", timeout=30)
        self.assert_nothing_left("act_paused")
        # running, its batch blocked: the rollback stops it
        stall = mc.BackfillStall(pg, DB, "account", "id", STALL_AT)
        try:
            self.assertEqual(mc.command(px, "MATERIALIZE account.act_blocked"), ["MATERIALIZE"])
            mc.wait_backfilling(px, "act_blocked")
            # two accounts in one statement: a single account's row would be recomputed without a
            # key lock (the one-key path), and this wants lock rows for the rollback to remove
            run_directly("INSERT INTO txn VALUES (2003, 9, 1), (2004, 10, 1)")
            run_directly("DELETE FROM txn WHERE id IN (2003, 2004)")
            self.assertGreater(dependency_lock_rows(), 0)
            self.assertEqual(mc.command(px, "ROLLBACK account.act_blocked"), ["ROLLBACK"])
            mc.wait_step(px, "act_blocked", "rolled_back", timeout=30)
        finally:
            stall.release()
        self.assert_nothing_left("act_blocked")
        # materialized
        self.assertEqual(mc.command(px, "MATERIALIZE account.act_materialized"), ["MATERIALIZE"])
        mc.wait_step(px, "act_materialized", "materialized", timeout=60)
        self.write_both_referenced_tables()
        with pg.connect(DB) as conn:
            self.assertEqual(mc.mismatches(conn, "account", "act_materialized", ACTIVITY, "bigint"), 0)
        self.assertGreater(dependency_lock_rows(), 0)
        self.assertEqual(mc.command(px, "ROLLBACK account.act_materialized"), ["ROLLBACK"])
        mc.wait_step(px, "act_materialized", "rolled_back", timeout=30)
        self.assert_nothing_left("act_materialized")


if __name__ == "__main__":
    e2e_common.main()
