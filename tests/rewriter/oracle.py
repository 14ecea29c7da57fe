#!/usr/bin/python3
"""Checks the rewriter's data-file cases against PostgreSQL itself.

For every case, the rewriter's output (from the rewriter_case_dump tool) runs on "plain" tables,
where a virtual attribute does not exist and a materializing one is a partly backfilled column
kept by a trigger; the client's original SQL runs on "twin" tables, where the attribute is a real
GENERATED ALWAYS AS (...) STORED column (a view column for cross-table expressions). Both run in
a transaction that is rolled back. Rows, column names, types (with typmods) and errors must agree,
and so must the tables afterwards; a refusal must match the twin's error field by field.

    /usr/bin/python3 tests/rewriter/oracle.py [--port N] [--fill] tests/rewriter/cases/*.test

Without --port a throwaway cluster is started (tests/harness/pgcluster.py). --fill writes the
rewriter's output as the expectation of every case PostgreSQL agrees with (review the diff!);
cases it does not agree with are printed, and the exit status is 1.

An error both sides raise must have the same SQLSTATE and message, and the same position: the
rewritten text's position is first given back in the client's text through the splice map
(client_position, run by the dump tool's --map), as the proxy gives it to the client.

Notes a data file may put on the lines just before a `query`:
    # then: SQL       run after the case on both sides and compare (EXECUTE, FETCH, SELECT ...)
    # params: a, b    text parameters for $1, $2 (default: '1' for each $n)
    # oracle: SQL     what to run on the twin instead of the case's own SQL
    # skip-rows       compare names and types only
    # own-refusal     a refusal of seedproxy's own (PostgreSQL accepts the statement on a
                      generated column): only the marker is checked
Tables a data file declares must have their column types in TYPES below.
"""
import argparse
import contextlib
import json
import os
import re
import subprocess
import sys

from psycopg import pq

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# Column types of every table a data file may declare (names as PostgreSQL stores them).
TYPES = {
    "public.account": {"id": "int primary key", "owner": "text", "balance": "numeric(12,2)",
                       "credit_limit": "numeric(12,2)", "opened_on": "date"},
    "public.txn": {"id": "int primary key", "account_id": "int", "amount": "numeric(12,2)",
                   "at": "timestamptz", "kind": "text"},
    "public.audit": {"id": "int", "account_id": "int", "risk_score": "numeric(8,2)", "note": "text"},
    "public.branch": {"id": "int", "name": "text", "city": "text"},
    "public.archive": {"id": "int", "owner": "text", "balance": "numeric(12,2)",
                       "credit_limit": "numeric(12,2)", "opened_on": "date",
                       "risk_score": "numeric(8,2)"},
    "ledger.account": {"id": "int primary key", "owner": "text", "balance": "numeric(12,2)",
                       "credit_limit": "numeric(12,2)", "opened_on": "date"},
    "public.Client": {"Id": "int primary key", "Full Name": "text", "Balance": "numeric(12,2)",
                      "select": "int"},
}

DATA = {
    "public.account": [
        (1, "ann", 1200.00, 500.00, "2020-01-15"),
        (2, "bob", 2500.50, 1000.00, "2021-03-01"),
        (3, "cy", None, 250.00, "2019-07-30"),
        (4, "dee", 80.00, None, "2022-11-11"),
        (5, "ann", 15000.00, 7500.00, "2018-05-05"),
        (6, "eve", -300.00, 100.00, "2023-01-01"),
        (7, None, 0.00, 0.00, None),
        (8, "fay", 999.99, 499.99, "2020-02-29"),
    ],
    "public.txn": [
        (1, 1, 10.00, "2024-01-01 10:00+00", "debit"), (2, 1, -5.00, "2024-01-02 10:00+00", "credit"),
        (3, 2, 100.00, "2024-01-03 10:00+00", "debit"), (4, 2, 250.00, "2024-01-04 10:00+00", "debit"),
        (5, 2, 1.00, "2024-01-05 10:00+00", "fee"), (6, 3, 7.50, "2024-01-06 10:00+00", "debit"),
        (7, 5, 5000.00, "2024-01-07 10:00+00", "credit"), (8, 5, 20.00, "2024-01-08 10:00+00", "fee"),
        (9, 6, 3.00, "2024-01-09 10:00+00", "debit"), (10, 99, 1.00, "2024-01-10 10:00+00", "debit"),
        (11, 8, None, None, None),
    ],
    "public.audit": [(1, 1, 1.50, "checked"), (2, 2, 9.00, "flagged"), (3, 5, 30.00, "flagged"),
                     (4, None, None, None)],
    "public.branch": [(1, "north", "oslo"), (2, "south", "rome"), (3, "east", None)],
    "public.archive": [(1, "old", 10.00, 20.00, "2010-01-01", 0.05)],
    "ledger.account": [(1, "lia", 100.00, 100.00, "2020-01-01"), (2, "leo", 5000.00, 0.00, "2020-06-01")],
    "public.Client": [(1, "Ann Example", 1000.00, 3), (2, "Bo Sample", None, 4)],
}


