#!/usr/bin/python3
"""Server-side state a client made through the proxy, across a seed's phases (issue 12 part 3):
statements prepared with SQL PREPARE (through psql, and psycopg's simple and extended protocols),
statements psycopg prepares itself (prepare=True), cursors, and temporary tables, while the seed
goes virtual -> materializing (the engine's backfill held half way) -> materialized -> rolled
back, driven by the admin console's MATERIALIZE and ROLLBACK. Every answer is compared with the
same statements on a twin table whose risk_score is a real GENERATED ALWAYS AS (...) STORED column
(dropped when the seed is rolled back): rows, column names and types, errors, transaction states,
in and out of transaction blocks, in a failed one. Reads of the seed count once per EXECUTE, none
at PREPARE. A temporary table that shadows the seeded table has no seed."""

from __future__ import annotations

import os
import re
import select
import subprocess
import time
import unittest
import urllib.request

import e2e_common
import materialize_common as mc
import psycopg

from harness.pgcluster import PgCluster, free_port

SEEDED, TWIN = "seeded", "twin"
TARGET = "public.account.risk_score"
EXPRESSION = "balance / 1000.0 + credit_limit / 500.0"
TYPE = "numeric(8,2)"
ROWS = 600  # more than the engine's first batches, so the backfill can be held half way
TABLE = ("CREATE TABLE account (id int PRIMARY KEY, owner text NOT NULL, balance numeric NOT NULL, "
         "credit_limit numeric NOT NULL{extra})")

# Prepared in the virtual phase on a psql session kept open, then run in every phase. The first
# run after a phase change is inside a failed transaction block: the re-preparation must fail
# there exactly as the EXECUTE would, and happen at the next EXECUTE.
PSQL_PREPARE = [
    "PREPARE star(int) AS SELECT * FROM account WHERE id = $1;",
    "PREPARE named AS SELECT id, risk_score FROM account WHERE id IN (1, 2, 599) ORDER BY id;",
    "PREPARE summed AS SELECT count(*), sum(risk_score) FROM account;",
]
PSQL_EACH_PHASE = [
    "BEGIN;", "SELECT 1/0;", "EXECUTE star(3);", "ROLLBACK;",
    "BEGIN;", "EXECUTE named;", "EXECUTE star(3);", "COMMIT;",
    "EXECUTE star(2);", "EXECUTE summed;", "EXECUTE named;",
    "SELECT name, from_sql FROM pg_prepared_statements ORDER BY name;",
]

pg: PgCluster = None
px = None
metrics_port = 0
sessions: dict = {}  # side -> PsqlSession, psycopg connections


