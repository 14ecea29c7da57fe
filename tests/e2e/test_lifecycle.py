#!/usr/bin/python3
"""Connection lifecycle through seedproxy: unreachable upstream, backend crash, client vanishing,
graceful shutdown on SIGTERM."""

import re
import signal
import socket
import time
import unittest

import e2e_common
import psycopg

from harness import wire
from harness.pgcluster import PgCluster, free_port

GRACE = 2.0

pg: PgCluster = None
px = None


def setUpModule():
    global pg, px
    # client_connection_check_interval lets a backend notice a vanished client during pg_sleep
    pg = PgCluster().start({"client_connection_check_interval": "100ms"})
    px = e2e_common.target(pg.port)


def tearDownModule():
    e2e_common.stop(px, pg)


def require_proxy(tc):
    if not px.is_proxy:
        tc.skipTest("needs a seedproxy process")


def backend_alive(pid):
    return bool(pg.psql("select 1 from pg_stat_activity where pid = %s", (pid,)))


class UpstreamUnreachable(unittest.TestCase):
    def test_08001_and_proxy_keeps_running(self):
        require_proxy(self)
        dead_port = free_port()  # nothing listens here
        with e2e_common.Proxy(None, dead_port) as lonely:
            for attempt in range(3):
                with self.subTest(attempt=attempt), wire.WireClient(lonely.port) as c:
                    t0 = time.monotonic()
                    c.startup()
                    msgs = c.expect_eof()
                    self.assertLess(time.monotonic() - t0, 5, "refused connect should fail fast")
                    self.assertEqual([t for t, _ in msgs], ["E"])
                    fields = wire.parse_error(msgs[0][1])
                    self.assertEqual(fields.get("C"), "08001", fields)
                    self.assertEqual(fields.get("S"), "FATAL", fields)
                    self.assertIn(str(dead_port), fields.get("M", "") + fields.get("D", ""), fields)
            with self.assertRaises(psycopg.OperationalError) as cm:
                psycopg.connect(lonely.dsn(connect_timeout=10))
            self.assertIn(str(dead_port), str(cm.exception))
            self.assertTrue(lonely.running(), "proxy died after upstream connect failures")
            # SSLRequest is still answered, then the same error
            with wire.WireClient(lonely.port) as c:
                c.send(wire.ssl_request())
                self.assertEqual(c.read_bytes(1), b"N")
                c.startup()
                self.assertEqual(wire.parse_error(c.expect_eof()[0][1]).get("C"), "08001")
            self.assertTrue(lonely.running())
            self.assertIn(str(dead_port), lonely.log_text())


class UpstreamBackendDies(unittest.TestCase):
    """kill -9 of a backend makes the postmaster restart every backend, so a dedicated cluster."""

    def test_backend_killed(self):
        with PgCluster() as crashy, e2e_common.target(crashy.port) as cpx:
            victim = wire.WireClient(cpx.port)
            victim.connect(application_name="victim")
            bystander = psycopg.connect(cpx.dsn(application_name="bystander"), autocommit=True)
            try:
                self.assertEqual(bystander.execute("select 1").fetchone(), (1,))
                (pid,) = crashy.wait_backend_pids("victim")
                self.assertEqual(pid, victim.backend_pid)
                crashy.kill_backend(pid, signal.SIGKILL)

                msgs = victim.expect_eof(timeout=15)
                errors = [wire.parse_error(b) for t, b in msgs if t == "E"]
                if cpx.is_proxy:
                    self.assertTrue(errors, f"victim got no ErrorResponse, only {[t for t, _ in msgs]}")
                    self.assertEqual(errors[-1].get("C"), "08006", errors)
                    self.assertEqual(errors[-1].get("S"), "FATAL", errors)

                # The bystander's backend is told to quit by the postmaster (a WARNING, then EOF).
                with self.assertRaises(psycopg.OperationalError) as cm:
                    e2e_common.poll(lambda: bystander.execute("select 1") and False, 15, what="bystander error")
                self.assertIn(cm.exception.sqlstate, (None, "08006", "57P01", "57P02"), str(cm.exception))
                if cm.exception.sqlstate is None:
                    self.assertRegex(str(cm.exception),
                                     "(?i)closed the connection|crash of another server process|terminat")
            finally:
                victim.close()
                bystander.close()

            def recovered():
                try:
                    with psycopg.connect(cpx.dsn(connect_timeout=5), autocommit=True) as conn:
                        return conn.execute("select 'recovered'").fetchone() == ("recovered",)
                except psycopg.OperationalError:
                    return False

            e2e_common.poll(recovered, 60, interval=0.1, what="connection through the proxy after recovery")
            self.assertTrue(cpx.running())


class ClientVanishes(unittest.TestCase):
    def vanish_and_wait(self, app, prepare):
        c = wire.WireClient(px.port)
        c.connect(application_name=app)
        (pid,) = pg.wait_backend_pids(app)
        prepare(c, pid)
        c.close(abort=True)  # RST, no Terminate
        e2e_common.poll(lambda: not backend_alive(pid), 15, what=f"backend {pid} ({app}) to exit")

    def test_idle_client_reset(self):
        self.vanish_and_wait("vanish_idle", lambda c, pid: None)

    def test_client_reset_during_query(self):
        def busy(c, pid):
            c.send(wire.query("select pg_sleep(30)"))
            e2e_common.poll(lambda: pg.psql("select 1 from pg_stat_activity where pid = %s and state = 'active'",
                                            (pid,)), 10, what="pg_sleep running")
        self.vanish_and_wait("vanish_busy", busy)

    def test_client_stops_reading_then_resets(self):
        # The proxy is blocked writing to a client that does not read; closing must still free the backend.
        def flood(c, pid):
            c.send(wire.query("select repeat('x', 1000) from generate_series(1, 5000000)"))
            e2e_common.poll(lambda: pg.psql("select 1 from pg_stat_activity where pid = %s and "
                                            "wait_event = 'ClientWrite'", (pid,)), 15,
                            what="backend blocked on ClientWrite")
        self.vanish_and_wait("vanish_flood", flood)

    def test_client_fin_after_startup(self):
        c = wire.WireClient(px.port)
        c.connect(application_name="vanish_fin")
        (pid,) = pg.wait_backend_pids("vanish_fin")
        c.sock.shutdown(socket.SHUT_WR)
        self.assertEqual(c.read_raw_until_eof(), b"")
        c.close()
        e2e_common.poll(lambda: not backend_alive(pid), 15, what="backend exit after client FIN")


