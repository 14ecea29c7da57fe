#!/usr/bin/python3
"""Backfill and verify batches against the application's row locks.

1. An application transaction that holds row locks for a long time (SELECT ... FOR UPDATE, kept
   open) does not stop the backfill: every other row gets its value while the locks are held, the
   seed does not become materialized while a held row is still wrong, and once the holders commit
   (one without writing, one after updating the expression's input) both rows end exact. (The
   locks are taken while the backfill is paused: a row lock also takes a table lock that ADD
   COLUMN must wait for.)
2. A batch never keeps an application waiting on one of its rows longer than lock_timeout: batches
   made long on purpose (1 s target, large batches) run while writers update random rows; a monitor
   polls pg_locks for row-lock waits (transactionid, tuple) of the writers on a seedproxy backend
   and records how long each had waited (pg_locks.waitstart). No wait may pass lock_timeout plus a scheduling allowance, and waits must
   have happened (otherwise the test proves nothing).
"""

from __future__ import annotations

import random
import threading
import time
import unittest

import e2e_common
import materialize_common as mc
import psycopg

from harness.pgcluster import PgCluster

DB = "lockdb"  # one database per test, so each has its own registry
ROWS = 50_000
BIG_ROWS = 300_000
EXPR = "a * 10 + 1"
TYPE = "bigint"

LOCK_TIMEOUT = 0.1
# How much longer than lock_timeout a wait may last: the watch polls every 10 ms, the cancel and the
# rollback that releases the rows take a moment, and the machine running the tests is shared.
ALLOWANCE = 0.3


def seed(table: str, attribute: str) -> dict:
    return {"database": f"{DB}_{table}", "entity": f"public.{table}", "attribute": attribute, "type": TYPE,
            "expression": EXPR, "materialize": {"policy": "manual"}}


pg: PgCluster = None


def setUpModule():
    global pg
    if e2e_common.direct_mode():
        raise unittest.SkipTest("materialization is the proxy's own")
    pg = PgCluster().start()
    for table, rows in (("held", ROWS), ("busy", BIG_ROWS)):
        with pg.connect() as conn:
            conn.execute(f"CREATE DATABASE {DB}_{table}")
        with pg.connect(f"{DB}_{table}") as conn:
            conn.execute(f"CREATE TABLE {table} (id int PRIMARY KEY, a int NOT NULL, n int NOT NULL DEFAULT 0)")
            conn.execute(f"INSERT INTO {table} (id, a) SELECT i, i % 1000 FROM generate_series(1, {rows}) i")
            conn.execute("VACUUM ANALYZE")


def tearDownModule():
    e2e_common.stop(None, pg)


def null_ids(conn, table: str) -> list[int]:
    return [r[0] for r in conn.execute(f"SELECT id FROM {table} WHERE score IS NULL ORDER BY id LIMIT 10")]


class HeldRowTest(unittest.TestCase):
    def test_backfill_goes_around_held_rows(self):
        db = f"{DB}_held"
        px = mc.make_proxy(pg.port, [seed("held", "score")], instance="held-rows",
                           materialization={"lock_timeout_seconds": LOCK_TIMEOUT})
        holders = []
        try:
            e2e_common.wait_until_readable(px, db, "SELECT score FROM held WHERE id = 1", "the seed")
            self.assertEqual(mc.command(px, "MATERIALIZE held.score"), ["MATERIALIZE"])
            mc.wait_backfilling(px, "score")
            done = mc.rows_done(mc.pause(px, "held.score", "score"))
            self.assertLess(done, ROWS - 5_000, "the backfill was nearly done before PAUSE took effect")
            held = (done + 2_000, ROWS - 1_000)  # keys are 1..ROWS, so rows after `done` are NULL
            for key in held:
                conn = pg.connect(db)
                holders.append(conn)
                conn.execute("BEGIN")
                conn.execute("SELECT * FROM held WHERE id = %s FOR UPDATE", (key,))
            self.assertEqual(mc.command(px, "RESUME held.score"), ["RESUME"])
            with pg.connect(db) as check:
                # Every row but the held ones gets its value while the locks are held.
                e2e_common.poll(lambda: null_ids(check, "held") == list(held), 120, 0.1,
                                f"every row but {held} to be backfilled while they are locked")
                row = mc.materialization(px, "score")
                self.assertNotIn(row["step"], ("switching_to_column", "materialized"), row)
                self.assertEqual(null_ids(check, "held"), list(held))
                # One holder commits without writing, the other after changing the input.
                holders[0].execute("COMMIT")
                holders[1].execute("UPDATE held SET a = a + 1 WHERE id = %s", (held[1],))
                holders[1].execute("COMMIT")
                mc.wait_step(px, "score", "materialized", timeout=120)
                self.assertEqual(mc.mismatches(check, "held", "score", EXPR, TYPE), 0)
                self.assertEqual(null_ids(check, "held"), [])
        finally:
            for conn in holders:
                conn.close()
            e2e_common.finish(px)


