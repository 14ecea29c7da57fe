#!/usr/bin/python3
"""Cross-table seed benchmark (issue 17): what materializing a txn_count-style seed buys on reads,
and what its dependency triggers cost on single-row inserts into the table it reads.

Starts its own PostgreSQL (tests/harness) and seedproxy, loads ACCOUNTS accounts with
TXN_PER_ACCOUNT txn rows each, declares
    txn_count bigint = (SELECT count(*) FROM txn t WHERE t.account_id = account.id)
and runs pgbench (prepared, CLIENTS clients):
  reads:  SELECT txn_count FROM account WHERE id = random  through seedproxy, virtual, then
          materialized (the same statement; the proxy reads the column)
  writes: INSERT INTO txn (one row, random account) directly to PostgreSQL, rounds alternating
          between the dependency triggers enabled and disabled (ALTER TABLE txn DISABLE TRIGGER
          of the seed's triggers), so both see the same load; the test harness's server does not
          wait for the disk (fsync off), so then again with fsync, full_page_writes and
          synchronous_commit on, as a production server commits (BENCH_DURABLE)
  instructions: the proxy stopped, the server stopped, INSTRUCTION_INSERTS and twice as many
          prepared single-row INSERTs (and UPDATEs moving a txn row to another account, and
          DELETEs) in a single-user backend under callgrind, triggers off and on: instructions per
          statement, which the machine's load does not change
Prints transactions per second, CPU seconds of PostgreSQL's processes per transaction (for the
writes only pgbench's own backends, counted when they exit), ratios, and `uptime`. Usage: bench/crosstable.py   (env BENCH_SECONDS [8], BENCH_ROUNDS [3], BENCH_CLIENTS [4],
BENCH_ACCOUNTS [20000], BENCH_TXN_PER_ACCOUNT [50], BENCH_INSTRUCTION_INSERTS [500],
SEEDPROXY_BIN [build/proxy/seedproxy], BENCH_KINDS [insert,update,delete; also balance: an UPDATE
of account's balance, which the seed does not read], BENCH_CALLGRIND_OUT
[a directory to keep the profiles in], BENCH_DURABLE [1; 0 skips the durable rounds],
BENCH_SAVE_FUNCTION [a file to write the dependency function's definition to],
BENCH_COMPARE_FUNCTION [such a file, from another build: its function is measured too, in the
same database state]; valgrind)
"""

from __future__ import annotations

import os
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests"))
sys.path.insert(0, os.path.join(ROOT, "tests", "e2e"))
os.environ.setdefault("SEEDPROXY_BIN", os.path.join(ROOT, "build", "proxy", "seedproxy"))

import e2e_common  # noqa: E402
import materialize_common as mc  # noqa: E402
from harness.pgcluster import PG_BIN, PG_OS_USER, PgCluster  # noqa: E402

SECONDS = int(os.environ.get("BENCH_SECONDS", "8"))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))
CLIENTS = int(os.environ.get("BENCH_CLIENTS", "4"))
ACCOUNTS = int(os.environ.get("BENCH_ACCOUNTS", "20000"))
PER_ACCOUNT = int(os.environ.get("BENCH_TXN_PER_ACCOUNT", "50"))
INSTRUCTION_INSERTS = int(os.environ.get("BENCH_INSTRUCTION_INSERTS", "500"))
DB = "xbench"
# the writes counted by instructions_per_statement (env BENCH_KINDS, comma-separated)
KINDS = os.environ.get("BENCH_KINDS", "insert,update,delete").split(",")
# also the insert rounds with commits that wait for the disk (env BENCH_DURABLE, 0 to skip)
DURABLE = os.environ.get("BENCH_DURABLE", "1") != "0"
EXPRESSION = "(SELECT count(*) FROM txn t WHERE t.account_id = account.id)"


