#!/usr/bin/python3
"""The report of bench/materialize.sh: reads its results directory and prints Markdown.

    materialize_report.py RESULTS_DIR

For each change under load (runs `new-rN`: MATERIALIZE with the build measured; `baseline-rN`:
MATERIALIZE with BASELINE_BIN's build; `stored-rN`: ALTER TABLE … STORED), pgbench -N's
per-transaction logs are split into two windows:
  before  transactions that started after the warm-up and ended before the change started;
  during  transactions whose run [end - latency, end] overlaps [change start, change end].
p99 is nearest-rank over the window's transactions; a stall is a transaction above 100 ms.
"""

from __future__ import annotations

import datetime
import glob
import json
import os
import re
import sys

from bench_stats import machine, percentile

STALL_US = 100_000
TARGETS = {"errors": 0, "p99_ratio": 1.5, "stall_ms": 100, "idle_rows_per_second": 100_000, "trigger_ratio": 1.3}


def read_env(path: str) -> dict:
    out = {}
    if os.path.exists(path):
        with open(path) as f:
            for line in f:
                if "=" in line:
                    k, v = line.rstrip("\n").split("=", 1)
                    out[k] = v
    return out


def read_events(results: str) -> dict:
    events = {}
    with open(os.path.join(results, "events.tsv")) as f:
        for line in f:
            name, t = line.split()
            events[name] = float(t)
    return events


def transactions(results: str, phase: str) -> tuple[list[tuple[float, int, str]], int]:
    """(end time in epoch seconds, latency µs, segment) of every logged transaction, sorted by end;
    and the number of log lines that are not a completed transaction (failed or skipped)."""
    out, not_done = [], 0
    for path in glob.glob(os.path.join(glob.escape(results), f"{phase}-seg*")):
        if path.endswith(".out"):
            continue
        segment = os.path.basename(path).split(".")[0]
        with open(path) as f:
            for line in f:
                parts = line.split()
                if len(parts) < 6:
                    continue
                if not parts[2].isdigit():
                    not_done += 1
                    continue
                out.append((int(parts[4]) + int(parts[5]) / 1e6, int(parts[2]), segment))
    out.sort()
    return out, not_done


def pgbench_errors(results: str, phase: str) -> dict:
    """Failures pgbench reported over the phase's segments."""
    failed = aborted = bad_exit = 0
    messages: list[str] = []
    for path in sorted(glob.glob(os.path.join(glob.escape(results), f"{phase}-seg*.out"))):
        with open(path) as f:
            text = f.read()
        m = re.search(r"number of failed transactions: (\d+)", text)
        failed += int(m.group(1)) if m else 0
        aborted += len(re.findall(r"^client \d+ aborted", text, re.M))
        messages += [line for line in text.splitlines() if "ERROR" in line or "aborted" in line][:5]
    status_path = os.path.join(results, f"{phase}-status.tsv")
    segments = 0
    if os.path.exists(status_path):
        with open(status_path) as f:
            for line in f:
                segments += 1
                if line.split()[1] != "0":
                    bad_exit += 1
    return {"failed": failed, "aborted_clients": aborted, "nonzero_exits": bad_exit, "segments": segments,
            "messages": messages[:5]}


def window_stats(xacts: list[tuple[float, int, str]], lo: float, hi: float, overlap: bool) -> dict:
    if overlap:  # the transaction ran at some point within [lo, hi]
        chosen = [x for x in xacts if x[0] >= lo and x[0] - x[1] / 1e6 <= hi]
    else:  # wholly inside [lo, hi)
        chosen = [x for x in xacts if x[0] - x[1] / 1e6 >= lo and x[0] < hi]
    sel = [(end, lat) for end, lat, _ in chosen]
    lats = sorted(lat for _, lat in sel)
    # Longest time with no transaction completing, within a segment (a segment's end and the next
    # one's connections are not the database stalling).
    gap = max((b[0] - a[0] for a, b in zip(chosen, chosen[1:]) if a[2] == b[2]), default=float("nan"))
    return {"n": len(lats), "tps": len(lats) / (hi - lo) if hi > lo else float("nan"),
            "p50": percentile(lats, 0.50) / 1000, "p99": percentile(lats, 0.99) / 1000,
            "max": (lats[-1] / 1000) if lats else float("nan"),
            "stalls": sum(1 for v in lats if v > STALL_US), "max_gap": gap * 1000,
            "worst": sorted(sel, key=lambda x: -x[1])[:5]}


