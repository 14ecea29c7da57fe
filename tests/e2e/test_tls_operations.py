#!/usr/bin/python3
"""TLS in operation: a rotated certificate reloaded under load with no dropped connection, a bad
certificate refused with the file and OpenSSL's reason while the old one stays, seeds read and
materialized with every control connection on TLS to a hostssl-only PostgreSQL, the
max_clients refusal readable by sslmode=prefer clients, garbage or truncated TLS and SASL
handshakes that leave the proxy up and other clients undisturbed, SIGHUP and RELOAD taking new
certificates with the file watch off, server_tls kept by a reload (control connections and
sessions encrypt alike), and the proxy's secrets from auth.file (reloaded on change)
and from an auth.query function run by a role that is no superuser."""

import json
import os
import random
import shutil
import signal
import socket
import ssl
import struct
import threading
import time
import unittest
from decimal import Decimal

import e2e_common
import materialize_common as mc
import psycopg

from harness import wire
from tls_common import MD5_PW, SCRAM_PW, TlsWorld

world: TlsWorld = None


def setUpModule():
    global world
    world = TlsWorld()


def tearDownModule():
    if world is not None:
        world.close()


def served_certificate(port: int) -> bytes:
    with wire.WireClient(port) as c:
        c.request_tls(world.client_context(), "127.0.0.1")
        return c.sock.getpeercert(binary_form=True)


def pem_to_der(path: str) -> bytes:
    with open(path) as f:
        return ssl.PEM_cert_to_DER_cert(f.read())


class Load:
    """Clients that keep querying (held connections) and keep connecting (new ones) until stop()."""

    def __init__(self, px, held: int = 4, connecting: int = 2):
        self.px = px
        self.errors: list[str] = []
        self.queries = 0
        self.connections = 0
        self.stopping = threading.Event()
        self.threads = [threading.Thread(target=self.hold) for _ in range(held)]
        self.threads += [threading.Thread(target=self.connect) for _ in range(connecting)]
        for t in self.threads:
            t.start()

    def dsn(self) -> str:
        return world.dsn(self.px, "scram_user", SCRAM_PW)

    def hold(self) -> None:
        try:
            with psycopg.connect(self.dsn(), autocommit=True) as conn:
                while not self.stopping.is_set():
                    conn.execute("select pg_sleep(0.001)")
                    self.queries += 1
        except Exception as e:  # noqa: BLE001 - every failure counts
            self.errors.append(f"held connection: {e}")

    def connect(self) -> None:
        while not self.stopping.is_set():
            try:
                with psycopg.connect(self.dsn(), autocommit=True) as conn:
                    conn.execute("select 1")
                    self.connections += 1
            except Exception as e:  # noqa: BLE001
                self.errors.append(f"new connection: {e}")

    def stop(self) -> None:
        self.stopping.set()
        for t in self.threads:
            t.join(timeout=30)


class CertificateReload(unittest.TestCase):
    def test_rotation_under_load_drops_nothing_and_a_bad_file_is_refused(self):
        live = os.path.join(world.tmp.name, "live")
        os.makedirs(live, exist_ok=True)
        cert, key = os.path.join(live, "proxy.crt"), os.path.join(live, "proxy.key")
        shutil.copy(world.proxy_pair.cert, cert)
        shutil.copy(world.proxy_pair.key, key)
        config = world.proxy_config()
        config["client_tls"].update(cert_file=cert, key_file=key)
        with e2e_common.Proxy(upstream_port=world.pg.port, **config) as px:
            self.assertEqual(served_certificate(px.port), pem_to_der(world.proxy_pair.cert))
            load = Load(px)
            try:
                time.sleep(1.0)
                rotated = world.certs.server("proxy-rotated")
                # Key first, then certificate, each replaced atomically: a reload that catches
                # the pair half-way is refused and the next one takes both.
                shutil.copy(rotated.key, key + ".new")
                os.replace(key + ".new", key)
                shutil.copy(rotated.cert, cert + ".new")
                os.replace(cert + ".new", cert)
                e2e_common.poll(lambda: served_certificate(px.port) == pem_to_der(rotated.cert),
                                15, 0.2, "the rotated certificate to be served")
                time.sleep(1.0)
            finally:
                load.stop()
            self.assertEqual(load.errors, [])
            self.assertGreater(load.queries, 100)
            self.assertGreater(load.connections, 10)
            # A file that is not a certificate: refused, named, and the rotated one stays.
            with open(cert, "w") as f:
                f.write("not a certificate\n")
            e2e_common.poll(lambda: "refused" in px.log_text() and cert in px.log_text(), 15, 0.2,
                            "the refusal of the bad certificate")
            line = [l for l in px.log_text().splitlines() if "refused" in l and cert in l][-1]
            self.assertIn("client_tls.cert_file", line)
            self.assertIn("no start line", line)  # OpenSSL's reason
            self.assertEqual(served_certificate(px.port), pem_to_der(rotated.cert))


