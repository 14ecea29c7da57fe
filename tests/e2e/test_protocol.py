#!/usr/bin/python3
"""Byte-level protocol behaviour through seedproxy: negotiation, extended query, framing, bad input."""

import random
import socket
import struct
import threading
import time
import unittest

import e2e_common
import psycopg

from harness import wire
from harness.pgcluster import PgCluster

pg: PgCluster = None
px = None


def setUpModule():
    global pg, px
    pg = PgCluster().start()
    px = e2e_common.target(pg.port)


def tearDownModule():
    e2e_common.stop(px, pg)


def proxy_only(test):
    """The proxy's own answers (PostgreSQL itself drops bad startup lengths without a word)."""
    def wrapper(self):
        if not px.is_proxy:
            self.skipTest("checks the proxy's own answers")
        return test(self)
    wrapper.__name__ = test.__name__
    return wrapper


def types(msgs):
    return "".join(t for t, _ in msgs)


class Heartbeat:
    """A psycopg connection through the proxy running queries in a loop on its own thread. It must
    succeed before, during and after the block, with bounded latency: one bad client must not
    disturb another session (the proxy may run a single I/O thread)."""

    MAX_LATENCY = 5.0

    def __init__(self, testcase):
        self.tc = testcase
        self.count = 0
        self.errors = []
        self.max_latency = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        try:
            with psycopg.connect(px.dsn(application_name="heartbeat"), autocommit=True) as conn:
                i = 0
                while not self._stop.is_set():
                    t0 = time.monotonic()
                    got = conn.execute("select %s::int", (i,)).fetchone()
                    self.max_latency = max(self.max_latency, time.monotonic() - t0)
                    if got != (i,):
                        self.errors.append(f"wrong answer {got} for {i}")
                    self.count += 1
                    i += 1
                    self._stop.wait(0.005)
        except Exception as e:  # reported by __exit__ in the test thread
            self.errors.append(repr(e))

    def _wait_beyond(self, n, what):
        e2e_common.poll(lambda: self.count > n or self.errors, 15, what=what)

    def __enter__(self):
        self._thread.start()
        self._wait_beyond(0, "heartbeat before")
        self.at_enter = self.count
        return self

    def __exit__(self, exc_type, *exc):
        try:
            if exc_type is None:
                self.tc.assertGreater(self.count, self.at_enter, "heartbeat made no progress during the block")
                self._wait_beyond(self.count, "heartbeat after")
        finally:
            self._stop.set()
            self._thread.join(10)
        if exc_type is None:
            self.tc.assertEqual(self.errors, [], "heartbeat session failed")
            self.tc.assertLess(self.max_latency, self.MAX_LATENCY, "heartbeat query stalled")


class Negotiation(unittest.TestCase):
    def test_ssl_request_answered_n_then_startup(self):
        with wire.WireClient(px.port) as c:
            c.send(wire.ssl_request())
            self.assertEqual(c.read_bytes(1), b"N")
            c.connect()
            rows, tags, _ = c.simple_query("select 'after ssl refusal'")
            self.assertEqual((rows, tags), ([["after ssl refusal"]], ["SELECT 1"]))

    @proxy_only  # PostgreSQL built with GSSAPI answers 'G' on TCP; the proxy offers no GSS encryption
    def test_gssenc_request_answered_n_then_startup(self):
        with wire.WireClient(px.port) as c:
            c.send(wire.gssenc_request())
            self.assertEqual(c.read_bytes(1), b"N")
            c.connect()
            self.assertEqual(c.simple_query("select 7")[0], [["7"]])

    @proxy_only
    def test_gssenc_then_ssl_then_startup(self):
        # libpq's order when both are possible: GSSENCRequest, then SSLRequest, then startup.
        with wire.WireClient(px.port) as c:
            c.send(wire.gssenc_request())
            self.assertEqual(c.read_bytes(1), b"N")
            c.send(wire.ssl_request())
            self.assertEqual(c.read_bytes(1), b"N")
            c.connect()
            self.assertEqual(c.simple_query("select 8")[0], [["8"]])

    def test_protocol_3_2_negotiated_down(self):
        with wire.WireClient(px.port) as c:
            c.startup(version=wire.PROTOCOL_3_2)
            msgs = c.authenticate()
            self.assertEqual(msgs[0][0], "v", f"expected NegotiateProtocolVersion first, got {types(msgs)}")
            minor, unrecognized = wire.parse_negotiate_protocol_version(msgs[0][1])
            self.assertEqual((minor, unrecognized), (0, []))
            self.assertIsNotNone(c.backend_pid)
            self.assertEqual(c.simple_query("select 'v3.0 it is'")[0], [["v3.0 it is"]])

    def test_startup_parameters_relayed(self):
        with wire.WireClient(px.port) as c:
            c.connect(application_name="wire_params", options="-c search_path=pg_catalog")
            self.assertEqual(c.parameters.get("application_name"), "wire_params")
            self.assertEqual(c.simple_query("show search_path")[0], [["pg_catalog"]])

    def test_terminate_closes_and_frees_backend(self):
        c = wire.WireClient(px.port)
        c.connect(application_name="wire_terminate")
        pid = int(c.simple_query("select pg_backend_pid()")[0][0][0])
        c.send(wire.terminate())
        self.assertEqual(c.expect_eof(), [])
        c.close()
        e2e_common.poll(lambda: pid not in [r[0] for r in pg.psql("select pid from pg_stat_activity")],
                        10, what="backend exit after Terminate")


