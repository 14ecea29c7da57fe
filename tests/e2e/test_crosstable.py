#!/usr/bin/python3
"""Cross-table seeds become real columns and stay exact under concurrent writes (issue 17).

Aggregate seeds over txn (count, sum + the row's balance, max, bool_or) and a lookup seed over
customer are materialized while writers, through the proxy and directly, in READ COMMITTED and
REPEATABLE READ, insert, update (moving rows between accounts), delete and upsert txn rows, change
customers' regions, and insert, update and delete accounts. At the end every row's column equals the
expression. A seed whose dependencies cannot be bounded is refused with the reason and still reads
virtually. ROLLBACK removes every trigger and function on every table: pg_dump --schema-only is
identical to the dump taken before the proxy existed.
"""

from __future__ import annotations

import dataclasses
import random
import threading
import time
import unittest

import e2e_common
import materialize_common as mc
import psycopg
from psycopg import errors

from harness import wire
from harness.pgcluster import PgCluster

DB = "xdb"
ACCOUNTS = 60           # few, so writers collide on the same accounts
CUSTOMERS = 8
TXNS = 400
AFTER_MATERIALIZED = 150  # transactions each writer does once every seed is materialized
SEEDS = {
    "txn_count": ("bigint", "(SELECT count(*) FROM txn t WHERE t.account_id = account.id)"),
    "txn_total": ("bigint", "coalesce((SELECT sum(t.amount) FROM txn t WHERE t.account_id = account.id), 0)"
                            " + balance"),
    "txn_max": ("integer", "(SELECT max(t.amount) FROM txn t WHERE t.account_id = account.id)"),
    "has_fee": ("boolean", "(SELECT bool_or(t.kind = 'fee') FROM txn t WHERE t.account_id = account.id)"),
    "region": ("text", "(SELECT c.region FROM customer c WHERE c.id = account.customer_id)"),
}
# the only cross-table seed of its table (test_2c)
SOLO = ("wtxn_count", "bigint", "(SELECT count(*) FROM wtxn w WHERE w.wallet_id = wallet.id)")
REFUSED = ("later_txns", "bigint", "(SELECT count(*) FROM txn t WHERE t.account_id > account.id)")
# a seed on a table with a BEFORE UPDATE trigger of its own, which moves a row to another id
# without naming "id" in the UPDATE (test_2d)
POCKET = ("ptxn_count", "bigint", "(SELECT count(*) FROM ptxn p WHERE p.pocket_id = pocket.id)")

pg: PgCluster = None
px = None
schema_before = ""
held = None  # a connection through the proxy whose prepared SELECT * lives across the phases
STAR = "SELECT * FROM account WHERE id = %s"
star_names: list = []


def seed_list() -> list:
    out = [{"database": DB, "entity": "public.account", "attribute": name, "type": type_,
            "expression": expression, "materialize": {"policy": "manual"}}
           for name, (type_, expression) in SEEDS.items()]
    out.append({"database": DB, "entity": "public.account", "attribute": REFUSED[0], "type": REFUSED[1],
                "expression": REFUSED[2], "materialize": {"policy": "manual"}})
    out.append({"database": DB, "entity": "public.wallet", "attribute": SOLO[0], "type": SOLO[1],
                "expression": SOLO[2], "materialize": {"policy": "manual"}})
    out.append({"database": DB, "entity": "public.pocket", "attribute": POCKET[0], "type": POCKET[1],
                "expression": POCKET[2], "materialize": {"policy": "manual"}})
    return out


