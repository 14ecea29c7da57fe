#!/usr/bin/python3
"""The admin console: psql to database "seedproxy" on the proxy port, PostgreSQL authenticates,
admin.users decides; every command answers with rows or a PostgreSQL-style error."""

import hashlib
import os
import struct
import subprocess
import unittest

import e2e_common
import psycopg

from harness import wire
from harness.pgcluster import PgCluster

SCRAM_PW = "adm1n-Secret!"  # scram_user: listed in admin.users
MD5_PW = "not an admin"  # md5_user: a valid login, but not listed
CONTROL_PW = "never-shown-c0ntrol-pw"

SEEDS = [{
    "database": "shop",
    "entity": "public.item",
    "attribute": "price_with_tax",
    "type": "numeric",
    "expression": "price * 1.2",
    # Materialization itself is tested by test_materialize_*.py and test_rollback.py; here the
    # seed must stay virtual while the commands' refusals are checked.
    "materialize": {"policy": "never"},
}]

pg: PgCluster = None
px = None


def setUpModule():
    global pg, px
    if e2e_common.direct_mode():
        raise unittest.SkipTest("the admin console is the proxy's own")
    pg = PgCluster().start()
    pg.create_user("scram_user", SCRAM_PW, "scram-sha-256")
    pg.create_user("md5_user", MD5_PW, "md5")
    with pg.connect() as conn:
        conn.execute("CREATE DATABASE shop")
    with pg.connect("shop") as conn:
        conn.execute("CREATE TABLE item (id int PRIMARY KEY, price numeric NOT NULL)")
        conn.execute("INSERT INTO item VALUES (1, 10), (2, 20)")
    px = e2e_common.Proxy(upstream_port=pg.port, seeds=SEEDS,
                          control={"user": "postgres", "password": CONTROL_PW},
                          admin={"users": ["postgres", "scram_user"]},
                          # two I/O threads: SHOW CLIENTS gathers from both
                          runtime={"threads": 2})


def tearDownModule():
    e2e_common.finish(px)
    if pg is not None:
        pg.stop()


def direct_phase() -> str:
    with pg.connect("shop") as conn:
        return conn.execute('SELECT "phase" FROM "seedproxy"."seeds"').fetchone()[0]


def psql(sql: str, user: str = "postgres", password: str | None = None) -> subprocess.CompletedProcess:
    env = dict(os.environ, PGCONNECT_TIMEOUT="10")
    if password is not None:
        env["PGPASSWORD"] = password
    return subprocess.run(["psql", "-X", "-h", px.host, "-p", str(px.port), "-U", user, "-d", "seedproxy",
                           "-At", "-F", "|", "-v", "ON_ERROR_STOP=1", "-c", sql],
                          env=env, capture_output=True, text=True, timeout=30)


def admin_client(user: str = "postgres", password: str | None = None) -> wire.WireClient:
    c = wire.WireClient(px.port)
    c.connect(user=user, database="seedproxy", password=password)
    return c


def result(c: wire.WireClient, sql: str):
    """(column names, type OIDs, rows, tags) of a simple Query; raises ServerError."""
    rows, tags, msgs = c.simple_query(sql)
    cols = [col for t, b in msgs if t == "T" for col in wire.parse_row_description(b)]
    return [col["name"] for col in cols], [col["type_oid"] for col in cols], rows, tags


def error_of(c: wire.WireClient, sql: str) -> dict:
    with unittest.TestCase().assertRaises(wire.ServerError) as cm:
        c.simple_query(sql)
    return cm.exception.fields


def wait_rewriting_ready():
    def ready():
        try:
            with psycopg.connect(px.dsn("shop"), autocommit=True) as conn:
                return conn.execute("SELECT price_with_tax FROM item WHERE id = 1").fetchone()
        except psycopg.errors.UndefinedColumn:
            return None
    e2e_common.poll(ready, 30, 0.1, "the seed to be readable through the proxy")