class HalfClose(unittest.TestCase):
    def test_half_close_right_after_a_query_ends_the_session(self):
        # The Query and the FIN arrive together. The read that takes the Query is trusted (the
        # client waits for its answer), so the next one waits for a readiness event, and a FIN
        # that came with the data raises none of its own: the proxy's end watch finds it within
        # half a second (proxy/io/drained_read.hpp). Without the watch the session would wait
        # forever. As with PgBouncer, a client's end ends the session: an answer that is ready by
        # then reaches the client whole, a later one is dropped with the backend.
        for sql in ("select 42", "select pg_sleep(1), 42"):
            with self.subTest(sql=sql):
                c = wire.WireClient(px.port)
                c.connect(application_name="half_close")
                # Corked, the Query leaves with the FIN in one segment: one readiness event.
                c.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_CORK, 1)
                c.sock.sendall(wire.query(sql))
                c.sock.shutdown(socket.SHUT_WR)
                msgs = c.expect_eof(timeout=10)  # raises if the connection stays open
                c.close()
                self.assertIn(types(msgs), ("", "TDCZ"))
                e2e_common.poll(lambda: not pg.psql("select 1 from pg_stat_activity where "
                                                    "application_name = 'half_close'"),
                                10, what="the backend gone after the client's half-close")