def backend_cpu_seconds(pg) -> float:
    """CPU seconds (user + system) of the whole cluster so far: the postmaster's own and its reaped
    children's (cutime, cstime: the backends of finished pgbench runs), plus its live children's."""
    def stat(pid: int) -> list[int]:
        with open(f"/proc/{pid}/stat") as f:
            return [int(x) for x in f.read().rsplit(")", 1)[1].split()[11:15]]

    ticks = os.sysconf("SC_CLK_TCK")
    postmaster = pg.running_pid()
    total = sum(stat(postmaster))
    children = subprocess.run(["pgrep", "-P", str(postmaster)], capture_output=True, text=True).stdout
    for pid in children.split():
        try:
            total += sum(stat(int(pid))[:2])
        except OSError:
            pass  # exited meanwhile: counted in cutime next time
    return total / ticks


def exited_backends_cpu_seconds(pg) -> float:
    """CPU seconds (user + system) of the postmaster's exited children so far (cutime, cstime):
    after a pgbench run straight to PostgreSQL has ended, its own backends, and no live process
    (checkpointer, WAL writer, the proxy's pooled connections). Autovacuum is off on the tables
    written, so its workers add next to nothing."""
    with open(f"/proc/{pg.running_pid()}/stat") as f:
        fields = [int(x) for x in f.read().rsplit(")", 1)[1].split()[13:15]]
    return sum(fields) / os.sysconf("SC_CLK_TCK")


def pgbench_backends_gone(pg) -> None:
    with pg.connect(DB) as conn:
        e2e_common.poll(lambda: conn.execute("SELECT count(*) FROM pg_stat_activity "
                                             "WHERE application_name = 'pgbench'").fetchone()[0] == 0,
                        30, 0.02, "pgbench's backends to exit")


def pgbench(pg, port: int, script: str, direct: bool = False, options: str = "") -> tuple[float, float]:
    """(tps, backend CPU seconds per transaction) of one pgbench -M prepared run. Through the
    proxy: every process of the cluster; direct: only pgbench's own backends. `options`: the
    sessions' PGOPTIONS."""
    with tempfile.NamedTemporaryFile("w", suffix=".sql", delete=False) as f:
        f.write(script)
        path = f.name
    measure = exited_backends_cpu_seconds if direct else backend_cpu_seconds
    before = measure(pg)
    proc = subprocess.run([mc.PGBENCH, "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", "-n",
                           "-M", "prepared", "-c", str(CLIENTS), "-j", "2", "-T", str(SECONDS),
                           "-f", path, DB], capture_output=True, text=True, timeout=SECONDS * 10,
                          env=dict(os.environ, PGOPTIONS=options))
    if direct:
        pgbench_backends_gone(pg)
    cpu = measure(pg) - before
    os.unlink(path)
    if proc.returncode != 0:
        raise SystemExit(f"pgbench failed: {proc.stderr}")
    done = int(re.search(r"number of transactions actually processed: (\d+)", proc.stdout).group(1))
    tps = float(re.search(r"tps = ([0-9.]+)", proc.stdout).group(1))
    return tps, cpu / max(1, done)


def as_postgres(cmd: list[str]) -> list[str]:
    return ["runuser", "-u", PG_OS_USER, "--"] + cmd if os.geteuid() == 0 else cmd


_profiles = 0  # callgrind profiles kept so far (BENCH_CALLGRIND_OUT)


def instructions(pg, script: str) -> int:
    """User-space instructions (callgrind's Ir) of a single-user-mode backend running `script`;
    the server must be stopped."""
    global _profiles
    with tempfile.TemporaryDirectory() as tmp:
        os.chmod(tmp, 0o777)
        cmd = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={tmp}/out",
               os.path.join(PG_BIN, "postgres"), "--single", "-D", pg.data_dir, DB]
        proc = subprocess.run(as_postgres(cmd), input=script, capture_output=True, text=True, timeout=3600, cwd="/")
        keep = os.environ.get("BENCH_CALLGRIND_OUT")  # a directory: keep each run's profile there
        if keep and os.path.exists(f"{tmp}/out"):
            _profiles += 1
            shutil.copy(f"{tmp}/out", os.path.join(keep, f"callgrind.{_profiles}"))
    found = re.search(r"Collected : (\d+)", proc.stderr)
    if proc.returncode != 0 or not found or "ERROR" in proc.stdout + proc.stderr:
        raise SystemExit(f"single-user postgres under callgrind failed:\n{proc.stdout[-2000:]}{proc.stderr[-2000:]}")
    return int(found.group(1))


