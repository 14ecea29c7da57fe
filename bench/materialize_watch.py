#!/usr/bin/python3
"""Sends one admin command (MATERIALIZE or ROLLBACK) to seedproxy's console and follows the
materialization in SHOW MATERIALIZATIONS until it reaches a step, for bench/materialize.sh.

    materialize_watch.py --port P --command "MATERIALIZE pgbench_accounts.balance_cents" \
        --attribute balance_cents --until materialized --out DIR/NAME [--timeout S] [--interval S]

Writes NAME.json: the command's start time and the time the step was first seen (epoch seconds),
the time each step was first seen, the last row, and the largest rows_per_second the engine
reported while backfilling; NAME.tsv: every poll (time, step, rows_done, rows_total,
rows_per_second, error). Exits 1 when the row shows an error or the step is not reached in time,
after writing both files, so the caller can show what the engine said.

The console speaks the simple protocol; psycopg2 uses it for every statement (autocommit, so no
BEGIN is sent).
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import psycopg2

def connect(port: int, user: str):
    conn = psycopg2.connect(host="127.0.0.1", port=port, user=user, dbname="seedproxy", connect_timeout=10)
    conn.autocommit = True
    return conn


def row_of(conn, attribute: str, entity: str) -> dict | None:
    with conn.cursor() as cur:
        cur.execute("SHOW MATERIALIZATIONS")
        names = [d[0] for d in cur.description]
        rows = [dict(zip(names, r)) for r in cur.fetchall()]
    rows = [r for r in rows if r["attribute"] == attribute and r["entity"] == entity]
    return rows[0] if rows else None


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--user", default="postgres")
    ap.add_argument("--command", required=True)
    ap.add_argument("--attribute", required=True)
    ap.add_argument("--entity", default="public.pgbench_accounts")
    ap.add_argument("--until", required=True, help="the step to wait for")
    ap.add_argument("--out", required=True, help="path prefix of the .json and .tsv written")
    ap.add_argument("--timeout", type=float, default=1800)
    ap.add_argument("--interval", type=float, default=0.1)
    args = ap.parse_args()

    conn = connect(args.port, args.user)
    summary: dict = {"command": args.command, "attribute": args.attribute, "until": args.until,
                     "steps": {}, "max_rows_per_second_backfilling": 0.0, "reached": False}
    status = 1
    with open(args.out + ".tsv", "w") as tsv:
        tsv.write("time\tstep\trows_done\trows_total\trows_per_second\terror\n")
        summary["command_start"] = time.time()
        with conn.cursor() as cur:
            cur.execute(args.command)
        summary["command_answered"] = time.time()
        deadline = time.monotonic() + args.timeout
        last = None
        while True:
            now = time.time()
            try:
                last = row_of(conn, args.attribute, args.entity)
            except psycopg2.Error as e:  # a console error is reported, then we reconnect and go on
                summary.setdefault("console_errors", []).append(f"{now:.3f} {e}".strip())
                conn.close()
                conn = connect(args.port, args.user)
                last = None
            if last is not None:
                step = str(last["step"])
                summary["steps"].setdefault(step, now)
                rps = float(last["rows_per_second"] or 0.0)
                if step == "backfilling":
                    summary["max_rows_per_second_backfilling"] = max(summary["max_rows_per_second_backfilling"], rps)
                tsv.write(f"{now:.3f}\t{step}\t{last['rows_done']}\t{last['rows_total']}\t{rps:.0f}\t"
                          f"{(last['error'] or '').replace(chr(9), ' ')}\n")
                if last["error"]:
                    summary.setdefault("errors_seen", [])
                    if last["error"] not in summary["errors_seen"]:
                        summary["errors_seen"].append(last["error"])
                if step == args.until:
                    summary["reached"] = True
                    summary["reached_at"] = now
                    status = 0
                    break
            if time.monotonic() >= deadline:
                break
            time.sleep(args.interval)
    summary["last_row"] = {k: (str(v) if v is not None else None) for k, v in (last or {}).items()}
    with open(args.out + ".json", "w") as f:
        json.dump(summary, f, indent=1)
    conn.close()
    if status:
        print(f"{args.attribute}: step {args.until} not reached within {args.timeout:.0f} s; last row: "
              f"{summary['last_row']}; errors seen: {summary.get('errors_seen', [])}", file=sys.stderr)
    return status


if __name__ == "__main__":
    sys.exit(main())
