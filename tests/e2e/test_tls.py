#!/usr/bin/python3
"""TLS on both legs and the proxy's own authentication, against a PostgreSQL with ssl = on and
hostssl-only rules, with a CA and certificates the test makes itself: psql and psycopg with
sslmode=require and verify-full, channel binding, client certificates, wrong CA and host name on
either side, plain text refused, direct TLS with ALPN, GSSENCRequest declined, SCRAM/md5 refusals
in PostgreSQL's words and without a timing tell, SHOW CLIENTS, metrics (handshake failures by
reason), the admin console, and verify-ca and prefer on either leg."""

import os
import socket
import ssl
import statistics
import struct
import subprocess
import threading
import time
import unittest
import urllib.request

import e2e_common
import psycopg

from harness import wire
from tls_common import MD5_PW, SCRAM_PW, TlsWorld, metrics_port

world: TlsWorld = None
px = None
mport = None


def setUpModule():
    global world, px, mport
    world = TlsWorld()
    mport = metrics_port()
    px = world.proxy(metrics={"host": "127.0.0.1", "port": mport})


def tearDownModule():
    e2e_common.finish(px)
    if world is not None:
        world.close()


def psql(dsn: str, sql: str) -> subprocess.CompletedProcess:
    return subprocess.run(["psql", "-X", "-At", "-c", sql, dsn], capture_output=True, text=True,
                          timeout=30, env={**os.environ, "PGCONNECT_TIMEOUT": "10"})


def upstream_ssl(conn) -> bool:
    return conn.execute("select ssl from pg_stat_ssl where pid = pg_backend_pid()").fetchone()[0]


class ClientsOverTls(unittest.TestCase):
    def test_psql_require_and_verify_full(self):
        for mode in ("require", "verify-full"):
            with self.subTest(sslmode=mode):
                out = psql(world.dsn(px, "scram_user", SCRAM_PW, sslmode=mode),
                           "select current_user, ssl from pg_stat_ssl where pid = pg_backend_pid()")
                self.assertEqual(out.returncode, 0, out.stderr)
                self.assertEqual(out.stdout.strip(), "scram_user|t")

    def test_psycopg_channel_binding_required(self):
        with psycopg.connect(world.dsn(px, "scram_user", SCRAM_PW, channel_binding="require")) as c:
            self.assertEqual(c.execute("select current_user").fetchone(), ("scram_user",))
            self.assertTrue(upstream_ssl(c))

    def test_md5_and_trust_users(self):
        with psycopg.connect(world.dsn(px, "md5_user", MD5_PW)) as c:
            self.assertEqual(c.execute("select current_user").fetchone(), ("md5_user",))
        # postgres has no password: PostgreSQL trusts it (hostssl trust), the proxy does not.
        with self.assertRaises(psycopg.OperationalError) as caught:
            psycopg.connect(world.dsn(px, "postgres", "anything")).close()
        self.assertIn('password authentication failed for user "postgres"', str(caught.exception))

    def test_plain_text_refused_when_required(self):
        out = psql(world.dsn(px, "scram_user", SCRAM_PW, sslmode="disable"), "select 1")
        self.assertNotEqual(out.returncode, 0)
        self.assertIn("SSL connection is required", out.stderr)
        with wire.WireClient(px.port) as c:
            c.startup(user="scram_user", database="postgres")
            with self.assertRaises(wire.ServerError) as caught:
                c.authenticate(password=SCRAM_PW)
            self.assertEqual(caught.exception.fields["C"], "28000")

    def test_wrong_ca_and_wrong_host_name_fail_on_the_client(self):
        out = psql(world.dsn(px, "scram_user", SCRAM_PW, sslrootcert=world.other.ca_file),
                   "select 1")
        self.assertNotEqual(out.returncode, 0)
        self.assertIn("certificate verify failed", out.stderr)
        dsn = world.dsn(px, "scram_user", SCRAM_PW, hostaddr="127.0.0.1")
        out = psql(dsn.replace("host=127.0.0.1", "host=db.invalid", 1), "select 1")
        self.assertNotEqual(out.returncode, 0)
        self.assertIn('does not match host name "db.invalid"', out.stderr)
        self.assertTrue(px.running())

    def test_cancel_reaches_the_backend(self):
        # libpq 15 sends CancelRequest in plain text; PostgreSQL applies no pg_hba rule to it.
        with psycopg.connect(world.dsn(px, "scram_user", SCRAM_PW)) as c:
            timer = threading.Timer(0.5, c.cancel)
            timer.start()
            with self.assertRaises(psycopg.errors.QueryCanceled):
                c.execute("select pg_sleep(20)")
            timer.join()

    def test_direct_tls_with_alpn(self):
        with wire.WireClient(px.port) as c:
            c.direct_tls(world.client_context(["postgresql"]), "127.0.0.1")
            self.assertEqual(c.sock.selected_alpn_protocol(), "postgresql")
            c.startup(user="scram_user", database="postgres")
            c.authenticate(password=SCRAM_PW)
            rows, _, _ = c.simple_query("select current_user")
            self.assertEqual(rows, [["scram_user"]])

    def test_direct_tls_without_alpn_is_refused(self):
        with wire.WireClient(px.port) as c:
            c.direct_tls(world.client_context(), "127.0.0.1")
            messages = c.expect_eof()
            errors = [wire.parse_error(b) for t, b in messages if t == "E"]
            self.assertEqual(errors[0]["C"], "08P01", messages)
            self.assertIn("ALPN", errors[0]["M"])

    def test_gssenc_request_declined_then_tls(self):
        with wire.WireClient(px.port) as c:
            c.send(struct.pack("!II", 8, 80877104))
            self.assertEqual(c.read_bytes(1), b"N")
            self.assertEqual(c.request_tls(world.client_context(), "127.0.0.1"), b"S")
            c.startup(user="md5_user", database="postgres")
            c.authenticate(password=MD5_PW)
            rows, _, _ = c.simple_query("select 1")
            self.assertEqual(rows, [["1"]])