def setUpModule():
    global pg, px, schema_before, held
    if e2e_common.direct_mode():
        raise unittest.SkipTest("materialization is the proxy's own")
    pg = PgCluster().start()
    with pg.connect() as conn:
        conn.execute(f"CREATE DATABASE {DB}")
    with pg.connect(DB) as conn:
        conn.execute("CREATE TABLE customer (id int PRIMARY KEY, region text)")
        conn.execute("CREATE TABLE account (id int PRIMARY KEY, customer_id int, balance int NOT NULL)")
        conn.execute("CREATE INDEX account_customer ON account (customer_id)")
        conn.execute("CREATE TABLE txn (id bigint PRIMARY KEY, account_id bigint, amount int, kind text)")
        conn.execute("CREATE INDEX txn_account ON txn (account_id)")
        conn.execute("CREATE TABLE wallet (id int PRIMARY KEY, owner int)")
        conn.execute("CREATE TABLE wtxn (id bigint PRIMARY KEY, wallet_id bigint)")
        conn.execute("CREATE INDEX wtxn_wallet ON wtxn (wallet_id)")
        conn.execute("INSERT INTO wallet SELECT i, i FROM generate_series(1, 10) i")
        conn.execute("INSERT INTO wtxn SELECT i, 1 + i % 10 FROM generate_series(1, 40) i")
        conn.execute("CREATE TABLE pocket (id int PRIMARY KEY, owner int)")
        conn.execute("CREATE TABLE ptxn (id bigint PRIMARY KEY, pocket_id bigint)")
        conn.execute("INSERT INTO pocket SELECT i, i FROM generate_series(1, 10) i")
        conn.execute("INSERT INTO ptxn SELECT i, 1 + i % 10 FROM generate_series(1, 40) i")
        # a negative owner moves the pocket to the id -owner: the key changes, unnamed
        conn.execute("CREATE FUNCTION pocket_renumber() RETURNS trigger LANGUAGE plpgsql AS "
                     "$$ BEGIN IF NEW.owner < 0 THEN NEW.id := -NEW.owner; END IF; RETURN NEW; END $$")
        conn.execute("CREATE TRIGGER aaa_pocket_renumber BEFORE UPDATE ON pocket FOR EACH ROW "
                     "EXECUTE FUNCTION pocket_renumber()")
        conn.execute(f"INSERT INTO customer SELECT i, 'r' || (i % 3) FROM generate_series(1, {CUSTOMERS}) i")
        conn.execute(f"INSERT INTO account SELECT i, 1 + i % {CUSTOMERS}, i * 10 FROM generate_series(1, {ACCOUNTS}) i")
        conn.execute(f"INSERT INTO txn SELECT i, 1 + i % {ACCOUNTS}, i % 50, CASE WHEN i % 7 = 0 THEN 'fee' ELSE 'pay' END "
                     f"FROM generate_series(1, {TXNS}) i")
        conn.execute("VACUUM ANALYZE")
    schema_before = mc.schema_dump(pg, DB, "--exclude-schema=seedproxy")
    px = mc.make_proxy(pg.port, seed_list(), instance="crosstable-test")
    e2e_common.wait_until_readable(px, DB, "SELECT txn_count, region FROM account WHERE id = 1",
                                   "the cross-table seeds to be readable")
    held = psycopg.connect(px.dsn(DB), autocommit=True)


def tearDownModule():
    import os
    if held is not None:
        held.close()
    if px is not None and os.environ.get("CROSS_DEBUG"):
        print("\n".join(l for l in px.log_text().splitlines() if "materializ" in l or "seed " in l))
    e2e_common.stop(px, pg)


