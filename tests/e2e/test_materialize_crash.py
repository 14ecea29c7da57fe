#!/usr/bin/python3
"""kill -9 of the materializing proxy, and the materialization still ends correct.

One proxy: for each of a few seeds, MATERIALIZE, kill -9 the proxy after a random delay (the random
seed is printed; SEEDPROXY_CRASH_SEED=N repeats a run), restart it with the same configuration
(same instance name and port), and it must resume to step materialized with no row where the column
differs from the expression, the column present once and the write trigger present once. One seed
is killed twice, one exactly mid-backfill.

Two proxies in front of the same database (instances twin-a and twin-b, own ports): MATERIALIZE,
find the materializer in SHOW MATERIALIZATIONS' owner column, kill -9 it mid-backfill; the other
takes over (the dead connection's advisory lock is freed) and finishes, with the same checks.

A cross-table seed (acct.txn_total, a sum over txn rows of the account plus the account's own
column) on two fresh proxies: kill -9 of the materializer mid-backfill while writers insert, move
between accounts, update and delete txn rows (directly, and through the surviving proxy) and update
accounts; the survivor takes over and finishes, and every row's column equals the expression.
"""

from __future__ import annotations

import os
import random
import threading
import time
import unittest

import e2e_common
import materialize_common as mc
import psycopg

from harness.pgcluster import PgCluster, free_port

DB = "crashdb"
ROWS = 30_000
TYPE = "bigint"
EXPRESSIONS = {
    "s1": "a::bigint * 1 + b",
    "s2": "a::bigint * 2 + b",
    "s3": "a::bigint * 3 + b",
    "s4": "a::bigint * 4 + b",
}
SEEDS = [{"database": DB, "entity": "public.item", "attribute": attr, "type": TYPE, "expression": expr,
          "materialize": {"policy": "manual"}} for attr, expr in EXPRESSIONS.items()]
ACCOUNTS = 20_000
TXN_TOTAL = "coalesce((SELECT sum(t.amount) FROM txn t WHERE t.account_id = acct.id), 0) + acct.base"
SEEDS.append({"database": DB, "entity": "public.acct", "attribute": "txn_total", "type": TYPE,
              "expression": TXN_TOTAL, "materialize": {"policy": "manual"}})
# Longest a materialization of ROWS rows is expected to take here; random kills fall within it.
KILL_WINDOW_SECONDS = 4.0

RANDOM_SEED = int(os.environ.get("SEEDPROXY_CRASH_SEED", str(time.time_ns() % 1_000_000)))
rng = random.Random(RANDOM_SEED)

pg: PgCluster = None
solo = None
twins: dict = {}


def setUpModule():
    global pg
    if e2e_common.direct_mode():
        raise unittest.SkipTest("materialization is the proxy's own")
    print(f"\n  random seed {RANDOM_SEED} (SEEDPROXY_CRASH_SEED={RANDOM_SEED} repeats the kill delays)")
    pg = PgCluster().start()
    with pg.connect() as conn:
        conn.execute(f"CREATE DATABASE {DB}")
    with pg.connect(DB) as conn:
        conn.execute("CREATE TABLE item (id int PRIMARY KEY, a int NOT NULL, b int, note text NOT NULL)")
        conn.execute("INSERT INTO item SELECT i, (i * 7919) % 1000, CASE WHEN i % 11 = 0 THEN NULL "
                     f"ELSE (i::bigint * 104729) % 997 END, 'note ' || i FROM generate_series(1, {ROWS}) i")
        conn.execute("CREATE TABLE acct (id int PRIMARY KEY, base int NOT NULL)")
        conn.execute(f"INSERT INTO acct SELECT i, i % 100 FROM generate_series(1, {ACCOUNTS}) i")
        conn.execute("CREATE TABLE txn (id bigint PRIMARY KEY, account_id int NOT NULL, amount int NOT NULL)")
        conn.execute("CREATE INDEX txn_account ON txn (account_id)")
        conn.execute(f"INSERT INTO txn SELECT i, 1 + (i * 7) % {ACCOUNTS}, i % 90 - 20 "
                     f"FROM generate_series(1, {ACCOUNTS * 3}) i")
        conn.execute("VACUUM ANALYZE")


def tearDownModule():
    e2e_common.finish(solo)
    for px in twins.values():
        e2e_common.finish(px)
    if pg is not None:
        pg.stop()


def registry_state(attribute: str):
    """The persisted step of a materialization, read directly (the proxy may be dead)."""
    rows = pg.psql('SELECT step, rows_done, owner FROM "seedproxy"."materializations" '
                   "WHERE table_name = 'item' AND attribute_name = %s", (attribute,), dbname=DB)
    return rows[0] if rows else None