_runs = 0  # calls of instructions_per_statement so far: each updates and deletes rows of its own


def instructions_per_statement(pg, kinds: list[str] = KINDS) -> dict[str, float]:
    """For each kind of single-row write to txn (an INSERT, an UPDATE moving a row to another
    account, a DELETE): (Ir of 2N statements - Ir of N) / N, what one more statement costs, without
    the backend's start and exit; always the same random accounts, and rows no earlier run touched
    (the UPDATE and DELETE runs take txn ids from ranges of their own). Load-independent."""
    global _runs
    # not pg.stop(), which removes the cluster; pg.start() starts it again
    subprocess.run(as_postgres([os.path.join(PG_BIN, "pg_ctl"), "stop", "-w", "-m", "fast", "-D", pg.data_dir]),
                   check=True, capture_output=True, cwd="/")
    n = INSTRUCTION_INSERTS
    base = 7 * n * _runs  # txn ids below ACCOUNTS * PER_ACCOUNT exist
    _runs += 1
    rnd = random.Random(7)
    accounts = [rnd.randint(1, ACCOUNTS) for _ in range(2 * n)]
    scripts = {
        "insert": ("PREPARE w (int) AS INSERT INTO txn (account_id, amount) VALUES ($1, 1);",
                   lambda i, first: f"EXECUTE w({accounts[i]});"),
        # ids base + [1, 3n] for the updates, base + [3n + 1, 6n] for the deletes
        "update": ("PREPARE w (bigint, int) AS UPDATE txn SET account_id = $2 WHERE id = $1;",
                   lambda i, first: f"EXECUTE w({base + (0 if first else n) + i + 1}, {accounts[i]});"),
        "delete": ("PREPARE w (bigint) AS DELETE FROM txn WHERE id = $1;",
                   lambda i, first: f"EXECUTE w({base + (3 if first else 4) * n + i + 1});"),
        # not a write to txn: an UPDATE of the seed's own table that leaves the expression's
        # inputs alone (the seed's row trigger: docs/materialization.md, "Which UPDATEs recompute")
        "balance": ("PREPARE w (int) AS UPDATE account SET balance = balance + 1 WHERE id = $1;",
                    lambda i, first: f"EXECUTE w({accounts[i]});"),
    }

    def script(kind: str, count: int, first: bool) -> str:
        prepare, statement = scripts[kind]
        return "\n".join([prepare] + [statement(i, first) for i in range(count)]) + "\n"

    out = {}
    try:
        for kind in kinds:
            few = instructions(pg, script(kind, n, True))
            more = instructions(pg, script(kind, 2 * n, False))
            out[kind] = (more - few) / n
    finally:
        pg.start()
    return out


def instructions_per_insert(pg) -> float:
    """Instructions of one more single-row INSERT into txn (instructions_per_statement)."""
    return instructions_per_statement(pg, ["insert"])["insert"]


READ = f"\\set id random(1, {ACCOUNTS})\nSELECT txn_count FROM account WHERE id = :id;\n"
INSERT = (f"\\set a random(1, {ACCOUNTS})\n"
          "INSERT INTO txn (account_id, amount) VALUES (:a, 1);\n")


def dependency_function(pg) -> str:
    """CREATE OR REPLACE FUNCTION of the seed's dependency function on txn."""
    with pg.connect(DB) as conn:
        return conn.execute("SELECT pg_get_functiondef(p.oid) FROM pg_proc p "
                            "WHERE p.proname LIKE 'seedproxy_dep_%' AND p.prorettype = 'trigger'::regtype "
                            "AND p.proname NOT LIKE '%\\_0'").fetchone()[0]


def compare_function(pg, path: str) -> dict[str, float]:
    """instructions_per_statement with the dependency function another build generated (saved by
    BENCH_SAVE_FUNCTION; the names are the same for the same seed), an A/B in the same database
    state; the current function is put back afterwards."""
    current = dependency_function(pg)
    with open(path) as f, pg.connect(DB) as conn:
        conn.execute(f.read())
    try:
        return instructions_per_statement(pg)
    finally:
        with pg.connect(DB) as conn:
            conn.execute(current)


