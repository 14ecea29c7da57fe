#!/usr/bin/python3
"""DDL that names a seed, through real clients (issue 12 section 4): what a schema tool's
ALTER TABLE gets through the proxy, and what the proxy says when a column of a seed's name
appears anyway, made directly on the database.

- ADD COLUMN of a seed's name (the statement sequelize.sync({alter: true}) sent) fails with
  PostgreSQL's 42701, in the simple and the extended protocol, aborting the transaction as
  PostgreSQL would; the seed stays served. ADD COLUMN IF NOT EXISTS is skipped, creating nothing.
- DROP COLUMN / RENAME COLUMN of a seed are refused (0A000) with the admin console's ROLLBACK to
  use instead; SET DEFAULT gets the generated column's 42601.
- A column of the seed's name made directly upstream deactivates the seed loudly: SHOW SEEDS
  ("virtual (inactive)" and a problem saying what to do), /metrics (seedproxy_seed_inactive 1) and
  /status.json ("inactive": true); dropping it serves the seed again.
"""

from __future__ import annotations

import json
import unittest
import urllib.request

import e2e_common
import materialize_common as mc
import psycopg

from harness.pgcluster import PgCluster, free_port

DB = "bank"
RISK = "balance / 1000.0 + credit_limit / 500.0"
SEEDS = [{"database": DB, "entity": "public.account", "attribute": "risk_score",
          "type": "numeric(8,2)", "expression": RISK, "materialize": {"policy": "manual"}}]

pg: PgCluster = None
px = None
metrics_port = 0


def setUpModule():
    global pg, px, metrics_port
    if e2e_common.direct_mode():
        raise unittest.SkipTest("seeds are the proxy's own")
    pg = PgCluster().start()
    with pg.connect() as conn:
        conn.execute(f"CREATE DATABASE {DB}")
    with pg.connect(DB) as conn:
        conn.execute("CREATE TABLE account (id int PRIMARY KEY, owner text, balance numeric(12,2), "
                     "credit_limit numeric(12,2))")
        conn.execute("INSERT INTO account VALUES (1, 'ann', 1200, 500), (2, 'bob', 2500.5, 1000)")
    metrics_port = free_port()
    px = mc.make_proxy(pg.port, SEEDS, instance="ddl-on-seeds",
                       metrics={"host": "127.0.0.1", "port": metrics_port})
    e2e_common.wait_until_readable(px, DB, "SELECT risk_score FROM account WHERE id = 1", "the seed")


def tearDownModule():
    e2e_common.stop(px, pg)


def columns_upstream() -> list[str]:
    with pg.connect(DB) as conn:
        return [r[0] for r in conn.execute(
            "SELECT attname FROM pg_attribute WHERE attrelid = 'account'::regclass AND attnum > 0 "
            "AND NOT attisdropped ORDER BY attnum").fetchall()]


def risk(conn) -> list:
    return conn.execute("SELECT id, risk_score FROM account ORDER BY id").fetchall()


def notify_registry() -> None:
    """Makes every proxy reload the database's snapshot now (as after a registry change)."""
    with pg.connect(DB) as conn:
        conn.execute("SELECT pg_notify('seedproxy_registry', %s)", (DB,))


def seed_row() -> dict:
    return [r for r in mc.show(px, "SEEDS") if r["attribute"] == "risk_score"][0]


def inactive_metric() -> float | None:
    with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5) as response:
        for line in response.read().decode().splitlines():
            if line.startswith("seedproxy_seed_inactive{") and 'attribute="risk_score"' in line:
                return float(line.rsplit(" ", 1)[1])
    return None


def status_seed() -> dict:
    with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/status.json", timeout=5) as response:
        return [s for s in json.loads(response.read())["seeds"] if s["attribute"] == "risk_score"][0]