class Writers:
    """Threads updating random rows of `busy` directly, one short transaction each."""

    def __init__(self, count: int):
        self.stop = threading.Event()
        self.errors: list[str] = []
        self.commits = 0
        self.threads = [threading.Thread(target=self.run, args=(i,), daemon=True) for i in range(count)]

    def run(self, seed_: int) -> None:
        rng = random.Random(seed_)
        try:
            with psycopg.connect(host=pg.host, port=pg.port, user="postgres", dbname=f"{DB}_busy",
                                 autocommit=True, application_name="test-writer") as conn:
                while not self.stop.is_set():
                    conn.execute("UPDATE busy SET n = n + 1 WHERE id = %s", (rng.randint(1, BIG_ROWS),))
                    self.commits += 1
        except Exception as e:  # noqa: BLE001 - reported by the test
            self.errors.append(repr(e))

    def __enter__(self):
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        for t in self.threads:
            t.join(30)


class LockWaitMonitor(threading.Thread):
    """Polls pg_locks for sessions waiting on a lock a seedproxy backend holds; keeps the longest
    wait seen (clock_timestamp() - waitstart) and how many polls saw one."""

    def __init__(self):
        super().__init__(daemon=True)
        self.stop = threading.Event()
        self.longest = 0.0
        self.seen = 0
        self.polls = 0
        self.error = None

    def run(self) -> None:
        try:
            with psycopg.connect(host=pg.host, port=pg.port, user="postgres", dbname=f"{DB}_busy",
                                 autocommit=True, application_name="test-monitor") as conn:
                while not self.stop.is_set():
                    waited = conn.execute(
                        "SELECT extract(epoch FROM max(clock_timestamp() - l.waitstart)) FROM pg_locks l "
                        "JOIN pg_stat_activity w ON w.pid = l.pid "
                        "WHERE NOT l.granted AND l.waitstart IS NOT NULL AND w.application_name = 'test-writer' "
                        "AND l.locktype IN ('transactionid', 'tuple') "
                        "AND EXISTS (SELECT 1 FROM pg_stat_activity b WHERE b.pid = ANY (pg_blocking_pids(l.pid)) "
                        "AND b.application_name LIKE 'seedproxy%%')").fetchone()[0]
                    self.polls += 1
                    if waited is not None:
                        self.seen += 1
                        self.longest = max(self.longest, float(waited))
                    time.sleep(0.01)
        except Exception as e:  # noqa: BLE001
            self.error = repr(e)


class WaitBoundTest(unittest.TestCase):
    def test_no_application_waits_on_a_batch_past_lock_timeout(self):
        px = mc.make_proxy(pg.port, [seed("busy", "score")], instance="busy-rows",
                           materialization={"lock_timeout_seconds": LOCK_TIMEOUT, "target_batch_seconds": 1.0,
                                            "initial_batch_rows": 30_000, "max_batch_rows": 100_000,
                                            "pause_ratio": 0.1})
        try:
            e2e_common.wait_until_readable(px, f"{DB}_busy", "SELECT score FROM busy WHERE id = 1", "the seed")
            monitor = LockWaitMonitor()
            with Writers(4) as writers:
                monitor.start()
                e2e_common.poll(lambda: writers.commits > 100, 30, 0.05, "the writers to run")
                self.assertEqual(mc.command(px, "MATERIALIZE busy.score"), ["MATERIALIZE"])
                mc.wait_step(px, "score", "materialized", timeout=300)
            monitor.stop.set()
            monitor.join(30)
            self.assertIsNone(monitor.error)
            self.assertEqual(writers.errors, [])
            print(f"writers committed {writers.commits}; {monitor.polls} polls, {monitor.seen} saw a writer "
                  f"waiting on seedproxy, longest wait {monitor.longest * 1000:.0f} ms")
            self.assertGreater(monitor.seen, 0, "no writer ever waited on a batch: the test proves nothing")
            self.assertLessEqual(monitor.longest, LOCK_TIMEOUT + ALLOWANCE,
                                 f"a writer waited {monitor.longest:.3f} s on a batch's rows")
            with pg.connect(f"{DB}_busy") as check:
                self.assertEqual(mc.mismatches(check, "busy", "score", EXPR, TYPE), 0)
        finally:
            e2e_common.finish(px)


if __name__ == "__main__":
    e2e_common.main()