def step_at(steps: dict, t: float) -> str:
    """The engine's step at time t, from the first-seen times of each step."""
    current = "(before the first poll)"
    for step, seen in sorted(steps.items(), key=lambda kv: kv[1]):
        if seen <= t:
            current = step
    return current


def read_json(path: str) -> dict | None:
    if not os.path.exists(path):
        return None
    with open(path) as f:
        return json.load(f)


def backfill(m: dict | None) -> dict:
    """Times of a followed MATERIALIZE: total, backfilling, verifying; rows/s of the backfill."""
    if not m or not m.get("reached"):
        return {}
    steps = m["steps"]
    total = m["reached_at"] - m["command_start"]
    rows_total = int(float(m["last_row"].get("rows_total") or 0))
    out = {"total": total, "rows_total": rows_total, "engine_rps": m.get("max_rows_per_second_backfilling", 0.0)}
    if "backfilling" in steps:
        end = steps.get("verifying", steps.get("switching_to_column", m["reached_at"]))
        out["backfill"] = end - steps["backfilling"]
        out["rps"] = rows_total / out["backfill"] if out["backfill"] > 0 else float("nan")
    if "verifying" in steps:
        out["verify"] = steps.get("switching_to_column", m["reached_at"]) - steps["verifying"]
    return out


def tps_of(path: str) -> float:
    if not os.path.exists(path):
        return float("nan")
    with open(path) as f:
        m = re.search(r"^tps = ([0-9.]+) \(without initial connection time\)", f.read(), re.M)
    return float(m.group(1)) if m else float("nan")


def f(v: float, digits: int = 1) -> str:
    return "–" if v is None or v != v else f"{v:,.{digits}f}"


def verdict(ok: bool) -> str:
    return "met" if ok else "**missed**"


LOG_TIME = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+) UTC \[(\d+)\] ")
WAITING = re.compile(r"process \d+ still waiting for (\S+) on (.+?) after ([\d.]+) ms")
HOLDERS = re.compile(r"Process(?:es)? holding the lock: ([\d, ]+)\.")
AUTHORIZED = re.compile(r"connection authorized: .*?application_name=(.+)$")


def lock_waits(log_path: str) -> list[tuple[float, str, str]]:
    """(epoch time, lock, holders' application names) of each wait PostgreSQL logged (log_lock_waits,
    deadlock_timeout 100 ms: one line per wait that reached 100 ms)."""
    if not log_path or not os.path.exists(log_path):
        return []
    apps: dict[str, str] = {}
    waits, pending = [], None
    with open(log_path, errors="replace") as fh:
        for line in fh:
            stamp = LOG_TIME.match(line)
            if stamp:
                pending = None
                pid, rest = stamp.group(2), line[stamp.end():]
                if (m := AUTHORIZED.search(rest)):
                    apps[pid] = m.group(1).strip()
                elif (m := WAITING.search(rest)):
                    when = datetime.datetime.strptime(stamp.group(1), "%Y-%m-%d %H:%M:%S.%f")
                    t = when.replace(tzinfo=datetime.timezone.utc).timestamp()
                    pending = [t, f"{m.group(1)} on {m.group(2).split(' ')[0]}", ""]
                    waits.append(pending)
            elif pending is not None and (m := HOLDERS.search(line)):
                pending[2] = ", ".join(sorted({apps.get(h.strip(), "pid " + h.strip())
                                               for h in m.group(1).split(",") if h.strip()}))
    return [tuple(w) for w in waits]


