#!/usr/bin/python3
"""The statement right after DDL sees what the DDL did (issue 13 section 3, docs/architecture.md).

The proxy reads again only the relations a DDL statement named (or the whole catalog when names
cannot bound the change) and a statement waits for that only when it could involve a seed. Each
case runs DDL through the proxy and, on the very next statement of the same connection, a query
whose rewrite depends on the change: a new relation in a join (ambiguity), a table that shadows the
seeded one through search_path, ADD COLUMN of the seed's own name (refused), a rename, a CREATE TABLE
AS, a DROP ... CASCADE. The answer must be what PostgreSQL gives for the same statements when the
attribute is a real generated column (the reference database).
"""

from __future__ import annotations

import unittest

import e2e_common
import psycopg

from harness.pgcluster import PgCluster

DB = "ddl"
REFERENCE = "ddl_reference"
SEED = {"database": DB, "entity": "public.account", "attribute": "risk", "type": "numeric",
        "expression": "balance * 2", "materialize": {"policy": "never"}}

pg: PgCluster = None
px = None


def setUpModule():
    global pg, px
    if e2e_common.direct_mode():
        raise unittest.SkipTest("catalog refreshes are the proxy's own")
    pg = PgCluster().start()
    for name in (DB, REFERENCE):
        with pg.connect() as conn:
            conn.execute(f"CREATE DATABASE {name}")
        with pg.connect(name) as conn:
            conn.execute("CREATE TABLE account (id int PRIMARY KEY, balance numeric NOT NULL)")
            conn.execute("INSERT INTO account VALUES (1, 10), (2, 20)")
    with pg.connect(REFERENCE) as conn:
        conn.execute("ALTER TABLE account ADD COLUMN risk numeric GENERATED ALWAYS AS (balance * 2) STORED")
    px = e2e_common.Proxy(upstream_port=pg.port, instance="ddl-refresh", seeds=[SEED],
                          control={"user": "postgres"})
    e2e_common.wait_until_readable(px, DB, "SELECT risk FROM account WHERE id = 1", "the seed")


def tearDownModule():
    e2e_common.stop(px, pg)


def outcome(conn, sql: str):
    """(column names, rows) or the SQLSTATE of the error."""
    try:
        cur = conn.execute(sql)
        return ([d.name for d in cur.description], cur.fetchall()) if cur.description else "ok"
    except psycopg.Error as e:
        return e.sqlstate


class DdlRefresh(unittest.TestCase):
    def run_both(self, steps: list[str], check: str, expected=None):
        """Runs `steps` then `check` on a fresh connection through the proxy and one straight
        into the reference; the check's outcome must agree (and be `expected`, when given)."""
        results = []
        for dsn in (px.dsn(DB), pg.dsn(REFERENCE)):
            with psycopg.connect(dsn, autocommit=True, prepare_threshold=None) as conn:
                for sql in steps:
                    conn.execute(sql)
                results.append(outcome(conn, check))
        self.assertEqual(results[0], results[1], f"after {steps}: {check}")
        if expected is not None:
            self.assertEqual(results[0], expected)

    def test_a_new_table_joined_with_the_seeded_one(self):
        self.run_both(["CREATE TABLE other (id int, risk int)"],
                      "SELECT risk FROM account JOIN other USING (id)", "42702")
        # Renamed: the old name is gone, the new one joins the same way.
        self.run_both(["ALTER TABLE other RENAME TO renamed"],
                      "SELECT risk FROM account JOIN renamed USING (id)", "42702")
        self.run_both([], "SELECT risk FROM account JOIN other USING (id)", "42P01")
        self.run_both(["DROP TABLE renamed"],
                      "SELECT id, risk FROM account ORDER BY id", (["id", "risk"], [(1, 20), (2, 40)]))

    def test_a_table_that_shadows_the_seeded_one_through_search_path(self):
        steps = ["CREATE SCHEMA shadow", "SET search_path = shadow, public",
                 "CREATE TABLE shadow.account (id int, note text)",
                 "INSERT INTO shadow.account VALUES (1, 'mine')"]
        self.run_both(steps, "SELECT * FROM account", (["id", "note"], [(1, "mine")]))
        self.run_both(["SET search_path = shadow, public"], "SELECT risk FROM account", "42703")
        self.run_both(["SET search_path = shadow, public", "DROP TABLE shadow.account"],
                      "SELECT risk FROM account WHERE id = 1", (["risk"], [(20,)]))
        self.run_both(["DROP SCHEMA shadow"], "SELECT risk FROM account WHERE id = 1")

    def test_select_into_after_a_comment_holding_a_semicolon(self):
        # The ';' in the comment once cut the text before SELECT, so the gate missed INTO; the
        # CommandComplete tag ("SELECT 2") says nothing of a new table either.
        self.run_both(["-- step 1; keep a copy\nSELECT id, balance AS risk INTO intosnap FROM account"],
                      "SELECT risk FROM account JOIN intosnap USING (id)", "42702")
        self.run_both(["/* step 2; */ DROP TABLE intosnap"],
                      "SELECT risk FROM account JOIN intosnap USING (id)", "42P01")

    def test_create_table_as_and_drop_cascade(self):
        self.run_both(["CREATE TABLE snap AS SELECT id, balance AS risk FROM account"],
                      "SELECT risk FROM account JOIN snap USING (id)", "42702")
        self.run_both(["CREATE VIEW over_snap AS SELECT * FROM snap", "DROP TABLE snap CASCADE"],
                      "SELECT risk FROM account JOIN over_snap USING (id)", "42P01")

    def test_a_physical_column_named_like_the_seed_is_refused_as_for_a_generated_column(self):
        # ADD COLUMN of the seed's name is answered as PostgreSQL answers it for the generated
        # column (issue 12 section 4: it used to pass and silently deactivate the seed), and the
        # statement right after it still reads the seed.
        self.run_both([], "ALTER TABLE account ADD COLUMN risk int DEFAULT 7", "42701")
        self.run_both([], "SELECT risk FROM account WHERE id = 1", (["risk"], [(20,)]))

if __name__ == "__main__":
    e2e_common.main()
