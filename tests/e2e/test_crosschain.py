#!/usr/bin/python3
"""A seed that reads a table through a chain of lookups (account -> customer -> region) becomes a
real column and stays exact under concurrent writes to all three tables (issue 17).

Both spellings of the chain, a join in one subquery and a lookup nested in another's WHERE, are
materialized while writers (READ COMMITTED and REPEATABLE READ, through the proxy and directly)
move customers between regions, rename, add and delete regions (and change their ids), move
accounts between customers, add and delete customers and accounts, and change a customer's region
and that region's name in one transaction. The writers run in rounds; after every round the value
the proxy reads equals the expression computed directly in PostgreSQL, and once the seeds are
materialized so does the physical column. The race the chain's join-key locks exist for (a
customer moved into a region while the region is renamed) is also driven step by step, both ways
round. A chain two tables deep is refused with 0A000 and still
reads virtually. ROLLBACK leaves pg_dump --schema-only identical and no key locks behind.
"""

from __future__ import annotations

import random
import threading
import unittest

import e2e_common
import materialize_common as mc
import psycopg
from psycopg import errors

from harness import wire
from harness.pgcluster import PgCluster

DB = "chaindb"
ACCOUNTS = 40
CUSTOMERS = 10
REGIONS = 3          # few, so region writers and customer moves meet
ROUND = 15           # transactions per writer per round
ROUNDS_AFTER = 6     # rounds once every seed is materialized, each checked
SEEDS = {
    "region_name": ("text", "(SELECT r.name FROM customer c JOIN region r ON r.id = c.region_id "
                            "WHERE c.id = account.customer_id)"),
    "region_label": ("text", "coalesce((SELECT r.name FROM region r WHERE r.id = (SELECT c.region_id "
                             "FROM customer c WHERE c.id = account.customer_id)), '-') || account.note"),
}
DEEP = ("country_name", "text",
        "(SELECT k.name FROM customer c JOIN region r ON r.id = c.region_id JOIN country k "
        "ON k.id = r.country_id WHERE c.id = account.customer_id)")

pg: PgCluster = None
px = None
schema_before = ""


def seed_list() -> list:
    out = [{"database": DB, "entity": "public.account", "attribute": name, "type": type_,
            "expression": expression, "materialize": {"policy": "manual"}}
           for name, (type_, expression) in SEEDS.items()]
    out.append({"database": DB, "entity": "public.account", "attribute": DEEP[0], "type": DEEP[1],
                "expression": DEEP[2], "materialize": {"policy": "manual"}})
    return out


def setUpModule():
    global pg, px, schema_before
    if e2e_common.direct_mode():
        raise unittest.SkipTest("materialization is the proxy's own")
    pg = PgCluster().start()
    with pg.connect() as conn:
        conn.execute(f"CREATE DATABASE {DB}")
    with pg.connect(DB) as conn:
        conn.execute("CREATE TABLE country (id int PRIMARY KEY, name text)")
        conn.execute("CREATE TABLE region (id int PRIMARY KEY, name text, country_id int)")
        # bigint against the int keys: the hash functions of both sides must agree
        conn.execute("CREATE TABLE customer (id bigint PRIMARY KEY, region_id bigint)")
        conn.execute("CREATE INDEX customer_region ON customer (region_id)")
        conn.execute("CREATE TABLE account (id int PRIMARY KEY, customer_id int, note text)")
        conn.execute("CREATE INDEX account_customer ON account (customer_id)")
        conn.execute("INSERT INTO country VALUES (1, 'here'), (2, 'there')")
        conn.execute(f"INSERT INTO region SELECT i, 'r' || i, 1 + i % 2 FROM generate_series(1, {REGIONS}) i")
        conn.execute(f"INSERT INTO customer SELECT i, 1 + i % {REGIONS} FROM generate_series(1, {CUSTOMERS}) i")
        conn.execute(f"INSERT INTO account SELECT i, 1 + i % {CUSTOMERS}, '' FROM generate_series(1, {ACCOUNTS}) i")
        conn.execute("VACUUM ANALYZE")
    schema_before = mc.schema_dump(pg, DB, "--exclude-schema=seedproxy")
    px = mc.make_proxy(pg.port, seed_list(), instance="crosschain-test")
    e2e_common.wait_until_readable(px, DB, "SELECT region_name, region_label FROM account WHERE id = 1",
                                   "the chain seeds to be readable")


