#!/usr/bin/python3
"""Clients that never log in cost the database nothing unbounded (issue 14, items 2 and 3):
limits.startup_timeout_seconds covers the whole login, PostgreSQL's password prompt included; the
sessions still logging in are bounded in total (limits.max_authenticating) and per client address
(limits.max_authenticating_per_address), past which a client is refused with 53300 and a message
naming the setting; and a startup packet naming a database that does not exist leaves /health 200."""

import socket
import struct
import threading
import time
import unittest
import urllib.error
import urllib.request

import e2e_common
import psycopg

from harness import wire
from harness.pgcluster import PgCluster, free_port

SCRAM_PW = "scr4m-Secret!"
TIMEOUT = 3  # limits.startup_timeout_seconds of px_timeout (a login must fit in it on a loaded machine)

pg: PgCluster = None
px_timeout = None  # short login deadline, metrics on
px_limits = None   # long login deadline, small bounds on sessions logging in
metrics_port = None


def setUpModule():
    global pg, px_timeout, px_limits, metrics_port
    pg = PgCluster().start()
    pg.create_user("scram_user", SCRAM_PW, "scram-sha-256")
    metrics_port = free_port()
    px_timeout = e2e_common.Proxy(upstream_port=pg.port, control={"user": "postgres"},
                                  metrics={"host": "127.0.0.1", "port": metrics_port},
                                  limits={"startup_timeout_seconds": TIMEOUT})
    px_limits = e2e_common.Proxy(upstream_port=pg.port, control={"user": "postgres"},
                                 limits={"startup_timeout_seconds": 600, "max_authenticating": 3,
                                         "max_authenticating_per_address": 2})


def tearDownModule():
    e2e_common.finish(px_timeout)
    e2e_common.stop(px_limits, pg)


def at_password_prompt(port: int, source: str | None = None) -> wire.WireClient | None:
    """A client that sent its startup packet and stops at PostgreSQL's SCRAM challenge (holding a
    backend), or None when the proxy refused it."""
    c = wire.WireClient(port, source=source)
    c.startup(user="scram_user", database="postgres")
    try:
        t, body = c.read_message()
    except wire.ConnectionClosed:
        c.close()
        return None
    if t == "R" and struct.unpack_from("!I", body, 0)[0] == 10:  # AuthenticationSASL
        return c
    c.close()
    return None


def refusal(port: int, source: str | None = None) -> dict | None:
    """The FATAL a new client from `source` gets, or None when it logs in (then it is closed)."""
    with wire.WireClient(port, source=source) as c:
        c.startup(user="postgres", database="postgres")
        try:
            c.authenticate()
            return None
        except wire.ServerError as e:
            return e.fields


def health() -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/health", timeout=5) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def wait_log(px, needle: str, start: int = 0, timeout: float = 30) -> str:
    def line():
        for text in px.log_text()[start:].splitlines():
            if needle in text:
                return text
        return None
    return e2e_common.poll(line, timeout, 0.05, f"{needle!r} in the proxy's log")


class LoginDeadline(unittest.TestCase):
    def test_a_client_stalled_at_the_password_prompt_is_disconnected(self):
        with psycopg.connect(px_timeout.dsn(), autocommit=True) as logged_in:
            start = len(px_timeout.log_text())
            stalled = e2e_common.poll(lambda: at_password_prompt(px_timeout.port), 10, 0.05,
                                      "a client at the password prompt")
            with stalled:
                # Before: relayed authentication had no deadline at all; the socket stayed open.
                messages = stalled.expect_eof(timeout=30)
            errors = [wire.parse_error(body) for t, body in messages if t == "E"]
            self.assertEqual(len(errors), 1, messages)
            self.assertEqual(errors[0]["C"], "57014")
            self.assertEqual(errors[0]["M"], "canceling authentication due to timeout")
            self.assertIn("limits.startup_timeout_seconds", errors[0].get("D", ""))
            wait_log(px_timeout, "did not log in within limits.startup_timeout_seconds", start)
            # A session that logged in before its deadline passed is not touched by it.
            self.assertEqual(logged_in.execute("select 1").fetchone(), (1,))

    def test_a_logged_in_session_outlives_the_deadline(self):
        with wire.WireClient(px_timeout.port) as c:
            c.connect(user="scram_user", password=SCRAM_PW)
            start = len(px_timeout.log_text())
            # A later client's deadline passing proves this session's own has passed too.
            late = e2e_common.poll(lambda: at_password_prompt(px_timeout.port), 10, 0.05,
                                   "a client at the password prompt")
            with late:
                late.expect_eof(timeout=30)
            wait_log(px_timeout, "did not log in within", start)
            rows, tags, _ = c.simple_query("select current_user")
            self.assertEqual(tags, ["SELECT 1"])


