#!/usr/bin/python3
"""DDL seeds (docs/seeds.md, "DDL seeds"): with ddl_seeds on, a client's
`ALTER TABLE ... ADD COLUMN ... GENERATED ALWAYS AS (...) STORED` becomes a seed instead of
rewriting the table; a refused one gets the validator's error with PostgreSQL's transaction
semantics; with ddl_seeds off PostgreSQL adds a real column.

Proxy A has ddl_seeds on, proxy B (default) has it off; both share one cluster and registry.
"""

import json
import os
import signal
import subprocess
import time
import unittest

import e2e_common
import psycopg
from psycopg import pq

from harness.pgcluster import PgCluster

DB = "shop"

pg: PgCluster = None
px_a = None
px_b = None


def setUpModule():
    global pg, px_a, px_b
    if e2e_common.direct_mode():
        raise unittest.SkipTest("DDL seeds are the proxy's own")
    pg = PgCluster().start()
    with pg.connect() as conn:
        conn.execute(f"CREATE DATABASE {DB}")
    with pg.connect(DB) as conn:
        conn.execute("CREATE TABLE item (id int PRIMARY KEY, price numeric NOT NULL)")
        conn.execute("INSERT INTO item VALUES (1, 10), (2, 20)")
        conn.execute("CREATE SCHEMA shelf")
        conn.execute("CREATE TABLE shelf.box (id int PRIMARY KEY, width int NOT NULL)")
        conn.execute("INSERT INTO shelf.box VALUES (1, 3)")
    px_a = e2e_common.Proxy(upstream_port=pg.port, instance="proxy-a", ddl_seeds=True,
                            control={"user": "postgres"}, admin={"users": ["postgres"]})
    px_b = e2e_common.Proxy(upstream_port=pg.port, instance="proxy-b",
                            control={"user": "postgres"}, admin={"users": ["postgres"]})


def tearDownModule():
    e2e_common.finish(px_a)
    e2e_common.finish(px_b)
    if pg is not None:
        pg.stop()


def direct(sql: str, params=None):
    with pg.connect(DB) as conn:
        return conn.execute(sql, params).fetchall()


def relfilenode(table: str) -> int:
    return direct("SELECT relfilenode FROM pg_class WHERE oid = %s::regclass", (table,))[0][0]


def has_column(table: str, column: str) -> bool:
    return bool(direct("SELECT 1 FROM pg_attribute WHERE attrelid = %s::regclass AND attname = %s "
                       "AND NOT attisdropped", (table, column)))


def registered(attribute: str) -> list:
    if not direct("SELECT 1 FROM pg_namespace WHERE nspname = 'seedproxy'"):
        return []
    return direct('SELECT "schema_name", "table_name", "type", "expression", "phase", "declared_by" '
                  'FROM "seedproxy"."seeds" WHERE "attribute_name" = %s', (attribute,))


def psql(px, *commands: str, database: str = DB) -> subprocess.CompletedProcess:
    args = ["psql", "-X", "-h", px.host, "-p", str(px.port), "-U", "postgres", "-d", database,
            "-At", "-F", "|"]
    for command in commands:
        args += ["-c", command]
    return subprocess.run(args, env=dict(os.environ, PGCONNECT_TIMEOUT="10"), capture_output=True,
                          text=True, timeout=60)