def qi(name):
    return '"' + name.replace('"', '""') + '"'


def qname(qualified):
    schema, table = qualified.split(".", 1)
    return qi(schema) + "." + qi(table)


def lit(value):
    if value is None:
        return "NULL"
    if isinstance(value, (int, float)):
        return repr(value)
    return "'" + str(value).replace("'", "''") + "'"


def parse_header(path):
    """Catalog, seeds and search_path of a data file, plus `# then:` / `# params:` notes per case."""
    relations, seeds, search_path = [], [], ["public"]
    notes, pending = {}, {}
    lines = open(path).read().split("\n")
    state = "header"
    for number, line in enumerate(lines, 1):
        text = line.strip()
        if state == "query":
            if line == "----":
                state = "expected"
            continue
        if state == "expected":
            if not text:
                state = "header"
            continue
        if text.startswith("# then:"):
            pending.setdefault("then", []).append(text[7:].strip())
        elif text.startswith("# params:"):
            pending["params"] = [p.strip() for p in text[9:].split(",")]
        elif text.startswith("# oracle:"):
            pending["oracle"] = text[9:].strip()
        elif text.startswith("# skip-rows"):
            pending["skip_rows"] = True
        elif text.startswith("# own-refusal"):
            pending["own_refusal"] = True
        elif text == "query":
            notes[number] = pending
            pending = {}
            state = "query"
        elif text.startswith("catalog "):
            # "col@N": attnum N (only the order matters here: the plain table has no gaps)
            name, columns = text[8:].split(":", 1)
            cols, attnums, attnum = [], [], 0
            for c in (c.strip() for c in columns.split(",")):
                if not c:
                    continue
                attnum += 1
                c = c.rstrip("!")  # the mark of a column seedproxy added: a plain column here
                if "@" in c:
                    c, number = c.split("@")
                    c, attnum = c.strip(), int(number)
                cols.append(c)
                attnums.append(attnum)
            relations.append((name.strip(), cols, attnums))
        elif text.startswith("seed "):
            head, expression = text[5:].split(": ", 1)
            phase = "virtual"
            if " phase " in head:
                head, phase = head.split(" phase ")
                phase = phase.strip()
            after = None
            if " after " in head:
                head, number = head.rsplit(" after ", 1)
                after = int(number)
            qualified, type_ = head.strip().split(" ", 1)
            schema, table, attribute = qualified.split(".")
            seeds.append(dict(schema=schema, table=table, attribute=attribute, type=type_.strip(),
                              expression=expression.strip(), phase=phase, after=after,
                              order=len(seeds) + 1))
        elif text.startswith("search_path:"):
            search_path = [s.strip() for s in text[12:].split(",") if s.strip()]
    return relations, seeds, search_path, notes


