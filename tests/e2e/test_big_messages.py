#!/usr/bin/python3
"""Big messages stream through the proxy instead of being held whole (issue 14, item 5): a 64 MiB
Query, a Parse and a Bind carrying 64 MiB, and a server error quoting 8 MiB of a client's value
all arrive intact, the extended-protocol bookkeeping stays in step, and the proxy's peak resident
memory grows by a few MiB, not by the size of the message."""

import os
import struct
import unittest

import e2e_common

from harness import wire
from harness.pgcluster import PgCluster

BIG = 64 * 1024 * 1024
# The proxy may hold one inspected message up to the rewrite limit (1 MiB) plus a Parse's
# overhead per direction, and its I/O buffers; sanitizer builds carry shadow memory.
MAX_GROWTH_KIB = 16 * 1024 * (4 if os.environ.get("ASAN_OPTIONS") else 1)

pg: PgCluster = None
px = None


def setUpModule():
    global pg, px
    pg = PgCluster().start()
    px = e2e_common.Proxy(upstream_port=pg.port, control={"user": "postgres"})


def tearDownModule():
    e2e_common.stop(px, pg)


def rows_of(messages) -> list:
    return [wire.parse_data_row(body) for t, body in messages if t == "D"]


class BigMessages(unittest.TestCase):
    def test_big_messages_stream_in_bounded_memory(self):
        with wire.WireClient(px.port, timeout=120) as c:
            c.connect()
            # Rewriting is on for this database: small statements are still inspected whole.
            c.send(wire.query("select 1"))
            self.assertEqual(rows_of(c.read_until("Z", raise_on_error=True)), [[b"1"]])
            baseline = px.hwm_kib()

            c.send(wire.query("select length('" + "x" * BIG + "')"))
            self.assertEqual(rows_of(c.read_until("Z", raise_on_error=True)), [[str(BIG).encode()]])

            # Extended protocol: a long Parse between small ones, a long Bind value, answered in
            # order.
            value = "y" * BIG
            c.send(wire.parse("select length($1::text) as n, '" + "z" * BIG + "' is not null", "big")
                   + wire.parse("select 2", "small")
                   + wire.bind("", "big", params=[value.encode()])
                   + wire.execute("")
                   + wire.bind("", "small") + wire.execute("")
                   + wire.sync())
            messages = c.read_until("Z", raise_on_error=True)
            self.assertEqual("".join(t for t, _ in messages), "112DC2DCZ")
            self.assertEqual(rows_of(messages), [[str(BIG).encode(), b"t"], [b"2"]])

            # PostgreSQL quotes the client's value in its error: the long ErrorResponse streams.
            c.send(wire.query("select ('x" + "7" * (8 * 1024 * 1024) + "')::int"))
            messages = c.read_until("Z")
            errors = [wire.parse_error(body) for t, body in messages if t == "E"]
            self.assertEqual(len(errors), 1)
            self.assertEqual(errors[0]["C"], "22P02")
            self.assertGreater(len(errors[0]["M"]), 8 * 1024 * 1024)

            c.send(wire.query("select 3"))
            self.assertEqual(rows_of(c.read_until("Z", raise_on_error=True)), [[b"3"]])
            growth = px.hwm_kib() - baseline
            print(f"  proxy VmHWM {baseline} KiB before, {px.hwm_kib()} KiB after "
                  f"({growth} KiB growth for {BIG // (1024 * 1024)} MiB messages)")
            self.assertLess(growth, MAX_GROWTH_KIB, "the proxy held a big message whole")


if __name__ == "__main__":
    e2e_common.main()