class Refusals(unittest.TestCase):
    def refusal(self, user: str, password: str) -> dict:
        return world.login_refusal(px.port, user, password)

    def test_wrong_password_and_unknown_role_read_alike(self):
        wrong = self.refusal("scram_user", "wrong")
        unknown = self.refusal("nobody_here", "whatever")
        self.assertEqual(wrong["C"], "28P01")
        self.assertEqual(unknown["C"], "28P01")
        self.assertEqual(wrong["M"], 'password authentication failed for user "scram_user"')
        self.assertEqual(unknown["M"], 'password authentication failed for user "nobody_here"')
        self.assertIn('Role "nobody_here" does not exist.', px.log_text())  # the log only

    def test_unknown_role_gets_a_stable_salt(self):
        def salt(user: str) -> str:
            with wire.WireClient(px.port) as c:
                c.request_tls(world.client_context(), "127.0.0.1")
                c.startup(user=user, database="postgres")
                t, body = c.read_message()
                self.assertEqual(t, "R")
                c.send(b"p" + struct.pack("!I", 4 + 14 + 4 + 32) + b"SCRAM-SHA-256\0" +
                       struct.pack("!I", 32) + b"n,,n=,r=AAAAAAAAAAAAAAAAAAAAAAAA")
                t, body = c.read_message()
                fields = dict(f.split("=", 1) for f in body[4:].decode().split(","))
                return fields["s"]
        self.assertEqual(salt("ghost"), salt("ghost"))
        self.assertNotEqual(salt("ghost"), salt("phantom"))

    def test_no_timing_difference_between_unknown_role_and_wrong_password(self):
        def timed(user: str) -> float:
            started = time.perf_counter()
            self.refusal(user, "wrong password")
            return time.perf_counter() - started
        for user in ("scram_user", "nobody_here"):  # warm up both paths
            timed(user)
        known, unknown = [], []
        for _ in range(25):  # interleaved, so load from elsewhere falls on both alike
            known.append(timed("scram_user"))
            unknown.append(timed("nobody_here"))
        a, b = statistics.median(known), statistics.median(unknown)
        # The same work either way (a query for the secret, then SCRAM against a real or mock
        # secret); what is left is noise, far below the ~4096-iteration PBKDF2 both do.
        self.assertLess(abs(a - b), max(0.004, 0.35 * min(a, b)), (known, unknown))