def durable_inserts(pg) -> tuple[list, list]:
    """The insert rounds again with a production server's durability: fsync and full_page_writes
    on (reloaded), synchronous_commit on in pgbench's sessions, so each commit waits for its WAL
    to reach the disk as it would in production; then the harness's settings back."""
    with pg.connect(DB, autocommit=True) as conn:
        for setting in ("fsync", "full_page_writes"):
            conn.execute(f"ALTER SYSTEM SET {setting} = on")
        conn.execute("SELECT pg_reload_conf()")
    try:
        return insert_rounds(pg, "-c synchronous_commit=on")
    finally:
        with pg.connect(DB, autocommit=True) as conn:
            conn.execute("ALTER SYSTEM RESET ALL")
            conn.execute("SELECT pg_reload_conf()")


def insert_rounds(pg, options: str = "") -> tuple[list, list]:
    """ROUNDS pgbench runs of single-row inserts straight to PostgreSQL with the dependency
    triggers off and on, alternating so that both see the same load: (off, on)."""
    off, on = [], []
    for _ in range(ROUNDS):
        set_triggers(pg, False)
        off.append(pgbench(pg, pg.port, INSERT, direct=True, options=options))
        set_triggers(pg, True)
        on.append(pgbench(pg, pg.port, INSERT, direct=True, options=options))
    return off, on


def set_triggers(pg, enabled: bool) -> None:
    """Enables or disables the seed's triggers: the dependency triggers on txn and the seed's row
    trigger on account."""
    with pg.connect(DB) as conn:
        names = [(r[0], r[1]) for r in conn.execute(
            "SELECT t.tgrelid::regclass::text, t.tgname FROM pg_trigger t JOIN pg_proc p ON p.oid = t.tgfoid "
            "WHERE (t.tgrelid = 'txn'::regclass AND p.proname LIKE 'seedproxy_dep_%') "
            "OR (t.tgrelid = 'account'::regclass AND t.tgname LIKE 'zzzz_seedproxy_%')")]
        for table, name in names:
            conn.execute(f'ALTER TABLE {table} {"ENABLE" if enabled else "DISABLE"} TRIGGER "{name}"')
        if {table for table, _ in names} != {"txn", "account"}:
            raise SystemExit(f"the seed's triggers are not all there: {names}")


