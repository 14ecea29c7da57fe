#!/usr/bin/python3
"""The seed registry shared by every proxy in front of one PostgreSQL (docs/registry.md).

Two proxies run at once against one cluster: proxy A declares a seed in its file, proxy B declares
none. B must serve A's seed, follow A's changes within a second (LISTEN/NOTIFY), refuse a file that
conflicts with A's (naming both instances and both definitions), and nobody creates the registry in
a database that has no seeds.
"""

import threading
import time
import unittest

import e2e_common
import psycopg

from harness.pgcluster import PgCluster, free_port
from harness.proxy import ProxyError

DB = "shared"
PLAIN = "plain"  # clients use it through both proxies; no seed is ever declared there

pg: PgCluster = None
px_a = None
px_b = None


def seed(expression: str, attribute: str = "risk", type_: str = "numeric") -> dict:
    return {"database": DB, "entity": "public.account", "attribute": attribute, "type": type_,
            "expression": expression}


def make_proxy(instance: str, seeds: list) -> e2e_common.Proxy:
    return e2e_common.Proxy(upstream_port=pg.port, instance=instance, seeds=seeds,
                            control={"user": "postgres"})


def setUpModule():
    global pg, px_a, px_b
    if e2e_common.direct_mode():
        raise unittest.SkipTest("the registry is the proxy's own")
    pg = PgCluster().start()
    for database in (DB, PLAIN):
        with pg.connect() as conn:
            conn.execute(f"CREATE DATABASE {database}")
        with pg.connect(database) as conn:
            conn.execute("CREATE TABLE account (id int PRIMARY KEY, balance numeric NOT NULL)")
            conn.execute("INSERT INTO account VALUES (1, 10), (2, 20)")
    px_a = make_proxy("proxy-a", [seed("balance * 2")])
    px_b = make_proxy("proxy-b", [])


def tearDownModule():
    e2e_common.finish(px_a)
    e2e_common.finish(px_b)
    if pg is not None:
        pg.stop()


def direct(sql: str, params=None, database: str = DB):
    with pg.connect(database) as conn:
        return conn.execute(sql, params).fetchall()


def risk_through(px, database: str = DB):
    with psycopg.connect(px.dsn(database), autocommit=True) as conn:
        return conn.execute("SELECT risk FROM account WHERE id = 1").fetchone()[0]


def restart_a(seeds: list) -> None:
    global px_a
    e2e_common.finish(px_a)
    px_a = make_proxy("proxy-a", seeds)


