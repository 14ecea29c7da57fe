#!/usr/bin/python3
"""Error and notice positions are the client's (issue 12, bug 6): every ErrorResponse and
NoticeResponse position a client receives through the proxy is the one PostgreSQL gives for the
client's own text on a twin table whose attribute is a real GENERATED ALWAYS AS (...) STORED
column, so psql draws the same LINE and caret, and psycopg sees the same statement_position,
through the simple protocol, the extended one, prepared statements and a pipeline with an error
in the middle. Where PostgreSQL gives no position (the columns of TABLE t), the proxy gives none.
A refused DDL seed's caret is on its expression, as PostgreSQL's is for the real ALTER TABLE."""

import os
import subprocess
import unittest

import e2e_common
import psycopg

from harness.pgcluster import PgCluster

SEEDED, TWIN = "seeded", "twin"
EXPRESSION = "balance / 1000.0 + credit_limit / 500.0"
TABLE = "CREATE TABLE account (id int PRIMARY KEY, owner text NOT NULL, balance numeric NOT NULL, " \
        "credit_limit numeric NOT NULL{extra})"
ROWS = "INSERT INTO account VALUES (1, 'ann', 1000, 500), (2, 'bob', 2500, 1500)"
LOG = "CREATE TABLE q1_log (q0 int8 PRIMARY KEY)"

# Statements PostgreSQL refuses at parse analysis, with a position after (or at) a reference the
# proxy rewrites, or none at all.
STATEMENTS = [
    "SELECT *, nosuchcol FROM account WHERE id > 0",
    "SELECT risk_score, nosuchcol FROM account",
    "SELECT a.risk_score,\n       a.owner\n  FROM account a\n WHERE a.nosuchcol = 1",
    "SELECT * FROM account WHERE risk_score > 'not a number'",
    "SELECT risk_score FROM account a, account b",
    "SELECT * FROM account a JOIN account b ON a.id = b.id WHERE bogus(a.risk_score) > 0",
    "SELECT 1; SELECT risk_score, nosuchcol FROM account",
    "VALUES (1, 2) UNION ALL TABLE account",
]

pg: PgCluster = None
px = None


def setUpModule():
    global pg, px
    if e2e_common.direct_mode():
        raise unittest.SkipTest("compares the proxy with PostgreSQL itself")
    pg = PgCluster().start()
    with pg.connect() as conn:
        conn.execute(f"CREATE DATABASE {SEEDED}")
        conn.execute(f"CREATE DATABASE {TWIN}")
    with pg.connect(SEEDED) as conn:
        conn.execute(TABLE.format(extra=""))
        conn.execute(ROWS)
        conn.execute(LOG)
    with pg.connect(TWIN) as conn:
        conn.execute(TABLE.format(
            extra=f", risk_score numeric(8,2) GENERATED ALWAYS AS ({EXPRESSION}) STORED"))
        conn.execute(ROWS)
        conn.execute(LOG)
    px = e2e_common.Proxy(
        upstream_port=pg.port, instance="positions-test", control={"user": "postgres"},
        ddl_seeds=True,
        seeds=[{"database": SEEDED, "entity": "public.account", "attribute": "risk_score",
                "type": "numeric(8,2)", "expression": EXPRESSION,
                "materialize": {"policy": "never"}}])
    e2e_common.wait_until_readable(px, SEEDED, "SELECT risk_score FROM account WHERE id = 1",
                                   "the seed to be readable")


def tearDownModule():
    e2e_common.stop(px, pg)


def psql(port: int, database: str, *commands: str) -> str:
    """psql's stderr for `commands` (each one Query, as -c sends it): ERROR/WARNING, LINE, caret."""
    args = ["psql", "-X", "-h", pg.host, "-p", str(port), "-U", "postgres", "-d", database, "-At"]
    for command in commands:
        args += ["-c", command]
    out = subprocess.run(args, env=dict(os.environ, PGCONNECT_TIMEOUT="10"), capture_output=True,
                         text=True, timeout=60)
    return out.stderr


