#!/usr/bin/env python3
"""Per-transaction instructions by function for two programs, each profiled by callgrind twice
(a short and a long run of the same workload): the long profile minus the short one, divided by
the transactions between them, cancels startup and shutdown. Prints the functions whose cost per
transaction differs most between the two programs (bench/proxies_callgrind.sh)."""
import argparse
import re
import subprocess

LINE = re.compile(r"\s*([\d,]+) \([ \d.]+%\)\s+(.*)")


def costs(profile: str) -> dict[str, int]:
    """Instructions of each function's own code (not its callees) in one profile."""
    out = subprocess.run(["callgrind_annotate", "--threshold=100", profile],
                         capture_output=True, text=True, check=True).stdout
    result: dict[str, int] = {}
    for line in out.splitlines():
        match = LINE.match(line)
        if match and "PROGRAM TOTALS" not in match.group(2):
            name = match.group(2)[:150]
            result[name] = result.get(name, 0) + int(match.group(1).replace(",", ""))
    return result


def per_transaction(short: str, long: str, transactions: int) -> dict[str, float]:
    a, b = costs(short), costs(long)
    return {name: (b.get(name, 0) - a.get(name, 0)) / transactions for name in set(a) | set(b)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--transactions", type=int, required=True)
    parser.add_argument("first_short")
    parser.add_argument("first_long")
    parser.add_argument("second_short")
    parser.add_argument("second_long")
    args = parser.parse_args()
    first = per_transaction(args.first_short, args.first_long, args.transactions)
    second = per_transaction(args.second_short, args.second_long, args.transactions)
    print(f"first  {sum(first.values()):8.0f} per transaction")
    print(f"second {sum(second.values()):8.0f} per transaction")
    print(f"{'first':>8} {'second':>8} {'diff':>8}  function")
    names = sorted(set(first) | set(second),
                   key=lambda n: abs(second.get(n, 0) - first.get(n, 0)), reverse=True)
    for name in names[:args.top]:
        a, b = first.get(name, 0), second.get(name, 0)
        print(f"{a:8.0f} {b:8.0f} {b - a:+8.0f}  {name}")


if __name__ == "__main__":
    main()