def tearDownModule():
    e2e_common.stop(px, pg)


class Writer(threading.Thread):
    """One client doing `count` random transactions, retrying serialization failures and deadlocks
    (what a client is told to retry) and a duplicate region key; any other error fails the test."""

    def __init__(self, dsn: str, isolation: str, rng: random.Random, count: int):
        super().__init__(daemon=True)
        self.dsn, self.isolation, self.random, self.count = dsn, isolation, rng, count
        self.transactions = self.retries = self.deadlocks = 0
        self.error: BaseException | None = None

    def region(self) -> int:
        return self.random.randint(1, REGIONS + 3)  # a few that come and go

    def customer(self) -> int:
        return self.random.randint(1, CUSTOMERS + 3)

    def one(self, conn) -> None:
        r = self.random
        choice = r.randrange(12)
        if choice < 3:  # a customer moves to another region (or none)
            conn.execute("UPDATE customer SET region_id = %s WHERE id = %s",
                         (r.choice([self.region(), self.region(), None]), self.customer()))
        elif choice < 6:  # a region is renamed
            conn.execute("UPDATE region SET name = %s WHERE id = %s",
                         (r.choice(["north", "south", "east", "west", None]), self.region()))
        elif choice == 6:  # an account moves to another customer
            conn.execute("UPDATE account SET customer_id = %s WHERE id = %s",
                         (self.customer(), r.randint(1, ACCOUNTS + 3)))
        elif choice == 7:  # regions come and go, or change their key
            if r.random() < 0.5:
                conn.execute("INSERT INTO region VALUES (%s, %s, 1) ON CONFLICT (id) DO UPDATE "
                             "SET name = excluded.name", (self.region(), r.choice(["new", "old"])))
            elif r.random() < 0.5:
                conn.execute("DELETE FROM region WHERE id = %s", (self.region(),))
            else:
                a, b = self.region(), self.region()
                conn.execute("UPDATE region SET id = %s WHERE id = %s "
                             "AND NOT EXISTS (SELECT 1 FROM region WHERE id = %s)", (a, b, a))
        elif choice == 8:  # customers come and go
            if r.random() < 0.5:
                conn.execute("INSERT INTO customer VALUES (%s, %s) ON CONFLICT (id) DO UPDATE "
                             "SET region_id = excluded.region_id", (self.customer(), self.region()))
            else:
                conn.execute("DELETE FROM customer WHERE id = %s", (r.randint(CUSTOMERS + 1, CUSTOMERS + 3),))
        elif choice == 9:  # accounts come and go; their own columns change
            if r.random() < 0.5:
                conn.execute("INSERT INTO account VALUES (%s, %s, 'new') ON CONFLICT (id) DO UPDATE "
                             "SET note = excluded.note", (r.randint(1, ACCOUNTS + 3), self.customer()))
            else:
                conn.execute("DELETE FROM account WHERE id = %s", (r.randint(ACCOUNTS + 1, ACCOUNTS + 3),))
        else:  # the middle and the end in one transaction, in either order
            region = self.region()
            steps = [("UPDATE customer SET region_id = %s WHERE id = %s", (region, self.customer())),
                     ("UPDATE region SET name = %s WHERE id = %s", (r.choice(["up", "down"]), region))]
            r.shuffle(steps)
            for sql, args in steps:
                conn.execute(sql, args)

    def run(self) -> None:
        try:
            with psycopg.connect(self.dsn, autocommit=True) as conn:
                while self.transactions < self.count:
                    try:
                        conn.execute(f"BEGIN ISOLATION LEVEL {self.isolation}")
                        self.one(conn)
                        if self.random.random() < 0.5:
                            # in-transaction think time (load shaping, not synchronisation): a
                            # writer that holds its locks a little longer meets the others more
                            conn.execute("SELECT pg_sleep(0.004)")
                        conn.execute("COMMIT")
                        self.transactions += 1
                    except (errors.SerializationFailure, errors.DeadlockDetected,
                            errors.UniqueViolation) as e:
                        # (a key change can meet a region another writer just added)
                        conn.execute("ROLLBACK")
                        self.retries += 1
                        self.deadlocks += isinstance(e, errors.DeadlockDetected)
        except BaseException as e:  # reported by the test
            self.error = e


