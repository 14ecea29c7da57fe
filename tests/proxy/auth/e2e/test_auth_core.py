#!/usr/bin/python3
"""The auth core (proxy/auth/) against real libpq and a real PostgreSQL 15.

auth_mini_proxy authenticates psycopg itself with the server's own secrets (read from pg_authid, as
auth.query will), then logs in upstream with the ClientKey recovered from the client's proof, or
the stored md5 hash, and relays the session. Plain TCP and TLS on both legs with
SCRAM-SHA-256-PLUS; the proxy's certificate is signed with ECDSA-SHA-384, so channel binding uses
SHA-384 on the client leg and SHA-256 on the upstream leg.

Run: ctest -L e2e -R e2e_auth_core   (or AUTH_MINI_PROXY=build/.../auth_mini_proxy
     PYTHONPATH=tests /usr/bin/python3 tests/proxy/auth/e2e/test_auth_core.py)
"""

import os
import pwd
import subprocess
import tempfile
import unittest

import psycopg

from harness.pgcluster import PgCluster

MINI_PROXY = os.environ.get("AUTH_MINI_PROXY", "auth_mini_proxy")
SCRAM_PW = "scr4m-Secret!"
MD5_PW = "md5 secret with spaces"

pg: PgCluster = None
work: tempfile.TemporaryDirectory = None


def openssl(*args: str) -> None:
    subprocess.run(["openssl", *args], check=True, capture_output=True)


def make_certificates(pg_dir: str, proxy_dir: str) -> None:
    """PostgreSQL's certificate: RSA, SHA-256. The proxy's: ECDSA P-256 signed with SHA-384."""
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-sha256", "-days", "2",
            "-subj", "/CN=127.0.0.1", "-keyout", f"{pg_dir}/server.key", "-out", f"{pg_dir}/server.crt")
    openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-sha384", "-days", "2", "-subj", "/CN=127.0.0.1",
            "-keyout", f"{proxy_dir}/proxy.key", "-out", f"{proxy_dir}/proxy.crt")
    # Ed25519 signatures name no hash: no tls-server-end-point, so no PLUS is offered.
    openssl("req", "-x509", "-newkey", "ed25519", "-nodes", "-days", "2", "-subj", "/CN=127.0.0.1",
            "-keyout", f"{proxy_dir}/proxy-ed25519.key", "-out", f"{proxy_dir}/proxy-ed25519.crt")
    os.chmod(f"{pg_dir}/server.key", 0o600)
    if os.geteuid() == 0:
        pw = pwd.getpwnam("postgres")
        for name in ("server.key", "server.crt"):
            os.chown(f"{pg_dir}/{name}", pw.pw_uid, pw.pw_gid)


def setUpModule():
    global pg, work
    work = tempfile.TemporaryDirectory(prefix="seedproxy-auth-core-")
    pg = PgCluster()
    pg.init()
    # The harness's rules ask a password of scram_user and md5_user only; stale_user too.
    hba = os.path.join(pg.data_dir, "pg_hba.conf")
    with open(hba) as f:
        rules = f.read()
    with open(hba, "w") as f:
        f.write("host all stale_user 127.0.0.1/32 scram-sha-256\n" + rules)
    make_certificates(pg.data_dir, work.name)
    pg.start({"ssl": True, "ssl_cert_file": "server.crt", "ssl_key_file": "server.key"})
    pg.create_user("scram_user", SCRAM_PW, "scram-sha-256")
    pg.create_user("md5_user", MD5_PW, "md5")
    pg.create_user("stale_user", "old password", "scram-sha-256")  # its password will change


def tearDownModule():
    if pg is not None:
        pg.stop()
    if work is not None:
        work.cleanup()


def rolpasswords() -> dict:
    """What auth.query reads: the server's own secrets."""
    return dict(pg.psql("select rolname, rolpassword from pg_authid where rolpassword is not null"))


def write_userlist(secrets: dict) -> str:
    path = os.path.join(work.name, "userlist.txt")
    with open(path, "w") as f:
        f.write("; written by test_auth_core.py from pg_authid\n")
        for user, secret in secrets.items():
            f.write('"{}" "{}"\n'.format(user.replace('"', '""'), secret.replace('"', '""')))
    return path


class MiniProxy:
    """One auth_mini_proxy run: serves one client connection, then exits."""

    def __init__(self, client_tls: bool | str = False, upstream_tls: bool = False,
                 upstream_binding: str = "prefer", secrets: dict | None = None):
        args = [MINI_PROXY, "--userlist", write_userlist(secrets or rolpasswords()),
                "--upstream-port", str(pg.port), "--upstream-channel-binding", upstream_binding]
        if client_tls:
            name = "proxy" if client_tls is True else f"proxy-{client_tls}"
            args += ["--cert", f"{work.name}/{name}.crt", "--key", f"{work.name}/{name}.key"]
        if upstream_tls:
            args.append("--upstream-tls")
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        first = self.proc.stdout.readline().strip()
        if not first.startswith("port="):
            raise RuntimeError(f"auth_mini_proxy did not start: {first}{self.proc.stdout.read()}")
        self.port = int(first[len("port="):])
        self.lines: list[str] = []

    def dsn(self, user: str, password: str, **kw) -> str:
        parts = {"host": "127.0.0.1", "port": self.port, "dbname": "postgres", "user": user,
                 "password": password, "gssencmode": "disable", "connect_timeout": 10}
        parts.update(kw)
        return " ".join(f"{k}='{v}'" for k, v in parts.items())

    def finish(self) -> list[str]:
        try:
            out, _ = self.proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            out, _ = self.proc.communicate()
        self.lines = [line for line in out.splitlines() if line]
        return self.lines


