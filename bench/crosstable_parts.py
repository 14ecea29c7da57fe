#!/usr/bin/python3
"""Where the instructions of seedproxy's cross-table dependency triggers go (issue 17): the
generated statement-level design of bench/crosstable.py written out by hand (txn_count = count of
txn rows per account), then variants with one part removed or changed, each measured like
bench/crosstable.py's instructions (callgrind, a single-user backend, prepared single-row INSERTs
into txn, instructions of 2N minus N inserts over N). No proxy. The variants are tools for finding
the costs, most of them not exact:

  generated                 the design until 2026-12-05: key lock upsert, SELECT ... FOR UPDATE of
                            the seed rows in key order, UPDATE ... SET c = c (the row trigger counts)
  rowcount_skip             today's design: the same, the FOR UPDATE only when the upsert wrote
                            more than one lock row
  rowcount_skip_nodistinct  that, and no DISTINCT in the UPDATE's key array (not adopted)
  merged                    FOR UPDATE and UPDATE in one statement (a sub-select; not adopted)
  no_set_*                  without SET search_path on one of the functions (not adopted)
  empty_*, lock_*, update_only, no_perform, select_new: parts alone

Usage: bench/crosstable_parts.py [variant ...]   (env BENCH_ACCOUNTS [20000],
BENCH_TXN_PER_ACCOUNT [50], BENCH_INSTRUCTION_INSERTS [500]; valgrind)
"""

from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import crosstable_floor as floor  # noqa: E402  (the tables and the measuring loop)

SPACE = 1795
DEFINER = "SECURITY DEFINER SET search_path FROM CURRENT"
NEW = '(SELECT * FROM "seedproxy_new") AS "seedproxy_changed"'
LOCK = ('INSERT INTO "seedproxy"."dependency_locks" AS "seedproxy_lock" ("space", "hash") '
        'SELECT DISTINCT "space", "hash" FROM (SELECT {space}::pg_catalog.int4 AS "space", '
        '"pg_catalog"."hashint4"(("seedproxy_changed"."account_id")::integer) AS "hash" FROM {rows}) '
        'AS "seedproxy_keys" WHERE "hash" IS NOT NULL ORDER BY "space", "hash" '
        'ON CONFLICT ("space", "hash") DO UPDATE SET "writes" = "seedproxy_lock"."writes" + 1;')
AFFECTED = ('"account"."id" OPERATOR(pg_catalog.=) ANY (ARRAY(SELECT DISTINCT "seedproxy_changed"."account_id" '
            'FROM {rows}))')
PERFORM = ('PERFORM 1 FROM "public"."account" AS "account" WHERE ' + AFFECTED +
           ' ORDER BY "account"."id" FOR UPDATE OF "account";')
UPDATE = ('UPDATE "public"."account" AS "account" SET "c" = "account"."c" WHERE ' + AFFECTED + ';')
# the PERFORM and the UPDATE in one statement: the rows locked in key order by the sub-select
MERGED = ('UPDATE "public"."account" AS "account" SET "c" = "account"."c" WHERE "account"."id" IN '
          '(SELECT "l"."id" FROM "public"."account" AS "l" WHERE '
          + AFFECTED.replace('"account"."id"', '"l"."id"') + ' ORDER BY "l"."id" FOR UPDATE OF "l");')
VALUE = '((SELECT count(*) FROM txn t WHERE t.account_id = "new"."id"))::bigint'
ROW_LOCK = ('INSERT INTO "seedproxy"."dependency_locks" AS "seedproxy_lock" ("space", "hash") '
            'SELECT DISTINCT "space", "hash" FROM (SELECT * FROM (SELECT {space}::pg_catalog.int4, '
            '"pg_catalog"."hashint4"((NEW."id")::integer)) AS "seedproxy_pairs" ("space", "hash")) AS '
            '"seedproxy_keys" WHERE "hash" IS NOT NULL ORDER BY "space", "hash" '
            'ON CONFLICT ("space", "hash") DO UPDATE SET "writes" = "seedproxy_lock"."writes" + 1;'
            ).format(space=SPACE)