def setup_sql(relations, seeds, twin):
    out = ["DROP SCHEMA IF EXISTS public CASCADE", "DROP SCHEMA IF EXISTS ledger CASCADE",
           "CREATE SCHEMA public", "CREATE SCHEMA ledger"]
    views = []
    for qualified, columns, attnums in relations:
        types = TYPES[qualified]
        table_seeds = [s for s in seeds if f"{s['schema']}.{s['table']}" == qualified]
        seeded = {s["attribute"]: s for s in table_seeds}
        physical = [c for c in columns if c not in seeded]
        for c in physical:
            assert c in types, f"{qualified}.{c} has no type in oracle.py"
        assert list(types)[: len(physical)] == physical, f"{qualified}: columns differ from oracle.py"
        data = DATA.get(qualified, [])
        schema, table = qualified.split(".", 1)
        live = [s for s in table_seeds if s["phase"] in ("virtual", "materializing", "materialized")]
        cross = any(re.search(r"\bselect\b", s["expression"], re.I) for s in live)
        col_defs = [f"{qi(c)} {types[c]}" for c in physical]
        # The twin's columns in the order ADD COLUMN gave them: each seed after the attnum the
        # table had reached when it was declared (a seed without "after", after everything).
        attnum_of = dict(zip(columns, attnums))
        place = lambda s: (s["after"] if s["after"] is not None else 1 << 30, 1, s["order"])
        twin_order = sorted([((attnum_of[c], 0, 0), c) for c in physical] +
                            [(place(s), s) for s in live], key=lambda item: item[0])
        if twin:
            if cross:
                base = qi(schema) + "." + qi(table + "_base")
                out.append(f"CREATE TABLE {base} ({', '.join(col_defs)})")
                sel = [f"{qi(table)}.{qi(c)}" if isinstance(c, str) else
                       f"(({c['expression']}))::{c['type']} AS {qi(c['attribute'])}"
                       for _, c in twin_order]
                views.append(f"CREATE VIEW {qname(qualified)} AS SELECT {', '.join(sel)} "
                           f"FROM {base} {qi(table)}")
                target = base
            else:
                defs = [f"{qi(c)} {types[c]}" if isinstance(c, str) else
                        f"{qi(c['attribute'])} {c['type']} GENERATED ALWAYS AS "
                        f"({c['expression']}) STORED" for _, c in twin_order]
                out.append(f"CREATE TABLE {qname(qualified)} ({', '.join(defs)})")
                target = qname(qualified)
            names = ", ".join(qi(c) for c in physical)
            for row in data:
                out.append(f"INSERT INTO {target} ({names}) VALUES ({', '.join(lit(v) for v in row[:len(physical)])})")
        else:
            defs = []
            for c in columns:
                defs.append(f"{qi(c)} {seeded[c]['type']}" if c in seeded else f"{qi(c)} {types[c]}")
            out.append(f"CREATE TABLE {qname(qualified)} ({', '.join(defs)})")
            names = ", ".join(qi(c) for c in physical)
            for row in data:
                out.append(f"INSERT INTO {qname(qualified)} ({names}) VALUES ({', '.join(lit(v) for v in row[:len(physical)])})")
            triggers = []
            for s in table_seeds:
                if s["attribute"] not in columns or s["phase"] not in ("materializing", "materialized"):
                    continue
                # materializing: every other row backfilled; materialized: all of them.
                where = "WHERE id % 2 = 0" if s["phase"] == "materializing" else ""
                out.append(f"UPDATE {qname(qualified)} {qi(table)} SET {qi(s['attribute'])} = "
                           f"(({s['expression']}))::{s['type']} {where}")
                fn = qi(schema) + "." + qi(f"fill_{table}_{s['attribute']}")
                body = re.sub(r"\b" + re.escape(table) + r"\.", "NEW.", s["expression"])
                cols = [c for c in physical]
                for c in sorted(cols, key=len, reverse=True):
                    body = re.sub(r"(?<![\w.\"])" + re.escape(c) + r"\b", "NEW." + qi(c), body)
                triggers.append(f"CREATE FUNCTION {fn}() RETURNS trigger LANGUAGE plpgsql AS $f$ BEGIN "
                           f"NEW.{qi(s['attribute'])} := ({body})::{s['type']}; RETURN NEW; END $f$")
                triggers.append(f"CREATE TRIGGER {qi('fill_' + s['attribute'])} BEFORE INSERT OR UPDATE ON "
                           f"{qname(qualified)} FOR EACH ROW EXECUTE FUNCTION {fn}()")
            out.extend(triggers)
    return out + views


