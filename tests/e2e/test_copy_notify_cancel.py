#!/usr/bin/python3
"""COPY in both directions, LISTEN/NOTIFY to an idle session, and query cancellation through seedproxy."""

import os
import select
import signal
import subprocess
import threading
import time
import unittest

import e2e_common
import psycopg

from harness import wire
from harness.pgcluster import PgCluster

pg: PgCluster = None
px = None

COPY_ROWS = 100_000


def setUpModule():
    global pg, px
    pg = PgCluster().start()
    pg.psql("create table copy_src (id int primary key, label text, amount numeric, note text, raw bytea)")
    px = e2e_common.target(pg.port)


def tearDownModule():
    e2e_common.stop(px, pg)


def _copy_text() -> bytes:
    """COPY text-format payload of COPY_ROWS rows with escapes, NULLs, non-ASCII and bytea."""
    lines = []
    for i in range(COPY_ROWS):
        amount = f"{i * 1.25}" if i % 7 else "\\N"
        note = "ünïcödé ✓" if i % 3 == 0 else ""
        lines.append(f"{i}\tlabel {i} with\\ttab and \\\\ backslash\t{amount}\t{note}\t\\\\x{i % 256:02x}00ff\n")
    return "".join(lines).encode()


def _wait_active(application_name, timeout=10):
    """Polls pg_stat_activity (directly) until a session with that name is running pg_sleep."""
    sql = ("select pid from pg_stat_activity where application_name = %s and state = 'active' "
           "and query like %s")
    return e2e_common.poll(lambda: pg.psql(sql, (application_name, "%pg_sleep%")), timeout,
                           what=f"{application_name} running pg_sleep")[0][0]


class Copy(unittest.TestCase):
    def load(self, dsn, table, payload):
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(f"create table {table} (like copy_src)")
            with conn.cursor().copy(f"copy {table} from stdin") as cp:
                for pos in range(0, len(payload), 50000):  # chunks that split rows anywhere
                    cp.write(payload[pos:pos + 50000])
            return conn.execute(f"select count(*) from {table}").fetchone()[0]

    def dump(self, dsn, sql):
        out = bytearray()
        with psycopg.connect(dsn, autocommit=True) as conn:
            with conn.cursor().copy(sql) as cp:
                for chunk in cp:
                    out += chunk
        return bytes(out)

    def test_copy_from_stdin_and_to_stdout_match_direct(self):
        payload = _copy_text()
        self.assertEqual(self.load(px.dsn(), "copy_via_proxy", payload), COPY_ROWS)
        self.assertEqual(self.load(pg.dsn(), "copy_direct", payload), COPY_ROWS)
        digest = "select md5(string_agg(t::text, '|' order by id)) from {} t"
        self.assertEqual(pg.psql(digest.format("copy_via_proxy")), pg.psql(digest.format("copy_direct")))
        # the text format round-trips byte for byte
        self.assertEqual(self.dump(px.dsn(), "copy (select * from copy_via_proxy order by id) to stdout"), payload)
        # other formats through psql (psycopg iterates row by row in Python: too slow to do thrice)
        for fmt in (" with (format csv, header)", " with (format binary)"):
            with self.subTest(format=fmt):
                sql = "copy (select * from copy_direct order by id) to stdout" + fmt
                proxied = self.psql_dump(px.port, sql)
                self.assertGreater(len(proxied), COPY_ROWS * 10)
                self.assertEqual(proxied, self.psql_dump(pg.port, sql))

    def psql_dump(self, port, sql):
        proc = subprocess.run(["psql", "-X", "-q", "-h", "127.0.0.1", "-p", str(port), "-U", "postgres",
                               "-d", "postgres", "-v", "ON_ERROR_STOP=1", "-c", sql],
                              stdin=subprocess.DEVNULL, capture_output=True, timeout=60)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        return proc.stdout

    def test_copy_write_row(self):
        rows = [(i, f"row {i}\t\\", None if i % 5 == 0 else i / 4, "✓" * (i % 4), bytes([i % 256, 0]))
                for i in range(5000)]
        with psycopg.connect(px.dsn(), autocommit=True) as conn:
            conn.execute("create temp table copy_rows (like copy_src)")
            with conn.cursor().copy("copy copy_rows from stdin") as cp:
                for row in rows:
                    cp.write_row(row)
            got = conn.execute("select id, label, amount, note, raw from copy_rows order by id").fetchall()
        self.assertEqual([(i, lbl, None if amt is None else float(amt), n, bytes(raw))
                          for i, lbl, amt, n, raw in got], rows)

    def test_copy_error_midway_keeps_connection_usable(self):
        with psycopg.connect(px.dsn(), autocommit=True) as conn:
            conn.execute("create temp table copy_strict (id int primary key)")
            with self.assertRaises(psycopg.errors.UniqueViolation):
                with conn.cursor().copy("copy copy_strict from stdin") as cp:
                    for i in list(range(1000)) + [5]:
                        cp.write_row((i,))
            self.assertEqual(conn.execute("select count(*) from copy_strict").fetchone(), (0,))
            # psycopg answers a client-side exception with CopyFail; the server's 57014 comes back
            with self.assertRaises(psycopg.errors.QueryCanceled) as cm:
                with conn.cursor().copy("copy copy_strict from stdin") as cp:
                    cp.write_row((1,))
                    1 / 0
            self.assertIn("ZeroDivisionError", str(cm.exception))
            self.assertEqual(conn.execute("select 'usable'").fetchone(), ("usable",))