class AuthCoreEndToEnd(unittest.TestCase):
    def login(self, proxy: MiniProxy, user: str, password: str, **kw):
        with psycopg.connect(proxy.dsn(user, password, **kw), autocommit=True) as conn:
            row = conn.execute("select current_user, coalesce((select ssl from pg_stat_ssl "
                               "where pid = pg_backend_pid()), false)").fetchone()
        return row, proxy.finish()

    def refused(self, proxy: MiniProxy, user: str, password: str, **kw) -> tuple[str, list[str]]:
        try:
            with self.assertRaises(psycopg.OperationalError) as caught:
                psycopg.connect(proxy.dsn(user, password, **kw)).close()
        finally:
            lines = proxy.finish()
        return str(caught.exception), lines

    def test_scram_plain_tcp_both_legs(self):
        row, lines = self.login(MiniProxy(), "scram_user", SCRAM_PW, sslmode="disable")
        self.assertEqual(row, ("scram_user", False))
        self.assertIn("client: mechanism=SCRAM-SHA-256", lines)
        self.assertIn("upstream: tls=plain mechanism=SCRAM-SHA-256 server_verified=1", lines)
        self.assertIn("result: ok", lines)

    def test_scram_plus_tls_both_legs(self):
        proxy = MiniProxy(client_tls=True, upstream_tls=True, upstream_binding="require")
        row, lines = self.login(proxy, "scram_user", SCRAM_PW, sslmode="require",
                                channel_binding="require")
        self.assertEqual(row, ("scram_user", True))
        self.assertIn("client: mechanism=SCRAM-SHA-256-PLUS", lines)
        # The proxy's certificate is ECDSA-SHA-384: its end-point hash is SHA-384 (48 bytes).
        self.assertTrue(any(l.startswith("client: tls=TLS") and l.endswith("end-point-hash-bytes=48")
                            for l in lines), lines)
        upstream = [l for l in lines if l.startswith("upstream: tls=TLS")]
        self.assertEqual(len(upstream), 1, lines)
        self.assertTrue(upstream[0].endswith("mechanism=SCRAM-SHA-256-PLUS server_verified=1"), lines)

    def test_tls_client_without_binding_and_plain_upstream(self):
        row, lines = self.login(MiniProxy(client_tls=True), "scram_user", SCRAM_PW,
                                sslmode="require", channel_binding="disable")
        self.assertEqual(row, ("scram_user", False))
        self.assertIn("client: mechanism=SCRAM-SHA-256", lines)

    def test_certificate_without_end_point_hash_offers_no_plus_and_accepts_y(self):
        # libpq over TLS, seeing no PLUS, says "y": right, since this server cannot bind.
        row, lines = self.login(MiniProxy(client_tls="ed25519"), "scram_user", SCRAM_PW,
                                sslmode="require")
        self.assertEqual(row[0], "scram_user")
        self.assertIn("client: mechanism=SCRAM-SHA-256", lines)
        self.assertTrue(any(l.endswith("end-point-hash-bytes=0") for l in lines), lines)

    def test_wrong_password(self):
        for client_tls in (False, True):
            with self.subTest(client_tls=client_tls):
                message, lines = self.refused(MiniProxy(client_tls=client_tls), "scram_user", "wrong",
                                              sslmode="require" if client_tls else "disable")
                self.assertIn('password authentication failed for user "scram_user"', message)
                self.assertIn('result: refused 28P01 password authentication failed for user "scram_user"',
                              lines)

    def test_unknown_user_looks_like_a_wrong_password(self):
        message, lines = self.refused(MiniProxy(), "nobody", "whatever", sslmode="disable")
        self.assertIn('password authentication failed for user "nobody"', message)
        self.assertIn('log: Role "nobody" does not exist.', lines)
        self.assertIn('result: refused 28P01 password authentication failed for user "nobody"', lines)

    def test_md5_both_legs(self):
        row, lines = self.login(MiniProxy(), "md5_user", MD5_PW, sslmode="disable")
        self.assertEqual(row[0], "md5_user")
        self.assertIn("client: mechanism=md5", lines)
        self.assertIn("upstream: mechanism=md5", lines)
        message, _ = self.refused(MiniProxy(), "md5_user", "wrong", sslmode="disable")
        self.assertIn('password authentication failed for user "md5_user"', message)

    def test_secret_changed_on_the_server_fails_clearly(self):
        stale = rolpasswords()  # read before the password changes: a new salt upstream
        pg.psql("alter role stale_user password 'new password'")
        message, lines = self.refused(MiniProxy(secrets=stale), "stale_user", "old password",
                                      sslmode="disable")
        self.assertIn("salt or iteration count differs", message)
        self.assertTrue(any(l.startswith("result: refused 08001 could not log in upstream") for l in lines),
                        lines)


if __name__ == "__main__":
    unittest.main(verbosity=2)