class GracefulShutdown(unittest.TestCase):
    def new_connection_refused(self, port):
        """True if a new client cannot get a session: TCP refused, or an immediate FATAL and close."""
        try:
            c = wire.WireClient(port, timeout=5)
        except (ConnectionRefusedError, ConnectionResetError):
            # Reset: the connection sat in the listen backlog when the proxy closed its acceptor.
            return True
        try:
            c.startup(application_name="late_comer")
            # A probe that connected before the proxy handled the signal is a normal session:
            # it stays open, so give up on it quickly and let poll() try again.
            msgs = c.expect_eof(timeout=0.2)
            return bool(msgs) and msgs[0][0] == "E"
        except TimeoutError:
            return False
        except (wire.ConnectionClosed, OSError):
            return True
        finally:
            c.close()

    def assert_accept_loop_ended_before_stop(self, log):
        """The I/O contexts stop only once the accept loop has seen its cancelled accept and closed
        the listening socket. Stopped with the accept in flight, the loop never ran again (no such
        line) and the io_context's destructor destroyed the accept: a use-after-free in the io_uring
        build (docs/benchmarks.md, "The io_uring build loses sessions")."""
        closed = log.find("server: listening socket closed")
        self.assertNotEqual(closed, -1, log[-3000:])
        self.assertNotEqual(log.find("server: stopped", closed), -1, log[-3000:])

    def test_sigterm_grace_then_close(self):
        require_proxy(self)
        with e2e_common.Proxy(None, pg.port, runtime={"shutdown_grace_seconds": GRACE}) as sp:
            session = psycopg.connect(sp.dsn(application_name="grace_psycopg"), autocommit=True)
            raw = wire.WireClient(sp.port, timeout=GRACE + 15)
            try:
                raw.connect(application_name="grace_wire")
                self.assertEqual(session.execute("select 'before'").fetchone(), ("before",))

                t0 = time.monotonic()
                sp.signal(signal.SIGTERM)
                e2e_common.poll(lambda: self.new_connection_refused(sp.port), 1.5, what="new connections refused")
                # open sessions keep working during the grace period
                self.assertEqual(session.execute("select 'during grace'").fetchone(), ("during grace",))
                self.assertEqual(raw.simple_query("select 'wire during grace'")[0], [["wire during grace"]])
                during = time.monotonic() - t0
                self.assertLess(during, GRACE, "checks ran past the grace period; the machine is too slow")

                msgs = raw.expect_eof(timeout=GRACE + 10)
                closed_after = time.monotonic() - t0
                errors = [wire.parse_error(b) for t, b in msgs if t == "E"]
                self.assertTrue(errors, f"no ErrorResponse before close: {[t for t, _ in msgs]}")
                self.assertEqual(errors[-1].get("C"), "57P01", errors)
                self.assertEqual(errors[-1].get("S"), "FATAL", errors)
                self.assertGreaterEqual(closed_after, GRACE * 0.9, "closed before the grace period ended")
                self.assertLess(closed_after, GRACE + 5, "closed long after the grace period")

                self.assertEqual(sp.wait_exit(timeout=15), 0, sp.log_text())

                with self.assertRaises(psycopg.OperationalError) as cm:
                    session.execute("select 'after'")
                self.assertIn(cm.exception.sqlstate, (None, "57P01"), str(cm.exception))
            finally:
                raw.close()
                session.close()
            log = sp.log_text()
            self.assertRegex(log, r"(?i)SIGTERM")
            self.assertRegex(log, r"(?i)shutdown.*grace|grace.*shutdown", log[-3000:])
            self.assertTrue(re.search(r"(?i)grace", log))

    def test_sigterm_without_sessions_exits_promptly(self):
        require_proxy(self)
        with e2e_common.Proxy(None, pg.port, runtime={"shutdown_grace_seconds": 30}) as sp:
            t0 = time.monotonic()
            sp.signal(signal.SIGTERM)
            self.assertEqual(sp.wait_exit(timeout=10), 0, sp.log_text())
            self.assertLess(time.monotonic() - t0, 5)
            self.assert_accept_loop_ended_before_stop(sp.log_text())

    def test_sessions_finishing_early_end_shutdown_early(self):
        require_proxy(self)
        with e2e_common.Proxy(None, pg.port, runtime={"shutdown_grace_seconds": 30}) as sp:
            session = psycopg.connect(sp.dsn(), autocommit=True)
            session.execute("select 1")
            sp.signal(signal.SIGTERM)
            e2e_common.poll(lambda: self.new_connection_refused(sp.port), 1.5, what="new connections refused")
            session.close()
            t0 = time.monotonic()
            self.assertEqual(sp.wait_exit(timeout=10), 0, sp.log_text())
            self.assertLess(time.monotonic() - t0, 5)
            self.assert_accept_loop_ended_before_stop(sp.log_text())


if __name__ == "__main__":
    e2e_common.main()
