#!/usr/bin/python3
"""Turns the raw results of bench/passthrough.sh into its markdown report (printed on stdout).

Input, in the results directory:
  meta.env          key=value lines: versions and parameters of the run
  runs.tsv          mode, round, target, exit status, pgbench tps, pgbench log prefix
  <prefix>.<pid>[.<thread>]   pgbench -l per-transaction logs (latency in µs is the 3rd column)
  memory-<proxy>.json         output of idle_connections.py
  syscalls.tsv      target, mode, transactions of the pgbench -t run made under strace
  strace-<target>-<mode>.txt  strace -c -f summary of the proxy process during that run

TPS is the median of the rounds; mean and p99 latency are computed over every transaction of all
rounds of that target and mode, taken together.
"""

from __future__ import annotations

import json
import os
import sys

from bench_stats import machine, modes_of, ratio as fmt_ratio, read_meta, read_runs, summarize

TARGETS = ("direct", "pgbouncer", "seedproxy", "seedproxy-uring")


def strace_calls(path: str) -> dict[str, int]:
    """{system call: calls} from an strace -c summary (rows only; the total line is recomputed)."""
    calls: dict[str, int] = {}
    with open(path) as f:
        for line in f:
            parts = line.split()
            if len(parts) < 5 or parts[-1] == "total" or not parts[0][0].isdigit():
                continue
            # % time, seconds, usecs/call, calls, [errors], name
            calls[parts[-1]] = calls.get(parts[-1], 0) + int(parts[3])
    return calls


def read_syscalls(results: str) -> dict[tuple[str, str], dict]:
    """{(target, mode): {"xacts": n, "calls": {name: calls}}} of the strace runs."""
    out: dict[tuple[str, str], dict] = {}
    path = os.path.join(results, "syscalls.tsv")
    if not os.path.exists(path):
        return out
    with open(path) as f:
        for line in f:
            target, mode, xacts = line.rstrip("\n").split("\t")
            summary = os.path.join(results, f"strace-{target}-{mode}.txt")
            if int(xacts) > 0 and os.path.exists(summary):
                out[(target, mode)] = {"xacts": int(xacts), "calls": strace_calls(summary)}
    return out


def syscall_section(w, sys_stats: dict, modes: list[str]) -> None:
    w("")
    w("System calls per transaction: `strace -c -f` attached to the whole proxy process during a "
      "`pgbench -S -t` run of a fixed number of transactions (connection setup included, "
      "amortized).")
    w("")
    w("| target | mode | transactions | system calls per transaction | the largest, per transaction |")
    w("|---|---|---:|---:|---|")
    for mode in modes:
        for target in TARGETS[1:]:
            s = sys_stats.get((target, mode))
            if not s:
                continue
            total = sum(s["calls"].values())
            top = sorted(s["calls"].items(), key=lambda kv: -kv[1])[:5]
            detail = ", ".join(f"{name} {n / s['xacts']:.2f}" for name, n in top)
            w(f"| {target} | {mode} | {s['xacts']} | {total / s['xacts']:.2f} | {detail} |")


def per_xact(sys_stats: dict, target: str, mode: str) -> float | None:
    s = sys_stats.get((target, mode))
    return sum(s["calls"].values()) / s["xacts"] if s else None


def targets_section(w, stats: dict, sys_stats: dict, modes: list[str]) -> None:
    """The issue's targets as ratios measured in this run, each with its verdict."""
    w("")
    w("Targets (seedproxy / other, measured in this run):")
    w("")
    w("| mode | TPS / PgBouncer (≥ 1.2) | TPS / direct (≥ 0.9) | CPU per transaction / PgBouncer (≤ 0.7) "
      "| system calls per transaction / PgBouncer (≤ 1.0) |")
    w("|---|---:|---:|---:|---:|")

    def verdict(a, b, limit: float, higher: bool) -> str:
        if not a or not b or a != a or b != b:
            return "–"
        r = a / b
        met = r >= limit if higher else r <= limit
        return f"{r:.2f}× {'met' if met else 'NOT met'}"

    for mode, proxy in ((m, p) for m in modes for p in TARGETS[2:]):
        s = stats.get((proxy, mode), {})
        if not s:
            continue
        b = stats.get(("pgbouncer", mode), {})
        d = stats.get(("direct", mode), {})
        label = mode if proxy == "seedproxy" else f"{mode} ({proxy})"
        w(f"| {label} | {verdict(s.get('tps'), b.get('tps'), 1.2, True)} | "
          f"{verdict(s.get('tps'), d.get('tps'), 0.9, True)} | "
          f"{verdict(s.get('cpu_us'), b.get('cpu_us'), 0.7, False)} | "
          f"{verdict(per_xact(sys_stats, proxy, mode), per_xact(sys_stats, 'pgbouncer', mode), 1.0, False)} |")


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
    for mode, proxy in ((m, p) for m in modes for p in TARGETS[2:]):
        s = stats.get((proxy, mode))
        if not s:
            continue
        for other in ("direct", "pgbouncer"):
            o = stats.get((other, mode))
            if not o:
                continue
            w(f"| {mode}{'' if proxy == 'seedproxy' else ' (' + proxy + ')'} | {other} | {fmt_ratio(s['tps'], o['tps'])} | "
              f"{fmt_ratio(s['mean_ms'], o['mean_ms'])} | {fmt_ratio(s['p99_ms'], o['p99_ms'])} | "
              f"{fmt_ratio(s['cpu_us'], o['cpu_us'])} |")
    sys_stats = read_syscalls(results)
    if sys_stats:
        syscall_section(w, sys_stats, modes)
    targets_section(w, stats, sys_stats, modes)
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