def kill9(px) -> None:
    px.kill()  # SIGKILL and reap
    assert not px.running()


class DirectWriter(threading.Thread):
    """Keeps updating the expressions' inputs (a, b; b sometimes NULL) directly on the database
    while proxies are killed and restarted, so the trigger and the resumed backfill must agree."""

    def __init__(self):
        super().__init__(daemon=True)
        self.stop_event = threading.Event()
        self.errors: list[str] = []
        self.total = 0

    def run(self):
        ids = list(range(1, ROWS + 1, 7))
        try:
            with pg.connect(DB) as conn:
                while not self.stop_event.is_set():
                    row_id = ids[self.total % len(ids)]
                    try:
                        conn.execute("UPDATE item SET a = (a + 1) %% 1000, b = CASE WHEN b IS NULL THEN 1 "
                                     "WHEN b %% 5 = 0 THEN NULL ELSE b + 1 END WHERE id = %s", (row_id,))
                    except psycopg.Error as e:
                        self.errors.append(f"UPDATE id {row_id}: {e.diag.sqlstate} {e}")
                    self.total += 1
                    self.stop_event.wait(0.002)  # pacing, so the writer does not take a whole core
        except Exception as e:  # noqa: BLE001 - reported by the test
            self.errors.append(f"writer died: {e!r}")


class CrashChecks:
    writer: DirectWriter | None = None

    def assert_final(self, px, attribute: str) -> None:
        row = mc.wait_step(px, attribute, "materialized", timeout=90)
        self.assertEqual(row["error"] or "", "", row)
        self.assertEqual(mc.seed_phase(px, attribute), "materialized")
        with pg.connect(DB) as conn:
            self.assertEqual(mc.mismatches(conn, "item", attribute, EXPRESSIONS[attribute], TYPE), 0,
                             f"{attribute}: rows whose column differs from the expression")
            objects = mc.engine_objects(conn, "item", attribute)
            functions = conn.execute("SELECT count(*) FROM pg_proc WHERE proname = %s",
                                     (objects["triggers"][0][1] if objects["triggers"] else "",)).fetchone()[0]
            count = conn.execute("SELECT count(*) FROM item").fetchone()[0]
        self.assertEqual(objects["columns"], 1, f"{attribute}: {objects}")
        self.assertEqual(len(objects["triggers"]), 1, f"{attribute}: {objects}")
        self.assertEqual(functions, 1, f"{attribute}: trigger function {objects['triggers']}")
        self.assertEqual(count, ROWS)
        if self.writer is not None:
            self.assertGreater(self.writer.total, 0)
            self.assertEqual(self.writer.errors[:5], [], f"{len(self.writer.errors)} writer errors")
        with psycopg.connect(px.dsn(DB), autocommit=True) as conn:
            good = conn.execute(f"SELECT count(*) FROM item WHERE {attribute} IS NOT DISTINCT FROM "
                                f"({EXPRESSIONS[attribute]})").fetchone()[0]
        self.assertEqual(good, ROWS, f"{attribute} read through the proxy")


class A_SoloProxy(CrashChecks, unittest.TestCase):
    port = None

    @classmethod
    def setUpClass(cls):
        global solo
        cls.port = free_port()
        solo = mc.make_proxy(pg.port, SEEDS, instance="crash-solo", port=cls.port)
        e2e_common.wait_until_readable(solo, DB, "SELECT s1 FROM item WHERE id = 1", "the seeds to be readable")
        cls.writer = DirectWriter()
        cls.writer.start()

    @classmethod
    def tearDownClass(cls):
        cls.writer.stop_event.set()
        cls.writer.join(timeout=30)
        print(f"\n  direct writer: {cls.writer.total} updates during the kills")

    def restart(self) -> None:
        global solo
        e2e_common.finish(solo)
        solo = mc.make_proxy(pg.port, SEEDS, instance="crash-solo", port=self.port)

    def kill_after_random_delay(self, attribute: str, since: str = "MATERIALIZE") -> None:
        delay = rng.uniform(0.0, KILL_WINDOW_SECONDS)
        # Not synchronisation: the kill must land at an arbitrary moment of the materialization.
        time.sleep(delay)
        kill9(solo)
        print(f"  {attribute}: killed {delay:.3f}s after {since}; registry then said {registry_state(attribute)}")
        self.restart()

    def test_1_random_kill(self):
        self.assertEqual(mc.command(solo, "MATERIALIZE item.s1"), ["MATERIALIZE"])
        self.kill_after_random_delay("s1")
        self.assert_final(solo, "s1")

    def test_2_two_random_kills(self):
        self.assertEqual(mc.command(solo, "MATERIALIZE item.s2"), ["MATERIALIZE"])
        self.kill_after_random_delay("s2")
        self.kill_after_random_delay("s2", since="the restart")
        self.assert_final(solo, "s2")

    def test_3_kill_mid_backfill(self):
        self.assertEqual(mc.command(solo, "MATERIALIZE item.s3"), ["MATERIALIZE"])
        row = mc.wait_backfilling(solo, "s3")
        kill9(solo)
        print(f"  s3: killed mid-backfill at {row['rows_done']}/{row['rows_total']}; registry then said "
              f"{registry_state('s3')}")
        self.restart()
        self.assert_final(solo, "s3")
        # the earlier seeds stay materialized and intact
        for attribute in ("s1", "s2"):
            self.assertEqual(mc.materialization(solo, attribute)["step"], "materialized")
        with pg.connect(DB) as conn:
            for attribute in ("s1", "s2"):
                self.assertEqual(len(mc.engine_objects(conn, "item", attribute)["triggers"]), 1)