class ExtendedQuery(unittest.TestCase):
    def setUp(self):
        self.c = wire.WireClient(px.port)
        self.c.connect()

    def tearDown(self):
        self.c.close()

    def test_unnamed_statement_and_portal(self):
        c = self.c
        c.send(wire.parse("select $1::int + 1", param_oids=[23]) + wire.bind(params=["41"]) +
               wire.describe("P") + wire.execute() + wire.sync())
        msgs = c.read_until("Z")
        self.assertEqual(types(msgs), "12TDCZ")
        self.assertEqual(wire.parse_row_description(msgs[2][1])[0]["type_oid"], 23)
        self.assertEqual(wire.parse_data_row(msgs[3][1]), [b"42"])
        self.assertEqual(wire.command_tag(msgs[4][1]), "SELECT 1")

    def test_named_statement_and_portals_reused(self):
        c = self.c
        c.send(wire.parse("select $1::text || '!' as shout", name="stmt_a") + wire.sync())
        self.assertEqual(types(c.read_until("Z")), "1Z")
        c.send(wire.query("begin"))
        c.read_until("Z")
        for word in ("one", "two", "three"):
            c.send(wire.bind(portal=f"portal_{word}", statement="stmt_a", params=[word]))
        c.send(wire.execute("portal_two") + wire.execute("portal_one") + wire.execute("portal_three") +
               wire.close("P", "portal_one") + wire.sync())
        msgs = c.read_until("Z")
        self.assertEqual(types(msgs), "222DCDCDC3Z")
        rows = [wire.parse_data_row(b)[0] for t, b in msgs if t == "D"]
        self.assertEqual(rows, [b"two!", b"one!", b"three!"])
        self.assertEqual(msgs[-1][1], b"T")  # ReadyForQuery: in transaction
        c.send(wire.query("commit"))
        c.read_until("Z")
        # the statement outlives the transaction
        c.send(wire.bind(statement="stmt_a", params=["again"]) + wire.execute() + wire.sync())
        msgs = c.read_until("Z")
        self.assertEqual([wire.parse_data_row(b)[0] for t, b in msgs if t == "D"], [b"again!"])

    def test_describe_and_flush_without_sync(self):
        c = self.c
        c.send(wire.parse("select $1::int8 as big, $2::text as label", name="desc_me") +
               wire.describe("S", "desc_me") + wire.flush())
        msgs = [c.read_message() for _ in range(3)]
        self.assertEqual(types(msgs), "1tT")
        (nparams,) = struct.unpack_from("!H", msgs[1][1])
        self.assertEqual(nparams, 2)
        cols = wire.parse_row_description(msgs[2][1])
        self.assertEqual([(col["name"], col["type_oid"]) for col in cols], [("big", 20), ("label", 25)])
        # nothing else may be pending: no ReadyForQuery without Sync
        with self.assertRaises(socket.timeout):
            c.read_message(timeout=0.3)
        c.send(wire.sync())
        self.assertEqual(types(c.read_until("Z")), "Z")

    def test_pipeline_of_50_before_one_sync(self):
        c = self.c
        batch = b"".join(wire.parse("select $1::int * 10", param_oids=[23]) + wire.bind(params=[str(i)]) +
                         wire.execute() for i in range(50))
        c.send(batch + wire.sync())
        msgs = c.read_until("Z", timeout=20)
        self.assertEqual(types(msgs), "12DC" * 50 + "Z")
        values = [int(wire.parse_data_row(b)[0]) for t, b in msgs if t == "D"]
        self.assertEqual(values, [i * 10 for i in range(50)])

    def test_execute_row_limit_gives_portal_suspended(self):
        c = self.c
        c.send(wire.parse("select g from generate_series(1, 5) g") + wire.bind() +
               wire.execute(max_rows=2) + wire.flush())
        msgs = [c.read_message() for _ in range(5)]
        self.assertEqual(types(msgs), "12DDs")
        c.send(wire.execute(max_rows=2) + wire.execute(max_rows=0) + wire.sync())
        msgs += c.read_until("Z")
        self.assertEqual(types(msgs), "12DDsDDsDCZ")
        self.assertEqual([wire.parse_data_row(b)[0] for t, b in msgs if t == "D"],
                         [b"1", b"2", b"3", b"4", b"5"])

    def test_binary_params_and_results(self):
        c = self.c
        c.send(wire.parse("select $1::int4 + 1 as i, $2::bytea as b, 'abc'::text as t", param_oids=[23, 17]) +
               wire.bind(params=[struct.pack("!i", 41), b"\x00\xff\x00"], param_formats=[1, 1],
                         result_formats=[1]) + wire.describe("P") + wire.execute() + wire.sync())
        msgs = c.read_until("Z")
        self.assertEqual(types(msgs), "12TDCZ")
        self.assertEqual([col["format"] for col in wire.parse_row_description(msgs[2][1])], [1, 1, 1])
        self.assertEqual(wire.parse_data_row(msgs[3][1]), [struct.pack("!i", 42), b"\x00\xff\x00", b"abc"])

    def test_error_skips_to_sync(self):
        c = self.c
        # volatile, so the division happens at Execute rather than being folded at Bind
        c.send(wire.parse("select 1/(random() * 0)::int") + wire.bind() + wire.execute() +
               wire.parse("select 'skipped'") + wire.bind() + wire.execute() + wire.sync())
        msgs = c.read_until("Z")
        self.assertEqual(types(msgs), "12EZ")
        self.assertEqual(wire.parse_error(msgs[2][1])["C"], "22012")
        self.assertEqual(c.simple_query("select 'recovered'")[0], [["recovered"]])

    def test_large_query_message(self):
        text = "x" * (8 * 1024 * 1024)
        rows, _, _ = self.c.simple_query(f"select length('{text}')", timeout=30)
        self.assertEqual(rows, [[str(len(text))]])

    def test_message_dribbled_one_byte_at_a_time(self):
        payload = wire.query("select 'dribble' as d") + wire.parse("select 2") + wire.bind() + \
            wire.execute() + wire.sync()
        for i in range(len(payload)):
            self.c.send(payload[i:i + 1])
        msgs = self.c.read_until("Z")
        msgs += self.c.read_until("Z")
        self.assertEqual(types(msgs), "TDCZ12DCZ")

    def test_large_result_rows(self):
        c = self.c
        c.send(wire.query("select repeat(md5(g::text), 2000) from generate_series(1, 300) g"))
        msgs = c.read_until("Z", timeout=30)
        rows = [wire.parse_data_row(b)[0] for t, b in msgs if t == "D"]
        self.assertEqual(len(rows), 300)
        self.assertTrue(all(len(r) == 64000 for r in rows))