def row_trigger(options: str = DEFINER) -> str:
    return f"""
CREATE FUNCTION account_row() RETURNS trigger LANGUAGE plpgsql {options} AS $$
#variable_conflict use_column
DECLARE
  "seedproxy_lock_keys" boolean;
BEGIN
  IF TG_OP = 'INSERT' THEN
    "seedproxy_lock_keys" := true;
  ELSIF pg_catalog.current_setting('transaction_isolation') <> 'read committed' THEN
    "seedproxy_lock_keys" := true;
  ELSE
    "seedproxy_lock_keys" := OLD."id" IS DISTINCT FROM NEW."id";
  END IF;
  IF "seedproxy_lock_keys" THEN
    {ROW_LOCK}
  END IF;
  NEW."c" := {VALUE};
  RETURN NEW;
END $$;
CREATE TRIGGER zzzz_c BEFORE INSERT OR UPDATE ON account FOR EACH ROW EXECUTE FUNCTION account_row();
"""


def dependency(insert_branch: str, options: str = DEFINER, row: str | None = None) -> str:
    """The generated function's shape: TG_OP branches, the insert branch given."""
    body = f"""
#variable_conflict use_column
BEGIN
  IF TG_OP = 'TRUNCATE' THEN
    NULL;
  ELSIF TG_OP = 'INSERT' THEN
    {insert_branch}
  ELSIF TG_OP = 'UPDATE' THEN
    NULL;
  ELSE
    NULL;
  END IF;
  RETURN NULL;
END"""
    out = (row_trigger() if row is None else row) + \
        f"CREATE FUNCTION dep() RETURNS trigger LANGUAGE plpgsql {options} AS $$ {body} $$;\n"
    out += ('CREATE TRIGGER dep_i AFTER INSERT ON txn REFERENCING NEW TABLE AS "seedproxy_new" '
            "FOR EACH STATEMENT EXECUTE FUNCTION dep();\n")
    return out


def parts(lock: bool = True, perform: bool = True, update: bool = True) -> str:
    out = ""
    if lock:
        out += LOCK.format(space=SPACE, rows=NEW) + "\n"
    if perform:
        out += PERFORM.format(rows=NEW) + "\n"
    if update:
        out += UPDATE.format(rows=NEW) + "\n"
    return out


HASHES = '"pg_catalog"."hashint4"(("seedproxy_changed"."account_id")::integer)'
VARIANTS = {
    "none": "",
    "generated": dependency(parts()),
    "empty_statement_trigger": dependency("NULL;", row=""),
    "empty_no_set": dependency("NULL;", "SECURITY DEFINER", row=""),
    "lock_only": dependency(parts(perform=False, update=False), row=""),
    "lock_perform": dependency(parts(update=False), row=""),
    "update_only": dependency(parts(lock=False, perform=False)),
    "no_perform": dependency(parts(perform=False)),
    "merged": dependency(LOCK.format(space=SPACE, rows=NEW) + "\n" + MERGED.format(rows=NEW)),
    "no_set_dependency": dependency(parts(), "SECURITY DEFINER"),
    "no_set_row": dependency(parts(), row=row_trigger("SECURITY DEFINER")),
    # the key lock statement alone, in other shapes
    "lock_unsorted": dependency(
        'INSERT INTO "seedproxy"."dependency_locks" AS "seedproxy_lock" ("space", "hash") '
        f'SELECT {SPACE}, {HASHES} FROM {NEW} '
        'ON CONFLICT ("space", "hash") DO UPDATE SET "writes" = "seedproxy_lock"."writes" + 1;', row=""),
    "rowcount_skip": dependency(
        LOCK.format(space=SPACE, rows=NEW) + ' GET DIAGNOSTICS "n" = ROW_COUNT; IF "n" > 1 THEN '
        + PERFORM.format(rows=NEW) + " END IF; " + UPDATE.format(rows=NEW)).replace(
            "#variable_conflict use_column\nBEGIN", '#variable_conflict use_column\nDECLARE "n" bigint;\nBEGIN'),
    "rowcount_skip_nodistinct": dependency(
        LOCK.format(space=SPACE, rows=NEW) + ' GET DIAGNOSTICS "n" = ROW_COUNT; IF "n" > 1 THEN '
        + PERFORM.format(rows=NEW) + " END IF; " + UPDATE.format(rows=NEW).replace("SELECT DISTINCT", "SELECT")
    ).replace("#variable_conflict use_column\nBEGIN", '#variable_conflict use_column\nDECLARE "n" bigint;\nBEGIN'),
    "select_new": dependency(f'PERFORM 1 FROM {NEW};', row=""),
}


def main() -> None:
    floor.measure_variants(VARIANTS, floor.chosen_variants(VARIANTS), 24)

if __name__ == "__main__":
    main()