KINDS = [("proxy", "READ COMMITTED"), ("direct", "READ COMMITTED"),
         ("proxy", "REPEATABLE READ"), ("direct", "REPEATABLE READ"),
         ("direct", "READ COMMITTED"), ("direct", "REPEATABLE READ")]
totals: dict = {}


def run_round(test: unittest.TestCase, number: int) -> None:
    writers = [Writer(px.dsn(DB) if where == "proxy" else pg.dsn(DB), isolation,
                      random.Random(number * 100 + i), ROUND)
               for i, (where, isolation) in enumerate(KINDS)]
    for w in writers:
        w.start()
    for w in writers:
        w.join(timeout=120)
        test.assertFalse(w.is_alive(), "a writer did not finish its round")
        test.assertIsNone(w.error, f"writer ({w.isolation}) failed: {w.error!r}")
        done, retries, deadlocks = totals.get(w.isolation, (0, 0, 0))
        totals[w.isolation] = (done + w.transactions, retries + w.retries, deadlocks + w.deadlocks)


def expected() -> list:
    columns = ", ".join(f"(({e}))::{t}" for t, e in SEEDS.values())
    with pg.connect(DB) as conn:
        return conn.execute(f"SELECT id, {columns} FROM account ORDER BY id").fetchall()


def through_proxy() -> list:
    with psycopg.connect(px.dsn(DB), autocommit=True) as conn:
        return conn.execute(f"SELECT id, {', '.join(SEEDS)} FROM account ORDER BY id").fetchall()


def column_mismatches() -> dict:
    with pg.connect(DB) as conn:
        return {name: mc.mismatches(conn, "account", name, expression, type_)
                for name, (type_, expression) in SEEDS.items()}