class UpstreamVerification(unittest.TestCase):
    def test_wrong_ca_for_the_server_is_08001_and_one_log_line(self):
        config = world.proxy_config(auth_mode="relay")
        config["server_tls"] = {"sslmode": "verify-full", "ca_file": world.other.ca_file}
        bad_metrics = metrics_port()
        with e2e_common.Proxy(upstream_port=world.pg.port, metrics={"host": "127.0.0.1",
                                                                    "port": bad_metrics},
                              **config) as bad:
            with wire.WireClient(bad.port) as c:
                c.request_tls(world.client_context(), "127.0.0.1")
                c.startup(user="scram_user", database="postgres")
                with self.assertRaises(wire.ServerError) as caught:
                    c.authenticate(password=SCRAM_PW)
            self.assertEqual(caught.exception.fields["C"], "08001")
            self.assertIn("certificate verification failed", caught.exception.fields["M"])
            def failure_lines():
                return [l for l in bad.log_text().splitlines()
                        if "could not connect to upstream" in l
                        and "certificate verification failed" in l]
            # The session logs its reason after the client has heard the error: poll.
            e2e_common.poll(lambda: failure_lines(), 10, 0.02, "the verification failure logged")
            lines = failure_lines()
            self.assertEqual(len(lines), 1, bad.log_text())
            self.assertIn(f"127.0.0.1:{world.pg.port}", lines[0])
            text = urllib.request.urlopen(f"http://127.0.0.1:{bad_metrics}/metrics",
                                          timeout=5).read().decode()
            self.assertIn('seedproxy_tls_handshakes_total{leg="server",result="certificate"} 1',
                          text)
        # In proxy mode the first connection to fail is auth.query's, through libpq.
        config["auth"] = {"mode": "proxy"}
        with e2e_common.Proxy(upstream_port=world.pg.port, **config) as bad:
            with self.assertRaises(psycopg.OperationalError) as caught:
                psycopg.connect(world.dsn(bad, "scram_user", SCRAM_PW)).close()
            self.assertIn("could not read the role's password", str(caught.exception))
            # The session logs its reason after the client has heard the error: poll.
            e2e_common.poll(lambda: "certificate verify failed" in bad.log_text(), 10, 0.02,
                            "libpq's verification failure in the log")

    def test_server_name_mismatch_is_refused_not_downgraded(self):
        config = world.proxy_config()
        with e2e_common.Proxy(upstream_port=world.pg.port, upstream_host="localhost", **config) as ok:
            # The certificate names localhost too: verify-full passes by name.
            with psycopg.connect(world.dsn(ok, "scram_user", SCRAM_PW)) as c:
                self.assertTrue(upstream_ssl(c))
        wrong = world.certs.server("postgres-elsewhere", names=("db.invalid",))
        other_pg = world.pg.__class__()
        try:
            other_pg.start(other_pg.use_tls(wrong.cert, wrong.key))
            config = world.proxy_config(auth_mode="relay")
            with e2e_common.Proxy(upstream_port=other_pg.port, **config) as bad:
                with self.assertRaises(psycopg.OperationalError) as caught:
                    psycopg.connect(world.dsn(bad, "postgres")).close()
                self.assertIn("certificate verification failed: IP address mismatch",
                              str(caught.exception))
            # verify-ca checks the signature only: the same certificate is accepted.
            config = world.proxy_config(server_mode="verify-ca", auth_mode="relay")
            with e2e_common.Proxy(upstream_port=other_pg.port, **config) as lax:
                with psycopg.connect(world.dsn(lax, "postgres")) as c:
                    self.assertTrue(upstream_ssl(c))
        finally:
            other_pg.stop()

    def test_require_without_server_tls_fails_clearly(self):
        plain = world.pg.__class__()
        try:
            plain.start()
            config = world.proxy_config(server_mode="require", auth_mode="relay")
            with e2e_common.Proxy(upstream_port=plain.port, **config) as bad:
                with self.assertRaises(psycopg.OperationalError) as caught:
                    psycopg.connect(world.dsn(bad, "postgres")).close()
                self.assertIn("server does not support SSL, but SSL was required",
                              str(caught.exception))
            # prefer takes plain text from a server without TLS, as libpq does.
            config = world.proxy_config(server_mode="prefer", auth_mode="relay")
            with e2e_common.Proxy(upstream_port=plain.port, **config) as lax:
                with psycopg.connect(world.dsn(lax, "postgres")) as c:
                    self.assertFalse(upstream_ssl(c))
        finally:
            plain.stop()