class Writer(threading.Thread):
    """One client doing random transactions until stopped, retrying serialization failures and
    deadlocks (the errors a client is told to retry); any other error fails the test."""

    def __init__(self, dsn: str, isolation: str, seed: int, next_id):
        super().__init__(daemon=True)
        self.dsn, self.isolation, self.random, self.next_id = dsn, isolation, random.Random(seed), next_id
        self.transactions = self.retries = self.deadlocks = 0
        self.error: BaseException | None = None
        self.stop = threading.Event()

    def account(self) -> int:
        return self.random.randint(1, ACCOUNTS + 4)  # a few ids that come and go

    def one(self, conn) -> None:
        r = self.random
        choice = r.randrange(10)
        if choice < 3:
            for _ in range(r.randint(1, 3)):
                conn.execute("INSERT INTO txn VALUES (%s, %s, %s, %s)",
                             (self.next_id(), self.account(), r.randint(-20, 80), r.choice(["fee", "pay"])))
        elif choice == 3:  # move rows between accounts
            conn.execute("UPDATE txn SET account_id = %s WHERE account_id = %s AND id %% 3 = %s",
                         (self.account(), self.account(), r.randrange(3)))
        elif choice == 4:
            conn.execute("DELETE FROM txn WHERE id IN (SELECT id FROM txn WHERE account_id = %s LIMIT 2)",
                         (self.account(),))
        elif choice == 5:  # upsert: a new row, or an existing one moved and changed
            conn.execute("INSERT INTO txn VALUES (%s, %s, %s, 'fee') ON CONFLICT (id) DO UPDATE "
                         "SET account_id = excluded.account_id, amount = excluded.amount, kind = excluded.kind",
                         (r.randint(1, TXNS), self.account(), r.randint(-20, 80)))
        elif choice == 6:
            conn.execute("UPDATE customer SET region = %s WHERE id = %s",
                         (r.choice(["north", "south", "east", None]), r.randint(1, CUSTOMERS)))
        elif choice == 7:  # the seed's own table: inputs and the lookup key
            conn.execute("UPDATE account SET balance = balance + %s, customer_id = %s WHERE id = %s",
                         (r.randint(-5, 5), r.randint(1, CUSTOMERS + 1), self.account()))
        elif choice == 8:  # accounts come and go (upsert), txn rows may already wait for them
            conn.execute("INSERT INTO account (id, customer_id, balance) VALUES (%s, %s, %s) "
                         "ON CONFLICT (id) DO UPDATE SET balance = excluded.balance",
                         (self.account(), r.randint(1, CUSTOMERS), r.randint(0, 100)))
        else:
            conn.execute("DELETE FROM account WHERE id = %s", (r.randint(ACCOUNTS + 1, ACCOUNTS + 4),))

    def run(self) -> None:
        try:
            with psycopg.connect(self.dsn, autocommit=True) as conn:
                while not self.stop.is_set():
                    try:
                        conn.execute(f"BEGIN ISOLATION LEVEL {self.isolation}")
                        self.one(conn)
                        conn.execute("COMMIT")
                        self.transactions += 1
                        # a client's think time (load shaping, not synchronisation): without it
                        # eight writers on 60 rows leave no moment for the engine's DDL locks
                        time.sleep(self.random.uniform(0, 0.003))
                    except (errors.SerializationFailure, errors.DeadlockDetected) as e:
                        conn.execute("ROLLBACK")
                        self.retries += 1
                        self.deadlocks += isinstance(e, errors.DeadlockDetected)
        except BaseException as e:  # reported by the test
            self.error = e


def mismatches(conn) -> dict:
    out = {}
    for name, (type_, expression) in SEEDS.items():
        out[name] = mc.mismatches(conn, "account", name, expression, type_)
    return out


@dataclasses.dataclass
class SeedPair:
    """A seed's table and the table of rows it counts: `key` is that table's column holding the
    seed row's id, `columns` the seed table's values after its id in an INSERT."""
    seed_table: str
    txn_table: str
    key: str
    columns: str

    def insert_txn(self) -> str:
        return f"INSERT INTO {self.txn_table} (id, {self.key}) VALUES (%s, %s)"


ACCOUNT = SeedPair("account", "txn", "account_id", "1, 0")
WALLET = SeedPair("wallet", "wtxn", "wallet_id", "0")
MOVED_FROM = 100000  # where the "moved here" cases start their seed row


def unseen_row_cases(pair: SeedPair) -> dict:
    """The interleavings in which the txn writer finds no visible seed row with its key. Each maps
    a name to (first, second), functions of the seed row's id a and the next txn id t."""
    table, values = pair.seed_table, pair.columns
    return {
        # the seed row inserted meanwhile: the txn writer waits on the key lock its row trigger
        # took, and must then see the row to recompute it
        f"{table} inserted": (lambda a, t: (f"INSERT INTO {table} VALUES (%s, {values})", (a,)),
                              lambda a, t: (pair.insert_txn(), (t, a))),
        # deleted and inserted again: the txn writer's UPDATE waits on the old row, finds it gone,
        # and must take the key lock and look again for the new one
        f"{table} deleted and inserted again": (
            lambda a, t: (f"DELETE FROM {table} WHERE id = {int(a)}; INSERT INTO {table} VALUES ({int(a)}, {values})",),
            lambda a, t: (pair.insert_txn(), (t, a))),
        # a seed row moved to this id: the txn writer's UPDATE sees none with it, and must wait on
        # the key lock the move holds and look again
        f"{table} moved here": (lambda a, t: (f"UPDATE {table} SET id = %s WHERE id = %s", (a, a + MOVED_FROM)),
                                lambda a, t: (pair.insert_txn(), (t, a))),
    }