class CrossChain(unittest.TestCase):
    maxDiff = None

    def test_1_dependencies_shown_and_deeper_chain_refused(self):
        seeds = {r["attribute"]: r for r in mc.show(px, "SEEDS")}
        chain = ("public.customer: customer.id = account.customer_id; public.region: "
                 "customer.region_id = region.id, customer.id = account.customer_id")
        for name in SEEDS:
            self.assertEqual(seeds[name]["dependencies"], chain, name)
            self.assertIsNone(seeds[name]["materialize_refusal"], name)
        refusal = seeds[DEEP[0]]["materialize_refusal"]
        self.assertIsNotNone(refusal)
        print(f"\n  refused: {refusal}")
        with self.assertRaises(wire.ServerError) as raised:
            mc.command(px, f"MATERIALIZE account.{DEEP[0]}")
        self.assertEqual(raised.exception.sqlstate, "0A000")
        self.assertIn("middle tables", raised.exception.fields.get("M", ""))
        with psycopg.connect(px.dsn(DB), autocommit=True) as conn:
            got = conn.execute(f"SELECT {DEEP[0]} FROM account ORDER BY id").fetchall()
        with pg.connect(DB) as conn:
            want = conn.execute(f"SELECT {DEEP[2]} FROM account ORDER BY id").fetchall()
        self.assertEqual(got, want)

    def test_2_materialized_under_concurrent_writes_and_exact_every_round(self):
        for name in SEEDS:
            self.assertEqual(mc.command(px, f"MATERIALIZE account.{name}"), ["MATERIALIZE"])
        number = 0
        # rounds while the seeds materialize: what the proxy reads is exact in every phase
        while not all(mc.seed_phase(px, name) == "materialized" for name in SEEDS):
            number += 1
            self.assertLess(number, 200, "the seeds did not become materialized: "
                            f"{[mc.materialization(px, name) for name in SEEDS]}")
            run_round(self, number)
            self.assertEqual(through_proxy(), expected(), f"round {number}")
        materializing_rounds = number
        for _ in range(ROUNDS_AFTER):
            number += 1
            run_round(self, number)
            self.assertEqual(column_mismatches(), {name: 0 for name in SEEDS}, f"round {number}")
            self.assertEqual(through_proxy(), expected(), f"round {number}")
        for isolation, (done, retries, deadlocks) in totals.items():
            print(f"\n  {isolation}: {done} transactions, {retries} retries ({deadlocks} of them deadlocks)")
        print(f"  {number} rounds, {materializing_rounds} of them while materializing; every column exact")

    def test_2b_a_customer_moves_while_its_new_region_is_renamed(self):
        """The interleaving the chain's join-key locks exist for, both ways round: one transaction
        moves a customer into region j, the other renames j; whichever writes second must see the
        other (READ COMMITTED: waits, then recomputes) or fail to serialize (REPEATABLE READ)."""
        with pg.connect(DB) as conn:
            conn.execute("INSERT INTO region VALUES (90, 'ninety', 1), (91, 'ninety-one', 1) "
                         "ON CONFLICT (id) DO UPDATE SET name = excluded.name")
            conn.execute("INSERT INTO customer VALUES (90, 91) ON CONFLICT (id) DO UPDATE SET region_id = 91")
            conn.execute("INSERT INTO account VALUES (90, 90, '') ON CONFLICT (id) DO UPDATE SET customer_id = 90")
        move = ("UPDATE customer SET region_id = 90 WHERE id = 90", "UPDATE customer SET region_id = 91 WHERE id = 90")
        rename = ("UPDATE region SET name = %s WHERE id = 90",)
        outcomes = []
        for isolation in ("READ COMMITTED", "REPEATABLE READ"):
            for move_first in (True, False):
                for round_ in range(3):
                    name = f"{isolation[0]}{int(move_first)}{round_}"
                    first, second = psycopg.connect(pg.dsn(DB)), psycopg.connect(pg.dsn(DB))
                    try:
                        for c in (first, second):
                            c.execute(f"SET TRANSACTION ISOLATION LEVEL {isolation}")
                            c.execute("SELECT 1")  # the snapshot starts before either write
                        run_first = (lambda: first.execute(move[round_ % 2 == 1])) if move_first else \
                            (lambda: first.execute(rename[0], (name,)))
                        run_second = (lambda: second.execute(rename[0], (name,))) if move_first else \
                            (lambda: second.execute(move[round_ % 2 == 1]))
                        run_first()
                        outcomes.append(mc.interleave(pg.dsn(DB), second, run_second, first))
                    finally:
                        first.close()
                        second.close()
                    self.assertEqual(column_mismatches(), {n: 0 for n in SEEDS}, name)
        print(f"\n  interleavings: {outcomes}")
        # under READ COMMITTED the second writer waited for the first every time
        self.assertEqual(outcomes[:6], ["waited"] * 6)

    def test_3_truncate_of_the_end_and_the_middle(self):
        with pg.connect(DB) as conn:
            conn.execute("BEGIN")
            conn.execute("TRUNCATE region")
            conn.execute("INSERT INTO region VALUES (1, 'only', 1)")
            conn.execute("COMMIT")
        self.assertEqual(column_mismatches(), {name: 0 for name in SEEDS})
        with pg.connect(DB) as conn:
            conn.execute("TRUNCATE customer")
        self.assertEqual(column_mismatches(), {name: 0 for name in SEEDS})
        with pg.connect(DB) as conn:
            conn.execute("INSERT INTO customer SELECT i, 1 FROM generate_series(1, 5) i")
            self.assertGreater(conn.execute("SELECT count(*) FROM account WHERE region_name = 'only'")
                               .fetchone()[0], 0)
        self.assertEqual(column_mismatches(), {name: 0 for name in SEEDS})

    def test_4_rollback_removes_everything(self):
        for name in [*SEEDS, DEEP[0]]:
            self.assertEqual(mc.command(px, f"ROLLBACK account.{name}"), ["ROLLBACK"])
        for name in SEEDS:
            mc.wait_step(px, name, "rolled_back", timeout=30)
        e2e_common.poll(lambda: mc.seed_phase(px, DEEP[0]) == "rolled_back", 15, 0.05, "rolled_back")
        after = mc.schema_dump(pg, DB, "--exclude-schema=seedproxy")
        self.assertTrue(after == schema_before,
                        f"schema after ROLLBACK differs:\n{mc.first_difference(schema_before, after)}")
        with pg.connect(DB) as conn:
            self.assertEqual(conn.execute("SELECT count(*) FROM pg_proc WHERE proname LIKE 'seedproxy%'")
                             .fetchone()[0], 0)
            self.assertEqual(conn.execute('SELECT count(*) FROM "seedproxy"."dependency_locks"')
                             .fetchone()[0], 0)


if __name__ == "__main__":
    e2e_common.main()
