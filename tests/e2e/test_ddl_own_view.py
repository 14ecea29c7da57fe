#!/usr/bin/python3
"""A session's own committed ALTER TABLE, applied to its view of the catalog without waiting for
the targeted refresh (issue 13 section 3, docs/architecture.md "Catalog refresh after DDL").

After an autocommit ALTER TABLE ... ADD / DROP / RENAME COLUMN or RENAME TO that PostgreSQL
completed, the session resolves its next statement against the catalog with that change applied,
and the refresh confirms it in the background. Every case runs the same statements through the
proxy (simple and extended protocol) and straight into a reference database where the seed is a
real generated column; the statement after them must give the same answer: a failed ALTER, an
ALTER rolled back with its transaction, one in a multi-statement Query that fails, one on an
inheritance parent (its children change too), one on a temporary table that hides the seeded
one, and a second session that must see the change (once the refresh is published).
"""

from __future__ import annotations

import unittest

import e2e_common
import psycopg

from harness.pgcluster import PgCluster

DB = "ownview"
REFERENCE = "ownview_reference"
SEEDS = [{"database": DB, "entity": f"public.{table}", "attribute": "risk", "type": "numeric",
          "expression": "balance * 2", "materialize": {"policy": "never"}}
         for table in ("account", "child")]
PROTOCOLS = {"simple": psycopg.ClientCursor, "extended": psycopg.Cursor}

pg: PgCluster = None
px = None


def setUpModule():
    global pg, px
    if e2e_common.direct_mode():
        raise unittest.SkipTest("the session's view of the catalog is the proxy's own")
    pg = PgCluster().start()
    for name in (DB, REFERENCE):
        with pg.connect() as conn:
            conn.execute(f"CREATE DATABASE {name}")
        with pg.connect(name) as conn:
            conn.execute("CREATE TABLE account (id int PRIMARY KEY, balance numeric NOT NULL)")
            conn.execute("INSERT INTO account VALUES (1, 10), (2, 20)")
            conn.execute("CREATE TABLE parent (id int, balance numeric NOT NULL)")
            conn.execute("CREATE TABLE child (note text) INHERITS (parent)")
            conn.execute("INSERT INTO child VALUES (1, 10, 'a')")
    with pg.connect(REFERENCE) as conn:
        for table in ("account", "child"):
            conn.execute(f"ALTER TABLE {table} ADD COLUMN risk numeric "
                         "GENERATED ALWAYS AS (balance * 2) STORED")
    px = e2e_common.Proxy(upstream_port=pg.port, instance="ddl-own-view", seeds=SEEDS,
                          control={"user": "postgres"})
    for table in ("account", "child"):
        e2e_common.wait_until_readable(px, DB, f"SELECT risk FROM {table} WHERE id = 1", table)


def tearDownModule():
    e2e_common.stop(px, pg)


def outcome(conn, sql: str):
    """(column names, rows) or the SQLSTATE of the error."""
    try:
        cur = conn.execute(sql)
        return ([d.name for d in cur.description], cur.fetchall()) if cur.description else "ok"
    except psycopg.Error as e:
        return e.sqlstate