class Db:
    def __init__(self, port, dbname):
        admin = pq.PGconn.connect(f"host=127.0.0.1 port={port} user=postgres dbname=postgres".encode())
        admin.exec_(f"CREATE DATABASE {dbname}".encode())  # fails harmlessly when it exists
        admin.finish()
        self.conn = pq.PGconn.connect(f"host=127.0.0.1 port={port} user=postgres dbname={dbname}".encode())
        self.conn.exec_(b"SET client_min_messages = warning")

    def exec_ok(self, sql):
        r = self.conn.exec_(sql.encode())
        if r.status not in (pq.ExecStatus.COMMAND_OK, pq.ExecStatus.TUPLES_OK):
            raise RuntimeError(f"{sql}: {r.error_message.decode()}")

    def run(self, sql, params=None, skip_rows=False):
        """Runs a client text; returns a list of result descriptions (stopping at an error)."""
        if params is not None:
            self.conn.send_query_params(sql.encode(), [p.encode() for p in params])
        else:
            self.conn.send_query(sql.encode())
        results = []
        while True:
            r = self.conn.get_result()
            if r is None:
                break
            if r.status == pq.ExecStatus.COPY_OUT:
                data = []
                while True:
                    n, chunk = self.conn.get_copy_data(0)
                    if n < 0:
                        break
                    data.append(bytes(chunk))
                results.append(("copy", data))
            elif r.status == pq.ExecStatus.COPY_IN:
                self.conn.put_copy_end()
                results.append(("copyin",))
            elif r.status == pq.ExecStatus.TUPLES_OK:
                cols = [(r.fname(i).decode(), r.ftype(i), r.fmod(i)) for i in range(r.nfields)]
                rows = [tuple(None if r.get_value(t, i) is None else r.get_value(t, i).decode()
                              for i in range(r.nfields)) for t in range(r.ntuples)]
                results.append(("rows", cols, None if skip_rows else rows))
            elif r.status == pq.ExecStatus.COMMAND_OK:
                results.append(("ok", r.command_status.decode()))
            elif r.status == pq.ExecStatus.FATAL_ERROR:
                f = lambda k: (r.error_field(k) or b"").decode()
                results.append(("error", f(pq.DiagnosticField.SQLSTATE),
                                f(pq.DiagnosticField.MESSAGE_PRIMARY),
                                f(pq.DiagnosticField.MESSAGE_DETAIL),
                                f(pq.DiagnosticField.STATEMENT_POSITION)))
            else:
                results.append(("status", int(r.status)))
        return results


def normalize(results, ordered):
    out = []
    for r in results:
        if r[0] == "rows" and r[2] is not None and not ordered:
            out.append(("rows", r[1], sorted(r[2], key=repr)))
        elif r[0] == "copy" and not ordered:
            out.append(("copy", sorted(r[1])))
        else:
            out.append(r)
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", help="a running PostgreSQL 15 (user postgres, trust)")
    ap.add_argument("--dump", default=os.path.join(ROOT, "build/tests/rewriter/rewriter_case_dump"))
    ap.add_argument("--fill", action="store_true", help="write verified outputs as expectations")
    ap.add_argument("--only", type=int, help="only the case at this line")
    ap.add_argument("files", nargs="+")
    args = ap.parse_args()
    with contextlib.ExitStack() as stack:
        port = args.port
        if not port:
            sys.path.insert(0, os.path.join(ROOT, "tests"))
            from harness.pgcluster import PgCluster
            port = stack.enter_context(PgCluster()).port
        return run(args, port)


def run(args, port):
    plain, twin = Db(port, "rw_plain"), Db(port, "rw_twin")
    total_bad = 0
    for path in args.files:
        relations, seeds, search_path, notes = parse_header(path)
        for db, is_twin in ((plain, False), (twin, True)):
            for stmt in setup_sql(relations, seeds, is_twin):
                db.exec_ok(stmt)
            db.exec_ok("SET search_path = " + ", ".join(qi(s) for s in search_path))
        dumped = subprocess.run([args.dump, path], capture_output=True, text=True, check=True)
        if dumped.stderr:
            print(dumped.stderr, end="")
        cases = [json.loads(l) for l in dumped.stdout.splitlines()]
        verified = {}
        for case in cases:
            if args.only and case["line"] != args.only:
                continue
            note = notes.get(case["line"], {})
            problems = check(case, note, plain, twin, relations, seeds, args.dump)
            where = f"{path}:{case['line']}"
            if problems:
                total_bad += 1
                print(f"FAIL {where}\n  sql: {case['sql']}\n  out: {case['described']}")
                for p in problems:
                    print("  - " + p)
            else:
                verified[case["line"]] = case["described"]
                if case["expected"] != case["described"]:
                    print(f"{'FILL' if args.fill else 'DIFF'} {where} (verified; expectation differs)")
        if args.fill and verified:
            fill(path, verified)
    print(f"{total_bad} failing case(s)")
    return 1 if total_bad else 0


def mapped_position(dump, case, position):
    """The rewritten text's error position given back in the client's (the dump tool's --map runs
    the rewriter's own client_position); '' for none."""
    if not position:
        return ""
    request = json.dumps({"client": case["sql"], "rewritten": case["out"],
                          "splices": case["splices"], "position": int(position)})
    answer = subprocess.run([dump, "--map"], input=request + "\n", capture_output=True, text=True,
                            check=True).stdout.strip()
    return "" if answer == "null" else answer


