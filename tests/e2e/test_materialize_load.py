#!/usr/bin/python3
"""A complete materialization under concurrent read-write load, with zero client errors.

Workload through the proxy, running before MATERIALIZE and until after the seed is materialized:
- two pgbench processes (-M simple and -M prepared, two clients each) with a custom script that
  reads the seed and bumps a counter column of a random row;
- a Python writer that keeps updating the expression's inputs (a, b) of a fixed set of rows,
  checks the score each UPDATE ... RETURNING reports, and records how often it wrote each row.

Afterwards: pgbench exited 0 with "number of failed transactions: 0", the writer saw no error and
no wrong score; directly on the database every row's column equals the expression, the columns no
client writes (id, note, pad) have the checksum they had before, a and b are exactly what the
writer's record says, and sum(counter) equals the transactions pgbench reports.
"""

from __future__ import annotations

import os
import re
import subprocess
import tempfile
import threading
import time
import unittest

import e2e_common
import materialize_common as mc
import psycopg

from harness.pgcluster import PgCluster

DB = "loaddb"
ROWS = 25_000
EXPR = "a::bigint * 1000 + b"
TYPE = "bigint"
SEEDS = [{"database": DB, "entity": "public.item", "attribute": "score", "type": TYPE,
          "expression": EXPR, "materialize": {"policy": "manual"}}]
UNTOUCHED = ["id", "note", "pad"]
PGBENCH_SECONDS = 35
WRITER_IDS = list(range(1, ROWS + 1, 37))

PGBENCH_SCRIPT = f"""\\set id random(1, {ROWS})
SELECT score, a, b FROM item WHERE id = :id;
UPDATE item SET counter = counter + 1 WHERE id = :id RETURNING score;
"""

pg: PgCluster = None
px = None


def setUpModule():
    global pg, px
    if e2e_common.direct_mode():
        raise unittest.SkipTest("materialization is the proxy's own")
    pg = PgCluster().start()
    with pg.connect() as conn:
        conn.execute(f"CREATE DATABASE {DB}")
    with pg.connect(DB) as conn:
        conn.execute("CREATE TABLE item (id int PRIMARY KEY, a int NOT NULL, b int NOT NULL, "
                     "counter int NOT NULL DEFAULT 0, note text NOT NULL, pad text)")
        conn.execute("INSERT INTO item (id, a, b, note, pad) SELECT i, (i * 7919) % 1000, (i::bigint * 104729) % 997, "
                     "'note ' || i, CASE WHEN i % 5 = 0 THEN NULL ELSE repeat(md5(i::text), 2) END "
                     f"FROM generate_series(1, {ROWS}) i")
        conn.execute("VACUUM ANALYZE item")
    # This test is about exactness and zero errors under load; how the latency guard paces is
    # bench/materialize.sh's subject. In CI's parallel suite the other tests move the clients' p99
    # more than the backfill does, and the default allowance (1.4 times the p99 of the 30 s
    # before) stretched the run past the load (53 % verified after 30 s). On a quiet machine the
    # baseline is a fraction of a millisecond (0.57 to 1.13 ms over the 3.5 s before), and at 3
    # a 2 ms p99 while a batch runs held the batches at their slowest: 4 of 5 runs had not
    # verified after 30 s. At 10 the guard still takes its baseline and judges every window, and
    # slows down only for a real collapse.
    px = mc.make_proxy(pg.port, SEEDS, instance="load-mat", materialization={"latency_ratio": 10})
    e2e_common.wait_until_readable(px, DB, "SELECT score FROM item WHERE id = 1", "the seed to be readable")


def tearDownModule():
    e2e_common.stop(px, pg)


class Writer(threading.Thread):
    """Updates a and b of WRITER_IDS round robin through the proxy; every UPDATE must report the
    score of the row it wrote."""

    def __init__(self):
        super().__init__(daemon=True)
        self.stop_event = threading.Event()
        self.writes = {i: 0 for i in WRITER_IDS}
        self.errors: list[str] = []
        self.total = 0

    def run(self):
        try:
            with psycopg.connect(px.dsn(DB, application_name="writer"), autocommit=True) as conn:
                i = 0
                while not self.stop_event.is_set():
                    row_id = WRITER_IDS[i % len(WRITER_IDS)]
                    i += 1
                    try:
                        a, b, score = conn.execute(
                            "UPDATE item SET a = a + 1, b = b - 3 WHERE id = %s RETURNING a, b, score",
                            (row_id,)).fetchone()
                    except psycopg.Error as e:
                        self.errors.append(f"UPDATE id {row_id} after {self.total} writes: "
                                           f"{e.diag.sqlstate} {e}")
                        if conn.closed:
                            return
                        continue
                    self.writes[row_id] += 1
                    self.total += 1
                    if score != a * 1000 + b:
                        self.errors.append(f"id {row_id}: RETURNING score {score}, expected {a * 1000 + b}")
        except Exception as e:  # noqa: BLE001 - reported by the test
            self.errors.append(f"writer died: {e!r}")


def start_pgbench(script: str, mode: str, clients: int) -> subprocess.Popen:
    cmd = [mc.PGBENCH, "-h", "127.0.0.1", "-p", str(px.port), "-U", "postgres", "-n", "-M", mode,
           "-c", str(clients), "-j", "1", "-T", str(PGBENCH_SECONDS), "-f", script, DB]
    return subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, env=dict(os.environ, PGCONNECT_TIMEOUT="10"))


