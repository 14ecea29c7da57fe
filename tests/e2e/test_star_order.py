#!/usr/bin/python3
"""A table's shape is fixed when each seed is declared (issue 12 section 2): several seeds
declared in one order, with an application ADD COLUMN in between, materialized in another order
and rolled back in a third, must show their columns exactly as a twin table whose real
GENERATED ALWAYS AS (…) STORED columns were added in declaration order (the application's
column between them) and dropped as each seed rolls back.

Seeds on item, declared as total, label (the file at start), then the application adds note,
then cheap (the file reloaded): '*' is id, name, price, qty, total, label, note, cheap, not the
names' order (cheap, label, total) and not the order the engine adds columns in (cheap, total,
label). Materialized: cheap, total, label. Rolled back: label, cheap, total.

At every step the same statements run through the proxy and on the twin, and must give the same
column names, types (OID and typmod), rows and COPY data:
  simple protocol: SELECT *, alias.*, TABLE, a join, RETURNING * of UPDATE and of a positional
    INSERT … VALUES with DEFAULT for each generated column (both rolled back), COPY (SELECT *)
    and COPY table (generated columns left out);
  extended protocol: SELECT * with a parameter;
  psycopg prepare=True: one statement prepared at the start on one connection, executed again at
    every step without a new Parse from the client (the proxy re-prepares it), compared with the
    twin's answer to the same text now; a fresh prepared statement too;
  SQL PREPARE / EXECUTE / DEALLOCATE, made at each step.
"""

from __future__ import annotations

import json
import unittest

import e2e_common
import materialize_common as mc
import psycopg

from harness.pgcluster import PgCluster

DB = "shop"
TWIN = "shop_twin"
DECLARED = [("total", "numeric(12,2)", "price * qty"),
            ("label", "text", "upper(name)"),
            ("cheap", "boolean", "price < 10")]
MATERIALIZE_ORDER = ["cheap", "total", "label"]
ROLLBACK_ORDER = ["label", "cheap", "total"]
HELD = "SELECT * FROM item WHERE id <= %s ORDER BY id"

pg: PgCluster = None
px = None
held = None  # connection through the proxy whose prepared HELD lives through every step
live: list[str] = []  # seeds not rolled back yet


def spec(name: str, type_: str, expression: str) -> dict:
    return {"database": DB, "entity": "public.item", "attribute": name, "type": type_,
            "expression": expression, "materialize": {"policy": "manual"}}


def declare_on_twin(name: str) -> None:
    _, type_, expression = next(d for d in DECLARED if d[0] == name)
    with pg.connect(TWIN) as conn:
        conn.execute(f'ALTER TABLE item ADD COLUMN "{name}" {type_} GENERATED ALWAYS AS ({expression}) STORED')


def setUpModule():
    global pg, px, held
    if e2e_common.direct_mode():
        raise unittest.SkipTest("seeds are the proxy's own")
    pg = PgCluster().start()
    for database in (DB, TWIN):
        with pg.connect() as conn:
            conn.execute(f"CREATE DATABASE {database}")
        with pg.connect(database) as conn:
            conn.execute("CREATE TABLE item (id int PRIMARY KEY, name text, price numeric(10,2), qty int)")
            conn.execute("INSERT INTO item SELECT i, 'item ' || i, (i * 3.5) % 20, i % 7 FROM generate_series(1, 40) i")
    # total and label are declared first; the application adds note; then cheap is declared.
    px = mc.make_proxy(pg.port, [spec(*d) for d in DECLARED[:2]], instance="star-order")
    e2e_common.wait_until_readable(px, DB, "SELECT label FROM item WHERE id = 1", "the first seeds")
    for name in ("total", "label"):
        declare_on_twin(name)
    with psycopg.connect(px.dsn(DB), autocommit=True) as conn:
        conn.execute("ALTER TABLE item ADD COLUMN note text")
    with pg.connect(TWIN) as conn:
        conn.execute("ALTER TABLE item ADD COLUMN note text")
    with pg.connect(DB) as conn:
        conn.execute("UPDATE item SET note = 'n' || id WHERE id % 3 = 0")
    with pg.connect(TWIN) as conn:
        conn.execute("UPDATE item SET note = 'n' || id WHERE id % 3 = 0")
    config = dict(px.config, seeds=[spec(*d) for d in DECLARED])
    with open(px.config_path, "w") as f:
        json.dump(config, f)
    mc.command(px, "RELOAD")
    e2e_common.wait_until_readable(px, DB, "SELECT cheap FROM item WHERE id = 1", "the third seed")
    declare_on_twin("cheap")
    live.extend(d[0] for d in DECLARED)
    held = psycopg.connect(px.dsn(DB), autocommit=True)
    held.execute(HELD, (10,), prepare=True).fetchall()