class EarlyUpstreamConnection(unittest.TestCase):
    """In auth.mode relay the proxy opens the upstream connection while the client's TLS
    handshake runs, so that PostgreSQL starts the backend meanwhile; the startup packet then goes
    down that connection, and a client that leaves before its startup takes it along. In
    auth.mode proxy nothing is opened upstream for a client before its password checks out."""

    def handshake_only(self, proxy) -> wire.WireClient:
        client = wire.WireClient(proxy.port)
        client.request_tls(world.client_context(), "127.0.0.1")
        return client

    def test_relay_connects_during_the_handshake(self):
        with world.proxy(auth_mode="relay") as relay:
            # Control connections the first session brings about are opened before the count.
            with psycopg.connect(world.dsn(relay, "postgres")) as c:
                c.execute("select 1")
            before = relay.ports_connected_to(world.pg.port)
            with self.handshake_only(relay) as client:
                # No startup packet yet, and the proxy is connected upstream for this client.
                new = e2e_common.poll(
                    lambda: relay.ports_connected_to(world.pg.port) - before, 10, 0.02,
                    "an upstream connection opened during the client's TLS handshake")
                client.startup(user="postgres", database="postgres")
                client.authenticate()
                rows, _, _ = client.simple_query("select inet_client_port()")
                self.assertIn(int(rows[0][0]), new, "the session uses the early connection")
            with self.handshake_only(relay) as client:
                early = e2e_common.poll(
                    lambda: relay.ports_connected_to(world.pg.port) - before, 10, 0.02,
                    "a second early connection")
            # The client left without a startup packet: its connection goes with it.
            e2e_common.poll(lambda: not relay.ports_connected_to(world.pg.port) & early, 10, 0.02,
                            "the early connection of a client that left closed")

    def test_proxy_mode_connects_only_after_the_password(self):
        # px: auth.mode proxy. One login first, so that auth.query's connection is open.
        with psycopg.connect(world.dsn(px, "scram_user", SCRAM_PW)) as c:
            c.execute("select 1")
        before = px.ports_connected_to(world.pg.port)
        with self.handshake_only(px) as client:
            client.startup(user="scram_user", database="postgres")
            kind, body = client.read_message()
            self.assertEqual((kind, struct.unpack_from("!I", body)[0]), ("R", 10), "SASL request")
            # The proxy has read the startup and asks for the password: nothing upstream yet.
            self.assertEqual(px.ports_connected_to(world.pg.port) - before, set())


