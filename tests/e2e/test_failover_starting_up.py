#!/usr/bin/python3
"""A host that answers 57P03 ("the database system is starting up") where the locator still
believes the primary is: with target_session_attrs read-write, a new session is moved to the next
host before the client hears anything, whether PostgreSQL's login is relayed or the proxy logs in
itself (auth.mode proxy). Host A is a forwarder in front of the one PostgreSQL of the test, so the
locator finds a primary there; it then starts refusing every new connection with 57P03, as a
server that restarts does. Host B is the same PostgreSQL, directly."""

import socket
import struct
import threading
import unittest

import e2e_common
import failover_common
import psycopg

from harness.pgcluster import PgCluster, free_port

STALE = 3600  # check_seconds: the locator looks again only when a session reports a bad host

pg: PgCluster = None
forwarder = None
proxies = {}


class Forwarder:
    """Listens on a port; forwards each connection to `target` until refusing is set, then
    answers every new startup with FATAL 57P03."""

    def __init__(self, target: int):
        self.target = target
        self.refusing = False
        self.refused = 0
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        threading.Thread(target=self.accept, daemon=True).start()

    def accept(self):
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            handler = self.refuse if self.refusing else self.forward
            threading.Thread(target=handler, args=(conn,), daemon=True).start()

    def forward(self, conn):
        upstream = socket.create_connection(("127.0.0.1", self.target))
        for a, b in ((conn, upstream), (upstream, conn)):
            threading.Thread(target=self.pump, args=(a, b), daemon=True).start()

    @staticmethod
    def pump(source, sink):
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for s in (source, sink):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def refuse(self, conn):
        with conn:
            while True:  # an SSLRequest gets 'N', then the startup packet
                head = conn.recv(8, socket.MSG_WAITALL)
                if len(head) < 8:
                    return
                length, code = struct.unpack("!II", head)
                conn.recv(length - 8, socket.MSG_WAITALL)
                if code != 80877103:
                    break
                conn.sendall(b"N")
            fields = b"".join(k + v + b"\0" for k, v in (
                (b"S", b"FATAL"), (b"V", b"FATAL"), (b"C", b"57P03"),
                (b"M", b"the database system is starting up"))) + b"\0"
            conn.sendall(b"E" + struct.pack("!I", 4 + len(fields)) + fields)
            self.refused += 1

    def close(self):
        self.listener.close()


def setUpModule():
    global pg, forwarder
    pg = PgCluster().start()
    forwarder = Forwarder(pg.port)
    common = {"control": {"user": "postgres"}, "check_seconds": STALE}
    proxies["relay"] = failover_common.FailoverProxy(
        [forwarder.port, pg.port], instance="starting-relay", **common)
    proxies["proxy_auth"] = failover_common.FailoverProxy(
        [forwarder.port, pg.port], instance="starting-proxy-auth",
        auth={"mode": "proxy", "trust_users": ["postgres"]}, **common)
    for name, px in proxies.items():
        e2e_common.poll(lambda: f"primary is 127.0.0.1:{forwarder.port}" in px.log_text(), 10, 0.05,
                        f"proxy {name} to take the forwarder for the primary")
    forwarder.refusing = True


def tearDownModule():
    for px in proxies.values():
        e2e_common.finish(px)
    if forwarder is not None:
        forwarder.close()
    if pg is not None:
        pg.stop()


class StartingUp(unittest.TestCase):
    def lands(self, px):
        before = forwarder.refused
        with psycopg.connect(px.dsn(user="postgres", connect_timeout=10), autocommit=True) as conn:
            self.assertFalse(conn.execute("select pg_is_in_recovery()").fetchone()[0])
        self.assertGreater(forwarder.refused, before, "the session never tried the refusing host")
        lines = e2e_common.poll(
            lambda: [line for line in px.log_text().splitlines() if "57P03" in line and
                     "trying the next host" in line], 10, 0.02, "the refusal logged")
        self.assertIn(f"127.0.0.1:{forwarder.port}", lines[0])

    def test_a_relayed_login_moves_on_unseen(self):
        self.lands(proxies["relay"])

    def test_the_proxys_own_login_moves_on_unseen(self):
        self.lands(proxies["proxy_auth"])


if __name__ == "__main__":
    e2e_common.main()
