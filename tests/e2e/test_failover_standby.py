#!/usr/bin/python3
"""A stale primary locator: upstream lists a primary A and its standby B (target_session_attrs
read-write, check_seconds an hour), then a switchover turns A into a standby of B. The proxies
still believe A is the primary. A new session must not be left on A, where every write would get
25006: a backend that reports in_hot_standby=on at login is refused before the client hears
anything from it. Where the client's authentication was not with that backend (trust, or the
proxy's own in auth.mode proxy) the session moves on to B unseen; where it was (a password
exchange relayed to A), the client gets one FATAL 08001 naming A, and its retry reaches B.
With target_session_attrs any nothing changes."""

import re
import unittest
import urllib.request

import e2e_common
import failover_common
import psycopg

from harness.pgcluster import PgCluster, free_port
from harness.wire import ServerError, WireClient

STALE = 3600  # check_seconds: the locator never looks again by itself during this test
SCRAM_PW = "scram-secret"
MD5_PW = "md5-secret"

primary: PgCluster = None  # A: the primary at first, a standby after the switchover
standby: PgCluster = None  # B: the standby at first, the primary after it
proxies = {}
metrics_port = 0


def setUpModule():
    global primary, standby, metrics_port
    primary, standby = failover_common.start_pair(synchronous=False)
    primary.create_user("scram_user", SCRAM_PW, "scram-sha-256")
    primary.create_user("md5_user", MD5_PW, "md5")
    primary.psql("create table writes (who text); grant insert on writes to public")
    a, b = primary.port, standby.port
    metrics_port = free_port()
    common = {"control": {"user": "postgres"}}
    proxies["trust"] = failover_common.FailoverProxy(
        [a, b], check_seconds=STALE, instance="standby-trust",
        metrics={"host": "127.0.0.1", "port": metrics_port}, **common)
    proxies["password"] = failover_common.FailoverProxy(
        [a, b], check_seconds=STALE, instance="standby-password", **common)
    proxies["wire"] = failover_common.FailoverProxy(
        [a, b], check_seconds=STALE, instance="standby-wire", **common)
    proxies["proxy_auth"] = failover_common.FailoverProxy(
        [a, b], check_seconds=STALE, instance="standby-proxy-auth", auth={"mode": "proxy"}, **common)
    proxies["no_primary"] = failover_common.FailoverProxy(
        [a, free_port()], check_seconds=STALE, instance="standby-none", **common)
    proxies["any"] = failover_common.FailoverProxy(
        [a, b], attrs="any", instance="standby-any", **common)
    for name, px in proxies.items():
        if name != "any":
            e2e_common.poll(lambda: f"primary is 127.0.0.1:{a}" in px.log_text(), 10, 0.05,
                            f"proxy {name} to find the primary")
    failover_common.switch_over(primary, standby)


def tearDownModule():
    for px in proxies.values():
        e2e_common.finish(px)
    for pg in (primary, standby):
        if pg is not None:
            pg.stop()


def write_through(px, user="postgres", password=None):
    """Connects through the proxy, writes a row and returns the port of the server it landed on.
    Raises psycopg.Error if the connection or the write fails."""
    kw = {"password": password} if password else {}
    with psycopg.connect(px.dsn(user=user, connect_timeout=10, **kw), autocommit=True) as conn:
        conn.execute("insert into writes values (current_user)")
        return conn.execute("select current_setting('port')::int").fetchone()[0]


def standby_lines(px):
    return [line for line in px.log_text().splitlines() if "in_hot_standby=on" in line]


def metric(name, **labels):
    with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5) as response:
        text = response.read().decode()
    wanted = ",".join(f'{k}="{v}"' for k, v in labels.items())
    m = re.search(rf"^{name}\{{{re.escape(wanted)}\}} (\S+)$", text, re.MULTILINE)
    return float(m.group(1)) if m else None


class StaleLocator(unittest.TestCase):
    def test_trusted_client_lands_on_the_primary(self):
        px = proxies["trust"]
        self.assertEqual(write_through(px), standby.port)
        # One line naming the refused host, and one refusal counted.
        lines = e2e_common.poll(lambda: standby_lines(px), 10, 0.02, "the refusal logged")
        self.assertEqual(len(lines), 1, lines)
        self.assertIn(f"127.0.0.1:{primary.port} is a standby", lines[0])
        self.assertEqual(metric("seedproxy_upstream_errors_total", stage="standby"), 1)
        # The locator was told: it finds the new primary, and the next session goes there first.
        e2e_common.poll(lambda: f"primary is 127.0.0.1:{standby.port}" in px.log_text(), 10, 0.05,
                        "the locator to find the new primary")
        self.assertEqual(write_through(px), standby.port)
        self.assertEqual(len(standby_lines(px)), 1)

    def test_relayed_password_exchange_gets_one_clear_error_then_the_retry_lands(self):
        px = proxies["password"]
        with self.assertRaises(psycopg.OperationalError) as caught:
            write_through(px, "scram_user", SCRAM_PW)
        self.assertIn("seedproxy could not open a read-write session", str(caught.exception))
        self.assertIn(f"127.0.0.1:{primary.port} is a standby (in_hot_standby=on)",
                      str(caught.exception))
        # The session waited for the locator's new answer before telling the client: a retry
        # at once reaches the primary.
        self.assertEqual(write_through(px, "scram_user", SCRAM_PW), standby.port)

    def test_client_hears_nothing_from_the_refused_backend(self):
        px = proxies["wire"]
        with WireClient(px.port) as client:
            client.startup(user="md5_user")
            with self.assertRaises(ServerError) as caught:
                client.authenticate(MD5_PW)
            self.assertEqual(caught.exception.sqlstate, "08001")
            self.assertEqual(caught.exception.fields["S"], "FATAL")
            # No ParameterStatus and no BackendKeyData of the standby reached the client.
            self.assertEqual(client.parameters, {})
            self.assertIsNone(client.backend_pid)
            self.assertEqual(client.expect_eof(), [])
        with WireClient(px.port) as client:
            client.connect(user="md5_user", password=MD5_PW)
            self.assertEqual(client.parameters.get("in_hot_standby"), "off")

    def test_proxy_authentication_lands_on_the_primary(self):
        px = proxies["proxy_auth"]
        self.assertEqual(write_through(px, "scram_user", SCRAM_PW), standby.port)
        self.assertEqual(len(e2e_common.poll(lambda: standby_lines(px), 10, 0.02,
                                             "the refusal logged")), 1)

    def test_no_primary_names_every_host(self):
        px = proxies["no_primary"]
        dead = px.ports[1]
        with WireClient(px.port) as client:
            client.startup(user="postgres")
            with self.assertRaises(ServerError) as caught:
                client.authenticate()
        self.assertEqual(caught.exception.sqlstate, "08001")
        message = caught.exception.fields["M"]
        self.assertIn(f"127.0.0.1:{primary.port} is a standby (in_hot_standby=on)", message)
        self.assertIn(f"127.0.0.1:{dead}: ", message)

    def test_any_still_takes_the_first_host(self):
        with psycopg.connect(proxies["any"].dsn(connect_timeout=10), autocommit=True) as conn:
            self.assertTrue(conn.execute("select pg_is_in_recovery()").fetchone()[0])
            self.assertEqual(conn.execute("select current_setting('port')::int").fetchone()[0],
                             primary.port)


if __name__ == "__main__":
    e2e_common.main()