def replace_pair(cert: str, key: str, pair) -> None:
    """Key first, then certificate, each replaced atomically (write aside, rename over)."""
    for source, target in ((pair.key, key), (pair.cert, cert)):
        shutil.copy(source, target + ".new")
        os.replace(target + ".new", target)


def live_pair(name: str) -> tuple[str, str]:
    """A copy of the proxy's certificate and key in a directory of their own, to be rotated."""
    live = os.path.join(world.tmp.name, name)
    os.makedirs(live, exist_ok=True)
    cert, key = os.path.join(live, "proxy.crt"), os.path.join(live, "proxy.key")
    shutil.copy(world.proxy_pair.cert, cert)
    shutil.copy(world.proxy_pair.key, key)
    return cert, key


class ReloadTriggers(unittest.TestCase):
    """With reload.watch_file off, a rotated certificate is taken by SIGHUP and by the admin
    console's RELOAD, and only then; RELOAD names a bad file and keeps the one in force."""

    def test_sighup_and_admin_reload_take_new_certificates(self):
        cert, key = live_pair("triggers")
        config = world.proxy_config(reload={"watch_file": False}, admin={"users": ["scram_user"]})
        config["client_tls"].update(cert_file=cert, key_file=key)
        with e2e_common.Proxy(upstream_port=world.pg.port, **config) as px:
            held = psycopg.connect(world.dsn(px, "scram_user", SCRAM_PW), autocommit=True)
            first = world.certs.server("proxy-by-sighup")
            replace_pair(cert, key, first)
            # Nothing watches the files: the old certificate is served until a reload.
            self.assertEqual(served_certificate(px.port), pem_to_der(world.proxy_pair.cert))
            px.signal(signal.SIGHUP)
            e2e_common.poll(lambda: served_certificate(px.port) == pem_to_der(first.cert), 15, 0.1,
                            "the certificate reloaded by SIGHUP")
            second = world.certs.server("proxy-by-reload")
            replace_pair(cert, key, second)
            console = psycopg.connect(world.dsn(px, "scram_user", SCRAM_PW, dbname="seedproxy"),
                                      autocommit=True)
            with console:
                console.execute("RELOAD")
                # RELOAD answers once the new files are in force: no polling needed.
                self.assertEqual(served_certificate(px.port), pem_to_der(second.cert))
                with open(key, "w") as f:
                    f.write("not a key\n")
                with self.assertRaises(psycopg.Error) as caught:
                    console.execute("RELOAD")
            message = str(caught.exception)
            self.assertIn("configuration reload refused", message)
            self.assertIn("client_tls.key_file", message)
            self.assertIn(key, message)
            self.assertEqual(served_certificate(px.port), pem_to_der(second.cert))
            # The connection opened under the first certificate lived through all of it.
            self.assertEqual(held.execute("select 7").fetchone(), (7,))
            held.close()


class ServerTlsReload(unittest.TestCase):
    """server_tls is fixed at start: the control connections are opened once with it, so a reload
    that changed it for sessions alone would split the two (here: sessions in plain text to a
    hostssl-only server while the registry stays on TLS). The running value is kept, with the
    warning every restart-only setting gets."""

    def test_a_reload_keeps_server_tls_for_sessions_and_control_connections(self):
        config = world.proxy_config(reload={"watch_file": False}, admin={"users": ["scram_user"]})
        with e2e_common.Proxy(upstream_port=world.pg.port, **config) as px:
            changed = json.loads(json.dumps(px.config))
            changed["server_tls"] = {"sslmode": "disable"}
            with open(px.config_path + ".new", "w") as f:
                json.dump(changed, f)
            os.replace(px.config_path + ".new", px.config_path)
            start = len(px.log_text())
            with psycopg.connect(world.dsn(px, "scram_user", SCRAM_PW, dbname="seedproxy"),
                                 autocommit=True) as console:
                console.execute("RELOAD")
                shown = dict(console.execute("SHOW CONFIG").fetchall())
            self.assertEqual(shown["server_tls.sslmode"], "verify-full")
            warning = [l for l in px.log_text()[start:].splitlines()
                       if "cannot change without a restart" in l]
            self.assertTrue(warning and "server_tls" in warning[0], px.log_text()[start:])
            with psycopg.connect(world.dsn(px, "scram_user", SCRAM_PW)) as conn:
                self.assertTrue(conn.execute("select ssl from pg_stat_ssl "
                                             "where pid = pg_backend_pid()").fetchone()[0])