class B_TwoProxies(CrashChecks, unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        global solo
        e2e_common.finish(solo)
        solo = None
        for name in ("twin-a", "twin-b"):
            twins[name] = mc.make_proxy(pg.port, SEEDS, instance=name)
        for px in twins.values():
            e2e_common.wait_until_readable(px, DB, "SELECT s4 FROM item WHERE id = 1", "the seeds to be readable")

    def test_materializer_dies_and_the_other_takes_over(self):
        self.assertEqual(mc.command(twins["twin-a"], "MATERIALIZE item.s4"), ["MATERIALIZE"])
        row = mc.wait_backfilling(twins["twin-a"], "s4")
        owner = row["owner"]
        self.assertIn(owner, twins, f"SHOW MATERIALIZATIONS owner {owner!r} is neither proxy")
        survivor_name = "twin-b" if owner == "twin-a" else "twin-a"
        survivor = twins[survivor_name]
        # both proxies report the same state from the registry (the survivor's engine reads it
        # every check_seconds, so it may not have seen the owner yet)
        mc.wait_materialization(survivor, "s4", lambda r: r["owner"] == owner, 10,
                                f"{survivor_name} to report owner {owner}")
        kill9(twins[owner])
        print(f"\n  s4: killed materializer {owner} at {row['rows_done']}/{row['rows_total']}; registry then "
              f"said {registry_state('s4')}")
        # the survivor owns it (or has already finished it: nobody else is alive to do so)
        taken = mc.wait_materialization(survivor, "s4",
                                        lambda r: r["owner"] == survivor_name or r["step"] == "materialized",
                                        30, f"owner {survivor_name}")
        print(f"  s4: {survivor_name} took over: {taken}")
        self.assert_final(survivor, "s4")



class TxnWriter(threading.Thread):
    """Random READ COMMITTED writes to txn (insert, move between accounts, update, delete) and to
    acct's own column, on one connection, until stopped; deadlocks are retried as a client would."""

    def __init__(self, dsn: str, seed: int, ids):
        super().__init__(daemon=True)
        self.dsn, self.random, self.ids = dsn, random.Random(seed), ids
        self.stop_event = threading.Event()
        self.errors: list[str] = []
        self.total = self.retries = 0

    def one(self, conn) -> None:
        r, account = self.random, self.random.randint(1, ACCOUNTS)
        choice = r.randrange(5)
        if choice == 0:
            conn.execute("INSERT INTO txn VALUES (%s, %s, %s)", (next(self.ids), account, r.randint(-50, 50)))
        elif choice == 1:  # move a row to another account
            conn.execute("UPDATE txn SET account_id = %s WHERE id = %s", (account, r.randint(1, ACCOUNTS * 3)))
        elif choice == 2:
            conn.execute("UPDATE txn SET amount = amount + 1 WHERE account_id = %s", (account,))
        elif choice == 3:
            conn.execute("DELETE FROM txn WHERE id = %s", (r.randint(1, ACCOUNTS * 3),))
        else:
            conn.execute("UPDATE acct SET base = base + 1 WHERE id = %s", (account,))

    def run(self):
        try:
            with psycopg.connect(self.dsn, autocommit=True) as conn:
                while not self.stop_event.is_set():
                    try:
                        self.one(conn)
                        self.total += 1
                    except psycopg.errors.DeadlockDetected:
                        self.retries += 1
                    except psycopg.Error as e:
                        self.errors.append(f"{e.diag.sqlstate} {e}")
                    self.stop_event.wait(0.002)  # pacing, so the writer does not take a whole core
        except Exception as e:  # noqa: BLE001 - reported by the test
            self.errors.append(f"writer died: {e!r}")


class C_CrossTableTakeover(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        for name in list(twins):  # B's survivor must not take part in this election
            e2e_common.finish(twins.pop(name))
        for name in ("twin-c", "twin-d"):
            twins[name] = mc.make_proxy(pg.port, SEEDS, instance=name)
        for name in ("twin-c", "twin-d"):
            e2e_common.wait_until_readable(twins[name], DB, "SELECT txn_total FROM acct WHERE id = 1",
                                           "the cross-table seed to be readable")

    def test_materializer_dies_mid_backfill_while_txn_is_written(self):
        counter = iter(range(ACCOUNTS * 3 + 1, 10**9))
        lock = threading.Lock()

        def next_id():
            with lock:
                return next(counter)

        class Ids:
            def __next__(self):
                return next_id()

        writers = [TxnWriter(pg.dsn(DB), RANDOM_SEED + i, Ids()) for i in range(2)]
        for w in writers:
            w.start()
        try:
            self.assertEqual(mc.command(twins["twin-c"], "MATERIALIZE acct.txn_total"), ["MATERIALIZE"])
            row = mc.wait_backfilling(twins["twin-c"], "txn_total")
            owner = row["owner"]
            self.assertIn(owner, ("twin-c", "twin-d"), f"owner {owner!r}")
            survivor_name = "twin-d" if owner == "twin-c" else "twin-c"
            survivor = twins[survivor_name]
            mc.wait_materialization(survivor, "txn_total", lambda r: r["owner"] == owner, 10,
                                    f"{survivor_name} to report owner {owner}")
            through_survivor = TxnWriter(survivor.dsn(DB), RANDOM_SEED + 7, Ids())
            through_survivor.start()
            writers.append(through_survivor)
            kill9(twins[owner])
            print(f"\n  txn_total: killed materializer {owner} at {row['rows_done']}/{row['rows_total']}; "
                  f"registry then said {registry_state_of('acct', 'txn_total')}")
            taken = mc.wait_materialization(survivor, "txn_total",
                                            lambda r: r["owner"] == survivor_name or r["step"] == "materialized",
                                            30, f"owner {survivor_name}")
            print(f"  txn_total: {survivor_name} took over: {taken}")
            row = mc.wait_step(survivor, "txn_total", "materialized", timeout=120)
            self.assertEqual(row["error"] or "", "", row)
            # the writers go on against the column for a while
            marks = [w.total for w in writers]
            for w, mark in zip(writers, marks):
                e2e_common.poll(lambda: w.total >= mark + 50 or not w.is_alive(), 60, 0.05,
                                "50 more writes once materialized")
        finally:
            for w in writers:
                w.stop_event.set()
            for w in writers:
                w.join(timeout=30)
        print(f"  writers: {sum(w.total for w in writers)} writes, {sum(w.retries for w in writers)} "
              "deadlocks retried")
        for w in writers:
            self.assertEqual(w.errors[:5], [], f"{len(w.errors)} writer errors")
        with pg.connect(DB) as conn:
            self.assertEqual(mc.mismatches(conn, "acct", "txn_total", TXN_TOTAL, TYPE), 0)
            triggers = conn.execute("SELECT tgrelid::regclass::text, count(*) FROM pg_trigger "
                                    "WHERE tgname LIKE '%%seedproxy%%' AND tgrelid::regclass::text <> 'item' "
                                    "GROUP BY 1 ORDER BY 1").fetchall()
        # the row trigger once on acct, the four statement triggers once on txn: nothing doubled
        self.assertEqual(triggers, [("acct", 1), ("txn", 4)])
        with psycopg.connect(survivor.dsn(DB), autocommit=True) as conn:
            wrong = conn.execute(f"SELECT count(*) FROM acct WHERE txn_total IS DISTINCT FROM ({TXN_TOTAL})").fetchone()[0]
        self.assertEqual(wrong, 0, "txn_total read through the proxy")


def registry_state_of(table: str, attribute: str):
    rows = pg.psql('SELECT step, rows_done, owner FROM "seedproxy"."materializations" '
                   "WHERE table_name = %s AND attribute_name = %s", (table, attribute), dbname=DB)
    return rows[0] if rows else None


if __name__ == "__main__":
    e2e_common.main()