class LoginBounds(unittest.TestCase):
    def test_sessions_logging_in_are_bounded_per_address_and_in_total(self):
        # The harness's probe of the port may still be logging in for a moment: poll.
        first = e2e_common.poll(lambda: at_password_prompt(px_limits.port), 10, 0.05,
                                "a first client at the password prompt")
        second = e2e_common.poll(lambda: at_password_prompt(px_limits.port), 10, 0.05,
                                 "a second client at the password prompt")
        with first, second:
            fields = refusal(px_limits.port)
            self.assertIsNotNone(fields, "a third client from 127.0.0.1 logged in")
            self.assertEqual(fields["C"], "53300")
            self.assertEqual(fields["S"], "FATAL")
            self.assertIn("limits.max_authenticating_per_address = 2", fields["M"])
            # Another address is still welcome, and once logged in no longer counts.
            self.assertIsNone(refusal(px_limits.port, "127.0.0.2"))
            third = at_password_prompt(px_limits.port, "127.0.0.3")
            self.assertIsNotNone(third, "a client from a third address was refused")
            with third:
                fields = refusal(px_limits.port, "127.0.0.4")
                self.assertIsNotNone(fields, "a fourth client logging in was admitted")
                self.assertEqual(fields["C"], "53300")
                self.assertIn("limits.max_authenticating = 3", fields["M"])
                # libpq shows the reason as is.
                with self.assertRaises(psycopg.OperationalError) as caught:
                    psycopg.connect(px_limits.dsn()).close()
                self.assertIn("still logging in", str(caught.exception))
        # Stalled clients that leave give their places back.
        e2e_common.poll(lambda: refusal(px_limits.port) is None, 10, 0.05,
                        "a client from 127.0.0.1 to log in again")

    def test_a_client_that_logs_in_frees_its_place(self):
        for _ in range(5):  # more logins than the bounds, one after another
            with psycopg.connect(px_limits.dsn("postgres", "scram_user", password=SCRAM_PW)) as c:
                self.assertEqual(c.execute("select current_user").fetchone(), ("scram_user",))


class HealthIgnoresStrangers(unittest.TestCase):
    def test_a_missing_database_is_never_watched_and_leaves_health_200(self):
        # The first probe of the upstream comes a second after the start.
        e2e_common.poll(lambda: health()[0] == 200, 15, 0.05, "/health to answer 200")
        start = len(px_timeout.log_text())
        for i in range(20):
            with self.assertRaises(psycopg.OperationalError) as caught:
                psycopg.connect(px_timeout.dsn(f"no_such_db_{i}")).close()
            self.assertIn("does not exist", str(caught.exception))
        # A client that never authenticated to a database does not make the proxy follow it
        # (issue 14 item 4): before, each name was watched and its registry read failed,
        # logged as 'error seeds: database "no_such_db_N": ...'. The watcher serves databases
        # in the order they were first asked for, so once a database asked for afterwards has
        # been loaded (the first statement of a session waits for that), any such line for the
        # names before it would be in the log.
        with psycopg.connect(px_timeout.dsn("postgres"), autocommit=True) as conn:
            self.assertEqual(conn.execute("SELECT 1").fetchone(), (1,))
        self.assertNotIn('database "no_such_db_', px_timeout.log_text()[start:])
        status, body = health()
        self.assertEqual((status, body), (200, "ok\n"))


class DeadlineDuringUpstreamConnect(unittest.TestCase):
    """Relay mode: the login deadline passes while the proxy's connection to PostgreSQL is still
    being opened, and the connection then succeeds. The client hears PostgreSQL's timeout; no
    relay starts on a client socket the deadline already closed for reading."""

    def test_a_connect_finishing_after_the_deadline_ends_with_the_timeout(self):
        # An upstream whose accept queue is full drops the proxy's SYN; the kernel sends it again
        # 1 s and 3 s after the first, so once the queue is drained (after the 1 s deadline) the
        # connect completes, well inside connect_timeout_seconds.
        listener = socket.socket()
        listener.bind(("127.0.0.1", 0))
        listener.listen(0)
        upstream = listener.getsockname()[1]
        fillers = []

        def queue_full() -> bool:
            probe = socket.socket()
            probe.settimeout(0.3)
            try:
                probe.connect(("127.0.0.1", upstream))
            except OSError:
                probe.close()
                return True
            fillers.append(probe)  # it took a place in the queue: keep it there
            return False
        e2e_common.poll(queue_full, 20, 0, "the upstream's accept queue to be full")
        accepted = []
        stop = threading.Event()

        def drain():
            listener.settimeout(0.1)
            while not stop.is_set():
                try:
                    accepted.append(listener.accept()[0])
                except OSError:
                    pass
        px = e2e_common.Proxy(upstream_port=upstream,
                              limits={"startup_timeout_seconds": 1, "connect_timeout_seconds": 20})
        drainer = threading.Thread(target=drain)
        try:
            start = len(px.log_text())
            with wire.WireClient(px.port, timeout=30) as c:
                c.startup(user="postgres", database="postgres")
                began = time.monotonic()
                # Drained a second after the deadline: the proxy's connect completes with the
                # SYN sent 3 s after its first.
                e2e_common.poll(lambda: time.monotonic() - began > 2, 10, 0.05, "2 s")
                drainer.start()
                messages = c.expect_eof(timeout=30)
            errors = [wire.parse_error(body) for t, body in messages if t == "E"]
            self.assertEqual([(e["C"], e["M"]) for e in errors],
                             [("57014", "canceling authentication due to timeout")], messages)
            wait_log(px, "did not log in within limits.startup_timeout_seconds", start)
            # The proxy did reach the upstream (after the deadline), and ended there.
            self.assertTrue(accepted, "the proxy's connection never reached the upstream")
        finally:
            stop.set()
            if drainer.is_alive():
                drainer.join()
            e2e_common.finish(px)
            for s in fillers + accepted:
                s.close()
            listener.close()

if __name__ == "__main__":
    e2e_common.main()