def check(case, note, plain, twin, relations, seeds, dump):
    problems = []
    sql, params = case["sql"], note.get("params")
    if params is None and re.search(r"\$\d", sql) and not re.match(r"\s*prepare\b", sql, re.I):
        params = ["1"] * len(set(re.findall(r"\$(\d+)", sql)))
    flat = sql
    while re.search(r"\([^()]*\)", flat):
        flat = re.sub(r"\([^()]*\)", "", flat)
    ordered = bool(re.search(r"\border\s+by\b", flat.split(";")[-1] if flat.strip().endswith(";") is False else flat, re.I))
    skip = note.get("skip_rows", False) or sql.lstrip().upper().startswith("EXPLAIN")
    for db in (plain, twin):
        db.exec_ok("BEGIN")
    try:
        original = twin.run(note.get("oracle", sql), params, skip)
        if case["outcome"] == "refused":
            errors = [r for r in original if r[0] == "error"]
            if note.get("own_refusal"):
                pass
            elif not errors:
                problems.append(f"PostgreSQL accepts it on the twin: {original}")
            else:
                e = errors[0]
                want = (case["sqlstate"], case["message"], case["detail"], str(case["position"] or ""))
                if e[1:] != want:
                    problems.append(f"PostgreSQL says {e[1:]}, rewriter says {want}")
            for db in (plain, twin):
                db.exec_ok("ROLLBACK")
                db.exec_ok("BEGIN")
            marker = plain.run(case["out"], params, skip)
            if not any(r[0] == "error" and "seedproxy refused statement" in r[2] for r in marker):
                problems.append(f"refused text does not fail on the marker: {marker}")
            return problems
        rewritten = plain.run(case["out"] if case["outcome"] == "rewritten" else sql, params, skip)
        a, b = normalize(rewritten, ordered), normalize(original, ordered)
        if len(a) != len(b):
            problems.append(f"result count: rewritten {a} vs twin {b}")
        for x, y in zip(a, b):
            if x[0] == "error" and y[0] == "error":
                if x[1:3] != y[1:3]:
                    problems.append(f"errors differ: rewritten {x[1:]} vs twin {y[1:]}")
                elif case["outcome"] == "unchanged" and x[4] != y[4]:
                    problems.append(f"error positions differ: {x[4]} vs {y[4]}")
                elif case["outcome"] == "rewritten" and mapped_position(dump, case, x[4]) != y[4]:
                    problems.append(f"error position {x[4]} in the rewritten text maps to "
                                    f"{mapped_position(dump, case, x[4]) or 'none'}, twin has "
                                    f"{y[4] or 'none'}")
            elif x != y:
                problems.append(f"rewritten {x}\n    twin      {y}")
        if any(r[0] == "error" for r in a + b) or problems:
            return problems
        for then in note.get("then", []):
            x, y = normalize(plain.run(then), False), normalize(twin.run(then), False)
            if x != y:
                problems.append(f"then {then}: rewritten {x} vs twin {y}")
        # The stored data must agree too (physical columns only).
        for qualified, columns, _ in relations:
            seeded = {s["attribute"] for s in seeds if f"{s['schema']}.{s['table']}" == qualified}
            cols = ", ".join(qi(c) for c in columns if c not in seeded)
            q = f"SELECT {cols} FROM {qname(qualified)}"
            x, y = normalize(plain.run(q), False), normalize(twin.run(q), False)
            if x != y:
                problems.append(f"table {qualified} differs after the statement")
    finally:
        for db in (plain, twin):
            db.conn.exec_(b"ROLLBACK")
            db.conn.exec_(b"DEALLOCATE ALL")
    return problems


def fill(path, verified):
    lines = open(path).read().split("\n")
    out, i = [], 0
    while i < len(lines):
        out.append(lines[i])
        if lines[i].strip() == "query" and (i + 1) in verified:
            text = verified[i + 1]
            i += 1
            while lines[i] != "----":
                out.append(lines[i])
                i += 1
            out.append("----")
            i += 1
            while i < len(lines) and lines[i].strip():
                i += 1
            out.extend(text.split("\n"))
            continue
        i += 1
    open(path, "w").write("\n".join(out))


if __name__ == "__main__":
    sys.exit(main())
