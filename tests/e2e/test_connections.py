#!/usr/bin/python3
"""The connections the proxy holds to each database (issue 13, docs/operations.md).

- A database without a registry gets no standing connection: databases are created, used through
  the proxy and dropped in a loop, and CREATE DATABASE ... TEMPLATE of a used one works.
- A database with seeds keeps one registry connection (and its engine's) while a seed is live;
  DROP DATABASE fails while it does, and succeeds after the documented step, the admin console's
  KILL, which also ends the proxy's sessions there.
- When a database's last seed is rolled back, the proxy lets it go by itself.

Connections are counted in pg_stat_activity by application_name ("seedproxy ..." for the proxy's
own, the client's for sessions), polled with a deadline, never waited for by sleeping.
"""

from __future__ import annotations

import unittest

import e2e_common
import materialize_common as mc
import psycopg

from harness import wire
from harness.pgcluster import PgCluster

SEEDED = "with_seeds"
SEED = {"database": SEEDED, "entity": "public.account", "attribute": "risk", "type": "numeric",
        "expression": "balance * 2", "materialize": {"policy": "manual"}}

pg: PgCluster = None
px = None


def setUpModule():
    global pg, px
    if e2e_common.direct_mode():
        raise unittest.SkipTest("the proxy's own connections")
    pg = PgCluster().start()
    make_database(SEEDED)
    px = mc.make_proxy(pg.port, [SEED], instance="connections-test")
    e2e_common.wait_until_readable(px, SEEDED, "SELECT risk FROM account WHERE id = 1", "the seed")


def tearDownModule():
    e2e_common.stop(px, pg)


def make_database(name: str, through=None) -> None:
    with (psycopg.connect(through.dsn("postgres"), autocommit=True) if through else pg.connect()) as c:
        c.execute(f'CREATE DATABASE "{name}"')
    with pg.connect(name) as conn:
        conn.execute("CREATE TABLE account (id int PRIMARY KEY, balance numeric NOT NULL)")
        conn.execute("INSERT INTO account VALUES (1, 10), (2, 20)")


def proxy_connections(database: str) -> list[str]:
    """The proxy's own connections to `database` (its application names)."""
    with pg.connect() as conn:
        rows = conn.execute("SELECT application_name FROM pg_stat_activity "
                            "WHERE datname = %s AND application_name LIKE 'seedproxy%%'",
                            (database,)).fetchall()
    return [r[0] for r in rows]


def drop_through_proxy(database: str) -> None:
    with psycopg.connect(px.dsn("postgres"), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE "{database}"')


def kill(database: str) -> tuple[list[str], list[str]]:
    """KILL on the admin console: (command tags, notices)."""
    with wire.WireClient(px.port, timeout=60) as c:
        c.connect(user="postgres", database="seedproxy")
        rows, tags, msgs = c.simple_query(f'KILL "{database}"', timeout=60)
    notices = [wire.parse_error(b)["M"] for t, b in msgs if t == "N"]
    return tags, notices


class Connections(unittest.TestCase):
    def test_1_databases_without_registry_are_created_used_and_dropped_in_a_loop(self):
        for i in range(5):
            name = f"scratch_{i}"
            make_database(name, through=px)
            with psycopg.connect(px.dsn(name), autocommit=True) as conn:
                conn.execute("CREATE TABLE t (a int)")
                conn.execute("INSERT INTO t VALUES (1)")
                self.assertEqual(conn.execute("SELECT sum(a) FROM account, t").fetchone()[0], 2)
                # While a client uses it, the proxy listens there (another proxy may add seeds).
                self.assertEqual(proxy_connections(name), ["seedproxy registry"])
            # Gone soon after the last session; DROP DATABASE waits up to 5 s for that anyway.
            e2e_common.poll(lambda: not proxy_connections(name), 10, 0.05,
                            f"the proxy to let {name} go")
            if i == 4:
                with psycopg.connect(px.dsn("postgres"), autocommit=True) as conn:
                    conn.execute(f'CREATE DATABASE copy_of_{i} TEMPLATE "{name}"')
                drop_through_proxy(f"copy_of_{i}")
            drop_through_proxy(name)
        with pg.connect() as conn:
            left = conn.execute("SELECT count(*) FROM pg_database WHERE datname LIKE 'scratch%'").fetchone()[0]
        self.assertEqual(left, 0)

    def test_2_a_database_with_seeds_is_dropped_after_kill(self):
        name = "seeded_drop"
        make_database(name)
        seeded = dict(SEED, database=name)
        px.config["seeds"] = [SEED, seeded]
        self.write_config()
        self.assertEqual(mc.command(px, "RELOAD"), ["RELOAD"])
        client = psycopg.connect(px.dsn(name), autocommit=True)
        e2e_common.poll(lambda: client.execute("SELECT risk FROM account WHERE id = 2").fetchone()[0] == 40,
                        20, 0.05, "the seed in " + name)
        # A live seed: the proxy follows the registry there even with no client.
        self.assertIn("seedproxy registry", proxy_connections(name))
        with self.assertRaises(psycopg.errors.ObjectInUse):
            with pg.connect() as conn:
                conn.execute(f'DROP DATABASE "{name}"')
        tags, notices = kill(name)
        self.assertEqual(tags, ["KILL"])
        self.assertRegex(notices[0], rf'released database "{name}": 1 session\(s\) ended')
        with self.assertRaises(psycopg.OperationalError):
            client.execute("SELECT 1")  # ended by KILL (57P01)
        client.close()
        # The ended session's backend leaves after its client heard why (it closes its upstream
        # connection last, and PostgreSQL's backend exits on its own time): poll.
        e2e_common.poll(lambda: proxy_connections(name) == [], 10, 0.05,
                        f"the proxy's connections to {name} gone after KILL")
        drop_through_proxy(name)
        # The proxy keeps serving its other database.
        with psycopg.connect(px.dsn(SEEDED), autocommit=True) as conn:
            self.assertEqual(conn.execute("SELECT risk FROM account WHERE id = 1").fetchone()[0], 20)
        px.config["seeds"] = [SEED]
        self.write_config()
        self.assertEqual(mc.command(px, "RELOAD"), ["RELOAD"])

    def test_3_a_database_whose_last_seed_is_rolled_back_is_let_go(self):
        with psycopg.connect(px.dsn(SEEDED), autocommit=True) as conn:
            self.assertEqual(conn.execute("SELECT risk FROM account WHERE id = 1").fetchone()[0], 20)
        self.assertIn("seedproxy registry", proxy_connections(SEEDED))
        self.assertEqual(mc.command(px, "ROLLBACK account.risk"), ["ROLLBACK"])
        mc.wait_step(px, "risk", "rolled_back", timeout=60)
        e2e_common.poll(lambda: not proxy_connections(SEEDED), 20, 0.1,
                        "the proxy to close its connections to a database without a live seed")
        # SHOW MATERIALIZATIONS still tells what happened last.
        self.assertEqual(mc.materialization(px, "risk")["step"], "rolled_back")
        drop_through_proxy(SEEDED)

    def test_4_kill_refuses_the_console_itself(self):
        with wire.WireClient(px.port, timeout=10) as c:
            c.connect(user="postgres", database="seedproxy")
            with self.assertRaises(wire.ServerError) as caught:
                c.simple_query("KILL seedproxy")
        self.assertEqual(caught.exception.sqlstate, "55000")

    def write_config(self):
        import json
        with open(px.config_path, "w") as f:
            json.dump(px.config, f, indent=2)


if __name__ == "__main__":
    e2e_common.main()
