#!/usr/bin/python3
"""Hot reload: SIGHUP, a changed file and the admin RELOAD apply a new configuration without
dropping a connection; a configuration that fails is refused as a whole and the old one stays."""

import copy
import json
import os
import signal
import unittest

import e2e_common
import psycopg

from harness import wire
from harness.pgcluster import PgCluster


def seed(database: str, attribute: str, expression: str, entity: str = "public.account") -> dict:
    return {"database": database, "entity": entity, "attribute": attribute, "type": "numeric",
            "expression": expression}


pg: PgCluster = None
px_hup = None  # reload.watch_file off: only SIGHUP and RELOAD reload
px_watch = None  # reload.watch_file on


def setUpModule():
    global pg, px_hup, px_watch
    if e2e_common.direct_mode():
        raise unittest.SkipTest("reload is the proxy's own")
    pg = PgCluster().start()
    for database in ("hup", "watch"):
        with pg.connect() as conn:
            conn.execute(f"CREATE DATABASE {database}")
        with pg.connect(database) as conn:
            conn.execute("CREATE TABLE account (id int PRIMARY KEY, balance numeric NOT NULL)")
            conn.execute("INSERT INTO account VALUES (1, 10), (2, 20)")
    common = {"control": {"user": "postgres"}, "admin": {"users": ["postgres"]}}
    px_hup = e2e_common.Proxy(upstream_port=pg.port, seeds=[seed("hup", "a_double", "balance * 2")],
                              reload={"watch_file": False}, **common)
    px_watch = e2e_common.Proxy(upstream_port=pg.port, seeds=[seed("watch", "a_double", "balance * 2")],
                                reload={"watch_file": True}, **common)


def tearDownModule():
    e2e_common.finish(px_hup)
    e2e_common.finish(px_watch)
    if pg is not None:
        pg.stop()


def write_config(px, text: str | None = None, **changes) -> None:
    """Replaces the proxy's file the way editors do (write aside, rename over)."""
    if text is None:
        config = copy.deepcopy(px.config)
        for key, value in changes.items():
            if isinstance(value, dict) and isinstance(config.get(key), dict):
                config[key].update(value)
            else:
                config[key] = value
        text = json.dumps(config, indent=2)
    aside = px.config_path + ".new"
    with open(aside, "w") as f:
        f.write(text)
    os.replace(aside, px.config_path)


def value_of(conn, sql: str):
    try:
        return conn.execute(sql).fetchone()[0]
    except psycopg.errors.UndefinedColumn:
        return None


def wait_log(px, text: str, start: int, timeout: float = 30) -> str:
    def found():
        log = px.log_text()[start:]
        for line in log.splitlines():
            if text in line:
                return line
        return None
    return e2e_common.poll(found, timeout, 0.05, f"log line containing {text!r}")


def admin(px) -> wire.WireClient:
    c = wire.WireClient(px.port)
    c.connect(user="postgres", database="seedproxy")
    return c


def stats(px) -> dict:
    with admin(px) as c:
        _, _, msgs = c.simple_query("SHOW STATS")
    names = [col["name"] for t, b in msgs if t == "T" for col in wire.parse_row_description(b)]
    row = [wire.parse_data_row(b) for t, b in msgs if t == "D"][0]
    return {n: v.decode() for n, v in zip(names, row)}


def connect(px, database: str):
    conn = psycopg.connect(px.dsn(database), autocommit=True)
    # psycopg prepares a statement after 5 runs; a prepared statement keeps the rewrite it was
    # prepared with (docs/admin.md), and these tests are about what the proxy rewrites.
    conn.prepare_threshold = None
    e2e_common.poll(lambda: value_of(conn, "SELECT a_double FROM account WHERE id = 1"), 30, 0.05,
                    "the first seed to be readable")
    return conn