class AuthFile(unittest.TestCase):
    """auth.file (PgBouncer's userlist) as the only source of secrets: SCRAM secrets and md5
    hashes copied from pg_authid log in, with the proxy's upstream login derived from them; a
    role missing from the file is refused like a wrong password; the file reloads on change."""

    def write_userlist(self, path: str, users: list[str], extra: str = "") -> None:
        secrets = dict(world.pg.psql("select rolname, rolpassword from pg_authid "
                                     "where rolpassword is not null"))
        lines = ["; copied from pg_authid by test_tls_operations.py"]
        lines += ['"{}" "{}"'.format(u, secrets[u]) for u in users]
        with open(path + ".new", "w") as f:
            f.write("\n".join(lines) + "\n" + extra)
        os.replace(path + ".new", path)

    def test_userlist_logs_in_refuses_and_reloads(self):
        world.pg.create_user("listed_later", "later-Secret1", "scram-sha-256")
        path = os.path.join(world.tmp.name, "userlist.txt")
        self.write_userlist(path, ["scram_user", "md5_user"])
        os.chmod(path, 0o600)
        config = world.proxy_config()
        config["auth"] = {"mode": "proxy", "file": path}
        with e2e_common.Proxy(upstream_port=world.pg.port, **config) as px:
            for user, password in (("scram_user", SCRAM_PW), ("md5_user", MD5_PW)):
                with psycopg.connect(world.dsn(px, user, password)) as conn:
                    self.assertEqual(conn.execute("select current_user").fetchone(), (user,))
            wrong = world.login_refusal(px.port, "scram_user", "wrong")
            self.assertEqual((wrong["C"], wrong["M"]),
                             ("28P01", 'password authentication failed for user "scram_user"'))
            # A role PostgreSQL has (and would trust) but the file does not list: refused alike.
            unlisted = world.login_refusal(px.port, "listed_later", "later-Secret1")
            self.assertEqual((unlisted["C"], unlisted["M"]),
                             ("28P01", 'password authentication failed for user "listed_later"'))
            self.write_userlist(path, ["scram_user", "md5_user", "listed_later"])
            conn = e2e_common.poll(
                lambda: Refusal.try_connect(world.dsn(px, "listed_later", "later-Secret1")),
                15, 0.1, "the reloaded auth.file to let listed_later in")
            with conn:
                self.assertEqual(conn.execute("select current_user").fetchone(), ("listed_later",))
            # A damaged file is refused with its line; the one in force stays.
            start = len(px.log_text())
            self.write_userlist(path, ["scram_user", "md5_user", "listed_later"],
                                extra='"broken line\n')
            e2e_common.poll(lambda: path in px.log_text()[start:], 15, 0.1,
                            "the refusal of the damaged auth.file")
            self.assertIn("refused", px.log_text()[start:])
            with psycopg.connect(world.dsn(px, "listed_later", "later-Secret1")) as conn:
                self.assertEqual(conn.execute("select 1").fetchone(), (1,))
            for password in (SCRAM_PW, MD5_PW, "later-Secret1"):  # never logged
                self.assertNotIn(password, px.log_text())


class AuthQuery(unittest.TestCase):
    """auth.query as PgBouncer deployments write it: a SECURITY DEFINER function run by a role
    that is no superuser; the proxy asks it and nothing else."""

    def test_a_lookup_function_as_a_plain_role(self):
        world.pg.psql("create role auth_reader login nosuperuser")
        # Lists every role with a password except md5_user, which the default query would find.
        world.pg.psql("create function public.lookup(name text, out usename text, out passwd text) "
                      "returns setof record language sql security definer as "
                      "$$ select rolname::text, rolpassword from pg_catalog.pg_authid "
                      "where rolname = name and rolname <> 'md5_user' $$;"
                      "revoke all on function public.lookup(text) from public;"
                      "grant execute on function public.lookup(text) to auth_reader")
        config = world.proxy_config()
        config["auth"] = {"mode": "proxy", "user": "auth_reader",
                          "query": "SELECT usename, passwd FROM public.lookup($1)"}
        with e2e_common.Proxy(upstream_port=world.pg.port, **config) as px:
            with psycopg.connect(world.dsn(px, "scram_user", SCRAM_PW)) as conn:
                self.assertEqual(conn.execute("select current_user").fetchone(), ("scram_user",))
            with self.assertRaises(psycopg.OperationalError) as caught:
                psycopg.connect(world.dsn(px, "md5_user", MD5_PW)).close()
            self.assertIn('password authentication failed for user "md5_user"',
                          str(caught.exception))


