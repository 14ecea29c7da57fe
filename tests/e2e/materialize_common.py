"""Shared plumbing for the materialization e2e tests (test_materialize_*.py, test_rollback.py):
a proxy configured for fast materializations, the admin console's MATERIALIZE / ROLLBACK / PAUSE /
RESUME / SHOW, polling a materialization's step, and direct checks of the upstream objects."""

from __future__ import annotations

import os
import subprocess
import threading
import time

import e2e_common
from harness import wire

PG_BIN = os.environ.get("SEEDPROXY_PG_BIN", "/usr/lib/postgresql/15/bin")
PGBENCH = os.environ.get("SEEDPROXY_PGBENCH", os.path.join(PG_BIN, "pgbench"))
PG_DUMP = os.path.join(PG_BIN, "pg_dump")

# Small batches, short waits: a 50k-row backfill takes a few seconds and every step is visible.
FAST_MATERIALIZATION = {
    "max_batch_rows": 500,
    "initial_batch_rows": 200,
    "target_batch_seconds": 0.02,
    "check_seconds": 0.2,
    "reads_flush_seconds": 0.2,
}

FINAL = ("materialized", "rolled_back")


def make_proxy(upstream_port: int, seeds: list, instance: str = "mat-test", port: int | None = None,
               materialization: dict | None = None, **overrides) -> e2e_common.Proxy:
    """A proxy whose console admits postgres, with FAST_MATERIALIZATION (updated by
    `materialization`). port=None: a free port; a given port makes restarts use the same config."""
    config = dict(instance=instance, seeds=seeds, control={"user": "postgres"},
                  admin={"users": ["postgres"]},
                  materialization={**FAST_MATERIALIZATION, **(materialization or {})})
    if port is not None:
        config["listen"] = {"host": "127.0.0.1", "port": port}
    config.update(overrides)
    return e2e_common.Proxy(upstream_port=upstream_port, **config)


# ---------------------------------------------------------------------------------------------
# admin console
def admin(px, sql: str, timeout: float = 10) -> tuple[list[str], list[list[str | None]], list[str]]:
    """Runs one console command (simple protocol, fresh connection): (column names, rows, tags).
    Raises wire.ServerError with the console's SQLSTATE."""
    with wire.WireClient(px.port, timeout=timeout) as c:
        c.connect(user="postgres", database="seedproxy")
        rows, tags, msgs = c.simple_query(sql, timeout=timeout)
    names = [col["name"] for t, b in msgs if t == "T" for col in wire.parse_row_description(b)]
    return names, rows, tags


def command(px, sql: str) -> list[str]:
    """MATERIALIZE / ROLLBACK / PAUSE / RESUME: the command tags."""
    return admin(px, sql)[2]


def show(px, what: str) -> list[dict]:
    names, rows, _ = admin(px, f"SHOW {what}")
    return [dict(zip(names, r)) for r in rows]


def materialization(px, attribute: str, entity: str | None = None) -> dict | None:
    """The SHOW MATERIALIZATIONS row of an attribute, or None while there is none."""
    rows = [r for r in show(px, "MATERIALIZATIONS")
            if r["attribute"] == attribute and (entity is None or r["entity"] == entity)]
    if len(rows) > 1:
        raise AssertionError(f"SHOW MATERIALIZATIONS lists {attribute} {len(rows)} times: {rows}")
    return rows[0] if rows else None


def seed_phase(px, attribute: str, entity: str | None = None) -> str | None:
    rows = [r for r in show(px, "SEEDS")
            if r["attribute"] == attribute and (entity is None or r["entity"] == entity)]
    return rows[0]["phase"] if len(rows) == 1 else None


def rows_done(row: dict | None) -> int:
    return int(row["rows_done"]) if row and row.get("rows_done") not in (None, "") else 0


def wait_materialization(px, attribute: str, predicate, timeout: float, what: str,
                         interval: float = 0.02, passing: tuple = ()) -> dict:
    """Polls SHOW MATERIALIZATIONS until predicate(row) holds; the timeout message shows the last
    row seen (step, rows, error). A final step (materialized, rolled_back) that does not satisfy the
    predicate fails at once, unless it is listed in `passing` (e.g. materialized while a ROLLBACK
    of it is still to be picked up)."""
    deadline = time.monotonic() + timeout
    last = None
    while True:
        try:
            last = materialization(px, attribute)
        except (wire.ServerError, wire.ConnectionClosed, OSError) as e:
            last = {"console error": str(e)}
        if last and "step" in last:
            if predicate(last):
                return last
            if last["step"] in FINAL and last["step"] not in passing:
                raise AssertionError(f"{attribute}: waiting for {what}, the materialization ended in "
                                     f"step {last['step']}: {last}")
        if time.monotonic() >= deadline:
            raise AssertionError(f"{attribute}: timed out after {timeout}s waiting for {what}; "
                                 f"last SHOW MATERIALIZATIONS row: {last}")
        time.sleep(interval)


