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

import glob
import os
import platform
import statistics
import sys

TARGETS = ("virtual-proxy", "generated-proxy", "generated-direct")
LABELS = {
    "virtual-proxy": "virtual (seed), through seedproxy",
    "generated-proxy": "generated column, through seedproxy",
    "generated-direct": "generated column, direct",
}


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
    rank = max(1, min(len(sorted_values), -int(-q * len(sorted_values) // 1)))
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
    return f"{os.cpu_count()} vCPU ({cpu}), {mem_gib:.0f} GiB RAM, Linux {platform.release()}"


def load(path: str) -> str:
    try:
        with open(path) as f:
            text = f.read().strip()
    except OSError:
        return "?"
    return text.split("load average:", 1)[-1].strip() if "load average:" in text else text


def ratio(a: float, b: float) -> str:
    if not a or not b or a != a or b != b:
        return "–"
    return f"{a / b:.2f}×"


def main() -> int:
    results, ticks_per_second = sys.argv[1], float(sys.argv[2])
    meta = read_meta(os.path.join(results, "meta.env"))
    runs: dict[tuple[str, str], list[dict]] = {}
    with open(os.path.join(results, "runs.tsv")) as f:
        for line in f:
            mode, rnd, target, status, tps, prefix, xacts, ticks = line.rstrip("\n").split("\t")
            runs.setdefault((target, mode), []).append({
                "round": int(rnd), "status": int(status), "prefix": prefix,
                "tps": float(tps) if tps else float("nan"),
                "xacts": int(xacts or 0), "ticks": int(ticks or 0)})
    modes = [m for m in meta.get("modes", "simple prepared").split() if any(k[1] == m for k in runs)]

    stats: dict[tuple[str, str], dict] = {}
    for key, rs in runs.items():
        ok = [r for r in rs if r["status"] == 0 and r["tps"] == r["tps"]]
        lat = sorted(v for r in ok for v in latencies_us(r["prefix"]))
        xacts = sum(r["xacts"] for r in ok)
        ticks = sum(r["ticks"] for r in ok)
        stats[key] = {
            "rounds": [r["tps"] if r["status"] == 0 else float("nan")
                       for r in sorted(rs, key=lambda r: r["round"])],
            "failed": len(rs) - len(ok),
            "tps": statistics.median([r["tps"] for r in ok]) if ok else float("nan"),
            "mean_ms": sum(lat) / len(lat) / 1000 if lat else float("nan"),
            "p99_ms": percentile(lat, 0.99) / 1000 if lat else float("nan"),
            "transactions": len(lat),
            # seedproxy's CPU per transaction; clock ticks are coarse (10 ms), fine over 10 s runs
            "proxy_cpu_us": ticks / ticks_per_second * 1e6 / xacts if xacts else float("nan"),
        }

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
            cpu = "–" if t.endswith("direct") or s["proxy_cpu_us"] != s["proxy_cpu_us"] else f"{s['proxy_cpu_us']:.1f} µs"
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