class Registry(unittest.TestCase):
    # Tests run in name order; each leaves A's seed as "balance * 2" (virtual).

    def test_01_schema_is_versioned(self):
        version = direct('SELECT max("version") FROM "seedproxy"."schema_version"')[0][0]
        self.assertEqual(version, 5)
        tables = {r[0] for r in direct(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'seedproxy'")}
        self.assertEqual(tables, {"schema_version", "seeds", "declarations", "read_counts",
                                  "materializations", "registry_state", "proxies", "dependency_locks"})
        rows = direct('SELECT "schema_name", "table_name", "attribute_name", "expression", "phase", '
                      '"declared_by" FROM "seedproxy"."seeds"')
        self.assertEqual(rows, [("public", "account", "risk", "balance * 2", "virtual", "proxy-a")])
        declared = direct('SELECT "instance" FROM "seedproxy"."declarations"')
        self.assertEqual(declared, [("proxy-a",)])

    def test_02_proxy_without_seeds_serves_the_registry(self):
        # The first statement of B's first session already sees the seed: the session waits for
        # the database's first registry load.
        self.assertEqual(risk_through(px_b), 20)
        self.assertEqual(risk_through(px_a), 20)

    def test_03_no_registry_where_there_are_no_seeds(self):
        for px in (px_a, px_b):
            with psycopg.connect(px.dsn(PLAIN), autocommit=True) as conn:
                self.assertEqual(conn.execute("SELECT balance FROM account WHERE id = 2").fetchone()[0], 20)
                with self.assertRaises(psycopg.errors.UndefinedColumn):
                    conn.execute("SELECT risk FROM account")
        self.assertEqual(direct("SELECT to_regnamespace('seedproxy') IS NULL", database=PLAIN)[0][0], True)

    def follow_change(self, change, expected) -> float:
        """Runs change() and returns how long B took to serve `expected` on an open session.

        Unprepared statements: a statement the client prepared keeps the definition it was
        parsed with (docs/registry.md), so psycopg must not prepare the polled one."""
        with psycopg.connect(px_b.dsn(DB), autocommit=True, prepare_threshold=None) as conn:
            self.assertEqual(conn.execute("SELECT risk FROM account WHERE id = 1").fetchone()[0], 20)
            change()
            started = time.monotonic()

            def served():
                try:
                    return conn.execute("SELECT risk FROM account WHERE id = 1").fetchone()[0] == expected
                except psycopg.errors.UndefinedColumn:
                    return expected is None
            e2e_common.poll(served, timeout=5, interval=0.01, what=f"proxy B to serve {expected}")
            return time.monotonic() - started

    def test_04_restarted_declarer_reaches_the_other_proxy_within_a_second(self):
        # A's own definition changes: an update, not a conflict. A commits before it listens.
        took = self.follow_change(lambda: restart_a([seed("balance * 3")]), 30)
        self.assertLess(took, 1.0, f"B followed A's change after {took:.3f}s")
        self.assertEqual(direct('SELECT "expression", "declared_by" FROM "seedproxy"."seeds"'),
                         [("balance * 3", "proxy-a")])
        self.assertEqual(risk_through(px_a), 30)
        restart_a([seed("balance * 2")])
        e2e_common.poll(lambda: risk_through(px_b) == 20, timeout=5, what="B back on balance * 2")

    def test_05_direct_update_with_notify_reaches_both(self):
        def change():
            with pg.connect(DB) as conn:
                conn.execute('UPDATE "seedproxy"."seeds" SET "expression" = %s', ("balance * 5",))
                conn.execute("SELECT pg_notify('seedproxy_registry', %s)", (DB,))
        took = self.follow_change(change, 50)
        self.assertLess(took, 1.0, f"B followed the registry after {took:.3f}s")
        e2e_common.poll(lambda: risk_through(px_a) == 50, timeout=1, what="A to follow as well")
        # Rolled back: unknown to clients again, on both proxies.
        def roll_back():
            with pg.connect(DB) as conn:
                conn.execute('UPDATE "seedproxy"."seeds" SET "phase" = \'rolled_back\'')
                conn.execute("SELECT pg_notify('seedproxy_registry', %s)", (DB,))
        with psycopg.connect(px_b.dsn(DB), autocommit=True, prepare_threshold=None) as conn:
            roll_back()

            def unknown():
                try:
                    conn.execute("SELECT risk FROM account WHERE id = 1")
                    return False
                except psycopg.errors.UndefinedColumn:
                    return True
            e2e_common.poll(unknown, timeout=1, interval=0.01, what="B to forget the rolled-back seed")
        # A re-applying its unchanged file leaves the rollback in force ...
        restart_a([seed("balance * 5")])
        self.assertEqual(direct('SELECT "phase" FROM "seedproxy"."seeds"'), [("rolled_back",)])
        # ... and a changed definition brings the seed back as virtual.
        restart_a([seed("balance * 2")])
        self.assertEqual(direct('SELECT "phase", "expression" FROM "seedproxy"."seeds"'),
                         [("virtual", "balance * 2")])
        def served_again():
            try:
                return risk_through(px_b) == 20
            except psycopg.errors.UndefinedColumn:  # B has not reloaded the registry yet
                return False
        e2e_common.poll(served_again, timeout=1, what="B to serve it again")

    def test_06_conflicting_file_is_refused_naming_both(self):
        with self.assertRaises(ProxyError) as refused:
            make_proxy("proxy-c", [seed("balance * 7")])
        text = str(refused.exception)
        for needle in ('"proxy-c"', '"proxy-a"', "balance * 7", "balance * 2", "conflicts"):
            self.assertIn(needle, text)
        # Nothing changed, and the agreeing declaration of the same seed is accepted.
        self.assertEqual(direct('SELECT "expression" FROM "seedproxy"."seeds"'), [("balance * 2",)])
        agreeing = make_proxy("proxy-d", [seed("balance * 2")])
        try:
            self.assertEqual(risk_through(agreeing), 20)
            instances = {r[0] for r in direct('SELECT "instance" FROM "seedproxy"."declarations"')}
            self.assertEqual(instances, {"proxy-a", "proxy-d"})
        finally:
            e2e_common.finish(agreeing)
            # Retiring an instance: its declarations go (docs/registry.md), the seed stays.
            direct('DELETE FROM "seedproxy"."declarations" WHERE "instance" = %s RETURNING 1', ("proxy-d",))

    def test_07_materialized_seed_is_not_redefined(self):
        with pg.connect(DB) as conn:
            conn.execute('UPDATE "seedproxy"."seeds" SET "phase" = \'materialized\'')
        try:
            with self.assertRaises(ProxyError) as refused:
                restart_a([seed("balance * 4")])
            self.assertIn("roll it back first", str(refused.exception))
            self.assertEqual(direct('SELECT "expression" FROM "seedproxy"."seeds"'), [("balance * 2",)])
            # Once materialized the column exists: re-applying the unchanged file is accepted,
            # not refused as "already a physical column".
            with pg.connect(DB) as conn:
                conn.execute("ALTER TABLE account ADD COLUMN risk numeric")
                conn.execute("UPDATE account SET risk = balance * 2")
            restart_a([seed("balance * 2")])
            self.assertEqual(risk_through(px_a), 20)
            self.assertEqual(direct('SELECT "phase" FROM "seedproxy"."seeds"'), [("materialized",)])
        finally:
            with pg.connect(DB) as conn:
                conn.execute("ALTER TABLE account DROP COLUMN IF EXISTS risk")
                conn.execute('UPDATE "seedproxy"."seeds" SET "phase" = \'virtual\'')
                conn.execute("SELECT pg_notify('seedproxy_registry', %s)", (DB,))
            restart_a([seed("balance * 2")])
            e2e_common.poll(lambda: risk_through(px_b) == 20, timeout=5, what="B back on the virtual seed")

    def test_08_invalid_seed_changes_nothing(self):
        # A valid seed for `plain` and an invalid one for `shared`: neither database is touched.
        with self.assertRaises(ProxyError):
            make_proxy("proxy-e", [
                {"database": PLAIN, "entity": "account", "attribute": "half", "type": "numeric",
                 "expression": "balance / 2"},
                seed("random() * balance", attribute="noise")])
        self.assertEqual(direct("SELECT to_regnamespace('seedproxy') IS NULL", database=PLAIN)[0][0], True)
        self.assertEqual(direct('SELECT count(*) FROM "seedproxy"."seeds"')[0][0], 1)

    def test_09_proxies_starting_together_migrate_once(self):
        # A fresh database and two proxies starting at the same moment with the same seed: the
        # advisory lock makes one create the registry and the other find it in place.
        with pg.connect() as conn:
            conn.execute("CREATE DATABASE race")
        with pg.connect("race") as conn:
            conn.execute("CREATE TABLE account (id int PRIMARY KEY, balance numeric NOT NULL)")
            conn.execute("INSERT INTO account VALUES (1, 10)")
        race_seed = dict(seed("balance + 1"), database="race")
        # Distinct fixed ports: two proxies probing for a free port at once could pick the same one.
        ports = [free_port()]
        while len(ports) < 2:
            if (port := free_port()) not in ports:
                ports.append(port)
        proxies = [e2e_common.Proxy(upstream_port=pg.port, start=False, instance=f"racer-{i}",
                                    listen={"port": ports[i]}, seeds=[race_seed],
                                    control={"user": "postgres"}) for i in range(2)]
        errors = []
        started = threading.Barrier(3)
        done = threading.Event()

        def start(px):
            # The thread lives until the test ends: the harness ties a proxy's life to the thread
            # that spawned it (PR_SET_PDEATHSIG).
            try:
                px.start()
            except Exception as e:  # reported below
                errors.append(e)
            started.wait()
            done.wait()
        threads = [threading.Thread(target=start, args=(px,)) for px in proxies]
        try:
            for t in threads:
                t.start()
            started.wait()
            self.assertEqual(errors, [])
            # Each migration applied exactly once, in order.
            self.assertEqual(direct('SELECT "version" FROM "seedproxy"."schema_version" ORDER BY 1',
                                    database="race"), [(1,), (2,), (3,), (4,), (5,)])
            self.assertEqual(direct('SELECT count(*) FROM "seedproxy"."seeds"', database="race"), [(1,)])
            declared = {r[0] for r in direct('SELECT "instance" FROM "seedproxy"."declarations"',
                                             database="race")}
            self.assertEqual(declared, {"racer-0", "racer-1"})
            for px in proxies:
                self.assertEqual(risk_through(px, "race"), 11)
        finally:
            for px in proxies:
                e2e_common.finish(px)
            done.set()
            for t in threads:
                t.join()

    def test_11_seeds_keep_the_place_they_were_declared_at(self):
        # Declared in the file's order (not the names'), after the table's columns as they were;
        # a column the application adds later comes after them, and their places are recorded.
        with pg.connect() as conn:
            conn.execute("CREATE DATABASE places")
        with pg.connect("places") as conn:
            conn.execute("CREATE TABLE t (id int PRIMARY KEY, a int, gone int)")
            conn.execute("ALTER TABLE t DROP COLUMN gone")  # attnum 3 stays taken
            conn.execute("INSERT INTO t VALUES (1, 10)")
        seeds = [{"database": "places", "entity": "public.t", "attribute": name, "type": "int",
                  "expression": expression} for name, expression in
                 (("zeta", "a + 1"), ("mid", "a + 2"), ("alpha", "a + 3"))]
        with e2e_common.Proxy(upstream_port=pg.port, instance="placer", seeds=seeds,
                              control={"user": "postgres"}) as px:
            with psycopg.connect(px.dsn("places"), autocommit=True) as conn:
                names = lambda: [c.name for c in conn.execute("SELECT * FROM t").description]
                self.assertEqual(names(), ["id", "a", "zeta", "mid", "alpha"])
                conn.execute("ALTER TABLE t ADD COLUMN b int")
                self.assertEqual(names(), ["id", "a", "zeta", "mid", "alpha", "b"])
                self.assertEqual(conn.execute("SELECT * FROM t").fetchall(), [(1, 10, 11, 12, 13, None)])
        rows = direct('SELECT "attribute_name", "declared_after_attnum" FROM "seedproxy"."seeds" '
                      'ORDER BY "declaration_order"', database="places")
        self.assertEqual(rows, [("zeta", 3), ("mid", 3), ("alpha", 3)])

    def test_12_migrating_an_older_registry_keeps_the_shape_clients_saw(self):
        # A version 3 registry (made here by undoing versions 5 and 4): seeds were shown after the
        # columns in name order, a materialized one at its column's attnum. A proxy that only
        # reads it keeps that shape; the migration records it, so a column added afterwards
        # comes after the seeds, as it would after real columns.
        with pg.connect() as conn:
            conn.execute("CREATE DATABASE legacy")
        with pg.connect("legacy") as conn:
            conn.execute("CREATE TABLE t (id int PRIMARY KEY, a int)")
            conn.execute("INSERT INTO t VALUES (1, 10)")
        seeds = [{"database": "legacy", "entity": "public.t", "attribute": name, "type": "int",
                  "expression": expression, "materialize": {"policy": "never"}} for name, expression in
                 (("zeta", "a + 1"), ("mat", "a + 2"), ("alpha", "a + 3"))]
        old = e2e_common.Proxy(upstream_port=pg.port, instance="old", seeds=seeds,
                               control={"user": "postgres"})
        e2e_common.finish(old)
        with pg.connect("legacy") as conn:
            conn.execute('DROP TABLE "seedproxy"."dependency_locks"')
            conn.execute('ALTER TABLE "seedproxy"."seeds" DROP COLUMN "dependencies", '
                         'DROP COLUMN "materialize_refusal", DROP COLUMN "dependency_error"')
            conn.execute('ALTER TABLE "seedproxy"."seeds" DROP COLUMN "declared_after_attnum", '
                         'DROP COLUMN "declaration_order"')
            conn.execute('DELETE FROM "seedproxy"."schema_version" WHERE "version" IN (4, 5)')
            # the application adds b; then mat is materialized (its column after b)
            conn.execute("ALTER TABLE t ADD COLUMN b int")
            conn.execute("ALTER TABLE t ADD COLUMN mat int")
            conn.execute("UPDATE t SET mat = a + 2")
            conn.execute("""UPDATE "seedproxy"."seeds" SET "phase" = 'materialized' WHERE "attribute_name" = 'mat'""")
        today = ["id", "a", "b", "mat", "alpha", "zeta"]
        # A proxy that declares nothing reads the old registry without migrating it.
        with e2e_common.Proxy(upstream_port=pg.port, instance="reader", seeds=[],
                              control={"user": "postgres"}) as reader:
            e2e_common.wait_until_readable(reader, "legacy", "SELECT zeta FROM t", "the old registry's seeds")
            with psycopg.connect(reader.dsn("legacy"), autocommit=True) as conn:
                self.assertEqual([c.name for c in conn.execute("SELECT * FROM t").description], today)
        self.assertEqual(direct('SELECT max("version") FROM "seedproxy"."schema_version"', database="legacy"),
                         [(3,)])
        with e2e_common.Proxy(upstream_port=pg.port, instance="old", seeds=seeds,
                              control={"user": "postgres"}) as px:
            self.assertEqual(direct('SELECT max("version") FROM "seedproxy"."schema_version"',
                                    database="legacy"), [(5,)])
            with psycopg.connect(px.dsn("legacy"), autocommit=True) as conn:
                names = lambda: [c.name for c in conn.execute("SELECT * FROM t").description]
                self.assertEqual(names(), today)
                conn.execute("ALTER TABLE t ADD COLUMN c int")
                self.assertEqual(names(), today + ["c"])
                self.assertEqual(conn.execute("SELECT * FROM t").fetchall(), [(1, 10, None, 12, 13, 11, None)])
        rows = direct('SELECT "attribute_name", "declared_after_attnum" FROM "seedproxy"."seeds" '
                      'ORDER BY "declaration_order"', database="legacy")
        self.assertEqual(rows, [("mat", 3), ("alpha", 4), ("zeta", 4)])

    def test_13_migrating_a_version_4_registry_records_dependencies(self):
        # Version 5 adds what cross-table seeds depend on; a registry at version 4 (made here by
        # undoing 5) gets the columns and the key lock table, and the seeds' dependencies and
        # refusals are recorded by the next proxy that declares them.
        with pg.connect() as conn:
            conn.execute("CREATE DATABASE deps")
        with pg.connect("deps") as conn:
            conn.execute("CREATE TABLE account (id int PRIMARY KEY, balance int)")
            conn.execute("CREATE TABLE txn (id int PRIMARY KEY, account_id int)")
        seeds = [{"database": "deps", "entity": "public.account", "attribute": "n", "type": "bigint",
                  "expression": "(SELECT count(*) FROM txn t WHERE t.account_id = account.id)"},
                 {"database": "deps", "entity": "public.account", "attribute": "later", "type": "bigint",
                  "expression": "(SELECT count(*) FROM txn t WHERE t.account_id > account.id)"}]
        e2e_common.finish(e2e_common.Proxy(upstream_port=pg.port, instance="v4", seeds=seeds,
                                           control={"user": "postgres"}))
        with pg.connect("deps") as conn:
            conn.execute('DROP TABLE "seedproxy"."dependency_locks"')
            conn.execute('ALTER TABLE "seedproxy"."seeds" DROP COLUMN "dependencies", '
                         'DROP COLUMN "materialize_refusal", DROP COLUMN "dependency_error"')
            conn.execute('DELETE FROM "seedproxy"."schema_version" WHERE "version" = 5')
        with e2e_common.Proxy(upstream_port=pg.port, instance="v5", seeds=seeds,
                              control={"user": "postgres"}):
            self.assertEqual(direct('SELECT max("version") FROM "seedproxy"."schema_version"',
                                    database="deps"), [(5,)])
            rows = direct('SELECT "attribute_name", "materialize_refusal" IS NOT NULL '
                          'FROM "seedproxy"."seeds" ORDER BY 1', database="deps")
            described = direct('SELECT "dependencies" FROM "seedproxy"."seeds" WHERE "attribute_name" = %s',
                               ("n",), database="deps")
        self.assertEqual(rows, [("later", True), ("n", False)])
        self.assertEqual(described, [("public.txn: txn.account_id = account.id",)])

    def test_10_dropped_listener_is_reconnected(self):
        def listeners():
            return {r[0] for r in direct(
                "SELECT pid FROM pg_stat_activity WHERE datname = %s AND application_name = "
                "'seedproxy registry'", (DB,))}
        before = e2e_common.poll(lambda: len(listeners()) >= 2 and listeners(), timeout=5,
                                 what="both proxies' listeners on the shared database")
        direct("SELECT pg_terminate_backend(pid) FROM unnest(%s::int[]) AS pid", (list(before),))
        e2e_common.poll(lambda: len(listeners() - before) >= 2, timeout=5,
                        what="both listeners to reconnect")

        def change():
            with pg.connect(DB) as conn:
                conn.execute('UPDATE "seedproxy"."seeds" SET "expression" = %s', ("balance * 6",))
                conn.execute("SELECT pg_notify('seedproxy_registry', %s)", (DB,))
        try:
            took = self.follow_change(change, 60)
            self.assertLess(took, 1.0, f"B followed the registry after {took:.3f}s")
        finally:
            with pg.connect(DB) as conn:
                conn.execute('UPDATE "seedproxy"."seeds" SET "expression" = %s', ("balance * 2",))
                conn.execute("SELECT pg_notify('seedproxy_registry', %s)", (DB,))


if __name__ == "__main__":
    e2e_common.main()