class Notify(unittest.TestCase):
    def test_notification_reaches_idle_listener(self):
        with psycopg.connect(px.dsn(), autocommit=True) as listener:
            listener.execute("listen seed_events")
            sender_pid = None
            with psycopg.connect(pg.dsn(), autocommit=True) as sender:
                sender_pid = sender.info.backend_pid
                sender.execute("notify seed_events, 'payload ✓ 1'")
                sender.execute("select pg_notify('seed_events', 'payload 2')")
            # The listener sends nothing: the proxy must forward the async message on its own.
            readable, _, _ = select.select([listener.fileno()], [], [], 10)
            self.assertTrue(readable, "no notification arrived at the idle listener within 10s")
            got = []
            gen = listener.notifies()
            for n in gen:
                got.append((n.channel, n.payload, n.pid))
                if len(got) == 2:
                    gen.close()
            self.assertEqual(got, [("seed_events", "payload ✓ 1", sender_pid),
                                   ("seed_events", "payload 2", sender_pid)])

    def test_notification_from_same_session_through_proxy(self):
        # Arrives right after the NOTIFY's CommandComplete; psycopg hands it to notify handlers.
        got = []
        with psycopg.connect(px.dsn(), autocommit=True) as conn:
            conn.add_notify_handler(lambda n: got.append((n.channel, n.payload, n.pid)))
            conn.execute("listen self_chan")
            conn.execute("notify self_chan, 'me'")
            conn.execute("select 1")
            self.assertEqual(got, [("self_chan", "me", conn.info.backend_pid)])


class Cancel(unittest.TestCase):
    def test_psycopg_cancel_from_another_thread(self):
        outcome = {}
        with psycopg.connect(px.dsn(application_name="cancel_me"), autocommit=True) as conn:
            def run():
                t0 = time.monotonic()
                try:
                    conn.execute("select pg_sleep(30)")
                    outcome["result"] = "completed"
                except psycopg.Error as e:
                    outcome["result"] = e
                outcome["elapsed"] = time.monotonic() - t0

            t = threading.Thread(target=run)
            t.start()
            _wait_active("cancel_me")
            conn.cancel()  # a CancelRequest on a new connection to the proxy port
            t.join(20)
            self.assertFalse(t.is_alive(), "query still running 20s after cancel")
            self.assertIsInstance(outcome["result"], psycopg.errors.QueryCanceled)
            self.assertEqual(outcome["result"].sqlstate, "57014")
            self.assertLess(outcome["elapsed"], 20)
            self.assertEqual(conn.execute("select 'still usable'").fetchone(), ("still usable",))

    def test_raw_cancel_request_with_relayed_key(self):
        with wire.WireClient(px.port, timeout=20) as c:
            c.connect(application_name="raw_cancel")
            c.send(wire.query("select pg_sleep(30)"))
            _wait_active("raw_cancel")
            with wire.WireClient(px.port) as canceller:
                canceller.send(wire.cancel_request(c.backend_pid, c.backend_secret))
                self.assertEqual(canceller.read_raw_until_eof(), b"")
            msgs = c.read_until("Z")
            errors = [wire.parse_error(b) for t, b in msgs if t == "E"]
            self.assertEqual([e["C"] for e in errors], ["57014"])
            self.assertEqual(c.simple_query("select 1")[0], [["1"]])

    def test_bogus_cancel_key_is_harmless(self):
        with wire.WireClient(px.port, timeout=20) as c:
            c.connect(application_name="bogus_cancel")
            c.send(wire.query("select pg_sleep(0.5)"))
            with wire.WireClient(px.port) as canceller:
                canceller.send(wire.cancel_request(c.backend_pid, bytes(a ^ 0xFF for a in c.backend_secret)))
                canceller.read_raw_until_eof()
            msgs = c.read_until("Z")
            self.assertEqual([t for t, _ in msgs if t == "E"], [])

    def test_psql_ctrl_c(self):
        env = dict(os.environ, PGAPPNAME="psql_ctrl_c", PGCONNECT_TIMEOUT="10")
        proc = subprocess.Popen(["psql", "-X", "-h", "127.0.0.1", "-p", str(px.port), "-U", "postgres",
                                 "-d", "postgres", "-c", "select pg_sleep(30)"],
                                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                env=env)
        try:
            _wait_active("psql_ctrl_c")
            proc.send_signal(signal.SIGINT)
            out, _ = proc.communicate(timeout=20)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        text = out.decode(errors="replace")
        self.assertIn("canceling statement due to user request", text)
        self.assertNotEqual(proc.returncode, 0)


if __name__ == "__main__":
    e2e_common.main()