class DdlOnSeeds(unittest.TestCase):
    def test_01_add_column_of_a_seed_is_a_duplicate_in_both_protocols(self):
        # sequelize.sync({alter: true}) sent exactly this for a model with the attribute.
        sequelize = 'ALTER TABLE "public"."account" ADD COLUMN "risk_score" DECIMAL(10,2);'
        for cursor_class in (psycopg.ClientCursor, psycopg.Cursor):  # simple, then extended
            with psycopg.connect(px.dsn(DB), cursor_factory=cursor_class) as conn:
                with self.assertRaises(psycopg.errors.DuplicateColumn) as caught:
                    conn.execute(sequelize)
                self.assertEqual(caught.exception.diag.message_primary,
                                 'column "risk_score" of relation "account" already exists')
                # The transaction is aborted, as after PostgreSQL's own error.
                with self.assertRaises(psycopg.errors.InFailedSqlTransaction):
                    conn.execute("SELECT 1")
                conn.rollback()
                self.assertEqual([(i, float(v)) for i, v in risk(conn)], [(1, 2.2), (2, 4.5)])
        self.assertEqual(columns_upstream(), ["id", "owner", "balance", "credit_limit"])
        self.assertEqual(seed_row()["phase"], "virtual")

    def test_02_add_column_if_not_exists_is_skipped(self):
        with psycopg.connect(px.dsn(DB), autocommit=True) as conn:
            cur = conn.execute("ALTER TABLE account ADD COLUMN IF NOT EXISTS risk_score numeric")
            self.assertEqual(cur.statusmessage, "ALTER TABLE")
            conn.execute("ALTER TABLE account ADD COLUMN IF NOT EXISTS risk_score numeric, "
                         "ADD COLUMN IF NOT EXISTS note text")
            self.assertEqual(float(conn.execute("SELECT risk_score FROM account WHERE id = 1").fetchone()[0]), 2.2)
        self.assertEqual(columns_upstream(), ["id", "owner", "balance", "credit_limit", "note"])
        with pg.connect(DB) as conn:
            conn.execute("ALTER TABLE account DROP COLUMN note")

    def test_03_drop_and_rename_are_refused_with_the_rollback_to_use(self):
        with psycopg.connect(px.dsn(DB), autocommit=True) as conn:
            for sql in ("ALTER TABLE account DROP COLUMN risk_score",
                        "ALTER TABLE account RENAME COLUMN risk_score TO risk"):
                with self.assertRaises(psycopg.errors.FeatureNotSupported) as caught:
                    conn.execute(sql)
                self.assertIn("it is a seed of seedproxy", caught.exception.diag.message_primary)
                self.assertIn("ROLLBACK public.account.risk_score", caught.exception.diag.message_detail)
            with self.assertRaises(psycopg.errors.SyntaxError) as caught:
                conn.execute("ALTER TABLE account ALTER COLUMN risk_score SET DEFAULT 0")
            self.assertEqual(caught.exception.diag.message_primary,
                             'column "risk_score" of relation "account" is a generated column')
            with self.assertRaises(psycopg.errors.DependentObjectsStillExist):
                conn.execute("ALTER TABLE account DROP COLUMN credit_limit")
        self.assertEqual(columns_upstream(), ["id", "owner", "balance", "credit_limit"])

    def test_04_a_column_made_directly_upstream_deactivates_the_seed_loudly(self):
        with pg.connect(DB) as conn:
            conn.execute("ALTER TABLE account ADD COLUMN risk_score numeric(10,2)")
        notify_registry()
        row = e2e_common.poll(lambda: (r := seed_row())["phase"] != "virtual" and r, 10, 0.05,
                              "SHOW SEEDS to notice the column")
        self.assertEqual(row["phase"], "virtual (inactive)")
        self.assertIn('has a real column "risk_score" that seedproxy did not add', row["problem"])
        self.assertIn("drop the column", row["problem"])
        self.assertIn("ROLLBACK public.account.risk_score", row["problem"])
        self.assertEqual(inactive_metric(), 1)
        status = status_seed()
        self.assertTrue(status["inactive"])
        self.assertEqual(status["problem"], row["problem"])
        with psycopg.connect(px.dsn(DB), autocommit=True) as conn:
            self.assertEqual(risk(conn), [(1, None), (2, None)])  # the real, empty column
        # Dropping it serves the seed again.
        with pg.connect(DB) as conn:
            conn.execute("ALTER TABLE account DROP COLUMN risk_score")
        notify_registry()
        e2e_common.poll(lambda: seed_row()["phase"] == "virtual", 10, 0.05, "the seed to be served again")
        self.assertEqual(inactive_metric(), 0)
        self.assertFalse(status_seed()["inactive"])
        with psycopg.connect(px.dsn(DB), autocommit=True) as conn:
            self.assertEqual([float(v) for _, v in risk(conn)], [2.2, 4.5])


if __name__ == "__main__":
    e2e_common.main()