class SeedsOverTls(unittest.TestCase):
    def test_seed_read_and_materialized_with_control_connections_on_tls(self):
        world.pg.psql("create database shop")
        world.pg.psql("create table item (id int primary key, price numeric(10,2));"
                      "insert into item select g, g * 1.5 from generate_series(1, 2000) g",
                      dbname="shop")
        seeds = [{"database": "shop", "entity": "item", "attribute": "price_with_tax",
                  "type": "numeric(12,2)", "expression": "price * 1.2",
                  "materialize": {"policy": "manual"}}]
        config = world.proxy_config(client_mode="prefer", auth_mode="relay")
        config.pop("control")
        config.pop("admin")
        with mc.make_proxy(world.pg.port, seeds, **config) as px:
            dsn = world.dsn(px, "postgres", dbname="shop")
            e2e_common.wait_until_readable(px, "shop", "select price_with_tax from item where id = 2",
                                           "the seed")
            with psycopg.connect(dsn, autocommit=True) as conn:
                self.assertEqual(conn.execute("select price_with_tax from item where id = 2")
                                 .fetchone()[0], Decimal("3.60"))
                self.assertTrue(conn.execute("select ssl from pg_stat_ssl where pid = "
                                             "pg_backend_pid()").fetchone()[0])
            self.assertEqual(mc.command(px, "MATERIALIZE item.price_with_tax"), ["MATERIALIZE"])
            mc.wait_step(px, "price_with_tax", "materialized", timeout=120)
            with psycopg.connect(dsn, autocommit=True) as conn:
                self.assertEqual(conn.execute("select price_with_tax from item where id = 2")
                                 .fetchone()[0], Decimal("3.60"))
            # client_tls.sslmode = prefer lets a plain-text client in; the upstream leg stays TLS.
            with psycopg.connect(world.dsn(px, "postgres", dbname="shop", sslmode="disable"),
                                 autocommit=True) as conn:
                self.assertEqual(conn.execute("select price_with_tax from item where id = 2")
                                 .fetchone()[0], Decimal("3.60"))
                self.assertTrue(conn.execute("select ssl from pg_stat_ssl where pid = "
                                             "pg_backend_pid()").fetchone()[0])
            # Every connection of the proxy's own (registry, engine, reads) is encrypted.
            plain = world.pg.psql("select count(*) from pg_stat_activity a join pg_stat_ssl s "
                                  "using (pid) where a.application_name = 'seedproxy' and not s.ssl")
            self.assertEqual(plain, [(0,)])


class Refusal(unittest.TestCase):
    def test_max_clients_refusal_reaches_a_prefer_client(self):
        config = world.proxy_config(client_mode="prefer", auth_mode="relay")
        config["limits"] = {"max_clients": 1}
        with e2e_common.Proxy(upstream_port=world.pg.port, **config) as px:
            # The harness's own probe of the port may still count as a client for a moment.
            first = e2e_common.poll(lambda: self.try_connect(world.dsn(px, "postgres")), 10, 0.05,
                                    "a first client")
            with first:
                with self.assertRaises(psycopg.OperationalError) as caught:
                    psycopg.connect(world.dsn(px, "postgres", sslmode="prefer")).close()
                self.assertIn("sorry, too many clients already", str(caught.exception))


    @staticmethod
    def try_connect(dsn: str):
        try:
            return psycopg.connect(dsn)
        except psycopg.OperationalError:
            return None