def interleavings(test, pair: SeedPair, cases: dict, check, exact) -> dict:
    """Runs each case under READ COMMITTED and REPEATABLE READ on a fresh seed row with two txn
    rows, and asserts check(conn) == exact after each; returns the outcomes (mc.interleave)."""
    with pg.connect(DB) as conn:
        next_txn = conn.execute(f"SELECT max(id) + 1 FROM {pair.txn_table}").fetchone()[0]
        seed_id = conn.execute(f"SELECT coalesce(max(id), 0) + 1000 FROM {pair.seed_table} "
                               f"WHERE id < {MOVED_FROM}").fetchone()[0]
    outcomes = {}
    for isolation in ("READ COMMITTED", "REPEATABLE READ"):
        for name, (make_first, make_second) in cases.items():
            seed_id += 1
            with pg.connect(DB) as conn:
                insert_seed = f"INSERT INTO {pair.seed_table} VALUES (%s, {pair.columns})"
                if name.endswith("moved here"):
                    conn.execute(insert_seed, (seed_id + MOVED_FROM,))
                elif not name.endswith(" inserted"):
                    conn.execute(insert_seed, (seed_id,))
                for txn_id in (next_txn, next_txn + 1):
                    conn.execute(pair.insert_txn(), (txn_id, seed_id))
            next_txn += 2
            first, second = psycopg.connect(pg.dsn(DB)), psycopg.connect(pg.dsn(DB))
            try:
                for c in (first, second):
                    c.execute(f"SET TRANSACTION ISOLATION LEVEL {isolation}")
                    c.execute("SELECT 1")  # the snapshot starts before either write
                first.execute(*make_first(seed_id, next_txn))
                second_sql = make_second(seed_id, next_txn)
                outcomes[(isolation, name)] = mc.interleave(
                    pg.dsn(DB), second, lambda: second.execute(*second_sql), first)
            finally:
                first.close()
                second.close()
            next_txn += 2
            with pg.connect(DB) as conn:
                test.assertEqual(check(conn), exact, (isolation, name))
    print(f"\n  interleavings: {outcomes}")
    return outcomes


def star_expected(account_id: int) -> list:
    """SELECT * of one account computed directly: the table's columns, then every seed's expression
    in declaration order (where the proxy shows them)."""
    expressions = {name: f"(({expression}))::{type_}" for name, (type_, expression) in SEEDS.items()}
    expressions[REFUSED[0]] = f"(({REFUSED[2]}))::{REFUSED[1]}"
    columns = ", ".join(expressions.get(name, f'account."{name}"') for name in star_names)
    with pg.connect(DB) as conn:
        return list(conn.execute(f"SELECT {columns} FROM account WHERE id = %s", (account_id,)).fetchone())


def star_through_proxy(account_id: int) -> tuple[list, list]:
    cur = held.execute(STAR, (account_id,), prepare=True)
    return [d.name for d in cur.description], list(cur.fetchone())


