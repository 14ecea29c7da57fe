#!/usr/bin/python3
"""Turns the raw results of bench/passthrough.sh into its markdown report (printed on stdout).

Input, in the results directory:
  meta.env          key=value lines: versions and parameters of the run
  runs.tsv          mode, round, target, exit status, pgbench tps, pgbench log prefix
  <prefix>.<pid>[.<thread>]   pgbench -l per-transaction logs (latency in µs is the 3rd column)
  memory-<proxy>.json         output of idle_connections.py

TPS is the median of the rounds; mean and p99 latency are computed over every transaction of all
rounds of that target and mode, taken together.
"""

from __future__ import annotations

import json
import os
import sys

from bench_stats import machine, modes_of, ratio as fmt_ratio, read_meta, read_runs, summarize

TARGETS = ("direct", "pgbouncer", "seedproxy")


def main() -> int:
    results = sys.argv[1]
    meta = read_meta(os.path.join(results, "meta.env"))
    runs = read_runs(results)
    modes = modes_of(meta, runs)
    stats = summarize(runs, float(meta.get("clk_tck", "100")), without_proxy=("direct",))

    out = []
    w = out.append
    w("# Passthrough benchmark")
    w("")
    w(f"- machine: {machine()}; load average (1, 5, 15 min) {meta.get('load_start', '?')} at the "
      f"start, {meta.get('load_end', '?')} at the end")
    w(f"- {meta.get('seedproxy_version', 'seedproxy ?')} (commit {meta.get('commit', '?')}), "
      f"{meta.get('seedproxy_threads', '1')} I/O thread(s), metrics "
      f"{'on' if meta.get('seedproxy_metrics', '0') == '1' else 'off'}; {meta.get('pgbouncer_version', 'PgBouncer ?')} "
      f"(session pooling); {meta.get('pg_version', 'PostgreSQL ?')}")
    w(f"- workload: `pgbench -S` (select-only, scale {meta.get('scale', '?')}), "
      f"`-c {meta.get('clients', '?')} -j {meta.get('jobs', '?')} -T {meta.get('duration', '?')}`, "
      f"{meta.get('rounds', '?')} interleaved rounds per target and protocol mode; everything, "
      f"pgbench included, on the same machine over TCP 127.0.0.1")
    w(f"- TPS: median of the rounds. Latency: mean and p99 over every transaction of all rounds "
      f"(pgbench -l). Proxy CPU: the proxy process's user + system time during a run divided by "
      f"its transactions.")
    w("")
    w("| target | mode | TPS | mean latency ms | p99 latency ms | TPS vs direct | proxy CPU µs per transaction | TPS per round |")
    w("|---|---|---:|---:|---:|---:|---:|---|")
    for mode in modes:
        for target in TARGETS:
            s = stats.get((target, mode))
            if not s:
                continue
            d = stats.get(("direct", mode), {})
            rounds = " / ".join("failed" if t != t else f"{t:.0f}" for t in s["rounds"])
            cpu = "–" if s["cpu_us"] != s["cpu_us"] else f"{s['cpu_us']:.1f}"
            w(f"| {target} | {mode} | {s['tps']:.0f} | {s['mean_ms']:.3f} | {s['p99_ms']:.3f} | "
              f"{fmt_ratio(s['tps'], d.get('tps'))} | {cpu} | {rounds} |")
    w("")
    w("seedproxy relative to the others (TPS: higher is better; latency: lower is better):")
    w("")
    w("| mode | compared with | TPS ratio | mean latency ratio | p99 latency ratio | proxy CPU per transaction ratio |")
    w("|---|---|---:|---:|---:|---:|")
    for mode in modes:
        s = stats.get(("seedproxy", mode))
        if not s:
            continue
        for other in ("direct", "pgbouncer"):
            o = stats.get((other, mode))
            if not o:
                continue
            w(f"| {mode} | {other} | {fmt_ratio(s['tps'], o['tps'])} | "
              f"{fmt_ratio(s['mean_ms'], o['mean_ms'])} | {fmt_ratio(s['p99_ms'], o['p99_ms'])} | "
              f"{fmt_ratio(s['cpu_us'], o['cpu_us'])} |")
    failed = sum(s["failed"] for s in stats.values())
    if failed:
        w("")
        w(f"**{failed} run(s) failed**; their pgbench output is in {results}/*.out.")

    mem = {}
    for proxy in ("seedproxy", "pgbouncer"):
        path = os.path.join(results, f"memory-{proxy}.json")
        if os.path.exists(path):
            try:
                with open(path) as f:
                    mem[proxy] = json.load(f)
            except ValueError:
                pass
    if mem:
        n = next(iter(mem.values()))["connections"]
        w("")
        w(f"Memory: {n} client connections held open through each proxy, idle after their startup, "
          f"then idle after one `SELECT 1` each. RSS is the proxy process's resident set size; server "
          f"connections are the PostgreSQL client backends that appeared for the benchmark database.")
        w("")
        w("| proxy | RSS before KiB | idle after startup: KiB per connection | server connections added "
          "| idle after one query: KiB per connection | server connections added |")
        w("|---|---:|---:|---:|---:|---:|")
        for proxy, m in mem.items():
            def added(key: str) -> str:
                if m.get(key) is None or m.get("backends_before") is None:
                    return "?"
                return str(m[key] - m["backends_before"])
            w(f"| {proxy} | {m['rss_before_kib']} | {m['kib_per_connection_after_startup']:.1f} | "
              f"{added('backends_after_startup')} | {m['kib_per_connection_after_query']:.1f} | "
              f"{added('backends_after_query')} |")
        if len(mem) == 2:
            b, p = mem["pgbouncer"], mem["seedproxy"]
            ratios = []
            for key, label in (("kib_per_connection_after_startup", "after startup"),
                               ("kib_per_connection_after_query", "after one query")):
                if b[key] > 0:
                    ratios.append(f"{p[key] / b[key]:.2f}× {label}")
            if ratios:
                w("")
                w("seedproxy / pgbouncer memory per idle connection: " + ", ".join(ratios) + ".")
    for proxy in ("pgbouncer", "seedproxy"):
        if proxy not in mem and meta.get("memory_test", "1") == "1":
            w("")
            w(f"**Memory test for {proxy} failed**; see {results}/memory-{proxy}.err.")
    print("\n".join(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