def wait_step(px, attribute: str, step: str, timeout: float = 60) -> dict:
    # a ROLLBACK request of a materialized seed leaves it materialized until the engine takes it
    passing = ("materialized",) if step == "rolled_back" else ()
    return wait_materialization(px, attribute, lambda r: r["step"] == step, timeout, f"step {step}",
                                passing=passing)


def wait_backfilling(px, attribute: str, timeout: float = 60) -> dict:
    """Until the backfill has done at least one batch (step backfilling, rows_done > 0)."""
    return wait_materialization(px, attribute, lambda r: r["step"] == "backfilling" and rows_done(r) > 0,
                                timeout, "step backfilling with rows_done > 0", interval=0.005)


def pause(px, target: str, attribute: str, timeout: float = 10) -> dict:
    """PAUSE target; waits until SHOW MATERIALIZATIONS says paused and rows_done stops moving."""
    tags = command(px, f"PAUSE {target}")
    if tags != ["PAUSE"]:
        raise AssertionError(f"PAUSE {target} answered tags {tags}")
    row = wait_materialization(px, attribute, lambda r: r["paused"] == "t", timeout, "paused = t")
    # Paused means no batch is running: rows_done must stand still over a few check periods.
    deadline = time.monotonic() + timeout
    stable_since, seen = time.monotonic(), rows_done(row)
    while time.monotonic() - stable_since < 3 * FAST_MATERIALIZATION["check_seconds"] + 0.2:
        row = materialization(px, attribute)
        if rows_done(row) != seen:
            stable_since, seen = time.monotonic(), rows_done(row)
        if time.monotonic() > deadline:
            raise AssertionError(f"{attribute}: rows_done still moves {timeout}s after PAUSE: {row}")
        time.sleep(0.05)
    return row


class BackfillStall:
    """Makes a backfill stop at a key: a BEFORE UPDATE row trigger on the table waits for an advisory
    lock this object holds whenever the row's key is >= from_key, so the engine's batches up to there
    succeed and the next one hits its lock_timeout (or statement timeout) and backs off. No table lock
    is held, so ADD COLUMN and CREATE TRIGGER are not in the way. release() lets go and drops the
    trigger, leaving the schema as it was.

        with BackfillStall(pg, "db", "account", "id", 250):
            ... MATERIALIZE; wait_backfilling(); pause() ...
    """

    LOCK_KEY = 0x7E57_57A1

    def __init__(self, pg, database: str, table: str, key: str, from_key: int):
        self.pg, self.database, self.table = pg, database, table
        self.holder = pg.connect(database)
        self.holder.execute("SELECT pg_advisory_lock(%s)", (self.LOCK_KEY,))
        with pg.connect(database) as conn:
            conn.execute(f"""CREATE FUNCTION "test_stall_{table}"() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF NEW."{key}" >= {int(from_key)} THEN PERFORM pg_advisory_xact_lock_shared({self.LOCK_KEY}); END IF;
  RETURN NEW;
END $$""")
            conn.execute(f'CREATE TRIGGER "aaaa_test_stall" BEFORE UPDATE ON "{table}" '
                         f'FOR EACH ROW EXECUTE FUNCTION "test_stall_{table}"()')

    def waiters(self) -> int:
        """Statements waiting in the stall trigger right now."""
        return self.holder.execute("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted "
                                   "AND classid = 0 AND objid = %s", (self.LOCK_KEY,)).fetchone()[0]

    def release(self, expect_idle: bool = True, timeout: float = 10) -> None:
        """expect_idle: first wait until no statement waits in the trigger (after a PAUSE, the
        blocked batch must give up rather than complete once the lock is gone)."""
        if self.holder is None:
            return
        if expect_idle:
            e2e_common.poll(lambda: self.waiters() == 0, timeout, 0.05,
                            f"no backfill statement to wait on {self.table}'s stall (the engine should have "
                            "given the batch up after its lock or statement timeout)")
        self.holder.close()  # frees the advisory lock
        self.holder = None
        with self.pg.connect(self.database) as conn:
            conn.execute(f'DROP TRIGGER "aaaa_test_stall" ON "{self.table}"')
            conn.execute(f'DROP FUNCTION "test_stall_{self.table}"()')

    def __enter__(self) -> "BackfillStall":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self.release(expect_idle=exc_type is None)