def tearDownModule():
    if held is not None:
        held.close()
    e2e_common.stop(px, pg)


def shape(cur) -> list[tuple]:
    """Column names, type OIDs and typmods of the last result."""
    res = cur.pgresult
    return [(res.fname(i).decode(), res.ftype(i), res.fmod(i)) for i in range(res.nfields)]


def answer(conn, sql: str, params=None, prepare=None, rollback=False) -> tuple:
    """(shape, rows) of one statement; in a transaction rolled back afterwards when asked."""
    if rollback:
        conn.execute("BEGIN")
    try:
        cur = conn.execute(sql, params, prepare=prepare)
        return shape(cur), cur.fetchall()
    finally:
        if rollback:
            conn.execute("ROLLBACK")


def copied(conn, sql: str) -> list[bytes]:
    """The lines COPY sends, sorted: a table's heap order differs between the two databases once
    the engine's backfill has updated rows, and COPY table has no ORDER BY."""
    with conn.cursor().copy(sql) as copy:
        return sorted(b"".join(bytes(chunk) for chunk in copy).split(b"\n"))


def positional_insert() -> str:
    """INSERT … VALUES naming no column, DEFAULT at each generated column of the twin's shape."""
    with pg.connect(TWIN) as conn:
        columns = conn.execute("SELECT attname, attgenerated <> '' FROM pg_attribute WHERE attrelid = 'item'::regclass "
                               "AND attnum > 0 AND NOT attisdropped ORDER BY attnum").fetchall()
    values = {"id": "1000", "name": "'new'", "price": "4.5", "qty": "3", "note": "'fresh'"}
    return ("INSERT INTO item VALUES (" + ", ".join("DEFAULT" if generated else values[name]
                                                    for name, generated in columns) + ") RETURNING *")


def statements() -> list[tuple]:
    """(label, how, sql, params): what runs on both sides at every step."""
    return [
        ("star", "simple", "SELECT * FROM item ORDER BY id", None),
        ("alias star", "simple", "SELECT i.*, i.id AS again FROM item i WHERE id % 4 = 1 ORDER BY id", None),
        ("table", "simple", "TABLE item", None),
        ("join", "simple", "SELECT * FROM item a JOIN item b ON b.id = a.id + 1 WHERE a.id < 5 ORDER BY a.id", None),
        ("update returning", "rollback", "UPDATE item SET qty = qty + 1 WHERE id < 4 RETURNING *", None),
        ("insert returning", "rollback", positional_insert(), None),
        ("extended", "extended", "SELECT * FROM item WHERE id > %s ORDER BY id", (30,)),
        ("fresh prepared", "prepared", "SELECT * FROM item WHERE id BETWEEN %s AND %s ORDER BY id", (5, 9)),
    ]


def by_key(result: tuple) -> tuple:
    """(shape, rows sorted by their first column, the table's key): TABLE and UPDATE … RETURNING
    follow heap order, which the backfill changes on one side only."""
    columns, rows = result
    return columns, sorted(rows, key=lambda row: row[0])


def run(conn, how: str, sql: str, params) -> tuple:
    return by_key(run_unsorted(conn, how, sql, params))


def run_unsorted(conn, how: str, sql: str, params) -> tuple:
    if how == "simple":
        client = psycopg.ClientCursor(conn)  # the simple protocol: one Query message
        client.execute(sql)
        return shape(client), client.fetchall()
    if how == "rollback":
        conn.execute("BEGIN")
        try:
            client = psycopg.ClientCursor(conn)
            client.execute(sql)
            return shape(client), client.fetchall()
        finally:
            conn.execute("ROLLBACK")
    return answer(conn, sql, params, prepare=(how == "prepared"))