class OwnView(unittest.TestCase):
    def run_both(self, steps: list[str], check: str, expected=None):
        """Runs `steps` (their outcomes compared too) then `check` on a fresh connection through
        the proxy and one straight into the reference, in self.cursor's protocol: all must agree."""
        results = []
        for dsn in (px.dsn(DB), pg.dsn(REFERENCE)):
            with psycopg.connect(dsn, autocommit=True, cursor_factory=self.cursor) as conn:
                done = [outcome(conn, sql) for sql in steps]
                results.append((done, outcome(conn, check)))
        self.assertEqual(results[0], results[1], f"{self.cursor.__name__}: after {steps}: {check}")
        if expected is not None:
            self.assertEqual(results[0][1], expected, self.cursor.__name__)

    def each_protocol(self, case):
        """Runs `case` (which leaves the tables as it found them) in each protocol."""
        for protocol, cursor in PROTOCOLS.items():
            with self.subTest(protocol=protocol):
                self.cursor = cursor
                case()

    def test_add_rename_and_drop_column_are_seen_by_the_next_statement(self):
        def case():
            self.run_both(["ALTER TABLE account ADD COLUMN extra int"], "SELECT * FROM account WHERE id = 1",
                          (["id", "balance", "risk", "extra"], [(1, 10, 20, None)]))
            self.run_both(["ALTER TABLE account RENAME COLUMN extra TO later", "SELECT * FROM account"],
                          "SELECT later, risk FROM account WHERE id = 2", (["later", "risk"], [(None, 40)]))
            self.run_both(["ALTER TABLE account DROP COLUMN later"], "SELECT * FROM account WHERE id = 1",
                          (["id", "balance", "risk"], [(1, 10, 20)]))
            self.run_both(["ALTER TABLE account ADD COLUMN IF NOT EXISTS balance int",
                           "ALTER TABLE account DROP COLUMN IF EXISTS nothing"],
                          "SELECT * FROM account WHERE id = 1", (["id", "balance", "risk"], [(1, 10, 20)]))
        self.each_protocol(case)

    def test_a_renamed_table_keeps_no_seed_under_its_old_name(self):
        def case():
            self.run_both(["ALTER TABLE account RENAME TO renamed"],
                          "SELECT risk FROM account", "42P01")
            self.run_both(["ALTER TABLE renamed RENAME TO account"],
                          "SELECT risk FROM account WHERE id = 1", (["risk"], [(20,)]))
        self.each_protocol(case)

    def test_a_failed_alter_changes_nothing(self):
        def case():
            self.run_both(["ALTER TABLE account ADD COLUMN balance int"],
                          "SELECT * FROM account WHERE id = 1", (["id", "balance", "risk"], [(1, 10, 20)]))
            self.run_both(["ALTER TABLE account ADD COLUMN fine int, ADD COLUMN fine text"],
                          "SELECT * FROM account WHERE id = 1", (["id", "balance", "risk"], [(1, 10, 20)]))
            # The Query fails after the ALTER: its implicit transaction takes the ALTER with it.
            self.run_both(["ALTER TABLE account ADD COLUMN gone int; SELECT 1 / 0"],
                          "SELECT * FROM account WHERE id = 1", (["id", "balance", "risk"], [(1, 10, 20)]))
        self.each_protocol(case)

    def test_an_alter_rolled_back_with_its_transaction_changes_nothing(self):
        def case():
            self.run_both(["BEGIN", "ALTER TABLE account ADD COLUMN gone int", "ROLLBACK"],
                          "SELECT * FROM account WHERE id = 1", (["id", "balance", "risk"], [(1, 10, 20)]))
            self.run_both(["BEGIN", "ALTER TABLE account ADD COLUMN kept int", "COMMIT",
                           "SELECT * FROM account"], "ALTER TABLE account DROP COLUMN kept")
            self.run_both([], "SELECT * FROM account WHERE id = 1", (["id", "balance", "risk"], [(1, 10, 20)]))
        self.each_protocol(case)

    def test_an_alter_on_an_inheritance_parent_changes_its_children(self):
        def case():
            self.run_both(["ALTER TABLE parent ADD COLUMN extra int"], "SELECT * FROM child",
                          (["id", "balance", "note", "risk", "extra"], [(1, 10, "a", 20, None)]))
            self.run_both(["ALTER TABLE parent RENAME COLUMN extra TO later", "SELECT * FROM child"],
                          "SELECT * FROM child", (["id", "balance", "note", "risk", "later"],
                                                  [(1, 10, "a", 20, None)]))
            self.run_both(["ALTER TABLE parent DROP COLUMN later"], "SELECT * FROM child",
                          (["id", "balance", "note", "risk"], [(1, 10, "a", 20)]))
        self.each_protocol(case)

    def test_an_alter_of_a_temporary_table_that_hides_the_seeded_one(self):
        def case():
            self.run_both(["CREATE TEMP TABLE account (id int, balance numeric)",
                           "ALTER TABLE account ADD COLUMN extra int", "DROP TABLE pg_temp.account"],
                          "SELECT * FROM account WHERE id = 1", (["id", "balance", "risk"], [(1, 10, 20)]))
        self.each_protocol(case)

    def test_another_session_sees_the_change(self):
        with psycopg.connect(px.dsn(DB), autocommit=True) as other, \
                psycopg.connect(px.dsn(DB), autocommit=True,
                                cursor_factory=psycopg.ClientCursor) as conn:
            self.assertEqual(outcome(other, "SELECT * FROM account WHERE id = 1")[0],
                             ["id", "balance", "risk"])
            conn.execute("ALTER TABLE account ADD COLUMN shared int")
            self.assertEqual(outcome(conn, "SELECT * FROM account WHERE id = 1")[0],
                             ["id", "balance", "risk", "shared"])
            # The other session did not wait for anything: it sees the change once the refresh
            # the ALTER asked for is published.
            e2e_common.poll(lambda: outcome(other, "SELECT * FROM account WHERE id = 1")[0] ==
                            ["id", "balance", "risk", "shared"], 10, what="the other session")
            conn.execute("ALTER TABLE account DROP COLUMN shared")
            e2e_common.poll(lambda: outcome(other, "SELECT * FROM account WHERE id = 1")[0] ==
                            ["id", "balance", "risk"], 10, what="the drop in the other session")


if __name__ == "__main__":
    e2e_common.main()
