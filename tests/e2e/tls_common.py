"""Shared set-up for the TLS end-to-end tests: a CA and certificates made with the openssl CLI, a
PostgreSQL with ssl = on whose TCP rules are all hostssl, and proxies with client_tls and
server_tls pointing at them."""

from __future__ import annotations

import os
import ssl
import tempfile

import e2e_common
from harness import wire
from harness.certs import Certs
from harness.pgcluster import PgCluster, free_port

SCRAM_PW = "scr4m-Secret!"
MD5_PW = "md5 secret with spaces"


class TlsWorld:
    """One PostgreSQL with TLS (hostssl only) and the files every proxy of a test module uses."""

    def __init__(self) -> None:
        self.tmp = tempfile.TemporaryDirectory(prefix="seedproxy-tls-")
        self.certs = Certs(os.path.join(self.tmp.name, "ca"))
        self.other = Certs(os.path.join(self.tmp.name, "other"), "Untrusted CA")
        self.pg_pair = self.certs.server("postgres")
        self.proxy_pair = self.certs.server("proxy")
        self.pg = PgCluster()
        self.pg.start(self.pg.use_tls(self.pg_pair.cert, self.pg_pair.key))
        self.pg.create_user("scram_user", SCRAM_PW, "scram-sha-256")
        self.pg.create_user("md5_user", MD5_PW, "md5")

    def proxy_config(self, client_mode: str = "require", server_mode: str = "verify-full",
                     auth_mode: str | None = "proxy", **overrides) -> dict:
        config = {
            "client_tls": {"sslmode": client_mode, "cert_file": self.proxy_pair.cert,
                           "key_file": self.proxy_pair.key, "ca_file": self.certs.ca_file},
            "server_tls": {"sslmode": server_mode, "ca_file": self.certs.ca_file},
            "control": {"user": "postgres"},
            "admin": {"users": ["postgres"]},
        }
        if auth_mode:
            config["auth"] = {"mode": auth_mode}
        config.update(overrides)
        return config

    def proxy(self, **kw) -> e2e_common.Proxy:
        return e2e_common.Proxy(upstream_port=self.pg.port, **self.proxy_config(**kw))

    def dsn(self, px, user: str = "postgres", password: str | None = None, dbname: str = "postgres",
            **kw) -> str:
        params = {"sslmode": "verify-full", "sslrootcert": self.certs.ca_file,
                  "gssencmode": "disable", "connect_timeout": 10}
        if password is not None:
            params["password"] = password
        params.update(kw)
        return px.dsn(dbname, user, **params)

    def client_context(self, alpn: list[str] | None = None) -> ssl.SSLContext:
        context = ssl.create_default_context(cafile=self.certs.ca_file)
        if alpn:
            context.set_alpn_protocols(alpn)
        return context

    def login_refusal(self, port: int, user: str, password: str) -> dict:
        """The ErrorResponse fields of a TLS login the proxy on `port` refuses; an AssertionError
        if it lets the login in."""
        with wire.WireClient(port) as c:
            c.request_tls(self.client_context(), "127.0.0.1")
            c.startup(user=user, database="postgres")
            try:
                c.authenticate(password=password)
            except wire.ServerError as refused:
                return refused.fields
        raise AssertionError(f"{user} logged in with password {password!r}")

    def close(self) -> None:
        self.pg.stop()
        self.tmp.cleanup()


def metrics_port() -> int:
    return free_port()