def main() -> None:
    pg = PgCluster().start()
    px = None
    try:
        with pg.connect() as conn:
            conn.execute(f"CREATE DATABASE {DB}")
        with pg.connect(DB) as conn:
            conn.execute("CREATE TABLE account (id int PRIMARY KEY, balance int NOT NULL DEFAULT 0)")
            conn.execute("CREATE TABLE txn (id bigserial PRIMARY KEY, account_id int NOT NULL, amount int)")
            conn.execute(f"INSERT INTO account (id) SELECT generate_series(1, {ACCOUNTS})")
            conn.execute(f"INSERT INTO txn (account_id, amount) SELECT 1 + i % {ACCOUNTS}, 1 "
                         f"FROM generate_series(1, {ACCOUNTS * PER_ACCOUNT}) i")
            conn.execute("CREATE INDEX txn_account ON txn (account_id)")
            for table in ("account", "txn"):  # its workers would count as the inserts' CPU
                conn.execute(f"ALTER TABLE {table} SET (autovacuum_enabled = off)")
            conn.execute("VACUUM ANALYZE")
        seeds = [{"database": DB, "entity": "public.account", "attribute": "txn_count", "type": "bigint",
                  "expression": EXPRESSION, "materialize": {"policy": "manual"}}]
        px = mc.make_proxy(pg.port, seeds, instance="crosstable-bench",
                           materialization={"max_batch_rows": 5000, "initial_batch_rows": 2000},
                           # counting 50 rows per read is what is measured here: past the default
                           # bound on a seed's planner cost, so the proxy would refuse it
                           validation={"max_cost_ratio": 1e12})
        e2e_common.wait_until_readable(px, DB, "SELECT txn_count FROM account WHERE id = 1", "the seed")
        print(f"load before: {os.popen('uptime').read().strip()}")
        virtual = [pgbench(pg, px.port, READ) for _ in range(ROUNDS)]
        assert mc.command(px, "MATERIALIZE account.txn_count") == ["MATERIALIZE"]
        mc.wait_step(px, "txn_count", "materialized", timeout=600)
        materialized = [pgbench(pg, px.port, READ) for _ in range(ROUNDS)]
        with pg.connect(DB) as conn:  # the key locks' table is written by every insert too
            conn.execute('ALTER TABLE "seedproxy"."dependency_locks" SET (autovacuum_enabled = off)')
        off, on = insert_rounds(pg)
        durable_off, durable_on = durable_inserts(pg) if DURABLE else ([], [])
        e2e_common.finish(px)  # the proxy keeps connections; single-user mode needs none
        px = None
        set_triggers(pg, False)
        ir_off = instructions_per_statement(pg)
        set_triggers(pg, True)
        ir_on = instructions_per_statement(pg)
        if os.environ.get("BENCH_SAVE_FUNCTION"):
            with open(os.environ["BENCH_SAVE_FUNCTION"], "w") as f:
                f.write(dependency_function(pg))
        other = os.environ.get("BENCH_COMPARE_FUNCTION")
        ir_other = compare_function(pg, other) if other else None
        with pg.connect(DB) as conn:
            wrong = conn.execute(f"SELECT count(*) FROM account WHERE txn_count IS DISTINCT FROM {EXPRESSION}").fetchone()[0]
        # the rounds with the triggers off left counts stale: that is expected here, so only report
        print(f"load after: {os.popen('uptime').read().strip()}")

        def line(name, runs):
            tps = statistics.median(r[0] for r in runs)
            cpu = statistics.median(r[1] for r in runs)
            print(f"  {name:38s} tps {tps:9.0f}   backend CPU {cpu * 1e6:7.1f} us/txn   "
                  f"(rounds: {', '.join(f'{r[0]:.0f}' for r in runs)})")
            return tps, cpu

        print(f"{ACCOUNTS} accounts, {PER_ACCOUNT} txn rows each, {CLIENTS} clients, {SECONDS} s x {ROUNDS} rounds")
        v, m = line("read txn_count, virtual (proxy)", virtual), line("read txn_count, materialized (proxy)", materialized)
        print(f"  materialized read: {m[0] / v[0]:.2f}x the tps, {v[1] / m[1]:.2f}x less backend CPU per read")
        a, b = line("INSERT txn, no trigger (direct)", off), line("INSERT txn, dependency triggers (direct)", on)
        print(f"  trigger overhead on single-row INSERT: {a[0] / b[0]:.2f}x time per insert (tps), "
              f"{b[1] / a[1]:.2f}x backend CPU per insert (target <= 1.5x)")
        if DURABLE:
            a = line("INSERT txn, no trigger, durable commits", durable_off)
            b = line("INSERT txn, triggers, durable commits", durable_on)
            print(f"  with fsync, full_page_writes and synchronous_commit on: {a[0] / b[0]:.2f}x time per "
                  f"insert (tps), {b[1] / a[1]:.2f}x backend CPU per insert")
        print("  instructions per single-row statement on txn (balance: on account) (callgrind, single-user "
              "backend, prepared):")
        for kind in KINDS:
            print(f"    {kind:7s} no trigger {ir_off[kind]:10,.0f}, the seed's triggers {ir_on[kind]:10,.0f}: "
                  f"{ir_on[kind] / ir_off[kind]:.2f}x" + (" (target <= 1.5x)" if kind == "insert" else ""))
        if ir_other:
            print(f"    the same with the dependency function of {other}: " +
                  ", ".join(f"{kind} {ir_other[kind]:,.0f} ({ir_on[kind] / ir_other[kind]:.2f}x of it)" for kind in KINDS))
        print(f"  (rows stale after the trigger-off rounds, as expected: {wrong})")
    finally:
        e2e_common.stop(px, pg)


if __name__ == "__main__":
    main()