class PsqlSession:
    """One psql process kept open, fed statements on stdin; each batch's output (stdout and
    stderr interleaved) is read up to a marker it echoes."""

    MARK = "--end of batch--"

    def __init__(self, port: int, database: str):
        self.proc = subprocess.Popen(
            ["stdbuf", "-o0", "-e0", "psql", "-X", "-q", "-At", "-F", "|", "-h", pg.host, "-p",
             str(port), "-U", "postgres", "-d", database, "-v", "ON_ERROR_STOP=0"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            env=dict(os.environ, PGCONNECT_TIMEOUT="10"))
        self.pending = b""  # read from psql, not yet returned

    def run(self, statements: list[str], timeout: float = 30) -> list[str]:
        self.proc.stdin.write(("\n".join(statements) + f"\n\\echo {self.MARK}\n").encode())
        self.proc.stdin.flush()
        deadline = time.monotonic() + timeout
        marker = f"{self.MARK}\n".encode()
        while not (self.pending.startswith(marker) or f"\n{self.MARK}\n".encode() in self.pending):
            ready, _, _ = select.select([self.proc.stdout], [], [],
                                        max(0.0, deadline - time.monotonic()))
            chunk = os.read(self.proc.stdout.fileno(), 65536) if ready else b""
            if not chunk:
                raise AssertionError(f"psql did not answer {statements!r}; so far {self.pending!r}")
            self.pending += chunk
        at = 0 if self.pending.startswith(marker) else self.pending.index(b"\n" + marker) + 1
        out, self.pending = self.pending[:at].decode(), self.pending[at + len(marker):]
        # "psql:<stdin>:12: ERROR: ...": line numbers differ with what each side was fed.
        return [re.sub(r"^psql:<stdin>:\d+: ", "", line) for line in out.splitlines()]

    def close(self) -> None:
        self.proc.stdin.close()
        self.proc.wait(timeout=10)
        self.proc.stdout.close()


def setUpModule():
    global pg, px, metrics_port
    if e2e_common.direct_mode():
        raise unittest.SkipTest("compares the proxy with PostgreSQL itself")
    pg = PgCluster().start()
    with pg.connect() as conn:
        conn.execute(f"CREATE DATABASE {SEEDED}")
        conn.execute(f"CREATE DATABASE {TWIN}")
    for database, extra in ((SEEDED, ""),
                            (TWIN, f", risk_score {TYPE} GENERATED ALWAYS AS ({EXPRESSION}) STORED")):
        with pg.connect(database) as conn:
            conn.execute(TABLE.format(extra=extra))
            conn.execute("INSERT INTO account (id, owner, balance, credit_limit) SELECT i, 'o' || i, "
                         f"i * 37 % 5000, i * 11 % 900 FROM generate_series(1, {ROWS}) i")
    metrics_port = free_port()
    px = mc.make_proxy(pg.port, [{"database": SEEDED, "entity": "public.account",
                                  "attribute": "risk_score", "type": TYPE, "expression": EXPRESSION,
                                  "materialize": {"policy": "manual"}}],
                       instance="server-state", metrics={"host": "127.0.0.1", "port": metrics_port})
    e2e_common.wait_until_readable(px, SEEDED, "SELECT risk_score FROM account WHERE id = 1",
                                   "the seed to be readable")
    for side, port, database in (("proxy", px.port, SEEDED), ("twin", pg.port, TWIN)):
        sessions[side] = {
            "psql": PsqlSession(port, database),
            "psycopg": psycopg.connect(f"host={pg.host} port={port} dbname={database} user=postgres",
                                       autocommit=True),
        }


def tearDownModule():
    for side in sessions.values():
        side["psql"].close()
        side["psycopg"].close()
    e2e_common.stop(px, pg)


def reads_total() -> float:
    with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5) as r:
        body = r.read().decode()
    return sum(float(line.rsplit(" ", 1)[1]) for line in body.splitlines()
               if line.startswith("seedproxy_attribute_reads_total{") and 'attribute="risk_score"' in line)


def outcome(run) -> dict:
    """Rows, column names and type OIDs of a psycopg execution, or its error."""
    try:
        cur = run()
        return {"columns": [(d.name, d.type_code) for d in cur.description],
                "rows": [tuple(str(v) for v in row) for row in cur.fetchall()]}
    except psycopg.Error as e:
        return {"error": e.sqlstate, "message": e.diag.message_primary}


def psycopg_round(conn) -> list:
    """psycopg's own prepared statements, and SQL-prepared ones EXECUTEd through the simple
    protocol and through the extended one (an EXECUTE takes no bound parameter: psycopg's binary
    results send it in the unnamed statement, prepare=True in a named one), in and out of a
    transaction block."""
    out = [outcome(lambda: conn.execute("SELECT * FROM account WHERE id = %s", (5,), prepare=True)),
           outcome(lambda: conn.execute("SELECT id, risk_score FROM account WHERE id < %s ORDER BY id",
                                        (4,), prepare=True)),
           outcome(lambda: conn.execute("EXECUTE simple_star(7)")),
           outcome(lambda: conn.execute("EXECUTE extended_star(8)", binary=True)),
           outcome(lambda: conn.execute("EXECUTE named_star(10)", prepare=True))]
    with conn.transaction():
        out.append(outcome(lambda: conn.execute("EXECUTE extended_star(9)", binary=True)))
    return out


