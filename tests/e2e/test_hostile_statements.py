#!/usr/bin/python3
"""Statements built to exhaust the proxy's stack: a logged-in client that sends an expression
nested tens of thousands of levels deep (`SELECT risk_score+1+1+…`) to a database with seeds gets
PostgreSQL's `54001` for that statement alone; the proxy, its other sessions and the offending
session itself keep working (issue 14, item 1)."""

import unittest

import e2e_common
import psycopg
import psycopg2

from harness.pgcluster import PgCluster

DB = "bank"
REWRITE_LIMIT = 1 << 20  # texts up to this size are parsed by the proxy (session.hpp)

pg: PgCluster = None
px = None


def setUpModule():
    global pg, px
    pg = PgCluster().start()
    with pg.connect() as conn:
        conn.execute(f"CREATE DATABASE {DB}")
    with pg.connect(DB) as conn:
        conn.execute("CREATE TABLE account (id int PRIMARY KEY, balance numeric NOT NULL)")
        conn.execute("INSERT INTO account VALUES (1, 10), (2, 20)")
    px = e2e_common.target(
        pg.port, control={"user": "postgres"},
        seeds=[{"database": DB, "entity": "public.account", "attribute": "risk_score",
                "type": "numeric", "expression": "balance * 2"}])
    e2e_common.wait_until_readable(px, DB, "SELECT risk_score FROM account WHERE id = 1",
                                   "the seed to be readable")


def tearDownModule():
    e2e_common.stop(px, pg)


def chain(terms: int) -> str:
    """`SELECT risk_score+1+1+… FROM account`: a left-deep tree `terms` levels deep."""
    return "SELECT risk_score" + "+1" * terms + " FROM account WHERE id = 1"


def largest_chain() -> str:
    """The deepest such statement the proxy still parses (one byte under its rewrite limit)."""
    overhead = len(chain(0))
    return chain((REWRITE_LIMIT - overhead) // 2)


class DeepStatements(unittest.TestCase):
    def setUp(self):
        if not px.is_proxy:
            self.skipTest("PostgreSQL itself refuses these with the same SQLSTATE")

    def assert_proxy_alive(self, bystander):
        self.assertTrue(px.running(), "seedproxy exited:\n" + px.log_text()[-4000:])
        self.assertEqual(bystander.execute("SELECT risk_score FROM account WHERE id = 2").fetchone(),
                         (40,))

    def refused(self, conn, sql: str, **kw) -> psycopg.Error:
        with self.assertRaises(psycopg.Error) as caught:
            conn.execute(sql, **kw)
        return caught.exception

    def test_simple_query_gets_54001_and_everyone_keeps_working(self):
        with psycopg.connect(px.dsn(DB), autocommit=True) as bystander, \
                psycopg.connect(px.dsn(DB), autocommit=True) as attacker:
            self.assert_proxy_alive(bystander)
            for sql in (chain(70_000), largest_chain()):
                with self.subTest(bytes=len(sql)):
                    err = self.refused(attacker, sql, prepare=False)
                    self.assertEqual(err.sqlstate, "54001", str(err))
                    self.assertIn("stack depth limit exceeded", str(err))
                    self.assert_proxy_alive(bystander)
                    # The statement failed, not the session.
                    self.assertEqual(attacker.execute("SELECT risk_score FROM account WHERE id = 1")
                                     .fetchone(), (20,))

    def test_simple_protocol_text_gets_54001(self):
        # psycopg2 sends a Query message; the same statement inside a transaction aborts it the
        # way PostgreSQL's own error would.
        conn = psycopg2.connect(px.dsn(DB))
        try:
            with conn.cursor() as cur:
                with self.assertRaises(psycopg2.Error) as caught:
                    cur.execute(chain(70_000))
                self.assertEqual(caught.exception.pgcode, "54001")
            conn.rollback()
            with conn.cursor() as cur:
                cur.execute("SELECT risk_score FROM account WHERE id = 2")
                self.assertEqual(cur.fetchone()[0], 40)
        finally:
            conn.close()

    def test_extended_protocol_parse_gets_54001(self):
        with psycopg.connect(px.dsn(DB), autocommit=True) as bystander, \
                psycopg.connect(px.dsn(DB), autocommit=True) as attacker:
            err = self.refused(attacker, chain(70_000) + " AND id = %s", params=(1,), prepare=True)
            self.assertEqual(err.sqlstate, "54001", str(err))
            self.assert_proxy_alive(bystander)
            self.assertEqual(attacker.execute("SELECT risk_score FROM account WHERE id = %s", (2,))
                             .fetchone(), (40,))

    def test_deep_statement_without_seeds_is_postgresqls_to_answer(self):
        # No seeded name: the pre-filter forwards it unparsed and PostgreSQL decides.
        with psycopg.connect(px.dsn(DB), autocommit=True) as conn:
            err = self.refused(conn, "SELECT 1" + "+1" * 70_000, prepare=False)
            self.assertEqual(err.sqlstate, "54001", str(err))
            self.assertTrue(px.running())


if __name__ == "__main__":
    e2e_common.main()
