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

import glob
import json
import os
import platform
import statistics
import sys

TARGETS = ("direct", "pgbouncer", "seedproxy")


def read_meta(path: str) -> dict:
    meta = {}
    with open(path) as f:
        for line in f:
            if "=" in line:
                k, v = line.rstrip("\n").split("=", 1)
                meta[k] = v
    return meta


def latencies_us(prefix: str) -> list[int]:
    out: list[int] = []
    for path in glob.glob(glob.escape(prefix) + ".*"):
        if path.endswith(".out"):
            continue
        with open(path) as f:
            for line in f:
                parts = line.split()
                if len(parts) >= 3:
                    out.append(int(parts[2]))
    return out


def percentile(sorted_values: list[int], q: float) -> float:
    """Nearest-rank percentile."""
    if not sorted_values:
        return float("nan")
    rank = max(1, min(len(sorted_values), int(-(-q * len(sorted_values) // 1))))
    return float(sorted_values[rank - 1])


def machine() -> str:
    cpu = "unknown CPU"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    mem_gib = 0.0
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    mem_gib = int(line.split()[1]) / 1024 / 1024
    except OSError:
        pass
    return (f"{os.cpu_count()} vCPU ({cpu}), {mem_gib:.0f} GiB RAM, "
            f"Linux {platform.release()}")


def fmt_ratio(a: float, b: float) -> str:
    if not a or not b or a != a or b != b:
        return "–"
    return f"{a / b:.2f}×"


def main() -> int:
    results = sys.argv[1]
    meta = read_meta(os.path.join(results, "meta.env"))
    runs: dict[tuple[str, str], list[dict]] = {}
    runs_path = os.path.join(results, "runs.tsv")
    with open(runs_path) if os.path.exists(runs_path) else open(os.devnull) as f:
        for line in f:
            mode, rnd, target, status, tps, prefix, txns, cpu = line.rstrip("\n").split("\t")
            runs.setdefault((target, mode), []).append(
                {"round": int(rnd), "status": int(status), "tps": float(tps) if tps else float("nan"),
                 "prefix": prefix, "txns": int(txns) if txns else 0, "cpu_ticks": int(cpu or 0)})
    modes = [m for m in meta.get("modes", "simple prepared").split() if any(k[1] == m for k in runs)]

    stats: dict[tuple[str, str], dict] = {}
    clk_tck = int(meta.get("clk_tck", "100"))
    for (target, _mode), rs in runs.items():
        key = (target, _mode)
        ok = [r for r in rs if r["status"] == 0 and r["tps"] == r["tps"]]
        lat = sorted(v for r in ok for v in latencies_us(r["prefix"]))
        stats[key] = {
            "rounds": [r["tps"] if r["status"] == 0 else float("nan") for r in sorted(rs, key=lambda r: r["round"])],
            "failed": len(rs) - len(ok),
            "tps": statistics.median([r["tps"] for r in ok]) if ok else float("nan"),
            "mean_ms": (sum(lat) / len(lat) / 1000) if lat else float("nan"),
            "p99_ms": percentile(lat, 0.99) / 1000 if lat else float("nan"),
            "transactions": len(lat),
            # The proxy's own CPU time per transaction, median of the rounds.
            "cpu_us": statistics.median([r["cpu_ticks"] * 1e6 / clk_tck / r["txns"] for r in ok if r["txns"]])
            if target != "direct" and any(r["txns"] for r in ok) else float("nan"),
        }

    out = []
    w = out.append
    w("# Passthrough benchmark")
    w("")
    w(f"- machine: {machine()}; load average (1, 5, 15 min) {meta.get('load_start', '?')} at the "
      f"start, {meta.get('load_end', '?')} at the end")
    w(f"- {meta.get('seedproxy_version', 'seedproxy ?')} (commit {meta.get('commit', '?')}), "
      f"{meta.get('seedproxy_threads', '1')} I/O thread(s); {meta.get('pgbouncer_version', 'PgBouncer ?')} "
      f"(session pooling); {meta.get('pg_version', 'PostgreSQL ?')}")
    w(f"- workload: `pgbench -S` (select-only, scale {meta.get('scale', '?')}), "
      f"`-c {meta.get('clients', '?')} -j {meta.get('jobs', '?')} -T {meta.get('duration', '?')}`, "
      f"{meta.get('rounds', '?')} interleaved rounds per target and protocol mode; everything, "
      f"pgbench included, on the same machine over TCP 127.0.0.1")
    w(f"- TPS: median of the rounds. Latency: mean and p99 over every transaction of all rounds "
      f"(pgbench -l). Proxy CPU: the proxy process's user + system time during a run divided by "
      f"its transactions, median of the rounds.")
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