class StarOrder(unittest.TestCase):
    step = "declared"

    def check(self, step: str) -> None:
        with psycopg.connect(px.dsn(DB), autocommit=True) as proxied, pg.connect(TWIN) as twin:
            for label, how, sql, params in statements():
                with self.subTest(step=step, statement=label):
                    self.assertEqual(run(proxied, how, sql, params), run(twin, how, sql, params), sql)
            with self.subTest(step=step, statement="SQL PREPARE"):
                got = []
                for conn in (proxied, twin):
                    client = psycopg.ClientCursor(conn)
                    client.execute("PREPARE p AS SELECT * FROM item WHERE id % 5 = 0 ORDER BY id")
                    client.execute("EXECUTE p")
                    got.append((shape(client), client.fetchall()))
                    client.execute("DEALLOCATE p")
                self.assertEqual(got[0], got[1])
            for sql in ("COPY (SELECT * FROM item ORDER BY id) TO STDOUT", "COPY item TO STDOUT"):
                with self.subTest(step=step, statement=sql):
                    self.assertEqual(copied(proxied, sql), copied(twin, sql))
            with self.subTest(step=step, statement="held prepared"):
                # The twin has no statement that lived through DROP COLUMN: it answers the text now.
                self.assertEqual(answer(held, HELD, (10,), prepare=True), answer(twin, HELD, (10,), prepare=True))
                # Never prepared itself (psycopg prepares a statement run 5 times): only HELD counts.
                count = "SELECT count(*) FROM pg_prepared_statements"
                self.assertEqual(held.execute(count, prepare=False).fetchone()[0], 1)

    def expected_names(self) -> list[str]:
        order = ["id", "name", "price", "qty", "total", "label", "note", "cheap"]
        return [n for n in order if n in live or n in ("id", "name", "price", "qty", "note")]

    def names_through_proxy(self) -> list[str]:
        with psycopg.connect(px.dsn(DB), autocommit=True) as conn:
            return [c.name for c in conn.execute("SELECT * FROM item LIMIT 0").description]

    def test_1_declared_with_an_added_column_between(self):
        self.assertEqual(self.names_through_proxy(), ["id", "name", "price", "qty", "total", "label", "note", "cheap"])
        self.check("declared")

    def test_2_materialized_in_another_order(self):
        for name in MATERIALIZE_ORDER:
            self.assertEqual(mc.command(px, f"MATERIALIZE item.{name}"), ["MATERIALIZE"])
            mc.wait_step(px, name, "materialized")
            e2e_common.poll(lambda: mc.seed_phase(px, name) == "materialized", 10, 0.05, f"{name} materialized")
            self.assertEqual(self.names_through_proxy(), self.expected_names())
            self.check(f"{name} materialized")
        # The engine added the columns in its own order; clients still see the declared one.
        with pg.connect(DB) as conn:
            physical = [r[0] for r in conn.execute(
                "SELECT attname FROM pg_attribute WHERE attrelid = 'item'::regclass AND attnum > 0 "
                "AND NOT attisdropped ORDER BY attnum").fetchall()]
        self.assertEqual(physical, ["id", "name", "price", "qty", "note", "cheap", "total", "label"])

    def test_3_rolled_back_in_a_third_order(self):
        for name in ROLLBACK_ORDER:
            if name == ROLLBACK_ORDER[-1]:
                self.rolled_back_before_its_column_is_dropped(name)
            else:
                self.assertEqual(mc.command(px, f"ROLLBACK item.{name}"), ["ROLLBACK"])
            mc.wait_step(px, name, "rolled_back")
            e2e_common.poll(lambda: mc.seed_phase(px, name) == "rolled_back", 10, 0.05, f"{name} rolled back")
            with pg.connect(TWIN) as conn:
                conn.execute(f'ALTER TABLE item DROP COLUMN "{name}"')
            live.remove(name)
            self.assertEqual(self.names_through_proxy(), self.expected_names())
            self.check(f"{name} rolled back")
        self.assertEqual(self.names_through_proxy(), ["id", "name", "price", "qty", "note"])

    def rolled_back_before_its_column_is_dropped(self, name: str) -> None:
        """The last live seed of the table: the phase is rolled_back as soon as the engine starts,
        while its DROP COLUMN waits for a lock another client holds. Clients already see the table
        as after the DROP COLUMN, though no live seed is left to make the proxy look at it."""
        with pg.connect(DB) as blocker:
            blocker.execute("BEGIN")
            blocker.execute("LOCK TABLE item IN ACCESS SHARE MODE")
            self.assertEqual(mc.command(px, f"ROLLBACK item.{name}"), ["ROLLBACK"])
            e2e_common.poll(lambda: mc.seed_phase(px, name) == "rolled_back", 10, 0.05, f"{name} rolled back")
            with pg.connect(DB) as conn:
                upstream = [r[0] for r in conn.execute(
                    "SELECT attname FROM pg_attribute WHERE attrelid = 'item'::regclass AND attnum > 0 "
                    "AND NOT attisdropped ORDER BY attnum").fetchall()]
            self.assertIn(name, upstream)  # the engine's DROP COLUMN is still waiting
            self.assertEqual(self.names_through_proxy(), [n for n in self.expected_names() if n != name])
            blocker.execute("ROLLBACK")


if __name__ == "__main__":
    e2e_common.main()
