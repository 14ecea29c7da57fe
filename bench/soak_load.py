#!/usr/bin/python3
"""Soak load for bench/soak.sh: CLIENTS connections through the proxy, half reading a seeded
attribute and half plain rows, each one query every INTERVAL seconds for SECONDS. A client whose
connection fails counts the error, waits a little and connects again (so an upstream restart is
survived, as an application with a retrying pool would). Prints one JSON line at the end: queries
and errors by kind, and the errors in each third of the run.

    soak_load.py PORT CLIENTS SECONDS INTERVAL
"""

import asyncio
import json
import random
import sys
import time

import psycopg

SEEDED = "SELECT risk FROM pgbench_accounts WHERE aid = %s"
PLAIN = "SELECT abalance FROM pgbench_accounts WHERE aid = %s"
ACCOUNTS = 100000


async def client(number, port, until, interval, stats, started, seconds):
    query = SEEDED if number % 2 == 0 else PLAIN
    conn = None
    await asyncio.sleep(random.random() * interval)  # spread the clients over the interval
    while time.monotonic() < until:
        third = min(2, int(3 * (time.monotonic() - started) / seconds))
        try:
            if conn is None:
                conn = await psycopg.AsyncConnection.connect(
                    f"host=127.0.0.1 port={port} dbname=postgres user=postgres connect_timeout=10",
                    autocommit=True)
            await (await conn.execute(query, (random.randint(1, ACCOUNTS),))).fetchone()
            stats["queries"] += 1
        except psycopg.OperationalError as error:
            kind = "connect" if conn is None else "query"
            stats[f"{kind}_errors"] += 1
            stats["errors_by_third"][third] += 1
            stats["messages"].setdefault(str(error).splitlines()[0][:120], 0)
            stats["messages"][str(error).splitlines()[0][:120]] += 1
            if conn is not None:
                await conn.close()
            conn = None
            await asyncio.sleep(0.5)
            continue
        except psycopg.Error as error:
            stats["query_errors"] += 1
            stats["errors_by_third"][third] += 1
            stats["messages"].setdefault(str(error).splitlines()[0][:120], 0)
            stats["messages"][str(error).splitlines()[0][:120]] += 1
        await asyncio.sleep(interval)
    if conn is not None:
        await conn.close()


async def main():
    port, clients, seconds, interval = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4])
    stats = {"queries": 0, "connect_errors": 0, "query_errors": 0, "errors_by_third": [0, 0, 0],
             "messages": {}}
    started = time.monotonic()
    until = started + seconds
    await asyncio.gather(*(client(i, port, until, interval, stats, started, seconds) for i in range(clients)))
    stats["seconds"] = round(time.monotonic() - started, 1)
    print(json.dumps(stats))


if __name__ == "__main__":
    asyncio.run(main())
