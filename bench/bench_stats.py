"""What the pgbench benchmark reports share: run metadata, the runs.tsv that bench/lib.sh writes,
per-transaction latencies from pgbench -l logs, and the summary of each target and mode.

TPS is the median of the rounds; mean and p99 latency are over every transaction of all rounds of
that target and mode taken together; proxy CPU is the proxy's user + system time during the runs
divided by their transactions.
"""

from __future__ import annotations

import glob
import os
import platform
import statistics

NAN = float("nan")


def read_meta(path: str) -> dict:
    """key=value lines."""
    meta = {}
    with open(path) as f:
        for line in f:
            if "=" in line:
                k, v = line.rstrip("\n").split("=", 1)
                meta[k] = v
    return meta


def latencies_us(prefix: str) -> list[int]:
    """Transaction latencies (3rd column, µs) from every pgbench -l log written with `prefix`."""
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
    """Nearest-rank percentile of an ascending list."""
    if not sorted_values:
        return NAN
    rank = max(1, min(len(sorted_values), -int(-q * len(sorted_values) // 1)))
    return float(sorted_values[rank - 1])


def machine() -> str:
    cpu = "unknown CPU"
    mem_gib = 0.0
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), cpu)
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    mem_gib = int(line.split()[1]) / 1024 / 1024
    except OSError:
        pass
    return f"{os.cpu_count()} vCPU ({cpu}), {mem_gib:.0f} GiB RAM, Linux {platform.release()}"


def ratio(a: float | None, b: float | None) -> str:
    if not a or not b or a != a or b != b:
        return "–"
    return f"{a / b:.2f}×"


def read_runs(results: str) -> dict[tuple[str, str], list[dict]]:
    """runs.tsv as {(target, mode): [run, ...]}; empty when there is none."""
    runs: dict[tuple[str, str], list[dict]] = {}
    path = os.path.join(results, "runs.tsv")
    if not os.path.exists(path):
        return runs
    with open(path) as f:
        for line in f:
            mode, rnd, target, status, tps, prefix, xacts, ticks = line.rstrip("\n").split("\t")
            runs.setdefault((target, mode), []).append({
                "round": int(rnd), "status": int(status), "prefix": prefix,
                "tps": float(tps) if tps else NAN,
                "xacts": int(xacts or 0), "ticks": int(ticks or 0)})
    return runs


def summarize(runs: dict[tuple[str, str], list[dict]], ticks_per_second: float,
              without_proxy: tuple[str, ...] = ()) -> dict[tuple[str, str], dict]:
    """Per (target, mode): rounds, failed, tps, mean_ms, p99_ms, transactions, cpu_us (NaN for
    the targets in `without_proxy`)."""
    stats: dict[tuple[str, str], dict] = {}
    for key, rs in runs.items():
        ok = [r for r in rs if r["status"] == 0 and r["tps"] == r["tps"]]
        lat = sorted(v for r in ok for v in latencies_us(r["prefix"]))
        xacts = sum(r["xacts"] for r in ok)
        ticks = sum(r["ticks"] for r in ok)
        stats[key] = {
            "rounds": [r["tps"] if r["status"] == 0 else NAN
                       for r in sorted(rs, key=lambda r: r["round"])],
            "failed": len(rs) - len(ok),
            "tps": statistics.median([r["tps"] for r in ok]) if ok else NAN,
            "mean_ms": sum(lat) / len(lat) / 1000 if lat else NAN,
            "p99_ms": percentile(lat, 0.99) / 1000 if lat else NAN,
            "transactions": len(lat),
            # clock ticks are coarse (10 ms), fine over runs of several seconds
            "cpu_us": ticks / ticks_per_second * 1e6 / xacts
            if xacts and key[0] not in without_proxy else NAN,
        }
    return stats


def modes_of(meta: dict, runs: dict[tuple[str, str], list[dict]]) -> list[str]:
    """The run's protocol modes, in the order given, that have results."""
    return [m for m in meta.get("modes", "simple prepared").split() if any(k[1] == m for k in runs)]
