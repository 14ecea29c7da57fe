#!/usr/bin/python3
"""What any trigger that keeps a txn_count-style column in step costs on a single-row INSERT
(issue 17's write target: at most 1.5x the insert without it). No proxy: hand-written PL/pgSQL
triggers on the tables of bench/crosstable.py, from doing nothing to the leanest designs that
keep the count, each measured like bench/crosstable.py's instructions (callgrind, a single-user
backend, prepared single-row INSERTs, instructions of 2N minus N inserts over N). Variants:

  none            no trigger
  noop            AFTER INSERT ... FOR EACH ROW, a PL/pgSQL function that returns
  noop_definer    the same, SECURITY DEFINER SET search_path FROM CURRENT (as seedproxy's are)
  bare_delta      the function runs UPDATE account SET c = c + 1 WHERE id = NEW.account_id
                  (no key lock, no row trigger on account: not exact, the floor of any design
                  that writes the seed row in the writer's transaction)
  delta_locked    SECURITY DEFINER: upsert of the key's lock row, then the delta UPDATE; account
                  has a row trigger like seedproxy's that recomputes unless the update is the
                  delta (a design sketch, not proven exact: docs/materialization.md)
  recompute       SECURITY DEFINER: the key lock, then UPDATE account SET c = c, whose row
                  trigger counts the account's rows again (seedproxy's way, row-level)
  bare_recount    the function runs UPDATE account SET c = (SELECT count(*) ...) for the key (no
                  key lock, no row trigger: not exact under concurrent writers)
  c_noop, c_delta, c_recount
                  the same as noop, bare_delta and bare_recount, written in C
                  (bench/floor_trigger.c, compiled here against the server's headers with
                  pg_config's include directory and declared by the .so's path; never installed):
                  what is left when no PL/pgSQL runs at all

Usage: bench/crosstable_floor.py   (env BENCH_ACCOUNTS [20000], BENCH_TXN_PER_ACCOUNT [50],
BENCH_INSTRUCTION_INSERTS [500]; valgrind; gcc and postgresql-server-dev-15 for the C variants).
Arguments: the variants to measure (default all; the first is the ratios' base).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import crosstable as ct  # noqa: E402  (its path setup, DB and measures)

LOCK = ("INSERT INTO seedproxy.dependency_locks AS l (space, hash) VALUES (7, hashint4(NEW.account_id)) "
        "ON CONFLICT (space, hash) DO UPDATE SET writes = l.writes + 1;")
DEFINER = "SECURITY DEFINER SET search_path FROM CURRENT"
ROW_TRIGGER = """
CREATE FUNCTION account_row() RETURNS trigger LANGUAGE plpgsql {definer} AS $$
BEGIN
  IF TG_OP = 'UPDATE' AND current_setting('seedproxy.delta', true) = 'on' AND NEW.c IS NOT NULL THEN
    RETURN NEW;
  END IF;
  NEW.c := (SELECT count(*) FROM txn t WHERE t.account_id = NEW.id);
  RETURN NEW;
