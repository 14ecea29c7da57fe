#!/usr/bin/python3
"""Proxy memory for big client messages: starts a PostgreSQL and a seedproxy (the test harness),
sends Query messages of --megabytes each from --clients connections at once (SELECT length of a
literal), then a Bind with a parameter of that size, and prints the proxy's peak and current
resident set (VmHWM, VmRSS) before and after as one JSON object.

    SEEDPROXY_BIN=build/proxy/seedproxy bench/big_messages.py --megabytes 100 --clients 1
    SEEDPROXY_BIN=build/proxy/seedproxy bench/big_messages.py --megabytes 100 --clients 4

Issue 14 item 5: before streaming, a 100 MB Query cost 100 MB of proxy memory.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests"))

from harness import wire  # noqa: E402
from harness.pgcluster import PgCluster  # noqa: E402
from harness.proxy import Proxy  # noqa: E402


def status_kib(pid: int, key: str) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"no {key} for pid {pid}")


def one_client(port: int, size: int, failures: list) -> None:
    try:
        with wire.WireClient(port, timeout=600) as c:
            c.connect()
            c.send(wire.query("select length('" + "x" * size + "')"))
            rows = [wire.parse_data_row(b) for t, b in c.read_until("Z", raise_on_error=True) if t == "D"]
            if rows != [[str(size).encode()]]:
                failures.append(f"query answered {rows!r}")
            c.send(wire.parse("select length($1::text)") + wire.bind(params=[b"y" * size])
                   + wire.execute() + wire.sync())
            rows = [wire.parse_data_row(b) for t, b in c.read_until("Z", raise_on_error=True) if t == "D"]
            if rows != [[str(size).encode()]]:
                failures.append(f"bind answered {rows!r}")
    except Exception as e:  # reported, not raised: the other clients finish
        failures.append(repr(e))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--megabytes", type=int, default=100)
    parser.add_argument("--clients", type=int, default=1)
    args = parser.parse_args()
    size = args.megabytes * 1000 * 1000
    with PgCluster() as pg:  # started on entry
        with Proxy(upstream_port=pg.port, control={"user": "postgres"}) as px:
            with wire.WireClient(px.port) as c:  # rewriting on: the database is watched
                c.connect()
                c.simple_query("select 1")
            before = {"hwm_kib": status_kib(px.pid, "VmHWM"), "rss_kib": status_kib(px.pid, "VmRSS")}
            failures: list[str] = []
            threads = [threading.Thread(target=one_client, args=(px.port, size, failures))
                       for _ in range(args.clients)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            after = {"hwm_kib": status_kib(px.pid, "VmHWM"), "rss_kib": status_kib(px.pid, "VmRSS")}
            print(json.dumps({"binary": px.binary, "megabytes": args.megabytes, "clients": args.clients,
                              "before": before, "after": after,
                              "hwm_growth_kib": after["hwm_kib"] - before["hwm_kib"],
                              "failures": failures}))
            return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