# ---------------------------------------------------------------------------------------------
# direct checks on the upstream database
def engine_objects(conn, table: str, attribute: str, schema: str = "public") -> dict:
    """What the engine added for (table, attribute): how many columns of that name, triggers on the
    table whose name mentions the attribute and seedproxy, their functions, the column comment."""
    columns = conn.execute(
        "SELECT count(*) FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid "
        "JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = %s AND c.relname = %s AND a.attname = %s AND NOT a.attisdropped AND a.attnum > 0",
        (schema, table, attribute)).fetchone()[0]
    triggers = conn.execute(
        "SELECT t.tgname, p.proname FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid "
        "JOIN pg_namespace n ON n.oid = c.relnamespace JOIN pg_proc p ON p.oid = t.tgfoid "
        "WHERE n.nspname = %s AND c.relname = %s AND NOT t.tgisinternal "
        "AND t.tgname LIKE '%%seedproxy%%' AND right(t.tgname, length(%s) + 1) = '_' || %s "
        "ORDER BY t.tgname", (schema, table, attribute, attribute)).fetchall()
    comment = conn.execute(
        "SELECT col_description(c.oid, a.attnum) FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid "
        "JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = %s AND c.relname = %s AND a.attname = %s AND NOT a.attisdropped",
        (schema, table, attribute)).fetchone()
    return {"columns": columns, "triggers": triggers, "comment": comment[0] if comment else None}


def interleave(watch_dsn: str, second, run_second, first) -> str:
    """Runs the second writer's statement while the first transaction is open: when it blocks
    (pg_blocking_pids, polled on a connection to `watch_dsn`), the first commits and then the
    second; when it returns at once, the second commits before the first. 'waited', 'ran', or
    'serialization failure'."""
    import psycopg
    from psycopg import errors
    pid = second.info.backend_pid
    outcome: dict = {}

    def go():
        try:
            run_second()
            outcome["done"] = True
        except errors.SerializationFailure as e:
            outcome["error"] = e

    thread = threading.Thread(target=go, daemon=True)
    thread.start()
    with psycopg.connect(watch_dsn, autocommit=True) as watch:
        blocked = e2e_common.poll(
            lambda: "done" in outcome or "error" in outcome or watch.execute(
                "SELECT cardinality(pg_blocking_pids(%s)) > 0", (pid,)).fetchone()[0],
            30, 0.005, "the second writer to block or finish")
    waited = blocked is True and not outcome
    if waited:
        first.commit()
    thread.join(30)
    if "error" in outcome:
        second.rollback()
        if not waited:
            first.commit()
        return "serialization failure"
    try:
        second.commit()
    except errors.SerializationFailure:
        second.rollback()
        if not waited:
            first.commit()
        return "serialization failure"
    if not waited:
        first.commit()
    return "waited" if waited else "ran"


def mismatches(conn, table: str, attribute: str, expression: str, type_: str) -> int:
    """Rows whose physical column differs from the seed's expression."""
    return conn.execute(f'SELECT count(*) FROM "{table}" WHERE "{attribute}" IS DISTINCT FROM '
                        f"(({expression}))::{type_}").fetchone()[0]


def checksum(conn, table: str, columns: list[str], key: str = "id") -> tuple[int, str]:
    """(row count, md5 of the listed columns of every row in key order)."""
    cols = ", ".join(f'"{c}"' for c in columns)
    return tuple(conn.execute(f"SELECT count(*), md5(coalesce(string_agg(ROW({cols})::text, E'\\n' "
                              f'ORDER BY "{key}"), \'\')) FROM "{table}"').fetchone())


def schema_dump(pg, database: str, *args: str) -> str:
    """pg_dump --schema-only of a database (extra args, e.g. --exclude-schema=seedproxy). The psql
    \\restrict key is fixed (pg_dump otherwise draws a random one per dump) so dumps compare."""
    proc = subprocess.run([PG_DUMP, "-h", pg.host, "-p", str(pg.port), "-U", "postgres", "--schema-only",
                           "--restrict-key=seedproxyTestDump", *args, database],
                          capture_output=True, text=True, timeout=120, env=dict(os.environ, PGCONNECT_TIMEOUT="10"))
    if proc.returncode != 0:
        raise AssertionError(f"pg_dump {database} failed ({proc.returncode}): {proc.stderr}")
    return proc.stdout


def first_difference(a: str, b: str, context: int = 3) -> str:
    import difflib
    return "\n".join(list(difflib.unified_diff(a.splitlines(), b.splitlines(), "before", "after",
                                               n=context, lineterm=""))[:80])