END $$;
CREATE TRIGGER zzzz_c BEFORE INSERT OR UPDATE ON account FOR EACH ROW EXECUTE FUNCTION account_row();
""".format(definer=DEFINER)


def dependency(body: str, options: str = "") -> str:
    return (f"CREATE FUNCTION dep() RETURNS trigger LANGUAGE plpgsql {options} AS $$ BEGIN {body} "
            "RETURN NULL; END $$;\n"
            "CREATE TRIGGER dep_i AFTER INSERT ON txn FOR EACH ROW EXECUTE FUNCTION dep();")


RECOUNT = "UPDATE account SET c = (SELECT count(*) FROM txn t WHERE t.account_id = NEW.account_id) " \
          "WHERE id = NEW.account_id;"


def c_trigger(function: str) -> str:
    """An AFTER INSERT row trigger on txn running `function` of bench/floor_trigger.c (the {so}
    placeholder is the compiled library's path, filled in by compile_c_triggers)."""
    return (f"CREATE FUNCTION dep() RETURNS trigger LANGUAGE c AS '{{so}}', '{function}';\n"
            "CREATE TRIGGER dep_i AFTER INSERT ON txn FOR EACH ROW EXECUTE FUNCTION dep();")


def compile_c_triggers(directory: str) -> str:
    """Builds bench/floor_trigger.c into `directory` (made readable by the server's user) and
    returns the library's path."""
    includes = subprocess.run(["pg_config", "--includedir-server"], capture_output=True, text=True)
    if includes.returncode != 0:
        raise SystemExit("the C variants need pg_config (apt-get install postgresql-server-dev-15)")
    so = os.path.join(directory, "floor_trigger.so")
    source = os.path.join(os.path.dirname(os.path.abspath(__file__)), "floor_trigger.c")
    subprocess.run(["cc", "-O2", "-fPIC", "-shared", "-Wall", "-Wno-unused-parameter", "-I",
                    includes.stdout.strip(), source, "-o", so], check=True)
    os.chmod(directory, 0o755)
    return so


VARIANTS = {
    "none": "",
    "noop": dependency(""),
    "noop_definer": dependency("", DEFINER),
    "bare_delta": dependency("UPDATE account SET c = c + 1 WHERE id = NEW.account_id;"),
    "delta_locked": ROW_TRIGGER + dependency(
        LOCK + " UPDATE account AS a SET c = CASE WHEN pg_catalog.age(a.xmin) > 0 THEN a.c + 1 END "
        "WHERE a.id = NEW.account_id;", DEFINER + " SET seedproxy.delta = 'on'"),
    "recompute": ROW_TRIGGER + dependency(LOCK + " UPDATE account SET c = c WHERE id = NEW.account_id;",
                                          DEFINER),
    "bare_recount": dependency(RECOUNT),
    "c_noop": c_trigger("floor_noop"),
    "c_delta": c_trigger("floor_delta"),
    "c_recount": c_trigger("floor_recount"),
}


def measure_variants(variants: dict[str, str], names: list[str], width: int) -> None:
    """Loads the tables into a PostgreSQL of its own, then prints the instructions per single-row
    INSERT into txn with each named variant's triggers installed (none for an empty one), and its
    ratio to the first. crosstable_parts.py measures its variants the same way."""
    pg = ct.PgCluster().start()
    try:
        with pg.connect() as conn:
            conn.execute(f"CREATE DATABASE {ct.DB}")
        with pg.connect(ct.DB) as conn:
            conn.execute("CREATE SCHEMA seedproxy")
            conn.execute("CREATE TABLE seedproxy.dependency_locks (space int4, hash int4, "
                         "writes int8 NOT NULL DEFAULT 0, PRIMARY KEY (space, hash))")
            conn.execute("CREATE TABLE account (id int PRIMARY KEY, balance int NOT NULL DEFAULT 0, c bigint)")
            conn.execute("CREATE TABLE txn (id bigserial PRIMARY KEY, account_id int NOT NULL, amount int)")
            conn.execute(f"INSERT INTO account (id) SELECT generate_series(1, {ct.ACCOUNTS})")
            conn.execute(f"INSERT INTO txn (account_id, amount) SELECT 1 + i % {ct.ACCOUNTS}, 1 "
                         f"FROM generate_series(1, {ct.ACCOUNTS * ct.PER_ACCOUNT}) i")
            conn.execute("CREATE INDEX txn_account ON txn (account_id)")
            conn.execute("UPDATE account SET c = (SELECT count(*) FROM txn t WHERE t.account_id = account.id)")
        with pg.connect(ct.DB) as conn:
            conn.autocommit = True
            conn.execute("VACUUM ANALYZE")
        print(f"{ct.ACCOUNTS} accounts, {ct.PER_ACCOUNT} txn rows each; instructions per single-row INSERT "
              f"(callgrind, {ct.INSTRUCTION_INSERTS} and {2 * ct.INSTRUCTION_INSERTS} inserts)", flush=True)
        base = None
        for name in names:
            with pg.connect(ct.DB) as conn:
                conn.execute("DROP TRIGGER IF EXISTS dep_i ON txn")
                conn.execute("DROP TRIGGER IF EXISTS zzzz_c ON account")
                conn.execute("DROP FUNCTION IF EXISTS dep()")
                conn.execute("DROP FUNCTION IF EXISTS account_row()")
                if variants[name]:
                    conn.execute(variants[name])
            per_insert = ct.instructions_per_insert(pg)
            base = base or per_insert
            print(f"  {name:{width}s} {per_insert:10,.0f}   {per_insert / base:5.2f}x", flush=True)
    finally:
        pg.stop()


def chosen_variants(variants: dict[str, str]) -> list[str]:
    """The variants named on the command line (all when none is), or an exit naming the unknown
    ones. crosstable_parts.py takes its own the same way."""
    chosen = sys.argv[1:] or list(variants)
    unknown = [name for name in chosen if name not in variants]
    if unknown:
        sys.exit(f"unknown variant(s) {', '.join(unknown)}; known: {', '.join(variants)}")
    return chosen


def main() -> None:
    chosen = chosen_variants(VARIANTS)
    with tempfile.TemporaryDirectory() as directory:
        variants = dict(VARIANTS)
        if any(name.startswith("c_") for name in chosen):
            so = compile_c_triggers(directory)
            variants = {name: sql.replace("{so}", so) for name, sql in VARIANTS.items()}
        measure_variants(variants, chosen, 14)


if __name__ == "__main__":
    main()