class BadInput(unittest.TestCase):
    def assert_protocol_violation(self, c, what):
        try:
            msgs = c.expect_eof()
        except socket.timeout:
            self.fail(f"{what}: no answer and no close within {c.timeout}s")
        self.assertTrue(msgs, f"{what}: connection closed without an ErrorResponse")
        self.assertEqual(msgs[-1][0], "E", f"{what}: last message {types(msgs)}")
        fields = wire.parse_error(msgs[-1][1])
        self.assertEqual(fields.get("C"), "08P01", f"{what}: {fields}")
        self.assertEqual(fields.get("S"), "FATAL", f"{what}: {fields}")
        self.assertEqual(fields.get("V"), "FATAL", f"{what}: {fields}")
        self.assertTrue(fields.get("M"), f"{what}: empty message")

    @proxy_only
    def test_bad_lengths_get_08p01_while_others_work(self):
        with Heartbeat(self):
            with wire.WireClient(px.port) as c:
                c.send(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
                self.assert_protocol_violation(c, "HTTP request as startup")
            with wire.WireClient(px.port) as c:
                c.send(struct.pack("!II", 20000, wire.PROTOCOL_3_0))
                self.assert_protocol_violation(c, "startup length 20000")
            with wire.WireClient(px.port) as c:
                c.send(struct.pack("!II", 4, wire.PROTOCOL_3_0))
                self.assert_protocol_violation(c, "startup length 4")
            with wire.WireClient(px.port) as c:
                c.connect()
                c.send(b"Q" + struct.pack("!I", 0x7FFFFFFF) + b"select 1")
                self.assert_protocol_violation(c, "typed message length 0x7fffffff")
            with wire.WireClient(px.port) as c:
                c.connect()
                c.send(b"Q" + struct.pack("!I", 3))
                self.assert_protocol_violation(c, "typed message length 3")
            with wire.WireClient(px.port) as c:
                c.connect()
                c.send(wire.parse("select 1") + b"B" + struct.pack("!I", 0xFFFFFFF0))
                self.assert_protocol_violation(c, "huge Bind after a good Parse")

    @proxy_only
    def test_bad_startup_length_word_alone(self):
        # PostgreSQL judges the length as soon as the 4-byte length word arrives; so should the
        # proxy, rather than wait for more bytes (a client that sent only these would hang until
        # the startup timeout and then get no SQLSTATE).
        for length in (4, 20000):
            with self.subTest(length=length), wire.WireClient(px.port, timeout=5) as c:
                c.send(struct.pack("!I", length))
                self.assert_protocol_violation(c, f"lone length word {length}")

    def test_nonsense_startup_versions_are_refused(self):
        for version in (1234 << 16 | 5678, 2 << 16):
            with self.subTest(version=version), wire.WireClient(px.port) as c:
                c.send(wire.startup_packet({"user": "postgres"}, version=version))
                answer = c.read_raw_until_eof()  # 2.0 gets a v2-style error from PostgreSQL
                self.assertIn(answer[:1], (b"", b"E"), answer[:100])
        with wire.WireClient(px.port) as c:
            c.connect()
            self.assertEqual(c.simple_query("select 1")[0], [["1"]])

    def test_random_blobs_never_crash(self):
        rng = random.Random(20240229)
        closed_with_error = 0
        with Heartbeat(self):
            for i in range(200):
                blob = rng.randbytes(rng.randint(1, 3000))
                try:
                    c = wire.WireClient(px.port, timeout=10)
                except OSError as e:
                    self.fail(f"blob {i}: proxy refused a connection: {e}")
                try:
                    if i % 4 == 3:  # garbage after a good startup, as typed messages
                        c.connect(application_name="blob")
                    c.send(blob)
                    c.sock.shutdown(socket.SHUT_WR)
                except (OSError, wire.ConnectionClosed):
                    pass  # the proxy may already have answered 08P01 and closed
                data = b""
                deadline = time.monotonic() + 10
                try:
                    while True:
                        c.sock.settimeout(max(0.01, deadline - time.monotonic()))
                        chunk = c.sock.recv(65536)
                        if not chunk:
                            break
                        data += chunk
                except ConnectionResetError:
                    pass
                except socket.timeout:
                    self.fail(f"blob {i}: connection still open 10s after the client half-closed")
                finally:
                    c.close()
                closed_with_error += data[:1] == b"E"
                self.assertTrue(px.running(), f"proxy died on blob {i}: {blob[:64]!r}")
        with wire.WireClient(px.port) as c:
            c.connect()
            self.assertEqual(c.simple_query("select 'alive'")[0], [["alive"]])
        # most random first words are absurd lengths that deserve an 08P01
        if px.is_proxy:
            self.assertGreater(closed_with_error, 50)


if __name__ == "__main__":
    e2e_common.main()
