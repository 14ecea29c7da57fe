#!/usr/bin/python3
"""Two proxies that agree: phase changes wait for every live proxy's acknowledgement (issue 13).

Proxy A materializes; proxy B declares nothing and reaches the registry as its own control role,
ctl_b. Clients of both read `SELECT *` and the seed without pause the whole time. Then B's
registry connection is cut (ctl_b may not log in any more and its backends are terminated, so
B's notifications are lost and its heartbeats stop) while A materializes and rolls back:

- A's engine visibly waits for B: SHOW MATERIALIZATIONS, /status.json and the metric
  seedproxy_materialization_waiting_proxies name proxy-b until B's lease has run out;
- no client of either proxy ever sees the attribute twice, a NULL in it, or a column set that
  goes back to an older phase; B's clients, while B cannot confirm its registry, get SQLSTATE
  55000 naming the cause for statements with the seed, and answers for the others;
- when ctl_b may log in again, B refreshes before it serves: its first answers already have the
  rolled-back shape, never the stale one.
"""

from __future__ import annotations

import json
import threading
import time
import unittest
import urllib.request

import e2e_common
import materialize_common as mc
import psycopg

from harness.pgcluster import PgCluster, free_port

DB = "fleet"
SEED = {"database": DB, "entity": "public.account", "attribute": "risk", "type": "numeric",
        "expression": "balance * 2", "materialize": {"policy": "manual"}}
WITH_SEED = ["id", "balance", "credit_limit", "risk"]
WITHOUT_SEED = ["id", "balance", "credit_limit"]
STALE = "55000"

pg: PgCluster = None
px_a = None
px_b = None
metrics_a = 0


def setUpModule():
    global pg, px_a, px_b, metrics_a
    if e2e_common.direct_mode():
        raise unittest.SkipTest("the registry is the proxy's own")
    pg = PgCluster().start()
    with pg.connect() as conn:
        conn.execute(f"CREATE DATABASE {DB}")
        conn.execute("CREATE ROLE ctl_b SUPERUSER LOGIN")
    with pg.connect(DB) as conn:
        conn.execute("CREATE TABLE account (id int PRIMARY KEY, balance numeric NOT NULL, "
                     "credit_limit numeric NOT NULL)")
        conn.execute("INSERT INTO account SELECT g, g * 10, 100 FROM generate_series(1, 3000) g")
    metrics_a = free_port()
    px_a = mc.make_proxy(pg.port, [SEED], instance="proxy-a", registry={"lease_seconds": 2},
                         metrics={"host": "127.0.0.1", "port": metrics_a})
    # B's lease is long enough that the wait for it is plain to see.
    px_b = mc.make_proxy(pg.port, [], instance="proxy-b", control={"user": "ctl_b"},
                         materialization={**mc.FAST_MATERIALIZATION, "enabled": False},
                         registry={"lease_seconds": 5})
    for px in (px_a, px_b):
        e2e_common.wait_until_readable(px, DB, "SELECT risk FROM account WHERE id = 1",
                                       "the seed served by " + px.config["instance"])


def tearDownModule():
    e2e_common.finish(px_a)
    e2e_common.finish(px_b)
    if pg is not None:
        pg.stop()


class Reader(threading.Thread):
    """Reads `SELECT *` and the seed through one proxy until stopped, recording every answer as
    (time, columns or None, risk value or None, SQLSTATE or None, message)."""

    def __init__(self, px, name: str):
        super().__init__(name=name, daemon=True)
        self.px = px
        self.stopping = threading.Event()
        self.answers: list[tuple] = []
        self.failure: str | None = None

    def run(self):
        conn = None
        while not self.stopping.is_set():
            try:
                if conn is None:
                    conn = psycopg.connect(self.px.dsn(DB), autocommit=True, prepare_threshold=None)
                self.read(conn, "SELECT * FROM account WHERE id = 7", star=True)
                self.read(conn, "SELECT risk FROM account WHERE id = 7", star=False)
            except psycopg.OperationalError as e:
                self.failure = f"connection through {self.name} lost: {e}"
                return
        if conn is not None:
            conn.close()

    def read(self, conn, sql: str, star: bool):
        try:
            cur = conn.execute(sql)
            row = cur.fetchone()
            names = [d.name for d in cur.description]
            risk = row[names.index("risk")] if "risk" in names else None
            self.answers.append((time.monotonic(), names if star else None, risk, None, ""))
        except psycopg.Error as e:
            self.answers.append((time.monotonic(), None, None, e.sqlstate, str(e)))


def metrics_text() -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{metrics_a}/metrics", timeout=5) as r:
        return r.read().decode()


def status_json() -> dict:
    with urllib.request.urlopen(f"http://127.0.0.1:{metrics_a}/status.json", timeout=5) as r:
        return json.loads(r.read().decode())


def cut_b():
    with pg.connect() as conn:
        conn.execute("ALTER ROLE ctl_b NOLOGIN")
        conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = 'ctl_b'")


def restore_b():
    with pg.connect() as conn:
        conn.execute("ALTER ROLE ctl_b LOGIN")


