#!/usr/bin/python3
"""Failover: upstream lists a primary and its streaming standby (target_session_attrs read-write).
pgbench runs through the proxy while a materialization is in progress; the standby is promoted and
the old primary stopped. Clients on the old primary get an error, new connections reach the new
primary, the registry and the materialization resume there, and nothing committed is lost."""

import os
import re
import subprocess
import threading
import unittest

import e2e_common
import failover_common
import materialize_common as mc
import psycopg

from harness import pgcluster
from harness.pgcluster import PgCluster

PG_BIN = pgcluster.PG_BIN
PGBENCH = os.environ.get("SEEDPROXY_PGBENCH", "/usr/bin/pgbench")
ROWS = 20000
STALL_AT = 10000  # the backfill stops here until the old primary is gone
CLIENTS = 4
SEED = {"database": "postgres", "entity": "acct", "attribute": "score", "type": "bigint",
        "expression": "balance * 2 + id", "materialize": {"policy": "manual"}}

primary: PgCluster = None
standby: PgCluster = None
px = None


def setUpModule():
    global px, primary, standby
    primary, standby = failover_common.start_pair(synchronous=True)
    primary.psql(f"create table acct (id int primary key, balance int not null); "
                 f"insert into acct select g, g % 1000 from generate_series(1, {ROWS}) g")
    subprocess.run([PGBENCH, "-i", "-s", "1", "-q", "-h", "127.0.0.1", "-p", str(primary.port),
                    "-U", "postgres", "postgres"], check=True, capture_output=True)
    px = failover_common.FailoverProxy([primary.port, standby.port], instance="failover-test",
                                       seeds=[SEED], control={"user": "postgres"},
                                       admin={"users": ["postgres"]},
                                       materialization={**mc.FAST_MATERIALIZATION,
                                                        "max_batch_rows": 200})


def tearDownModule():
    e2e_common.finish(px)
    for pg in (primary, standby):
        if pg is not None:
            pg.stop()


def pgbench(*args, timeout=180):
    cmd = [PGBENCH, "-h", "127.0.0.1", "-p", str(px.port), "-U", "postgres", "-n", *args, "postgres"]
    proc = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=timeout,
                          env=dict(os.environ, PGCONNECT_TIMEOUT="10"))
    out = proc.stdout + proc.stderr
    m = re.search(r"number of transactions actually processed: (\d+)", out)
    if m is None:
        raise AssertionError(f"pgbench printed no transaction count ({proc.returncode}):\n{out}")
    return proc.returncode, int(m.group(1)), out


def history(pg) -> int:
    return pg.psql("select count(*) from pgbench_history")[0][0]


def on_primary_through_proxy():
    """A new connection through the proxy that lands on a primary and can write: its port."""
    try:
        with psycopg.connect(px.dsn(connect_timeout=5), autocommit=True) as conn:
            if conn.execute("select pg_is_in_recovery()").fetchone()[0]:
                return None
            conn.execute("create temp table probe (x int); insert into probe values (1)")
            return conn.execute("select current_setting('port')::int").fetchone()[0]
    except psycopg.Error:
        return None


class Failover(unittest.TestCase):
    def test_promotion_under_load(self):
        e2e_common.wait_until_readable(px, "postgres", "select score from acct where id = 1",
                                       "the seed to be readable")
        self.assertEqual(on_primary_through_proxy(), primary.port)
        stall = mc.BackfillStall(primary, "postgres", "acct", "id", STALL_AT)
        self.assertEqual(mc.command(px, "MATERIALIZE acct.score"), ["MATERIALIZE"])
        mc.wait_backfilling(px, "score")
        e2e_common.poll(lambda: stall.waiters() > 0, 30, 0.05, "the backfill to reach the stall")

        result = {}
        def run_load():
            result.update(zip(("rc", "committed", "out"), pgbench("-c", str(CLIENTS), "-j", "2", "-T", "60")))
        load = threading.Thread(target=run_load)
        load.start()
        e2e_common.poll(lambda: history(primary) >= 200, 60, 0.05, "pgbench to commit on the primary")

        pgcluster._run_pg([os.path.join(PG_BIN, "pg_ctl"), "promote", "-w", "-D", standby.data_dir])
        primary.stop()
        stall.holder.close()  # its server is gone; the stall trigger no longer waits for anything
        load.join(timeout=120)
        self.assertFalse(load.is_alive(), "pgbench did not end after the primary stopped")
        # The clients on the old primary were told (pgbench aborts a client on a lost connection).
        self.assertNotEqual(result["rc"], 0, result["out"])
        self.assertRegex(result["out"], r"aborted|terminat|connection|server closed", result["out"])

        # New connections reach the new primary.
        port = e2e_common.poll(on_primary_through_proxy, 60, 0.1, "a writable connection through the proxy")
        self.assertEqual(port, standby.port)
        rc, committed_after, out = pgbench("-c", "2", "-t", "50")
        self.assertEqual(rc, 0, out)
        self.assertEqual(committed_after, 100, out)

        # Nothing the clients saw committed is lost (a commit whose answer was lost may be extra).
        committed = result["committed"] + committed_after
        rows = history(standby)
        self.assertGreaterEqual(rows, committed, f"{rows} history rows for {committed} commits")
        self.assertLessEqual(rows, committed + CLIENTS)

        # The registry and the materialization resume on the new primary.
        mc.wait_step(px, "score", "materialized", timeout=120)
        with standby.connect() as conn:
            self.assertEqual(mc.mismatches(conn, "acct", "score", SEED["expression"], "bigint"), 0)
        with psycopg.connect(px.dsn(), autocommit=True) as conn:
            self.assertEqual(conn.execute("select score from acct where id = 7").fetchone()[0], 21)
            self.assertEqual(conn.execute("select count(*) from acct where score is null").fetchone()[0], 0)
        self.assertIn("primary is 127.0.0.1:" + str(standby.port), px.log_text())


if __name__ == "__main__":
    e2e_common.main()