def processed(output: str) -> int:
    m = re.search(r"number of transactions actually processed: (\d+)", output)
    if m is None:
        raise AssertionError(f"no transaction count in pgbench's output:\n{output}")
    return int(m.group(1))


class MaterializeUnderLoad(unittest.TestCase):
    def test_materialize_under_pgbench_and_writer(self):
        with pg.connect(DB) as conn:
            before_untouched = mc.checksum(conn, "item", UNTOUCHED)
            start_ab = {r[0]: (r[1], r[2]) for r in conn.execute("SELECT id, a, b FROM item")}
        tmp = tempfile.mkdtemp(prefix="mat-load-")
        script = os.path.join(tmp, "read_update.sql")
        with open(script, "w") as f:
            f.write(PGBENCH_SCRIPT)
        writer = Writer()
        benches = [("simple", start_pgbench(script, "simple", 2)), ("prepared", start_pgbench(script, "prepared", 2))]
        writer.start()
        outputs = {}
        try:
            # The load is on before the materialization starts, and for long enough (the proxy
            # samples its clients' latency once a second) that the engine takes its baseline from
            # the seconds before MATERIALIZE: at least two samples apart, over 400 transactions.
            load_began = time.monotonic()
            e2e_common.poll(lambda: writer.total > 20 and time.monotonic() - load_began > 3 and
                            pg.psql("SELECT sum(counter) FROM item", dbname=DB)[0][0] > 1000,
                            60, 0.05, "pgbench and the writer to get going")
            started = time.monotonic()
            self.assertEqual(mc.command(px, "MATERIALIZE item.score"), ["MATERIALIZE"])
            row = mc.wait_step(px, "score", "materialized", timeout=PGBENCH_SECONDS - 5)
            took = time.monotonic() - started
            print(f"\n  materialized under load in {took:.1f}s: {row}")
            still = [mode for mode, p in benches if p.poll() is None]
            self.assertEqual(len(still), 2, "pgbench ended before the materialization did: the load did not "
                                            "cover it (raise PGBENCH_SECONDS)")
            self.assertEqual(mc.seed_phase(px, "score"), "materialized")
            # Some load after the switch to the column as well.
            mark = writer.total
            e2e_common.poll(lambda: writer.total > mark + 20, 10, 0.05, "the writer to write after the switch")
            for mode, p in benches:
                outputs[mode] = p.communicate(timeout=PGBENCH_SECONDS + 60)[0]
        finally:
            writer.stop_event.set()
            writer.join(timeout=30)
            for _, p in benches:
                if p.poll() is None:
                    p.kill()
                    p.wait()
        for mode, p in benches:
            out = outputs[mode]
            print(f"  pgbench -M {mode}: exit {p.returncode}, {processed(out)} transactions")
            self.assertEqual(p.returncode, 0, f"pgbench -M {mode} exited {p.returncode}:\n{out}")
            self.assertIn("number of failed transactions: 0 ", out, f"pgbench -M {mode}:\n{out}")
            self.assertNotIn("aborted", out, f"pgbench -M {mode}:\n{out}")
        self.assertEqual(writer.errors, [], f"the writer saw {len(writer.errors)} errors")
        print(f"  writer: {writer.total} updates of {len(WRITER_IDS)} rows")
        # The sessions' transactions reached the engine: it took their p99 from the seconds before
        # MATERIALIZE (the history the proxy samples every second), not from a wait after it.
        baseline = [line for line in px.log_text().splitlines() if "p99 transaction takes" in line]
        self.assertEqual(len(baseline), 1, "the engine's latency baseline line, once:\n" + "\n".join(baseline))
        self.assertIn("item.score", baseline[0])
        self.assertIn("before the materialization ran", baseline[0])

        with pg.connect(DB) as conn:
            self.assertEqual(mc.mismatches(conn, "item", "score", EXPR, TYPE), 0,
                             "rows whose column differs from the expression")
            self.assertEqual(mc.checksum(conn, "item", UNTOUCHED), before_untouched,
                             "columns no client writes changed")
            after_ab = {r[0]: (r[1], r[2]) for r in conn.execute("SELECT id, a, b FROM item")}
            total_counter = conn.execute("SELECT sum(counter) FROM item").fetchone()[0]
            objects = mc.engine_objects(conn, "item", "score")
        expected_ab = {i: (a + writer.writes.get(i, 0), b - 3 * writer.writes.get(i, 0))
                       for i, (a, b) in start_ab.items()}
        wrong = [(i, after_ab.get(i), want) for i, want in expected_ab.items() if after_ab.get(i) != want]
        self.assertEqual(len(after_ab), ROWS)
        self.assertEqual(wrong[:10], [], f"{len(wrong)} rows whose a, b are not what the writer wrote")
        self.assertEqual(total_counter, sum(processed(o) for o in outputs.values()),
                         "sum(counter) is not the number of pgbench transactions")
        self.assertEqual(objects["columns"], 1, objects)
        self.assertEqual(len(objects["triggers"]), 1, objects)
        # Reads through the proxy now see the physical column.
        with psycopg.connect(px.dsn(DB), autocommit=True) as conn:
            got = conn.execute("SELECT count(*) FROM item WHERE score = a::bigint * 1000 + b").fetchone()[0]
        self.assertEqual(got, ROWS)


if __name__ == "__main__":
    e2e_common.main()