def diagnosis(dsn: str, sql: str, params=None, prepare=None):
    """(SQLSTATE, message, statement_position) of the error psycopg gets for `sql`."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        try:
            conn.execute(sql, params, prepare=prepare)
        except psycopg.Error as e:
            return e.sqlstate, e.diag.message_primary, e.diag.statement_position
    raise AssertionError(f"{sql!r} did not fail")


class ErrorPositions(unittest.TestCase):
    def test_psql_draws_the_same_line_and_caret(self):
        for sql in STATEMENTS:
            with self.subTest(sql=sql):
                proxied = psql(px.port, SEEDED, sql)
                direct = psql(pg.port, TWIN, sql)
                self.assertIn("ERROR", direct)
                self.assertEqual(proxied, direct)

    def test_a_table_spelled_out_gives_no_position_as_postgresql_gives_none(self):
        proxied = psql(px.port, SEEDED, STATEMENTS[-1])
        self.assertIn("each UNION query must have the same number of columns", proxied)
        self.assertNotIn("LINE", proxied)

    def test_psycopg_sees_the_same_statement_position(self):
        for sql in STATEMENTS:
            for params, prepare in ((None, None), ((1,), None), ((1,), True)):
                if params and (";" in sql or "TABLE" in sql):
                    continue  # one statement per Parse; TABLE t takes no parameter
                text = sql + (" AND %s > 0" if "WHERE" in sql else " WHERE %s > 0") \
                    if params else sql
                with self.subTest(sql=text, prepare=prepare):
                    proxied = diagnosis(px.dsn(SEEDED), text, params, prepare)
                    direct = diagnosis(pg.dsn(TWIN), text, params, prepare)
                    self.assertEqual(proxied, direct)

    def test_a_pipeline_maps_each_error_for_its_own_statement(self):
        texts = ["SELECT risk_score FROM account WHERE id = %s",
                 "SELECT risk_score, risk_score AS again, nosuchcol FROM account WHERE id = %s",
                 "SELECT id FROM account WHERE id = %s"]

        def run(dsn):
            seen = []
            with psycopg.connect(dsn, autocommit=True) as conn:
                try:
                    with conn.pipeline():
                        cursors = [conn.execute(text, (1,)) for text in texts]
                        for cur in cursors:
                            seen.append(cur.fetchall())
                except psycopg.Error as e:
                    seen.append((e.sqlstate, e.diag.statement_position))
                # The session goes on in step after the error.
                try:
                    conn.execute("SELECT risk_score, oops FROM account")
                except psycopg.Error as e:
                    seen.append((e.sqlstate, e.diag.statement_position))
            return seen

        proxied, direct = run(px.dsn(SEEDED)), run(pg.dsn(TWIN))
        self.assertEqual(proxied, direct)
        self.assertIn(("42703", str(texts[1].index("nosuchcol") + 1)), direct)

    def test_a_warning_has_the_client_position(self):
        # A backslash that both readings of a literal accept (the proxy's parser reads
        # standard_conforming_strings as on), warned about where it is off.
        sql = "SELECT risk_score, 'one\\two' AS quoted FROM account WHERE id = 1"
        setting = "SET standard_conforming_strings = off"
        proxied = psql(px.port, SEEDED, setting, sql)
        direct = psql(pg.port, TWIN, setting, sql)
        self.assertIn("WARNING:  nonstandard use of escape in a string literal", direct)
        self.assertIn("LINE 1:", direct)
        self.assertEqual(proxied, direct)

    def test_a_refused_ddl_seed_has_no_position_as_postgresql_gives_none(self):
        # PostgreSQL 15 reports errors in a generation expression without a position; the name
        # of the table begins with the expression's text, where a search would have put a caret.
        for sql in ("ALTER TABLE q1_log ADD COLUMN s int8 GENERATED ALWAYS AS (q1 * 2) STORED",
                    "ALTER TABLE q1_log ADD COLUMN s int8 GENERATED ALWAYS AS (q0 * random()) "
                    "STORED"):
            with self.subTest(sql=sql):
                proxied = psql(px.port, SEEDED, sql)
                direct = psql(pg.port, TWIN, sql)
                self.assertIn("ERROR", proxied)
                self.assertIn("ERROR", direct)
                self.assertNotIn("LINE", direct)
                self.assertNotIn("LINE", proxied)


if __name__ == "__main__":
    e2e_common.main()