class CrossTable(unittest.TestCase):
    maxDiff = None

    def test_0_star_while_virtual(self):
        global star_names
        star_names, row = star_through_proxy(1)
        self.assertEqual(star_names, ["id", "customer_id", "balance", *SEEDS, REFUSED[0]])
        self.assertEqual(row, star_expected(1))

    def test_1_dependencies_shown_and_unbounded_refused(self):
        seeds = {r["attribute"]: r for r in mc.show(px, "SEEDS")}
        self.assertEqual(seeds["txn_count"]["dependencies"], "public.txn: txn.account_id = account.id")
        self.assertEqual(seeds["region"]["dependencies"], "public.customer: customer.id = account.customer_id")
        self.assertIsNone(seeds["txn_count"]["materialize_refusal"])
        refusal = seeds[REFUSED[0]]["materialize_refusal"]
        self.assertIsNotNone(refusal)
        print(f"\n  refused: {refusal}")
        with self.assertRaises(wire.ServerError) as raised:
            mc.command(px, f"MATERIALIZE account.{REFUSED[0]}")
        self.assertEqual(raised.exception.sqlstate, "0A000")
        self.assertIn(refusal, raised.exception.fields.get("M", ""))
        # still read virtually
        with psycopg.connect(px.dsn(DB), autocommit=True) as conn:
            got = conn.execute(f"SELECT {REFUSED[0]} FROM account WHERE id = 1").fetchone()[0]
        with pg.connect(DB) as conn:
            want = conn.execute(f"SELECT {REFUSED[2]} FROM account WHERE id = 1").fetchone()[0]
        self.assertEqual(got, want)

    def test_2_materialized_under_concurrent_writes_and_exact(self):
        counter = iter(range(TXNS + 1, 10**9))
        lock = threading.Lock()

        def next_id() -> int:
            with lock:
                return next(counter)

        writers = []
        for i, (dsn, isolation) in enumerate(
                [(px.dsn(DB), "READ COMMITTED"), (pg.dsn(DB), "READ COMMITTED"),
                 (px.dsn(DB), "REPEATABLE READ"), (pg.dsn(DB), "REPEATABLE READ")] * 2):
            writers.append(Writer(dsn, isolation, 1000 + i, next_id))
        for w in writers:
            w.start()
        for name in SEEDS:
            self.assertEqual(mc.command(px, f"MATERIALIZE account.{name}"), ["MATERIALIZE"])
        for name in SEEDS:
            mc.wait_step(px, name, "materialized", timeout=120)
        # every writer was running all along (none failed), and goes on for a while afterwards
        marks = [w.transactions for w in writers]
        for w, mark in zip(writers, marks):
            e2e_common.poll(lambda: w.transactions >= mark + AFTER_MATERIALIZED or not w.is_alive(), 300, 0.05,
                            f"{AFTER_MATERIALIZED} more transactions of a {w.isolation} writer")
        for w in writers:
            w.stop.set()
        for w in writers:
            w.join(timeout=60)
            self.assertFalse(w.is_alive(), "a writer did not finish")
            self.assertIsNone(w.error, f"writer ({w.isolation}) failed: {w.error!r}")
        for isolation in ("READ COMMITTED", "REPEATABLE READ"):
            done = sum(w.transactions for w in writers if w.isolation == isolation)
            retried = sum(w.retries for w in writers if w.isolation == isolation)
            deadlocks = sum(w.deadlocks for w in writers if w.isolation == isolation)
            print(f"\n  {isolation}: {done} transactions, {retried} retries ({deadlocks} of them deadlocks)")
        print(f"  {sum(marks)} of them while the seeds were materializing")
        with pg.connect(DB) as conn:
            self.assertEqual(mismatches(conn), {name: 0 for name in SEEDS})
            rows = conn.execute("SELECT count(*) FROM account").fetchone()[0]
        print(f"  {rows} accounts, every materialized column equals its expression")
        # and the proxy reads the columns
        with psycopg.connect(px.dsn(DB), autocommit=True) as conn:
            got = conn.execute("SELECT id, txn_count, region FROM account ORDER BY id").fetchall()
        with pg.connect(DB) as conn:
            want = conn.execute(f"SELECT id, {SEEDS['txn_count'][1]}, {SEEDS['region'][1]} "
                                "FROM account ORDER BY id").fetchall()
        self.assertEqual(got, want)
        # '*' keeps every seed where it was, and the statement prepared while they were virtual
        # answers from the columns now
        for account_id in (1, 2, ACCOUNTS):
            names, row = star_through_proxy(account_id)
            self.assertEqual(names, star_names)
            self.assertEqual(row, star_expected(account_id))

    def test_2b_interleaved_writers_of_one_account(self):
        """The races the key locks and the seed-row statement exist for, driven step by step: the
        second writer's statement runs while the first transaction is open, and whichever commits
        last must leave every column exact (READ COMMITTED: it waits, then recomputes from a
        snapshot that sees the first; REPEATABLE READ: it waits or fails to serialize)."""
        # (first, second): each the SQL and parameters for the account a, where the account's two
        # txn rows are t - 2 and t - 1 and new txn rows take t and t + 1
        cases = {
            # a txn row for an account inserted meanwhile: the txn writer waits on the key lock the
            # account's row trigger took, and must then see the account to recompute it
            "account inserted": (lambda a, t: ("INSERT INTO account VALUES (%s, 1, 0)", (a,)),
                                 lambda a, t: ("INSERT INTO txn VALUES (%s, %s, 5, 'fee')", (t, a))),
            # the account's own columns written meanwhile: no key lock under READ COMMITTED, the
            # txn writer waits on the account's row and recomputes its newest version
            "balance updated": (lambda a, t: ("UPDATE account SET balance = balance + 1 WHERE id = %s", (a,)),
                                lambda a, t: ("INSERT INTO txn VALUES (%s, %s, 7, 'pay')", (t, a))),
            # two writers of the account's txn rows: the second waits on the account's row
            "txn inserted twice": (lambda a, t: ("INSERT INTO txn VALUES (%s, %s, 3, 'pay')", (t, a)),
                                   lambda a, t: ("INSERT INTO txn VALUES (%s, %s, 4, 'fee')", (t + 1, a))),
            # a txn row moved away from the account, and another deleted from it
            "txn moved, txn deleted": (lambda a, t: ("UPDATE txn SET account_id = 1 WHERE id = %s", (t - 2,)),
                                       lambda a, t: ("DELETE FROM txn WHERE id = %s", (t - 1,))),
        }
        cases.update(unseen_row_cases(ACCOUNT))
        outcomes = interleavings(self, ACCOUNT, cases, mismatches, {n: 0 for n in SEEDS})
        for name in cases:  # under READ COMMITTED the second writer waited for the first
            self.assertEqual(outcomes[("READ COMMITTED", name)], "waited", name)

    def test_2c_one_seed_interleaved(self):
        """The same races for a table with one cross-table seed. With several, a rewrite for
        one seed used to recompute the row for all of them (test_2b), so a dependency trigger that
        missed the row could go unseen there; here nothing else repairs it."""
        self.assertEqual(mc.command(px, f"MATERIALIZE wallet.{SOLO[0]}"), ["MATERIALIZE"])
        mc.wait_step(px, SOLO[0], "materialized", timeout=120)
        cases = {
            "wtxn inserted twice": (lambda a, t: (WALLET.insert_txn(), (t, a)),
                                    lambda a, t: (WALLET.insert_txn(), (t + 1, a))),
            **unseen_row_cases(WALLET),
        }
        outcomes = interleavings(self, WALLET, cases,
                                 lambda conn: mc.mismatches(conn, "wallet", SOLO[0], SOLO[2], SOLO[1]), 0)
        for name in cases:
            self.assertEqual(outcomes[("READ COMMITTED", name)], "waited", name)

    def test_2d_updates_that_leave_the_inputs_alone(self):
        """A cross-table seed's row trigger fires only for UPDATEs that name the seed's column or a
        column the expression reads (the key): an UPDATE of other columns keeps the column, which
        stays exact, including against a writer of the referenced table in between. A table with
        a BEFORE UPDATE trigger of its own, which may change the key unnamed, keeps the trigger
        firing on every UPDATE."""
        def trigger_columns(table: str) -> list:
            with pg.connect(DB) as conn:
                return conn.execute(
                    "SELECT coalesce(array_agg(a.attname::text ORDER BY a.attname), '{}') FROM pg_trigger t "
                    "JOIN pg_attribute a ON a.attrelid = t.tgrelid AND a.attnum = ANY (t.tgattr) "
                    "WHERE t.tgrelid = %s::regclass AND t.tgname LIKE 'zzzz_seedproxy_%%'", (table,)).fetchone()[0]

        self.assertEqual(trigger_columns("wallet"), ["id", SOLO[0]])
        wallet = lambda conn: mc.mismatches(conn, "wallet", SOLO[0], SOLO[2], SOLO[1])  # noqa: E731
        with pg.connect(DB) as conn:
            conn.execute("UPDATE wallet SET owner = owner + 1")
            self.assertEqual(wallet(conn), 0)
            conn.execute(f"UPDATE wallet SET {SOLO[0]} = 999 WHERE id = 1")  # a direct client's wrong value
            self.assertEqual(wallet(conn), 0)
            conn.execute("UPDATE wallet SET id = 500 WHERE id = 2")  # moved away from its wtxn rows
            self.assertEqual(conn.execute(f"SELECT {SOLO[0]} FROM wallet WHERE id = 500").fetchone()[0], 0)
            conn.execute("UPDATE wallet SET id = 2 WHERE id = 500")
            self.assertEqual(wallet(conn), 0)
        interleavings(self, WALLET, {
            "owner updated": (lambda a, t: ("UPDATE wallet SET owner = owner + 1 WHERE id = %s", (a,)),
                              lambda a, t: (WALLET.insert_txn(), (t, a))),
            "owner updated second": (lambda a, t: (WALLET.insert_txn(), (t, a)),
                                     lambda a, t: ("UPDATE wallet SET owner = owner + 1 WHERE id = %s", (a,))),
        }, wallet, 0)

        self.assertEqual(mc.command(px, f"MATERIALIZE pocket.{POCKET[0]}"), ["MATERIALIZE"])
        mc.wait_step(px, POCKET[0], "materialized", timeout=120)
        with pg.connect(DB) as conn:
            conn.execute("UPDATE pocket SET owner = -77 WHERE id = 3")  # now id 77, with no ptxn rows
            self.assertEqual(conn.execute(f"SELECT {POCKET[0]} FROM pocket WHERE id = 77").fetchone()[0], 0)
            self.assertEqual(mc.mismatches(conn, "pocket", POCKET[0], POCKET[2], POCKET[1]), 0)
        self.assertEqual(trigger_columns("pocket"), [])

    def test_3_truncate_of_a_referenced_table(self):
        with psycopg.connect(px.dsn(DB), autocommit=True) as conn:
            conn.execute("BEGIN")
            conn.execute("TRUNCATE txn")
            conn.execute("INSERT INTO txn VALUES (1, 1, 5, 'fee')")
            conn.execute("COMMIT")
        with pg.connect(DB) as conn:
            self.assertEqual(mismatches(conn), {name: 0 for name in SEEDS})
            self.assertEqual(conn.execute("SELECT txn_count FROM account WHERE id = 1").fetchone()[0], 1)

    def test_4_rollback_removes_everything(self):
        for name in SEEDS:
            self.assertEqual(mc.command(px, f"ROLLBACK account.{name}"), ["ROLLBACK"])
        for name in SEEDS:
            mc.wait_step(px, name, "rolled_back", timeout=30)
        self.assertEqual(mc.command(px, f"ROLLBACK account.{REFUSED[0]}"), ["ROLLBACK"])
        self.assertEqual(mc.command(px, f"ROLLBACK wallet.{SOLO[0]}"), ["ROLLBACK"])
        self.assertEqual(mc.command(px, f"ROLLBACK pocket.{POCKET[0]}"), ["ROLLBACK"])
        mc.wait_step(px, SOLO[0], "rolled_back", timeout=30)
        mc.wait_step(px, POCKET[0], "rolled_back", timeout=30)
        e2e_common.poll(lambda: mc.seed_phase(px, REFUSED[0]) == "rolled_back", 15, 0.05, "rolled_back")
        after = mc.schema_dump(pg, DB, "--exclude-schema=seedproxy")
        self.assertTrue(after == schema_before,
                        f"schema after ROLLBACK differs:\n{mc.first_difference(schema_before, after)}")
        with pg.connect(DB) as conn:
            self.assertEqual(conn.execute("SELECT count(*) FROM pg_proc WHERE proname LIKE 'seedproxy%'")
                             .fetchone()[0], 0)
            self.assertEqual(conn.execute('SELECT count(*) FROM "seedproxy"."dependency_locks"').fetchone()[0], 0)


if __name__ == "__main__":
    e2e_common.main()