class ClientCertificates(unittest.TestCase):
    def test_verify_full_needs_a_certificate_naming_the_user(self):
        alice = world.certs.client("scram_user")
        mallory = world.certs.client("mallory")
        with world.proxy(client_mode="verify-full") as strict:
            with psycopg.connect(world.dsn(strict, "scram_user", SCRAM_PW, sslcert=alice.cert,
                                           sslkey=alice.key)) as c:
                self.assertEqual(c.execute("select current_user").fetchone(), ("scram_user",))
            with self.assertRaises(psycopg.OperationalError):
                psycopg.connect(world.dsn(strict, "scram_user", SCRAM_PW)).close()
            with self.assertRaises(psycopg.OperationalError) as caught:
                psycopg.connect(world.dsn(strict, "scram_user", SCRAM_PW, sslcert=mallory.cert,
                                          sslkey=mallory.key)).close()
            self.assertIn('certificate authentication failed for user "scram_user"',
                          str(caught.exception))
            self.assertTrue(strict.running())
        # verify-ca: any certificate the CA signed, whatever it names; none is still refused.
        with world.proxy(client_mode="verify-ca") as signed:
            with psycopg.connect(world.dsn(signed, "scram_user", SCRAM_PW, sslcert=mallory.cert,
                                           sslkey=mallory.key)) as c:
                self.assertEqual(c.execute("select current_user").fetchone(), ("scram_user",))
            with self.assertRaises(psycopg.OperationalError):
                psycopg.connect(world.dsn(signed, "scram_user", SCRAM_PW)).close()


class Observability(unittest.TestCase):
    def test_admin_console_show_clients_and_metrics(self):
        # postgres has no password, so in proxy mode it cannot log in; scram_user is no admin.
        with self.assertRaises(psycopg.OperationalError) as caught:
            psycopg.connect(world.dsn(px, "scram_user", SCRAM_PW, dbname="seedproxy")).close()
        self.assertIn("not allowed to use the seedproxy admin console", str(caught.exception))
        config = world.proxy_config(admin={"users": ["scram_user"]})
        with e2e_common.Proxy(upstream_port=world.pg.port, **config) as other:
            with psycopg.connect(world.dsn(other, "scram_user", SCRAM_PW, dbname="seedproxy"),
                                 autocommit=True) as console:
                rows = console.execute("SHOW CLIENTS").fetchall()
                columns = [d.name for d in console.execute("SHOW CLIENTS").description]
            me = dict(zip(columns, rows[0]))
            self.assertTrue(me["tls"])
            self.assertEqual(me["tls_version"], "TLSv1.3")
            self.assertTrue(me["tls_cipher"])
            self.assertEqual(me["auth"], "SCRAM-SHA-256-PLUS")
        text = urllib.request.urlopen(f"http://127.0.0.1:{mport}/metrics", timeout=5).read().decode()
        ok = [l for l in text.splitlines()
              if l.startswith('seedproxy_tls_handshakes_total{leg="client",result="ok"}')]
        self.assertTrue(ok and float(ok[0].split()[-1]) > 0, ok)
        refused = [l for l in text.splitlines() if 'result="plaintext_refused"' in l]
        self.assertTrue(refused, text[-2000:])


    def test_handshake_failures_are_counted_by_reason(self):
        def counts() -> dict:
            text = urllib.request.urlopen(f"http://127.0.0.1:{mport}/metrics", timeout=5).read()
            out = {}
            for line in text.decode().splitlines():
                prefix = 'seedproxy_tls_handshakes_total{leg="client",result="'
                if line.startswith(prefix):
                    out[line[len(prefix):].split('"')[0]] = float(line.split()[-1])
            return out
        before = counts()
        with wire.WireClient(px.port) as c:  # direct TLS without ALPN
            c.direct_tls(world.client_context(), "127.0.0.1")
            c.expect_eof()
        with socket.create_connection(("127.0.0.1", px.port), timeout=10) as s:
            s.sendall(b"\x16\x03\x01\x00\x20" + bytes(range(32)))  # a handshake record of junk
            try:
                while s.recv(4096):  # the proxy answers with an alert, then closes
                    pass
            except ConnectionResetError:
                pass
        with wire.WireClient(px.port) as c:  # plain text where TLS is required
            c.startup(user="scram_user", database="postgres")
            c.expect_eof()
        after = counts()
        for reason in ("no_alpn", "protocol", "plaintext_refused"):
            self.assertEqual(after.get(reason, 0) - before.get(reason, 0), 1, (reason, before, after))


if __name__ == "__main__":
    e2e_common.main()