class Garbage(unittest.TestCase):
    """Truncated and garbage TLS and SASL handshakes: each ends only its own connection."""

    def test_garbage_handshakes_leave_the_proxy_and_others_alone(self):
        config = world.proxy_config()
        config["limits"] = {"startup_timeout_seconds": 2}
        with e2e_common.Proxy(upstream_port=world.pg.port, **config) as px:
            bystander = psycopg.connect(world.dsn(px, "scram_user", SCRAM_PW), autocommit=True)
            rng = random.Random(15)
            hello = self.client_hello()
            cases = [
                b"\x16\x03\x01\x00",                                  # truncated record header
                hello[: len(hello) // 2],                             # truncated ClientHello
                b"\x16\x03\x03\xff\xff" + bytes(64),                  # absurd record length
                b"\x16" + bytes(rng.getrandbits(8) for _ in range(300)),
                struct.pack("!II", 8, 80877103) + b"garbage after SSLRequest",
            ]
            cases += [bytes(rng.getrandbits(8) for _ in range(rng.randint(1, 600))) for _ in range(40)]
            for payload in cases:
                self.send_and_close(px.port, payload)
            for payload in self.sasl_garbage(rng):
                self.sasl_and_close(px.port, payload)
            self.assertTrue(px.running())
            self.assertEqual(bystander.execute("select 42").fetchone(), (42,))
            bystander.close()
            with psycopg.connect(world.dsn(px, "scram_user", SCRAM_PW)) as conn:
                self.assertEqual(conn.execute("select 1").fetchone(), (1,))

    @staticmethod
    def client_hello() -> bytes:
        """The first bytes a real client sends for direct TLS."""
        listener = socket.socket()
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        captured = bytearray()

        def capture():
            conn, _ = listener.accept()
            conn.settimeout(2)
            try:
                captured.extend(conn.recv(4096))
            finally:
                conn.close()
        t = threading.Thread(target=capture)
        t.start()
        client = socket.create_connection(listener.getsockname())
        try:
            world.client_context(["postgresql"]).wrap_socket(client, server_hostname="127.0.0.1")
        except (ssl.SSLError, OSError):
            pass
        t.join()
        listener.close()
        return bytes(captured)

    @staticmethod
    def send_and_close(port: int, payload: bytes) -> None:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
            try:
                s.sendall(payload)
                s.settimeout(0.2)
                s.recv(4096)
            except OSError:
                pass

    @staticmethod
    def sasl_garbage(rng: random.Random) -> list[bytes]:
        first = b"n,,n=,r=" + b"A" * 24
        bodies = [
            b"SCRAM-SHA-256\0" + struct.pack("!i", 1000) + first,           # length lies
            b"SCRAM-SHA-256\0" + struct.pack("!i", len(first)) + first[:5],
            b"NOT-A-MECHANISM\0" + struct.pack("!i", len(first)) + first,
            b"SCRAM-SHA-256-PLUS\0" + struct.pack("!i", len(first)) + first,  # p flag missing
            b"SCRAM-SHA-256",                                                 # no terminator
        ]
        bodies += [bytes(rng.getrandbits(8) for _ in range(rng.randint(0, 200))) for _ in range(20)]
        return [b"p" + struct.pack("!I", 4 + len(b)) + b for b in bodies]

    @staticmethod
    def sasl_and_close(port: int, message: bytes) -> None:
        with wire.WireClient(port, timeout=5) as c:
            c.request_tls(world.client_context(), "127.0.0.1")
            c.startup(user="scram_user", database="postgres")
            c.read_message()  # AuthenticationSASL
            c.send(message)
            try:
                c.expect_eof(timeout=3)
            except OSError:
                pass



class StepDeadlines(unittest.TestCase):
    """limits.startup_timeout_seconds ends each step the proxy runs itself (the startup packet, the
    TLS handshake, its own SCRAM exchange) with that step's reason, frees the session and gives its
    place among those logging in back. One wait on the deadline per login does it; each step
    used to race the timer on its own."""

    STALLS = {
        "silent": "client did not complete startup in time",
        "half a length word": "client did not complete startup in time",
        "SSLRequest, then nothing": "client did not complete the TLS handshake in time",
        "TLS, then half a startup packet": "client sent an incomplete startup packet",
        "TLS, then the SCRAM challenge unanswered": "did not log in within limits.startup_timeout_seconds",
    }

    def stall(self, port: int, kind: str) -> wire.WireClient:
        c = wire.WireClient(port, timeout=30)
        if kind == "half a length word":
            c.send(b"\x00\x00")
        elif kind == "SSLRequest, then nothing":
            c.send(wire.ssl_request())
            self.assertEqual(c.sock.recv(1), b"S")
        elif kind != "silent":
            c.request_tls(world.client_context(), "127.0.0.1")
            if kind == "TLS, then half a startup packet":
                c.send(wire.startup_packet({"user": "scram_user", "database": "postgres"})[:10])
            else:
                c.startup(user="scram_user", database="postgres")
                t, body = c.read_message()
                self.assertEqual((t, struct.unpack_from("!I", body, 0)[0]), ("R", 10))  # SASL
        return c

    def test_each_step_ends_at_the_deadline_and_frees_its_session(self):
        config = world.proxy_config(admin={"users": ["scram_user"]})
        config["limits"] = {"startup_timeout_seconds": 2, "max_authenticating": len(self.STALLS)}
        with e2e_common.Proxy(upstream_port=world.pg.port, **config) as px:
            console = psycopg.connect(world.dsn(px, "scram_user", SCRAM_PW, dbname="seedproxy"),
                                      autocommit=True)
            bystander = psycopg.connect(world.dsn(px, "scram_user", SCRAM_PW), autocommit=True)
            start = len(px.log_text())
            stalled = {kind: self.stall(px.port, kind) for kind in self.STALLS}
            # Every place among those logging in is taken: one more login is refused.
            self.assertEqual(world.login_refusal(px.port, "scram_user", SCRAM_PW)["C"], "53300")
            for kind, client in stalled.items():
                with client:
                    messages = client.expect_eof(timeout=30)
                errors = [wire.parse_error(body) for t, body in messages if t == "E"]
                if kind == "TLS, then the SCRAM challenge unanswered":
                    self.assertEqual([(e["C"], e["M"]) for e in errors],
                                     [("57014", "canceling authentication due to timeout")], kind)
                else:
                    self.assertEqual(errors, [], kind)
            text = e2e_common.poll(
                lambda: px.log_text()[start:] if all(
                    px.log_text()[start:].count(reason) >= list(self.STALLS.values()).count(reason)
                    for reason in self.STALLS.values()) else None,
                30, 0.05, "every stalled session's reason in the log")
            self.assertEqual(text.count("closed after"), len(self.STALLS), text)
            # The sessions are gone (the console and the bystander remain) and their places are
            # back: a login goes through.
            e2e_common.poll(lambda: len(console.execute("SHOW CLIENTS").fetchall()) == 2, 20, 0.05,
                            "the stalled sessions gone from SHOW CLIENTS")
            with psycopg.connect(world.dsn(px, "scram_user", SCRAM_PW)) as conn:
                self.assertEqual(conn.execute("select 1").fetchone(), (1,))
            self.assertEqual(bystander.execute("select 42").fetchone(), (42,))
            bystander.close()
            console.close()
            self.assertTrue(px.running())

class ProxyModeLogin(unittest.TestCase):
    """auth.mode = proxy: the login deadline and the bound on sessions logging in cover the
    proxy's own password exchange too."""

    def at_password_prompt(self, port: int) -> wire.WireClient | None:
        c = wire.WireClient(port)
        if c.request_tls(world.client_context(), server_hostname="127.0.0.1") != b"S":
            c.close()
            return None
        c.startup(user="scram_user", database="postgres")
        try:
            t, body = c.read_message()
        except wire.ConnectionClosed:
            c.close()
            return None
        if t == "R" and struct.unpack_from("!I", body, 0)[0] == 10:  # the proxy's own SASL
            return c
        c.close()
        return None

    def test_a_stalled_login_is_bounded_and_ends(self):
        config = world.proxy_config()
        config["limits"] = {"startup_timeout_seconds": 3, "max_authenticating_per_address": 1}
        with e2e_common.Proxy(upstream_port=world.pg.port, **config) as px:
            stalled = e2e_common.poll(lambda: self.at_password_prompt(px.port), 10, 0.05,
                                      "a client at the proxy's password prompt")
            with stalled:
                with self.assertRaises(psycopg.OperationalError) as caught:
                    psycopg.connect(world.dsn(px, "scram_user", SCRAM_PW, sslmode="prefer")).close()
                self.assertIn("limits.max_authenticating_per_address = 1", str(caught.exception))
                messages = stalled.expect_eof(timeout=30)
            errors = [wire.parse_error(body) for t, body in messages if t == "E"]
            self.assertEqual([e["C"] for e in errors], ["57014"])
            conn = e2e_common.poll(lambda: Refusal.try_connect(world.dsn(px, "scram_user", SCRAM_PW)),
                                   10, 0.05, "a client to log in once the stalled one is gone")
            with conn:
                self.assertEqual(conn.execute("select 1").fetchone(), (1,))


if __name__ == "__main__":
    e2e_common.main()