class ReloadBySignal(unittest.TestCase):
    def test_1_sighup_adds_a_seed_for_a_connected_client(self):
        with connect(px_hup, "hup") as conn:
            pid = conn.info.backend_pid
            self.assertIsNone(value_of(conn, "SELECT b_triple FROM account WHERE id = 1"))
            write_config(px_hup, seeds=[seed("hup", "a_double", "balance * 2"),
                                        seed("hup", "b_triple", "balance * 3")])
            px_hup.signal(signal.SIGHUP)
            value = e2e_common.poll(lambda: value_of(conn, "SELECT b_triple FROM account WHERE id = 1"),
                                    30, 0.05, "the new seed to reach the connected client")
            self.assertEqual(value, 30)
            self.assertEqual(conn.info.backend_pid, pid)

    def test_2_invalid_json_keeps_the_old_configuration(self):
        with connect(px_hup, "hup") as conn:
            failed_before = int(stats(px_hup)["reloads_failed"])
            start = len(px_hup.log_text())
            write_config(px_hup, text='{"listen": {"port": 1,}')
            px_hup.signal(signal.SIGHUP)
            line = wait_log(px_hup, "configuration reload (SIGHUP) refused", start)
            self.assertIn(px_hup.config_path, line)
            self.assertIn("previous configuration stays in force", line)
            self.assertTrue(px_hup.running())
            # Nothing dropped: the connection opened before is still usable, seeds still work.
            self.assertEqual(value_of(conn, "SELECT a_double FROM account WHERE id = 2"), 40)
            with psycopg.connect(px_hup.dsn("hup"), autocommit=True) as fresh:
                self.assertEqual(value_of(fresh, "SELECT a_double FROM account WHERE id = 1"), 20)
            self.assertEqual(int(stats(px_hup)["reloads_failed"]), failed_before + 1)

    def test_3_an_invalid_seed_refuses_the_whole_file(self):
        with connect(px_hup, "hup") as conn:
            start = len(px_hup.log_text())
            write_config(px_hup, seeds=[seed("hup", "a_double", "balance * 2"),
                                        seed("hup", "c_quad", "balance * 4"),
                                        seed("hup", "d_gone", "1", entity="public.no_such_table")])
            px_hup.signal(signal.SIGHUP)
            line = wait_log(px_hup, "configuration reload (SIGHUP) refused", start)
            self.assertIn("no_such_table", line)
            # The valid seed next to it was not applied either.
            self.assertIsNone(value_of(conn, "SELECT c_quad FROM account WHERE id = 1"))
            self.assertEqual(value_of(conn, "SELECT a_double FROM account WHERE id = 1"), 20)
            with admin(px_hup) as c:
                rows, _, _ = c.simple_query("SHOW SEEDS")
            self.assertNotIn("c_quad", [r[2] for r in rows])

    def test_4_admin_reload_reports_a_bad_file(self):
        good = [seed("hup", "a_double", "balance * 2"), seed("hup", "b_triple", "balance * 3")]
        bad = copy.deepcopy(good)
        bad[1]["type"] = 5
        write_config(px_hup, seeds=bad)
        with admin(px_hup) as c:
            with self.assertRaises(wire.ServerError) as cm:
                c.simple_query("RELOAD")
            fields = cm.exception.fields
            self.assertEqual(fields["C"], "F0000")
            self.assertIn("seeds[1].type", fields["M"])
            write_config(px_hup, seeds=good)
            _, tags, _ = c.simple_query("reload")
            self.assertEqual(tags, ["RELOAD"])

    def test_5_restart_only_settings_are_kept(self):
        start = len(px_hup.log_text())
        with psycopg.connect(px_hup.dsn("hup"), autocommit=True) as conn:
            write_config(px_hup, listen={"port": px_hup.port + 1}, limits={"max_clients": 4321},
                         seeds=[seed("hup", "a_double", "balance * 2")])
            with admin(px_hup) as c:
                _, tags, _ = c.simple_query("RELOAD")
                self.assertEqual(tags, ["RELOAD"])
                rows, _, _ = c.simple_query("SHOW CONFIG")
            config = dict(rows)
            self.assertEqual(config["limits.max_clients"], "4321")
            self.assertEqual(config["listen"], f"127.0.0.1:{px_hup.port}")
            line = wait_log(px_hup, "cannot change without a restart", start)
            self.assertIn("listen.port", line)
            self.assertEqual(conn.execute("SELECT 1").fetchone(), (1,))
        write_config(px_hup)  # back to the file as started

    def test_6_a_password_in_a_file_others_can_read_is_a_warning(self):
        start = len(px_hup.log_text())
        write_config(px_hup, control={"password": "unused-under-trust"})
        os.chmod(px_hup.config_path, 0o644)
        px_hup.signal(signal.SIGHUP)
        line = wait_log(px_hup, "holds a password and is readable by any user", start)
        self.assertIn(px_hup.config_path, line)
        self.assertIn("(mode 0644)", line)
        write_config(px_hup)  # back to the file as started


class ReloadByFileWatch(unittest.TestCase):
    def test_1_a_changed_file_is_picked_up_and_no_stale_rewrite_is_served(self):
        with connect(px_watch, "watch") as conn:
            query = "SELECT a_double FROM account WHERE id = 1"
            self.assertEqual(value_of(conn, query), 20)
            self.assertEqual(value_of(conn, query), 20)  # now cached
            start = len(px_watch.log_text())
            write_config(px_watch, seeds=[seed("watch", "a_double", "balance * 2 + 1")])
            value = e2e_common.poll(lambda: value_of(conn, query) == 21, 30, 0.05,
                                    "the changed expression to reach the connected client")
            self.assertTrue(value)
            line = wait_log(px_watch, "configuration reloaded", start)
            self.assertIn("configuration file changed", line)

    def test_2_a_broken_file_is_refused_by_the_watch_too(self):
        with connect(px_watch, "watch") as conn:
            start = len(px_watch.log_text())
            write_config(px_watch, text="[]")
            line = wait_log(px_watch, "configuration reload (configuration file changed) refused", start)
            self.assertIn("JSON object", line)
            self.assertIsNotNone(value_of(conn, "SELECT a_double FROM account WHERE id = 1"))
            write_config(px_watch, seeds=[seed("watch", "a_double", "balance * 2 + 1")])
            wait_log(px_watch, "configuration reloaded", start)


if __name__ == "__main__":
    e2e_common.main()