def statements_rewritten() -> int:
    rows = mc.show(px, "STATS")
    return int(rows[0]["statements_rewritten"])


def star_rewritten() -> bool:
    """Whether the proxy rewrites a fresh 'SELECT *' of the seeded table (the simple protocol)."""
    before = statements_rewritten()
    with psycopg.connect(px.dsn(SEEDED), autocommit=True) as conn:
        conn.execute("SELECT * FROM account WHERE false", prepare=False)
    return statements_rewritten() > before


class ServerStateAcrossPhases(unittest.TestCase):
    maxDiff = None

    def compare(self, phase: str) -> None:
        got = {side: s["psql"].run(PSQL_EACH_PHASE) for side, s in sessions.items()}
        self.assertEqual(got["proxy"], got["twin"], f"psql, phase {phase}")
        got = {side: psycopg_round(s["psycopg"]) for side, s in sessions.items()}
        self.assertEqual(got["proxy"], got["twin"], f"psycopg, phase {phase}")

    def test_1_virtual(self):
        self.assertEqual(mc.seed_phase(px, "risk_score"), "virtual")
        for side, s in sessions.items():
            self.assertEqual(s["psql"].run(PSQL_PREPARE), [], side)
            s["psycopg"].execute("PREPARE simple_star AS SELECT * FROM account WHERE id = $1")
            s["psycopg"].execute("PREPARE extended_star AS SELECT * FROM account WHERE id = $1")
            s["psycopg"].execute("PREPARE named_star AS SELECT * FROM account WHERE id = $1")
        self.compare("virtual")

    def test_2_reads_count_per_execute_not_at_prepare(self):
        psql = sessions["proxy"]["psql"]
        before = reads_total()
        prepare = ["PREPARE counted AS SELECT risk_score FROM account WHERE id = 1;"]
        self.assertEqual(psql.run(prepare), [])
        execute = ["EXECUTE counted;"] * 3 + ["DEALLOCATE counted;"]
        twin = sessions["twin"]["psql"]
        self.assertEqual(twin.run(prepare), [])
        self.assertEqual(psql.run(execute), twin.run(execute))
        e2e_common.poll(lambda: reads_total() - before == 3, 5,
                        what="3 reads for 3 EXECUTEs of a statement prepared with SQL PREPARE")
        time.sleep(0.3)
        self.assertEqual(reads_total() - before, 3, "the PREPARE counted a read")

    def test_3_temporary_tables_shadow_the_seeded_table(self):
        script = [
            "CREATE TEMP TABLE account (id int, note text);",
            "INSERT INTO account VALUES (1, 'temporary');",
            "SELECT * FROM account;", "TABLE account;",
            "SELECT a.* FROM account a;",
            "SELECT id, owner FROM public.account WHERE id = 1;",
            "DROP TABLE account;",
            "SELECT * FROM account WHERE id = 1;",
            "BEGIN;", "CREATE TEMP TABLE account (id int) ON COMMIT DROP;",
            "SELECT * FROM account;", "COMMIT;",
            "SELECT * FROM account WHERE id = 1;",
            "BEGIN;", "CREATE TEMP TABLE account (id int);", "ROLLBACK;",
            "SELECT * FROM account WHERE id = 1;",
            "CREATE TEMP TABLE account AS SELECT id, 'copy' AS note FROM public.account WHERE id < 3;",
            "SELECT * FROM account ORDER BY id;",
            "DISCARD TEMP;",
            "SELECT * FROM account WHERE id = 1;",
            "CREATE TEMP TABLE account (id int);", "DISCARD ALL;",
            "SELECT * FROM account WHERE id = 1;",
        ]
        got = {}
        for side, port, database in (("proxy", px.port, SEEDED), ("twin", pg.port, TWIN)):
            psql = PsqlSession(port, database)
            got[side] = psql.run(script)
            psql.close()
        self.assertEqual(got["proxy"], got["twin"])
        self.assertIn("1|temporary", got["twin"])


    def test_4_cursors(self):
        # A WITH HOLD cursor declared now is read after the seed is materialized (test_6); a plain
        # one holds its table in a transaction that MATERIALIZE must wait for (test_5).
        script = ["DECLARE held CURSOR WITH HOLD FOR SELECT * FROM account WHERE id <= 6 ORDER BY id;",
                  "FETCH 2 FROM held;", "BEGIN;",
                  "DECLARE open_one CURSOR FOR SELECT * FROM account WHERE id <= 6 ORDER BY id;",
                  "FETCH 2 FROM open_one;"]
        got = {side: s["psql"].run(script) for side, s in sessions.items()}
        self.assertEqual(got["proxy"], got["twin"])
        self.assertEqual(len(got["twin"]), 4)

    def test_5_materializing(self):
        with mc.BackfillStall(pg, SEEDED, "account", "id", 400):
            self.assertEqual(mc.command(px, f"MATERIALIZE {TARGET}"), ["MATERIALIZE"])
            # The open cursor's transaction holds the table: the engine cannot add the column,
            # so the cursor goes on with the plan and row shape it was declared with.
            time.sleep(1.5)
            with pg.connect(SEEDED) as conn:
                self.assertEqual(mc.engine_objects(conn, "account", "risk_score")["columns"], 0)
            got = {side: s["psql"].run(["FETCH 2 FROM open_one;", "COMMIT;"])
                   for side, s in sessions.items()}
            self.assertEqual(got["proxy"], got["twin"])
            mc.wait_backfilling(px, "risk_score", timeout=60)
            mc.pause(px, TARGET, "risk_score")
            self.addCleanup(mc.command, px, f"RESUME {TARGET}")  # test_6 waits for the end
        self.assertEqual(mc.seed_phase(px, "risk_score"), "materializing")
        self.compare("materializing")

    def test_6_materialized(self):
        mc.wait_step(px, "risk_score", "materialized", timeout=120)
        self.assertEqual(mc.seed_phase(px, "risk_score"), "materialized")
        self.compare("materialized")
        got = {side: s["psql"].run(["FETCH ALL FROM held;", "CLOSE held;"])
               for side, s in sessions.items()}
        self.assertEqual(got["proxy"], got["twin"])
        self.assertEqual(len(got["twin"]), 4)  # rows 3 to 6: two were fetched while virtual

    def test_7_rolled_back(self):
        self.assertEqual(mc.command(px, f"ROLLBACK {TARGET}"), ["ROLLBACK"])
        mc.wait_step(px, "risk_score", "rolled_back", timeout=60)
        with pg.connect(TWIN) as conn:
            conn.execute("ALTER TABLE account DROP COLUMN risk_score")
        e2e_common.poll(lambda: mc.seed_phase(px, "risk_score") == "rolled_back", 10,
                        what="the proxy to serve the rollback")
        # The engine drops the column after the phase changed and then announces it; until the
        # proxy has read its catalog again, '*' is spelled out without the column (and a prepared
        # '*' would be prepared again rather than fail as after DROP COLUMN). Wait for that.
        e2e_common.poll(lambda: not star_rewritten(), 30,
                        what="the proxy to see the rolled-back seed's column dropped")
        # As after DROP COLUMN: a statement naming it fails, one selecting * fails to change its
        # result type; new statements see the physical columns.
        self.compare("rolled back")
        got = {side: s["psql"].run(["SELECT * FROM account WHERE id = 1;", "DEALLOCATE ALL;",
                                    "SELECT count(*) FROM pg_prepared_statements;"])
               for side, s in sessions.items()}
        self.assertEqual(got["proxy"], got["twin"])



if __name__ == "__main__":
    e2e_common.main()