class AdminConsole(unittest.TestCase):
    def test_psql_show_seeds(self):
        wait_rewriting_ready()
        out = psql("SHOW SEEDS")
        self.assertEqual(out.returncode, 0, out.stderr)
        rows = [line.split("|") for line in out.stdout.splitlines()]
        ours = [r for r in rows if r[:3] == ["shop", "public.item", "price_with_tax"]]
        self.assertEqual(len(ours), 1, rows)
        database, entity, attribute, type_, phase, reads, cross_table = ours[0][:7]
        self.assertEqual(type_, "numeric")
        self.assertEqual(phase, "virtual")
        self.assertGreaterEqual(int(reads), 0)
        self.assertEqual(cross_table, "f")

    def test_show_seeds_columns_and_types(self):
        with admin_client() as c:
            names, oids, rows, tags = result(c, "show seeds")
        self.assertEqual(names[:7], ["database", "entity", "attribute", "type", "phase", "reads", "cross_table"])
        self.assertEqual(oids[:7], [25, 25, 25, 25, 25, 20, 16])
        self.assertEqual(tags, ["SHOW"])

    def test_psql_with_password_and_keywords_in_any_case(self):
        out = psql("Show Stats", user="scram_user", password=SCRAM_PW)
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertEqual(len(out.stdout.splitlines()), 1)

    def test_show_clients(self):
        wait_rewriting_ready()
        with psycopg.connect(px.dsn("shop"), autocommit=True, application_name="admin-test") as conn:
            conn.execute("SELECT price_with_tax FROM item").fetchall()
            backend_pid = conn.info.backend_pid
            with admin_client() as c:
                names, oids, rows, _ = result(c, "SHOW CLIENTS")
        self.assertEqual(names, ["id", "user", "database", "address", "state", "connected_at",
                                 "age_seconds", "backend_pid", "rewriting", "tls", "tls_version",
                                 "tls_cipher", "auth", "server_tls"])
        self.assertEqual(oids, [20, 25, 25, 25, 25, 1184, 701, 20, 16, 16, 25, 25, 25, 16])
        by_db = {r[2]: r for r in rows}
        shop = by_db["shop"]
        self.assertEqual(shop[1], "postgres")
        self.assertTrue(shop[3].startswith("127.0.0.1:"), shop)
        self.assertEqual(shop[4], "idle")
        self.assertGreaterEqual(float(shop[6]), 0.0)
        self.assertEqual(int(shop[7]), backend_pid)
        self.assertEqual(shop[8], "t")
        self.assertEqual(shop[9:], ["f", None, None, "relay", "f"])  # plain text, relayed
        console = by_db["seedproxy"]
        self.assertEqual(console[4], "admin console")
        self.assertEqual(console[8], "f")

    def test_show_stats(self):
        wait_rewriting_ready()
        with admin_client() as c:
            names, oids, before, _ = result(c, "SHOW STATS")
            with psycopg.connect(px.dsn("shop"), autocommit=True) as conn:
                conn.execute("SELECT price_with_tax FROM item").fetchall()
            _, _, after, _ = result(c, "SHOW STATS")
        self.assertIn("clients_accepted", names)
        stats_before = dict(zip(names, before[0]))
        stats_after = dict(zip(names, after[0]))
        self.assertEqual(oids[names.index("clients_accepted")], 20)
        self.assertEqual(oids[names.index("uptime_seconds")], 701)
        self.assertGreaterEqual(int(stats_after["clients_accepted"]), int(stats_before["clients_accepted"]) + 1)
        self.assertGreaterEqual(int(stats_after["statements_rewritten"]),
                                int(stats_before["statements_rewritten"]) + 1)
        self.assertGreater(int(stats_after["bytes_from_server"]), int(stats_before["bytes_from_server"]))
        self.assertGreaterEqual(int(stats_after["clients_now"]), 1)
        self.assertGreater(float(stats_after["uptime_seconds"]), 0.0)

    def test_show_config_hides_passwords(self):
        with admin_client() as c:
            names, _, rows, _ = result(c, "SHOW CONFIG")
        self.assertEqual(names, ["key", "value"])
        config = {k: v for k, v in rows}
        self.assertEqual(config["admin.users"], "postgres,scram_user")
        self.assertEqual(config["admin.auth_database"], "postgres")
        self.assertEqual(config["listen"], f"127.0.0.1:{px.port}")
        self.assertEqual(config["seeds"], "1")
        self.assertEqual(config["control.password"], "(set)")
        self.assertNotIn(CONTROL_PW, repr(config))

    def test_show_materializations_columns(self):
        with admin_client() as c:
            names, oids, rows, tags = result(c, "SHOW MATERIALIZATIONS")
        self.assertEqual(names, ["database", "entity", "attribute", "step", "paused", "rows_done",
                                 "rows_total", "percent", "rows_per_second", "eta_seconds",
                                 "owner", "error", "updated_at", "waiting_for"])
        self.assertEqual(oids, [25, 25, 25, 25, 16, 20, 20, 701, 701, 701, 25, 25, 1184, 25])
        self.assertEqual(rows, [])  # nothing was ever materialized here
        self.assertEqual(tags, ["SHOW"])

    def test_several_statements_stop_at_the_first_error(self):
        with admin_client() as c:
            _, tags, _ = c.simple_query("SHOW STATS; show config;")
            self.assertEqual(tags, ["SHOW", "SHOW"])
            c.send(wire.query("SHOW STATS; BOGUS; SHOW CONFIG"))
            msgs = c.read_until("Z")
            self.assertEqual([t for t, _ in msgs], ["T", "D", "C", "E", "Z"])
            self.assertEqual(wire.parse_error(msgs[3][1])["C"], "42601")
            c.send(wire.query(" ; "))
            self.assertEqual([t for t, _ in c.read_until("Z")], ["I", "Z"])

    def test_not_an_admin_gets_28000_and_nothing_else(self):
        with wire.WireClient(px.port) as c:
            c.startup(user="md5_user", database="seedproxy")
            t, body = c.read_message()
            self.assertEqual(t, "R")
            self.assertEqual(struct.unpack_from("!I", body)[0], 5)  # PostgreSQL asked for md5
            salt = body[4:8]
            inner = hashlib.md5((MD5_PW + "md5_user").encode()).hexdigest()
            c.send(wire.password_message(b"md5" + hashlib.md5(inner.encode() + salt).hexdigest().encode() + b"\0"))
            msgs = c.expect_eof()
        self.assertEqual([t for t, _ in msgs], ["E"], msgs)
        fields = wire.parse_error(msgs[0][1])
        self.assertEqual(fields["C"], "28000")
        self.assertEqual(fields["S"], "FATAL")
        self.assertIn("not allowed to use the seedproxy admin console", fields["M"])
        # libpq sees the same refusal.
        with self.assertRaises(psycopg.OperationalError) as cm:
            psycopg.connect(px.dsn("seedproxy", user="md5_user", password=MD5_PW))
        self.assertIn("not allowed to use the seedproxy admin console", str(cm.exception))
        with admin_client() as admin:
            names, _, rows, _ = result(admin, "SHOW STATS")
        self.assertGreaterEqual(int(dict(zip(names, rows[0]))["clients_refused"]), 2)

    def test_wrong_password_is_postgresql_28P01(self):
        with wire.WireClient(px.port) as c:
            c.startup(user="scram_user", database="seedproxy")
            with self.assertRaises(wire.ServerError) as cm:
                c.authenticate(password="wrong")
            self.assertEqual(cm.exception.fields["C"], "28P01")
            c.expect_eof()
        out = psql("SHOW STATS", user="scram_user", password="wrong")
        self.assertNotEqual(out.returncode, 0)
        self.assertIn("password authentication failed", out.stderr)

    def test_scram_login_is_verified_end_to_end(self):
        # The wire client checks the SCRAM server signature: the exchange was relayed untouched.
        with admin_client("scram_user", SCRAM_PW) as c:
            self.assertIn("server_version", c.parameters)
            self.assertEqual(c.parameters.get("client_encoding"), "UTF8")
            _, _, rows, _ = result(c, "SHOW STATS")
            self.assertEqual(len(rows), 1)

    def test_unknown_command_is_42601_naming_it(self):
        with admin_client() as c:
            fields = error_of(c, "FROBNICATE the seeds")
            self.assertEqual(fields["C"], "42601")
            self.assertIn("FROBNICATE the seeds", fields["M"])
            fields = error_of(c, "SHOW NOTHING")
            self.assertEqual(fields["C"], "42601")
            self.assertIn("NOTHING", fields["M"])
            fields = error_of(c, "SELECT 1")
            self.assertEqual(fields["C"], "42601")
            # still usable
            self.assertEqual(result(c, "SHOW STATS")[3], ["SHOW"])

    def test_materialization_commands_refuse_what_cannot_be_done(self):
        with admin_client() as c:
            for command, code, text in (
                    ("MATERIALIZE item.price_with_tax", "55000", 'materialize.policy "never"'),
                    ("materialize nosuch.attr", "42704", 'seed "nosuch.attr" does not exist'),
                    ("ROLLBACK other.price_with_tax", "42704", "does not exist"),
                    ("PAUSE item.price_with_tax", "55000", "no materialization in progress"),
                    ("resume public.item.price_with_tax", "55000", "no materialization in progress"),
                    ("MATERIALIZE price_with_tax", "42601", "table.attribute"),
                    ("ROLLBACK", "42601", "needs an attribute")):
                with self.subTest(command=command):
                    fields = error_of(c, command)
                    self.assertEqual(fields["C"], code, fields)
                    self.assertIn(text, fields["M"])
            # Without an attribute PAUSE and RESUME apply to every materialization in progress:
            # none here, which is not an error.
            _, tags, _ = c.simple_query("PAUSE; RESUME")
            self.assertEqual(tags, ["PAUSE", "RESUME"])
        self.assertEqual(direct_phase(), "virtual")

    def test_extended_protocol_is_refused_and_the_connection_stays_usable(self):
        with psycopg.connect(px.dsn("seedproxy"), autocommit=True) as conn:
            with self.assertRaises(psycopg.errors.FeatureNotSupported) as cm:
                conn.execute("SHOW STATS", prepare=True)
            self.assertIn("simple queries only", str(cm.exception))
            rows = conn.pgconn.exec_(b"SHOW STATS")
            self.assertEqual(rows.status, psycopg.pq.ExecStatus.TUPLES_OK)
            self.assertEqual(rows.ntuples, 1)
        with admin_client() as c:
            c.send(wire.parse("SHOW SEEDS") + wire.bind() + wire.execute() + wire.sync())
            msgs = c.read_until("Z")
            self.assertEqual([t for t, _ in msgs], ["E", "Z"])
            self.assertEqual(wire.parse_error(msgs[0][1])["C"], "0A000")
            self.assertEqual(result(c, "SHOW STATS")[3], ["SHOW"])

    def test_terminate_closes(self):
        c = admin_client()
        c.send(wire.terminate())
        self.assertEqual(c.expect_eof(), [])
        c.close()

    def test_relayed_sessions_still_work(self):
        with psycopg.connect(px.dsn("postgres"), autocommit=True) as conn:
            self.assertEqual(conn.execute("select current_database()").fetchone(), ("postgres",))


if __name__ == "__main__":
    e2e_common.main()