def main() -> int:
    results = sys.argv[1]
    meta = read_env(os.path.join(results, "meta.env"))
    checks = read_env(os.path.join(results, "checks.env"))
    events = read_events(results)
    with open(os.path.join(results, "load.txt")) as fh:
        loads = [line.strip() for line in fh if line.strip()]

    print("# Materialization under load\n")
    print(f"- machine: {machine()}")
    print("- load average (1, 5, 15 min) at each stage: " + "; ".join(loads))
    print(f"- seedproxy {meta.get('seedproxy_version', '?')} (commit {meta.get('commit', '?')}, "
          f"{meta.get('binary', '?')}); {meta.get('pg_version', '?')}")
    print(f"- data: pgbench -i -s {meta.get('scale')} ({int(meta.get('rows', 0)):,} pgbench_accounts rows); "
          f"seed `bigint = {meta.get('expression')}`, policy manual"
          + (f"; {meta.get('history_per_account')} pgbench_history rows per account loaded first"
             if meta.get("seed_kind") == "history" else ""))
    print(f"- load: `pgbench -N -M {meta.get('mode')} -c {meta.get('clients')} -j {meta.get('jobs')}` through "
          f"seedproxy, back-to-back {meta.get('segment')} s segments with `-l`; {meta.get('before')} s measured "
          f"before each change, {meta.get('after')} s kept after it")
    print(f"- materialization settings under load: {meta.get('load_settings')}; "
          f"fast no-load run: {meta.get('fast_settings')}\n")

    runs = sorted({k.rsplit(".", 1)[0] for k in events if k.endswith(".change_start")},
                  key=lambda r: events[f"{r}.change_start"])
    phases, mats = {}, {}
    for run in runs:
        xacts, not_done = transactions(results, run)
        cs, ce = events[f"{run}.change_start"], events[f"{run}.change_end"]
        mat = read_json(os.path.join(results, f"materialize-{run}.json"))
        if mat:
            mats[run] = mat
            if mat.get("reached"):  # from MATERIALIZE sent to step materialized seen
                cs, ce = mat["command_start"], mat["reached_at"]
        during = window_stats(xacts, cs, ce, overlap=True)
        steps = {}
        if mat:
            for end, lat, _ in xacts:
                if lat > STALL_US and end >= cs and end - lat / 1e6 <= ce:
                    step = step_at(mat["steps"], end - lat / 1e6)
                    steps[step] = steps.get(step, 0) + 1
        phases[run] = {
            "before": window_stats(xacts, events[f"{run}.before_start"], cs, overlap=False),
            "during": during, "stall_steps": steps,
            "errors": pgbench_errors(results, run), "not_done": not_done, "total": ce - cs, "cs": cs}

    def variant(run: str) -> str:
        return run.rsplit("-r", 1)[0]

    labels = {"new": "seedproxy MATERIALIZE (this build)", "baseline": "seedproxy MATERIALIZE (baseline build)",
              "stored": "ALTER TABLE … ADD COLUMN … STORED" if meta.get("seed_kind", "row") == "row"
              else "ALTER TABLE … ADD COLUMN + UPDATE of every row, one transaction"}

    def ratio(p: dict) -> float:
        return p["during"]["p99"] / p["before"]["p99"]

    def errors(p: dict) -> int:
        e = p["errors"]
        return e["failed"] + p["not_done"] + e["aborted_clients"] + e["nonzero_exits"]

    print("## Under pgbench -N, every run in the order it ran\n")
    print(f"Baseline build: {meta.get('baseline_version', 'none')} ({meta.get('baseline_binary', 'none')}).\n")
    print("| run | change | time s | errors | TPS before → during | p99 before → during, ms | p99 ratio | "
          "max during, ms | > 100 ms before / during | steps of the > 100 ms ones | longest gap during, ms |")
    print("|---|---|---:|---:|---|---|---:|---:|---|---|---:|")
    for run, p in phases.items():
        b, d = p["before"], p["during"]
        steps = ", ".join(f"{k} {v}" for k, v in sorted(p["stall_steps"].items(), key=lambda kv: -kv[1])) or "–"
        print(f"| {run} | {labels.get(variant(run), variant(run))} | {f(p['total'], 1)} | {errors(p)} | "
              f"{f(b['tps'], 0)} → {f(d['tps'], 0)} | {f(b['p99'], 2)} → {f(d['p99'], 2)} | {f(ratio(p), 2)}× | "
              f"{f(d['max'], 1)} | {b['stalls']} / {d['stalls']} of {d['n']:,} | {steps} | {f(d['max_gap'], 1)} |")
    print()
    print("Per change, over its rounds:\n")
    print("| change | p99 ratios | worst p99 ratio | > 100 ms during (sum) | worst latency during, ms | errors | target |")
    print("|---|---|---:|---:|---:|---:|---|")
    for v in ("new", "baseline", "stored"):
        ps = [p for run, p in phases.items() if variant(run) == v]
        if not ps:
            continue
        print(f"| {labels[v]} | {', '.join(f(ratio(p), 2) + '×' for p in ps)} | {f(max(ratio(p) for p in ps), 2)}× | "
              f"{sum(p['during']['stalls'] for p in ps)} | {f(max(p['during']['max'] for p in ps), 1)} | "
              f"{sum(errors(p) for p in ps)} | {'≤ 1.5×, 0 above 100 ms' if v == 'new' else ''} |")
    print()

    for run, mat in mats.items():
        zero = phases[run]["cs"] if run in phases else mat["command_start"]
        steps = sorted(mat["steps"].items(), key=lambda kv: kv[1])
        print(f"{run} steps (s from MATERIALIZE, first seen by a 0.1 s poll of SHOW MATERIALIZATIONS): "
              f"MATERIALIZE sent {mat['command_start'] - zero:+.2f}, " +
              ", ".join(f"{s_} {v - zero:+.2f}" for s_, v in steps) +
              ("" if mat.get("reached") else "; **materialized not reached**") +
              (("; errors shown: " + "; ".join(mat["errors_seen"])) if mat.get("errors_seen") else ""))
        print()
    for run, p in phases.items():
        worst = p["during"]["worst"]
        if not worst:
            continue
        mat = mats.get(run)
        print(f"slowest transactions during {run}: " + ", ".join(
            f"{lat / 1000:.1f} ms ending at {end - p['cs']:+.2f} s"
            + (f" ({step_at(mat['steps'], end - lat / 1e6)} at its start)" if mat else "")
            for end, lat in worst))
        print()
        if p["errors"]["messages"]:
            print(f"pgbench messages ({run}): " + " | ".join(p["errors"]["messages"]) + "\n")

    load_bf = backfill(next((mats[r] for r in mats if variant(r) == "new"), None))
    idle_bf = backfill(read_json(os.path.join(results, "materialize-idle.json")))
    fast_bf = backfill(read_json(os.path.join(results, "materialize-fast.json")))

    waits = lock_waits(sys.argv[2] if len(sys.argv) > 2 else "")
    print("## Who made applications wait\n")
    print("PostgreSQL's own log of every lock wait that reached 100 ms (`log_lock_waits`, "
          "`deadlock_timeout` 100 ms), by run and by the holder's `application_name`:\n")
    print("| run | lock waits ≥ 100 ms before | during | during, by lock and holder |")
    print("|---|---:|---:|---|")
    for run, p in phases.items():
        bs, cs = events[f"{run}.before_start"], p["cs"]
        ce = cs + p["total"]
        before = sum(1 for t, _, _ in waits if bs <= t < cs)
        kinds: dict[str, int] = {}
        for t, lock, holder in waits:
            if cs <= t <= ce:
                key = f"{lock} held by {holder or '?'}"
                kinds[key] = kinds.get(key, 0) + 1
        print(f"| {run} | {before} | {sum(kinds.values())} | "
              + ("; ".join(f"{k}: {v}" for k, v in sorted(kinds.items(), key=lambda kv: -kv[1])) or "–") + " |")
    print()

    print("## Backfill rate\n")
    print("| run | rows | total time s | time backfilling s | time verifying s | rows/s (backfill) | "
          "engine's rows_per_second (max while backfilling) | target |")
    print("|---|---:|---:|---:|---:|---:|---:|---|")
    for label, b, target in (("under pgbench -N, settings above (this build, first round)", load_bf, ""),
                             ("no load, the same settings", idle_bf, "≥ 100,000 rows/s"),
                             ("no load, fast settings", fast_bf, "≥ 100,000 rows/s")):
        print(f"| {label} | {b.get('rows_total', 0):,} | {f(b.get('total'), 2)} | {f(b.get('backfill'), 2)} | "
              f"{f(b.get('verify'), 2)} | {f(b.get('rps'), 0)} | {f(b.get('engine_rps'), 0)} | {target} |")
    print()

    t1 = tps_of(os.path.join(results, "update-no-trigger-1.out"))
    t2 = tps_of(os.path.join(results, "update-no-trigger-2.out"))
    tt = tps_of(os.path.join(results, "update-trigger.out"))
    base = (t1 + t2) / 2
    print("## Write trigger overhead\n")
    print(f"`UPDATE pgbench_accounts SET abalance = abalance + 1 WHERE aid = :aid` (random aid), "
          f"`-M prepared -c {meta.get('clients')} -j {meta.get('jobs')} -T {meta.get('update_seconds')}`, "
          "straight to PostgreSQL, after a VACUUM of the table:\n")
    print("| run | TPS |")
    print("|---|---:|")
    print(f"| no trigger (before the runs) | {f(t1, 0)} |")
    print(f"| with the write trigger (materialized) | {f(tt, 0)} |")
    print(f"| no trigger (after ROLLBACK) | {f(t2, 0)} |")
    print(f"\nTPS without ÷ with the trigger: {f(base / tt, 2)}× (target < 1.3×)\n")

    print("## Targets\n")
    print("| target | result | |")
    print("|---|---|---|")
    news = [p for run, p in phases.items() if variant(run) == "new"]
    if news:
        errs = sum(errors(p) for p in news)
        worst = max(ratio(p) for p in news)
        stalls = sum(p["during"]["stalls"] for p in news)
        print(f"| zero client errors during MATERIALIZE | {errs} | {verdict(errs == 0)} |")
        print(f"| p99 during ≤ 1.5× before (worst round) | {worst:.2f}× | {verdict(worst <= TARGETS['p99_ratio'])} |")
        print(f"| no stall above 100 ms | max {max(p['during']['max'] for p in news):.1f} ms, {stalls} above 100 ms | "
              f"{verdict(stalls == 0)} |")
    best = max((b.get("rps", 0) or 0 for b in (idle_bf, fast_bf)), default=0)
    print(f"| backfill ≥ 100,000 rows/s without load | {best:,.0f} rows/s (best of the two no-load runs) | "
          f"{verdict(best >= TARGETS['idle_rows_per_second'])} |")
    print(f"| trigger overhead < 1.3× | {base / tt:.2f}× | {verdict(base / tt < TARGETS['trigger_ratio'])} |")
    print()
    wrong = {k[len("rows_wrong_"):]: v for k, v in checks.items() if k.startswith("rows_wrong_")}
    print(f"Checks: rows where the column differs from the expression after MATERIALIZE: "
          f"{', '.join(f'{k} {v}' for k, v in wrong.items()) or '?'}; schema after ROLLBACK vs before "
          f"(pg_dump --schema-only): {checks.get('schema_after_rollback', '?')}.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
