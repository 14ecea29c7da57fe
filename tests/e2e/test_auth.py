#!/usr/bin/python3
"""Authentication is relayed untouched: PostgreSQL decides (SCRAM-SHA-256, md5, trust) and its errors arrive."""

import os
import unittest

import e2e_common
import psycopg
import psycopg2

from harness import pgcluster, wire
from harness.pgcluster import PgCluster

SCRAM_PW = "scr4m-Secret!"
MD5_PW = "md5 secret with spaces"

pg: PgCluster = None
px = None


def setUpModule():
    global pg, px
    pg = PgCluster().start()
    pg.create_user("scram_user", SCRAM_PW, "scram-sha-256")
    pg.create_user("md5_user", MD5_PW, "md5")
    px = e2e_common.target(pg.port)


def tearDownModule():
    e2e_common.stop(px, pg)


class AuthThroughProxy(unittest.TestCase):
    def test_stored_password_kinds(self):
        rows = dict(pg.psql("select rolname, left(rolpassword, 13) from pg_authid "
                            "where rolname in ('scram_user', 'md5_user')"))
        self.assertEqual(rows["scram_user"], "SCRAM-SHA-256")
        self.assertTrue(rows["md5_user"].startswith("md5"))

    def test_scram_correct_password(self):
        with psycopg.connect(px.dsn(user="scram_user", password=SCRAM_PW)) as conn:
            self.assertEqual(conn.execute("select current_user").fetchone(), ("scram_user",))
        conn2 = psycopg2.connect(px.dsn(user="scram_user", password=SCRAM_PW))
        try:
            cur = conn2.cursor()
            cur.execute("select current_user")
            self.assertEqual(cur.fetchone(), ("scram_user",))
        finally:
            conn2.close()

    def test_md5_correct_password(self):
        with psycopg.connect(px.dsn(user="md5_user", password=MD5_PW)) as conn:
            self.assertEqual(conn.execute("select current_user").fetchone(), ("md5_user",))

    def test_trust(self):
        with psycopg.connect(px.dsn(user="postgres")) as conn:
            self.assertEqual(conn.execute("select current_user").fetchone(), ("postgres",))

    def test_wrong_password_libpq(self):
        for user in ("scram_user", "md5_user"):
            with self.subTest(user=user):
                with self.assertRaises(psycopg.OperationalError) as cm:
                    psycopg.connect(px.dsn(user=user, password="wrong"))
                self.assertIn(f'password authentication failed for user "{user}"', str(cm.exception))

    def test_missing_password_libpq(self):
        with self.assertRaises(psycopg.OperationalError) as cm:
            psycopg.connect(px.dsn(user="scram_user", password=""))
        self.assertIn("password", str(cm.exception))

    def test_wrong_password_wire_sqlstate(self):
        # libpq does not expose the SQLSTATE of a failed connection, so check it at the byte level,
        # with a real SCRAM / md5 exchange carried through the proxy.
        for user in ("scram_user", "md5_user"):
            with self.subTest(user=user), wire.WireClient(px.port) as c:
                c.startup(user=user, database="postgres")
                with self.assertRaises(wire.ServerError) as cm:
                    c.authenticate(password="wrong")
                f = cm.exception.fields
                self.assertEqual(f["C"], "28P01")
                self.assertEqual(f["S"], "FATAL")
                self.assertEqual(f["M"], f'password authentication failed for user "{user}"')
                c.expect_eof()

    def test_correct_password_wire(self):
        # The SCRAM server signature is verified, so nothing in between tampered with the exchange.
        for user, pw in (("scram_user", SCRAM_PW), ("md5_user", MD5_PW)):
            with self.subTest(user=user), wire.WireClient(px.port) as c:
                c.connect(user=user, database="postgres", password=pw)
                rows, _, _ = c.simple_query("select current_user")
                self.assertEqual(rows, [[user]])

    def test_nonexistent_database(self):
        with self.assertRaises(psycopg.OperationalError) as cm:
            psycopg.connect(px.dsn(dbname="no_such_db"))
        self.assertIn('database "no_such_db" does not exist', str(cm.exception))
        with wire.WireClient(px.port) as c:
            c.startup(user="postgres", database="no_such_db")
            with self.assertRaises(wire.ServerError) as cm:
                c.authenticate()
            self.assertEqual(cm.exception.fields["C"], "3D000")

    def test_nonexistent_user(self):
        with wire.WireClient(px.port) as c:
            c.startup(user="nobody_here", database="postgres")
            with self.assertRaises(wire.ServerError) as cm:
                c.authenticate()
            self.assertEqual(cm.exception.fields["C"], "28000")

    def test_proxy_survives_failed_logins(self):
        for _ in range(20):
            with self.assertRaises(psycopg.OperationalError):
                psycopg.connect(px.dsn(user="scram_user", password="nope"))
        with psycopg.connect(px.dsn(user="scram_user", password=SCRAM_PW)) as conn:
            self.assertEqual(conn.execute("select 1").fetchone(), (1,))


class ProxyAuthAfterRestart(unittest.TestCase):
    """auth.mode proxy reads a role's secret with auth.query on a connection it keeps between
    logins. A PostgreSQL restart ends that connection; the first login after it must open a new
    one and succeed, not fail with the restart's FATAL."""

    def test_the_first_login_after_a_restart_succeeds(self):
        with PgCluster() as cluster:
            cluster.create_user("scram_user", SCRAM_PW, "scram-sha-256")
            with e2e_common.Proxy(upstream_port=cluster.port, auth={"mode": "proxy"},
                                  control={"user": "postgres"}) as proxy:
                dsn = proxy.dsn(user="scram_user", password=SCRAM_PW)
                with psycopg.connect(dsn) as conn:  # auth.query's connection is opened here
                    self.assertEqual(conn.execute("select current_user").fetchone(),
                                     ("scram_user",))
                pgcluster._run_pg([os.path.join(pgcluster.PG_BIN, "pg_ctl"), "restart", "-w",
                                   "-m", "fast", "-D", cluster.data_dir, "-l", cluster.log_file])
                cluster.wait_ready()
                with psycopg.connect(dsn) as conn:
                    self.assertEqual(conn.execute("select current_user").fetchone(),
                                     ("scram_user",))


if __name__ == "__main__":
    e2e_common.main()