class DdlSeeds(unittest.TestCase):
    def test_01_psql_simple_protocol(self):
        before = relfilenode("item")
        out = psql(px_a, "ALTER TABLE item ADD COLUMN doubled numeric GENERATED ALWAYS AS (price * 2) STORED",
                   "SELECT doubled FROM item ORDER BY id")
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertEqual(out.stdout.splitlines(), ["ALTER TABLE", "20", "40"])
        self.assertEqual(out.stderr, "", "the stand-in statement's notice must not reach the client")
        # Readable at once by another client; the table was not rewritten.
        with psycopg.connect(px_a.dsn(DB), autocommit=True) as conn:
            self.assertEqual(conn.execute("SELECT doubled FROM item WHERE id = 2").fetchone()[0], 40)
        self.assertEqual(relfilenode("item"), before)
        self.assertFalse(has_column("item", "doubled"))
        rows = registered("doubled")
        self.assertEqual(len(rows), 1, rows)
        self.assertEqual(rows[0][:5], ("public", "item", "numeric", "price * 2", "virtual"))
        self.assertEqual(rows[0][5], "proxy-a (DDL)")
        shown = psql(px_a, "SHOW SEEDS", database="seedproxy")
        self.assertEqual(shown.returncode, 0, shown.stderr)
        self.assertTrue(any(line.split("|")[:3] == [DB, "public.item", "doubled"]
                            for line in shown.stdout.splitlines()), shown.stdout)

    def test_02_psycopg_extended_protocol_in_transaction(self):
        before = relfilenode("shelf.box")
        with psycopg.connect(px_a.dsn(DB)) as conn:
            conn.execute("SET search_path = shelf, public")
            cur = conn.execute("ALTER TABLE box ADD COLUMN area bigint "
                               "GENERATED ALWAYS AS (width::bigint * width) STORED", prepare=True)
            self.assertEqual(cur.statusmessage, "ALTER TABLE")
            self.assertEqual(conn.info.transaction_status, pq.TransactionStatus.INTRANS)
            self.assertEqual(conn.execute("SELECT area FROM box WHERE id = %s", (1,)).fetchone()[0], 9)
            conn.commit()
        self.assertEqual(relfilenode("shelf.box"), before)
        self.assertFalse(has_column("shelf.box", "area"))
        self.assertEqual([r[:2] for r in registered("area")], [("shelf", "box")])

    def test_03_refusals(self):
        cases = [
            ("ALTER TABLE item ADD COLUMN lucky float8 GENERATED ALWAYS AS (price * random()) STORED",
             "42P17", "lucky", "refused (deterministic)"),
            ("ALTER TABLE item ADD COLUMN ghost numeric GENERATED ALWAYS AS (weight * 2) STORED",
             "42703", "ghost", "refused (column)"),
            ("ALTER TABLE item ADD COLUMN price numeric GENERATED ALWAYS AS (id * 2) STORED",
             "42701", "price", 'already has a column named "price"'),
            ("ALTER TABLE nowhere ADD COLUMN nothing int GENERATED ALWAYS AS (1) STORED",
             "42P01", "nothing", 'relation "nowhere" does not exist'),
            ("ALTER TABLE nowhere.item ADD COLUMN far int GENERATED ALWAYS AS (1) STORED",
             "3F000", "far", 'schema "nowhere" does not exist'),
            ("ALTER TABLE item ADD COLUMN odd nosuchtype GENERATED ALWAYS AS (1) STORED",
             "42704", "odd", 'type "nosuchtype" does not exist'),
            ("ALTER TABLE item ADD COLUMN lots int GENERATED ALWAYS AS (generate_series(1, 2)) STORED",
             "0A000", "lots", "refused (set-returning)"),
        ]
        for sql, sqlstate, attribute, fragment in cases:
            with self.subTest(sqlstate=sqlstate):
                # Outside a transaction block, extended protocol.
                with psycopg.connect(px_a.dsn(DB), autocommit=True) as conn:
                    with self.assertRaises(psycopg.Error) as cm:
                        conn.execute(sql)
                    self.assertEqual(cm.exception.sqlstate, sqlstate, str(cm.exception))
                    self.assertIn(fragment, str(cm.exception))
                    self.assertNotIn("seedproxy refused statement", str(cm.exception))
                    self.assertEqual(conn.execute("SELECT 1").fetchone()[0], 1)
                # Inside one: the transaction is failed, exactly as PostgreSQL would leave it.
                with psycopg.connect(px_a.dsn(DB)) as conn:
                    conn.execute("SELECT 1")
                    with self.assertRaises(psycopg.Error) as cm:
                        conn.execute(sql)
                    self.assertEqual(cm.exception.sqlstate, sqlstate)
                    self.assertEqual(conn.info.transaction_status, pq.TransactionStatus.INERROR)
                    with self.assertRaises(psycopg.errors.InFailedSqlTransaction):
                        conn.execute("SELECT 1")
                    conn.rollback()
                    self.assertEqual(conn.execute("SELECT 2").fetchone()[0], 2)
                # Simple protocol through psql: the message names the seed and the rule.
                out = psql(px_a, sql)
                self.assertNotEqual(out.returncode, 0)
                self.assertIn(fragment, out.stderr)
                self.assertEqual(registered(attribute) if attribute != "price" else [], [])
        self.assertFalse(has_column("item", "lucky"))

    def test_04_second_proxy_sees_it_within_a_second(self):
        with psycopg.connect(px_b.dsn(DB), autocommit=True) as watcher:
            watcher.execute("SELECT 1")  # proxy B follows the database from now on
            with psycopg.connect(px_a.dsn(DB), autocommit=True) as conn:
                conn.execute("ALTER TABLE item ADD COLUMN tripled numeric "
                             "GENERATED ALWAYS AS (price * 3) STORED")
            started = time.monotonic()

            def readable():
                try:
                    return watcher.execute("SELECT tripled FROM item WHERE id = 1").fetchone()
                except psycopg.errors.UndefinedColumn:
                    return None
            self.assertEqual(e2e_common.poll(readable, 5, 0.02, "proxy B to serve the DDL seed")[0], 30)
            self.assertLess(time.monotonic() - started, 1.0)

    def test_05_if_not_exists_on_a_seed_is_a_no_op(self):
        with psycopg.connect(px_a.dsn(DB), autocommit=True) as conn:
            cur = conn.execute("ALTER TABLE item ADD COLUMN IF NOT EXISTS doubled numeric "
                               "GENERATED ALWAYS AS (price * 5) STORED")
            self.assertEqual(cur.statusmessage, "ALTER TABLE")
            self.assertEqual(conn.execute("SELECT doubled FROM item WHERE id = 1").fetchone()[0], 20)
        self.assertEqual(registered("doubled")[0][3], "price * 2")

    def test_05b_simple_protocol_transaction_blocks(self):
        # Refused inside BEGIN: the block is failed, as PostgreSQL would leave it.
        out = psql(px_a, "BEGIN",
                   "ALTER TABLE item ADD COLUMN later timestamptz GENERATED ALWAYS AS (now()) STORED",
                   "SELECT 1", "ROLLBACK", "SELECT 2")
        self.assertIn("refused (deterministic)", out.stderr)
        self.assertIn("current transaction is aborted", out.stderr)
        self.assertEqual(out.stdout.splitlines(), ["BEGIN", "ROLLBACK", "2"])
        self.assertEqual(registered("later"), [])
        # Accepted inside BEGIN and rolled back: the seed stays (registration is not transactional).
        out = psql(px_a, "BEGIN",
                   "ALTER TABLE item ADD COLUMN kept numeric GENERATED ALWAYS AS (price + 1) STORED",
                   "SELECT kept FROM item WHERE id = 1", "ROLLBACK")
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertEqual(out.stdout.splitlines(), ["BEGIN", "ALTER TABLE", "11", "ROLLBACK"])
        self.assertEqual(len(registered("kept")), 1)
        self.assertFalse(has_column("item", "kept"))

    def test_05b2_prepared_stand_in_executed_twice_stays_quiet(self):
        notices = []
        with psycopg.connect(px_a.dsn(DB), autocommit=True, prepare_threshold=0) as conn:
            conn.add_notice_handler(lambda d: notices.append(d.message_primary))
            sql = "ALTER TABLE item ADD COLUMN IF NOT EXISTS twice numeric GENERATED ALWAYS AS (price * 4) STORED"
            for _ in range(3):
                self.assertEqual(conn.execute(sql).statusmessage, "ALTER TABLE")
            self.assertEqual(conn.execute("SELECT twice FROM item WHERE id = 1").fetchone()[0], 40)
        self.assertEqual(notices, [])
        self.assertEqual(len(registered("twice")), 1)

    def test_05b3_pipeline(self):
        # Extended protocol, pipelined: the statement after the DDL in the same pipeline already
        # reads the seed; a refused one fails its part of the pipeline as PostgreSQL would.
        with psycopg.connect(px_a.dsn(DB), autocommit=True) as conn:
            with conn.pipeline():
                first = conn.execute("SELECT 1")
                ddl = conn.execute("ALTER TABLE item ADD COLUMN piped numeric "
                                   "GENERATED ALWAYS AS (price + 100) STORED")
                after = conn.execute("SELECT piped FROM item WHERE id = %s", (2,))
            self.assertEqual(first.fetchone()[0], 1)
            self.assertEqual(ddl.statusmessage, "ALTER TABLE")
            self.assertEqual(after.fetchone()[0], 120)
            with self.assertRaises(psycopg.Error) as cm:
                with conn.pipeline():
                    conn.execute("ALTER TABLE item ADD COLUMN bad numeric "
                                 "GENERATED ALWAYS AS (price + random()) STORED")
                    conn.execute("SELECT 1")
            self.assertEqual(cm.exception.sqlstate, "42P17")
            self.assertEqual(conn.execute("SELECT 3").fetchone()[0], 3)
        self.assertEqual(registered("bad"), [])

    def test_05c_not_recognised_passes_through(self):
        # Two statements in one Query are not "exactly one statement": PostgreSQL runs them.
        with pg.connect(DB) as conn:
            conn.execute("CREATE TABLE scratch (id int PRIMARY KEY, n int NOT NULL)")
        out = psql(px_a, "SELECT 1; ALTER TABLE scratch ADD COLUMN m int GENERATED ALWAYS AS (n + 1) STORED")
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertTrue(has_column("scratch", "m"))
        self.assertEqual(registered("m"), [])

    def test_06_off_by_default_postgresql_adds_the_column(self):
        before = relfilenode("item")
        with psycopg.connect(px_b.dsn(DB), autocommit=True) as conn:
            cur = conn.execute("ALTER TABLE item ADD COLUMN halved numeric "
                               "GENERATED ALWAYS AS (price / 2) STORED")
            self.assertEqual(cur.statusmessage, "ALTER TABLE")
        self.assertTrue(has_column("item", "halved"))
        self.assertNotEqual(relfilenode("item"), before)
        self.assertEqual(registered("halved"), [])

    def test_07_reload_turns_it_on_for_new_sessions(self):
        config = dict(px_b.config, ddl_seeds=True)
        aside = px_b.config_path + ".new"
        with open(aside, "w") as f:
            json.dump(config, f, indent=2)
        os.replace(aside, px_b.config_path)
        start = len(px_b.log_text())
        px_b.signal(signal.SIGHUP)
        e2e_common.poll(lambda: "configuration reloaded" in px_b.log_text()[start:], 30, 0.05,
                        "proxy B to reload")
        before = relfilenode("item")
        with psycopg.connect(px_b.dsn(DB), autocommit=True) as conn:
            cur = conn.execute("ALTER TABLE item ADD COLUMN quartered numeric "
                               "GENERATED ALWAYS AS (price / 4) STORED")
            self.assertEqual(cur.statusmessage, "ALTER TABLE")
            self.assertEqual(conn.execute("SELECT quartered FROM item WHERE id = 1").fetchone()[0], 2.5)
        self.assertFalse(has_column("item", "quartered"))
        self.assertEqual(relfilenode("item"), before)
        self.assertEqual(registered("quartered")[0][5], "proxy-b (DDL)")


if __name__ == "__main__":
    e2e_common.main()