class Fleet(unittest.TestCase):
    def test_phase_changes_wait_for_a_silent_proxy_and_it_refreshes_before_serving(self):
        readers = [Reader(px_a, "proxy-a"), Reader(px_b, "proxy-b")]
        for r in readers:
            r.start()
        try:
            self.scenario(readers)
        finally:
            for r in readers:
                r.stopping.set()
            for r in readers:
                r.join(30)
            restore_b()
        for r in readers:
            self.assertIsNone(r.failure)
        self.check_answers(readers[0], refused_ok=False)
        self.check_answers(readers[1], refused_ok=True)
        # B told its clients why while it could not confirm the registry.
        refusals = [a for a in readers[1].answers if a[3] == STALE]
        self.assertTrue(refusals, "proxy-b never refused a statement with the seed while cut off")
        self.assertIn('database "fleet"', refusals[0][4])
        self.assertIn("lease", refusals[0][4])

    def scenario(self, readers):
        e2e_common.poll(lambda: all(len(r.answers) > 20 for r in readers), 30, 0.05,
                        "both readers to answer")
        cut_b()
        self.assertEqual(mc.command(px_a, "MATERIALIZE account.risk"), ["MATERIALIZE"])
        # The engine waits for proxy-b, visibly, until B's lease runs out.
        seen = {"console": None, "json": None, "metric": None}

        # Right after the phase switch A may not have acknowledged it itself yet ("waiting for 2 of
        # 2 proxies: proxy-a ..., proxy-b ..."): what must show is the wait for proxy-b alone.
        def waiting():
            row = mc.materialization(px_a, "risk")
            if row and (row.get("waiting_for") or "").startswith("waiting for 1 of 2 proxies: proxy-b"):
                seen["console"] = row["waiting_for"]
            job = [j for j in status_json()["materializations"] if j["attribute"] == "risk"]
            if job and job[0].get("waiting_for", "").startswith("waiting for 1 of 2 proxies: proxy-b"):
                seen["json"] = job[0]["waiting_for"]
            for line in metrics_text().splitlines():
                if line.startswith("seedproxy_materialization_waiting_proxies{") and \
                        'attribute="risk"' in line and line.endswith(" 1"):
                    seen["metric"] = line
            return all(seen.values())
        e2e_common.poll(waiting, 20, 0.05, "A's engine to show that it waits for proxy-b")
        self.assertRegex(seen["console"], r"^waiting for 1 of 2 proxies: proxy-b .*last seen")
        with pg.connect(DB) as conn:
            columns = conn.execute("SELECT count(*) FROM pg_attribute WHERE attrelid = 'account'::regclass "
                                   "AND attname = 'risk' AND NOT attisdropped").fetchone()[0]
        self.assertEqual(columns, 0, "the column was added while proxy-b's lease was live")
        mc.wait_step(px_a, "risk", "materialized", timeout=120)
        self.rollback_asked_at = time.monotonic()
        self.assertEqual(mc.command(px_a, "ROLLBACK account.risk"), ["ROLLBACK"])
        mc.wait_step(px_a, "risk", "rolled_back", timeout=60)
        restore_b()
        # B refreshes before it serves: from a new session at once, never the stale shape.
        def b_serves_rollback():
            with psycopg.connect(px_b.dsn(DB), autocommit=True) as conn:
                try:
                    cur = conn.execute("SELECT * FROM account WHERE id = 7")
                except psycopg.Error as e:
                    self.assertEqual(e.sqlstate, STALE, str(e))
                    return False
                names = [d.name for d in cur.description]
                self.assertEqual(names, WITHOUT_SEED, "proxy-b served a stale shape after coming back")
                return True
        e2e_common.poll(b_serves_rollback, 30, 0.05, "proxy-b to serve the rolled-back shape")
        e2e_common.poll(lambda: readers[1].answers and readers[1].answers[-1][3] == "42703", 30, 0.05,
                        "proxy-b's reader to get 42703 for the rolled-back seed")

    def check_answers(self, reader, refused_ok: bool):
        """Never the attribute twice or NULL, never a stale shape after a newer one; the seed
        unknown (42703) only once its rollback was asked for."""
        newest = None  # the newest shape seen: WITH_SEED, then WITHOUT_SEED
        for at, names, risk, state, message in reader.answers:
            context = f"{reader.name} at +{at - reader.answers[0][0]:.2f}s"
            if state is not None:
                allowed = {"42703"} | ({STALE} if refused_ok else set())
                self.assertIn(state, allowed, f"{context}: {message}")
                if state == "42703":
                    self.assertGreater(at, self.rollback_asked_at, f"{context}: {message}")
                continue
            if names is not None:
                self.assertIn(names, (WITH_SEED, WITHOUT_SEED), f"{context}: columns {names}")
                if newest == WITHOUT_SEED:
                    self.assertEqual(names, WITHOUT_SEED, f"{context}: the seed came back")
                newest = names
            if names is None or "risk" in names:
                self.assertEqual(risk, 140, f"{context}: risk read {risk!r}")


if __name__ == "__main__":
    e2e_common.main()
