#!/usr/bin/python3
"""Turns the raw results of bench/virtual_read.sh into its markdown report (printed on stdout).

usage: virtual_read_report.py RESULTS_DIR CLOCK_TICKS_PER_SECOND

Input, in the results directory:
  meta.env          key=value lines: versions and parameters of the run
  runs.tsv          mode, round, target, exit status, pgbench tps, pgbench log prefix,
                    transactions, seedproxy CPU ticks used during the run
  <prefix>.<pid>[.<thread>]   pgbench -l per-transaction logs (latency in µs is the 3rd column)
  load-before.txt, load-after.txt   uptime output

TPS is the median of the rounds; mean and p99 latency are computed over every transaction of all
rounds of that target and mode, taken together.
"""

from __future__ import annotations

import os
import sys

from bench_stats import machine, modes_of, ratio, read_meta, read_runs, summarize

TARGETS = ("virtual-proxy", "generated-proxy", "generated-direct")
LABELS = {
    "virtual-proxy": "virtual (seed), through seedproxy",
    "generated-proxy": "generated column, through seedproxy",
    "generated-direct": "generated column, direct",
}


def load(path: str) -> str:
    try:
        with open(path) as f:
            text = f.read().strip()
    except OSError:
        return "?"
    return text.split("load average:", 1)[-1].strip() if "load average:" in text else text


def main() -> int:
    results, ticks_per_second = sys.argv[1], float(sys.argv[2])
    meta = read_meta(os.path.join(results, "meta.env"))
    runs = read_runs(results)
    modes = modes_of(meta, runs)
    stats = summarize(runs, ticks_per_second, without_proxy=("generated-direct",))

    out: list[str] = []
    w = out.append
    w("# Virtual attribute read benchmark")
    w("")
    w(f"- machine: {machine()}")
    w(f"- load average (1, 5, 15 min) before: {load(os.path.join(results, 'load-before.txt'))}; "
      f"after: {load(os.path.join(results, 'load-after.txt'))}")
    w(f"- {meta.get('seedproxy_version', 'seedproxy ?')} (commit {meta.get('commit', '?')}), "
      f"`{meta.get('binary', '?')}`, {meta.get('seedproxy_threads', '1')} I/O thread(s); "
      f"{meta.get('pg_version', 'PostgreSQL ?')}")
    w(f"- data: {meta.get('rows', '?')} accounts in each of `account_v` (`risk_score` is a seed: "
      f"`{meta.get('attribute_type', '?')}` = `{meta.get('expression', '?')}`) and `account_g` "
      f"(the same rows, `risk_score` is `GENERATED ALWAYS AS (…) STORED`)")
    w(f"- workload: `\\set id random(1, {meta.get('rows', '?')})` / "
      f"`SELECT risk_score FROM <table> WHERE id = :id;`, "
      f"`-c {meta.get('clients', '?')} -j {meta.get('jobs', '?')} -T {meta.get('duration', '?')}`, "
      f"{meta.get('rounds', '?')} interleaved rounds per mode")
    w("- TPS: median of the rounds. Latency: over every transaction of all rounds (pgbench `-l`). "
      "Proxy CPU: seedproxy's user + system time during the runs divided by transactions.")
    w("")
    for mode in modes:
        w(f"## `-M {mode}`")
        w("")
        w("| target | TPS (median) | TPS per round | mean latency | p99 latency | seedproxy CPU / transaction |")
        w("|---|---:|---|---:|---:|---:|")
        for t in TARGETS:
            s = stats.get((t, mode))
            if not s:
                continue
            rounds = ", ".join("failed" if v != v else f"{v:.0f}" for v in s["rounds"])
            cpu = "–" if t.endswith("direct") or s["cpu_us"] != s["cpu_us"] else f"{s['cpu_us']:.1f} µs"
            failed = f" ({s['failed']} failed)" if s["failed"] else ""
            w(f"| {LABELS[t]} | {s['tps']:.0f}{failed} | {rounds} | {s['mean_ms']:.3f} ms | "
              f"{s['p99_ms']:.3f} ms | {cpu} |")
        w("")
        v, gp, gd = (stats.get((t, mode), {}) for t in TARGETS)
        w("| ratio | TPS | mean latency | p99 latency |")
        w("|---|---:|---:|---:|")
        for name, a, b in (("virtual ÷ generated, both through seedproxy", v, gp),
                           ("virtual through seedproxy ÷ generated direct", v, gd),
                           ("generated through seedproxy ÷ generated direct", gp, gd)):
            w(f"| {name} | {ratio(a.get('tps'), b.get('tps'))} | "
              f"{ratio(a.get('mean_ms'), b.get('mean_ms'))} | {ratio(a.get('p99_ms'), b.get('p99_ms'))} |")
        w("")
    print("\n".join(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
