#!/usr/bin/python3
"""Server connection reuse (server_pool): a backend its client left idle is reset and parked, and
the next client with the same user, database and startup parameters gets it; a backend that is not
clean, not healthy, too old or unused too long is closed instead."""

import json
import re
import os
import subprocess
import threading
import time
import unittest
import urllib.request

import e2e_common
import psycopg

from harness import wire
from harness import pgcluster
from harness.pgcluster import PgCluster, free_port

USER = "pool_user"
OTHER_USER = "pool_other"
PASSWORD = "p00l-Secret!"
RESET = "DISCARD ALL"
# After the reset query the proxy sends a marker query whose row proves every earlier answer was
# read; a parked backend shows either as its last statement.
MARKER = re.compile(r"SELECT 'seedproxy reset [0-9]+-[0-9]+'")
PARK_TIMEOUT = 10.0

SEEDS = [{
    "database": "shop",
    "entity": "public.item",
    "attribute": "price_with_tax",
    "type": "numeric",
    "expression": "price * 1.2",
    # Only the read on a reused backend matters here; materialization would change the backend's
    # catalog under the test.
    "materialize": {"policy": "never"},
}]
SEED_READ = "SELECT id, price_with_tax FROM item ORDER BY id"
SEED_ROWS = [(1, 12), (2, 24)]

pg: PgCluster = None
px = None
watch = None


def is_parked(row) -> bool:
    """Whether a (state, query) row of pg_stat_activity is a parked backend's."""
    return row is not None and row[0] == "idle" and (row[1] == RESET or bool(MARKER.fullmatch(row[1])))


class Watcher:
    """A direct connection to PostgreSQL that reads backends in pg_stat_activity: the only way a
    test can see a backend parked (idle, its last statement the reset query) or closed."""

    def __init__(self, cluster: PgCluster):
        self.conn = cluster.connect()

    def close(self) -> None:
        self.conn.close()

    def activity(self, pid: int):
        """(state, query) of the backend, or None once it has gone."""
        return self.conn.execute("SELECT state, query FROM pg_stat_activity WHERE pid = %s",
                                 (pid,)).fetchone()

    def parked(self, pid: int) -> bool:
        return is_parked(self.activity(pid))

    def wait_for(self, pid: int, wanted, what: str, timeout: float = PARK_TIMEOUT) -> None:
        """wanted: the (state, query) row, None for gone, or a predicate on the row."""
        seen = []

        def reached():
            seen[:] = [self.activity(pid)]
            return wanted(seen[0]) if callable(wanted) else seen[0] == wanted
        try:
            e2e_common.poll(reached, timeout, what=f"backend {pid} {what}")
        except AssertionError as e:
            raise AssertionError(f"{e}; pg_stat_activity last showed (state, query) = {seen[0]}") from None

    def wait_parked(self, pid: int) -> None:
        self.wait_for(pid, is_parked, "to be parked")

    def wait_gone(self, pid: int, timeout: float = PARK_TIMEOUT) -> None:
        self.wait_for(pid, None, "to be closed", timeout)

    def run(self, sql: str, params=None):
        return self.conn.execute(sql, params).fetchone()


def create_pool_user(cluster: PgCluster) -> None:
    cluster.create_user(USER, PASSWORD, "scram-sha-256")


def pool_config(**server_pool) -> dict:
    """The proxy checks passwords itself (server_pool requires auth.mode proxy). One I/O thread:
    parked backends belong to a thread, so with one every client can find them."""
    return {"auth": {"mode": "proxy"}, "control": {"user": "postgres"}, "runtime": {"threads": 1},
            "server_pool": {"enabled": True, **server_pool}}


def pool_proxy(cluster: PgCluster, **server_pool):
    return e2e_common.Proxy(upstream_port=cluster.port, **pool_config(**server_pool))


def restart(cluster: PgCluster) -> None:
    """pg_ctl restart: every backend ends (FATAL 57P01 first), the port stays."""
    pgcluster._run_pg([os.path.join(pgcluster.PG_BIN, "pg_ctl"), "restart", "-w", "-m", "fast",
                       "-D", cluster.data_dir, "-l", cluster.log_file])
    cluster.wait_ready()


def dsn(proxy, app: str, password: str = PASSWORD, user: str = USER, **kw) -> str:
    kw.setdefault("dbname", "postgres")
    return proxy.dsn(user=user, password=password, application_name=app, **kw)


def connect(proxy, app: str, **kw) -> psycopg.Connection:
    # prepare_threshold=None: psycopg's own prepared statements would blur pg_prepared_statements.
    return psycopg.connect(dsn(proxy, app, **kw), autocommit=True, prepare_threshold=None)


def backend_pid(conn) -> int:
    return conn.execute("SELECT pg_backend_pid()").fetchone()[0]


def park(proxy, app: str, **kw) -> int:
    """Logs in, notes the backend, leaves cleanly (Terminate) and waits until it is parked."""
    with connect(proxy, app, **kw) as conn:
        pid = backend_pid(conn)
    watch.wait_parked(pid)
    return pid


def setUpModule():
    global pg, px, watch
    if e2e_common.direct_mode():
        raise unittest.SkipTest("server_pool is the proxy's own")
    pg = PgCluster().start()
    create_pool_user(pg)
    pg.create_user(OTHER_USER, PASSWORD, "scram-sha-256")
    pg.psql(f"CREATE ROLE pool_reader NOLOGIN; GRANT pool_reader TO {USER}")
    pg.psql("CREATE DATABASE shop")
    with pg.connect("shop") as conn:
        conn.execute("CREATE TABLE item (id int PRIMARY KEY, price numeric NOT NULL)")
        conn.execute("INSERT INTO item VALUES (1, 10), (2, 20)")
        conn.execute(f"GRANT SELECT ON item TO {USER}")
    watch = Watcher(pg)
    px = e2e_common.Proxy(upstream_port=pg.port, seeds=SEEDS, **pool_config())
    e2e_common.poll(lambda: seed_readable(px), 20, 0.1, "the seed to be readable through the proxy")


def seed_readable(proxy) -> bool:
    try:
        with connect(proxy, "seed_warmup", dbname="shop") as conn:
            return conn.execute(SEED_READ).fetchall() == SEED_ROWS
    except psycopg.Error:
        return False


def tearDownModule():
    if watch is not None:
        watch.close()
    e2e_common.stop(px, pg)


class Reuse(unittest.TestCase):
    def test_a_parked_backend_is_reset_and_handed_to_the_next_client(self):
        app = "reuse_reset"
        with connect(px, app) as a:
            pid = backend_pid(a)
            self.assertEqual(a.info.backend_pid, pid, "BackendKeyData names another backend")
            login = {k: a.info.parameter_status(k) for k in ("application_name", "TimeZone")}
            self.leave_state_behind(a)
        watch.wait_parked(pid)
        with connect(px, app) as b:
            self.assertEqual(backend_pid(b), pid, "the parked backend was not handed out")
            self.assertEqual(b.info.backend_pid, pid, "BackendKeyData not replayed")
            self.assertEqual(login["application_name"], app)
            for name, value in login.items():
                self.assertEqual(b.info.parameter_status(name), value, f"ParameterStatus {name}")
            self.assert_reset(b)

    def leave_state_behind(self, a) -> None:
        """Session state DISCARD ALL must undo, each checked so the checks on B can fail."""
        for sql in ("CREATE TEMP TABLE pool_tmp (x int)", "SET work_mem = '7MB'",
                    "PREPARE p AS SELECT 1", "LISTEN chan", "SELECT pg_advisory_lock(42)",
                    "SET ROLE pool_reader", "SET application_name = 'renamed'",
                    "SET TimeZone = 'Asia/Tokyo'"):
            a.execute(sql)
        self.assertIsNotNone(a.execute("SELECT to_regclass('pg_temp.pool_tmp')").fetchone()[0])
        self.assertEqual(a.execute("SHOW work_mem").fetchone(), ("7MB",))
        self.assertEqual(a.execute("SELECT count(*) FROM pg_prepared_statements").fetchone(), (1,))
        self.assertEqual(a.execute("SELECT pg_listening_channels()").fetchall(), [("chan",)])
        self.assertEqual(watch.run("SELECT pg_try_advisory_lock(42)"), (False,))
        self.assertEqual(a.execute("SELECT current_user").fetchone(), ("pool_reader",))
        # PostgreSQL reported the new values; the reset reports the old ones again, to the proxy.
        self.assertEqual(a.info.parameter_status("application_name"), "renamed")
        self.assertEqual(a.info.parameter_status("TimeZone"), "Asia/Tokyo")

    def assert_reset(self, b) -> None:
        self.assertIsNone(b.execute("SELECT to_regclass('pg_temp.pool_tmp')").fetchone()[0],
                          "temp table survived the reset")
        self.assertEqual(b.execute("SHOW work_mem").fetchone(), watch.run("SHOW work_mem"))
        self.assertEqual(b.execute("SELECT count(*) FROM pg_prepared_statements").fetchone(), (0,))
        self.assertEqual(b.execute("SELECT pg_listening_channels()").fetchall(), [])
        self.assertEqual(watch.run("SELECT pg_try_advisory_lock(42)"), (True,),
                         "advisory lock 42 still held by the reused backend")
        watch.run("SELECT pg_advisory_unlock(42)")
        self.assertEqual(b.execute("SELECT current_user").fetchone(), (USER,))
        self.assertEqual(b.execute("SHOW TimeZone").fetchone(), watch.run("SHOW TimeZone"))
        self.assertEqual(b.execute("SHOW application_name").fetchone(), ("reuse_reset",))
        # The name A prepared is free again.
        b.execute("PREPARE p AS SELECT 2")
        self.assertEqual(b.execute("EXECUTE p").fetchone(), (2,))

    def test_a_client_that_only_closes_its_socket_leaves_its_backend_parked(self):
        """No Terminate: the socket closes. B sees the login messages A saw, byte for byte."""
        app = "reuse_wire"
        with wire.WireClient(px.port) as a:
            a.connect(user=USER, password=PASSWORD, application_name=app)
            pid = int(a.simple_query("SELECT pg_backend_pid()")[0][0][0])
            a_key, a_params = (a.backend_pid, a.backend_secret), dict(a.parameters)
        watch.wait_parked(pid)
        with wire.WireClient(px.port) as b:
            messages = b.connect(user=USER, password=PASSWORD, application_name=app)
            types = "".join(t for t, _ in messages)
            after_ok = types[types.rindex("R") + 1:]
            self.assertRegex(after_ok, r"^S+KZ$", "messages after AuthenticationOk")
            self.assertEqual(messages[-1][1], b"I")
            self.assertEqual((b.backend_pid, b.backend_secret), a_key)
            self.assertEqual(b.parameters, a_params)
            self.assertEqual(b.simple_query("SELECT pg_backend_pid()")[0], [[str(pid)]])

    def test_a_wrong_password_does_not_get_the_parked_backend(self):
        app = "reuse_wrong_password"
        pid = park(px, app)
        with self.assertRaises(psycopg.OperationalError) as caught:
            psycopg.connect(dsn(px, app, password="wrong")).close()
        self.assertIn("password authentication failed", str(caught.exception))
        self.assertTrue(watch.parked(pid), "the refused login touched it")
        with connect(px, app) as b:
            self.assertEqual(backend_pid(b), pid)

    def test_other_startup_parameters_get_another_backend(self):
        app = "reuse_key"
        pid = park(px, app)
        for other_app, other in (("reuse_key_other", {}), (app, {"options": "-c work_mem=8MB"}),
                                 (app, {"dbname": "shop"}), (app, {"user": OTHER_USER})):
            with self.subTest(application_name=other_app, **other):
                with connect(px, other_app, **other) as conn:
                    self.assertNotEqual(backend_pid(conn), pid)
                self.assertTrue(watch.parked(pid), "no longer parked")
        with connect(px, app) as same:
            self.assertEqual(backend_pid(same), pid)

    def test_startup_options_outlast_the_reset(self):
        """DISCARD ALL resets to the session's defaults, which include the client's options."""
        app, options = "reuse_options", "-c work_mem=8MB"
        with connect(px, app, options=options) as a:
            pid = backend_pid(a)
            a.execute("SET work_mem = '9MB'")
        watch.wait_parked(pid)
        with connect(px, app, options=options) as b:
            self.assertEqual(backend_pid(b), pid)
            self.assertEqual(b.execute("SHOW work_mem").fetchone(), ("8MB",))

    def test_cancel_reaches_a_reused_backend(self):
        app = "reuse_cancel"
        pid = park(px, app)
        with connect(px, app) as conn:
            self.assertEqual(backend_pid(conn), pid)
            caught = []

            def sleeper():
                try:
                    conn.execute("SELECT pg_sleep(5)")
                except psycopg.Error as e:
                    caught.append(e)
            thread = threading.Thread(target=sleeper)
            started = time.monotonic()
            thread.start()
            watch.wait_for(pid, ("active", "SELECT pg_sleep(5)"), "to run pg_sleep")
            conn.cancel()
            thread.join(10)
            self.assertFalse(thread.is_alive(), "pg_sleep(5) still running 10 s after the cancel")
            self.assertLess(time.monotonic() - started, 4, "the cancel did not stop pg_sleep(5)")
            self.assertEqual(len(caught), 1)
            self.assertIsInstance(caught[0], psycopg.errors.QueryCanceled)
            self.assertEqual(conn.execute("SELECT 1").fetchone(), (1,))

    def test_a_seed_reads_on_a_reused_backend(self):
        app = "reuse_seed"
        with connect(px, app, dbname="shop") as a:
            pid = backend_pid(a)
            self.assertEqual(a.execute(SEED_READ).fetchall(), SEED_ROWS)
        watch.wait_parked(pid)
        with connect(px, app, dbname="shop") as b:
            self.assertEqual(backend_pid(b), pid)
            self.assertEqual(b.execute(SEED_READ).fetchall(), SEED_ROWS)
            self.assertEqual(b.execute("SELECT price_with_tax FROM item WHERE id = %s", (2,))
                             .fetchone(), (24,))


def unexpected_eofs() -> int:
    """How often the shared cluster's log says a client connection ended without Terminate."""
    with open(pg.log_file, errors="replace") as f:
        return f.read().count("unexpected EOF on client connection")


class NotParked(unittest.TestCase):
    """Backends the proxy must close rather than park: pg_stat_activity loses them and the next
    client with the same parameters gets another one."""

    def assert_closed_and_not_reused(self, proxy, app: str, pid: int) -> None:
        watch.wait_gone(pid)
        with connect(proxy, app) as b:
            self.assertNotEqual(backend_pid(b), pid)

    def test_a_client_leaving_inside_a_transaction(self):
        """The client's Terminate, kept back while the backend might be parked, is sent on when
        it is not: PostgreSQL logs no unexpected end of file for the backend the proxy closes."""
        eofs = unexpected_eofs()
        for name, statement in (("open", "SELECT 1"), ("failed", "SELECT 1/0")):
            with self.subTest(transaction=name):
                app = f"not_parked_{name}_transaction"
                conn = psycopg.connect(dsn(px, app))  # no autocommit: psycopg sends BEGIN first
                try:
                    pid = backend_pid(conn)
                    conn.execute(statement)
                except psycopg.errors.DivisionByZero:
                    pass
                finally:
                    status = conn.info.transaction_status
                    conn.close()  # Terminate, inside the transaction
                self.assertIn(status, (psycopg.pq.TransactionStatus.INTRANS,
                                       psycopg.pq.TransactionStatus.INERROR))
                self.assert_closed_and_not_reused(px, app, pid)
        self.assertEqual(unexpected_eofs(), eofs)

    def test_a_client_leaving_while_a_statement_is_under_way(self):
        """The client sent something after its last ReadyForQuery: a Query whose answer it never
        reads (then just closes), or a Parse with no Sync (then Terminate). The query outlasts the
        proxy's end watch (a FIN that comes with the last request is seen within half a second),
        so the proxy sees the client gone before the answer, whatever the timing."""
        for name, leave in (("query", [wire.query("SELECT pg_sleep(2)")]),
                            ("parse", [wire.parse("SELECT 1"), wire.terminate()])):
            with self.subTest(sent=name):
                app = f"not_parked_busy_{name}"
                with wire.WireClient(px.port) as a:
                    a.connect(user=USER, password=PASSWORD, application_name=app)
                    pid = int(a.simple_query("SELECT pg_backend_pid()")[0][0][0])
                    a.send(b"".join(leave))
                self.assert_closed_and_not_reused(px, app, pid)

    def test_an_unsynced_write_is_not_committed_by_the_reset(self):
        """A client that sends Parse/Bind/Execute of an INSERT and leaves without Sync: PostgreSQL
        rolls the implicit transaction back when its client goes. A reset query run in that
        transaction would commit it instead (DISCARD ALL alone is refused in a pipeline)."""
        pg.psql(f"CREATE TABLE IF NOT EXISTS unsynced (x int); GRANT INSERT ON unsynced TO {USER}")
        for reset in (RESET, "DEALLOCATE ALL", "RESET ALL"):
            with self.subTest(reset_query=reset), pool_proxy(pg, reset_query=reset) as proxy:
                app = "not_parked_unsynced"
                with wire.WireClient(proxy.port) as a:
                    a.connect(user=USER, password=PASSWORD, application_name=app)
                    pid = int(a.simple_query("SELECT pg_backend_pid()")[0][0][0])
                    a.send(wire.parse("INSERT INTO unsynced VALUES (1)") + wire.bind()
                           + wire.execute() + wire.terminate())
                # Settled first (closed, or parked after the reset), so the count is final.
                watch.wait_for(pid, lambda row: row is None or is_parked(row), "to be closed or parked")
                self.assertEqual(watch.run("SELECT count(*) FROM unsynced"), (0,),
                                 "the write the client never synced was committed")
                self.assert_closed_and_not_reused(proxy, app, pid)
            pg.psql("TRUNCATE unsynced")

    def test_a_failing_reset_query(self):
        with pool_proxy(pg, reset_query="SELECT 1/0") as proxy:
            with connect(proxy, "not_parked_reset_fails") as a:
                pid = backend_pid(a)
            self.assert_closed_and_not_reused(proxy, "not_parked_reset_fails", pid)

    def test_a_full_pool(self):
        """max_idle = 1: the second backend left idle finds the thread's pool full."""
        with pool_proxy(pg, max_idle=1) as proxy:
            first = park(proxy, "not_parked_full_first")
            with connect(proxy, "not_parked_full_second") as a:
                pid = backend_pid(a)
            self.assert_closed_and_not_reused(proxy, "not_parked_full_second", pid)
            self.assertTrue(watch.parked(first), "the first one was dropped")

    def test_a_backend_past_its_lifetime(self):
        with pool_proxy(pg, lifetime_seconds=1) as proxy:
            with connect(proxy, "not_parked_old") as a:
                pid = backend_pid(a)
                # Ageing is the condition itself, read from PostgreSQL's clock; not a sleep.
                e2e_common.poll(lambda: watch.run(
                    "SELECT clock_timestamp() - backend_start > interval '1.5 s' "
                    "FROM pg_stat_activity WHERE pid = %s", (pid,))[0], 10, 0.05,
                    "the backend to pass lifetime_seconds")
            self.assert_closed_and_not_reused(proxy, "not_parked_old", pid)


class ParkedBackendEnds(unittest.TestCase):
    def test_a_terminated_parked_backend_is_never_handed_out(self):
        app = "parked_terminated"
        pid = park(px, app)
        self.assertEqual(watch.run("SELECT pg_terminate_backend(%s)", (pid,)), (True,))
        watch.wait_gone(pid)
        with connect(px, app) as b:  # no error: the dead one is discarded, a fresh one opened
            fresh = backend_pid(b)
            self.assertNotEqual(fresh, pid)
            self.assertEqual(b.execute("SELECT current_user").fetchone(), (USER,))
        watch.wait_parked(fresh)  # and the pool goes on

    def test_idle_timeout_closes_a_parked_backend(self):
        with pool_proxy(pg, idle_timeout_seconds=1) as proxy:
            pid = park(proxy, "parked_idle_timeout")
            watch.wait_gone(pid, timeout=6)

    def test_a_postgresql_restart_empties_the_pool(self):
        """A cluster of its own: a restart would disturb the other tests' proxy. auth.query's
        connection goes with the restart too; the first login after it connects again."""
        with PgCluster() as cluster:
            create_pool_user(cluster)
            with e2e_common.Proxy(upstream_port=cluster.port, **pool_config()) as proxy:
                own = Watcher(cluster)
                with connect(proxy, "parked_restart") as a:
                    pid = backend_pid(a)
                own.wait_parked(pid)
                own.close()
                restart(cluster)
                with connect(proxy, "parked_restart") as b:
                    self.assertNotEqual(backend_pid(b), pid)
                    self.assertEqual(b.execute("SELECT 1").fetchone(), (1,))


class Observed(unittest.TestCase):
    """What is parked shows in SHOW POOLS and the metrics, and KILL lets it go: a parked backend
    is a connection the proxy holds to the database."""

    def test_show_pools_metrics_and_kill(self):
        metrics_port = free_port()
        config = pool_config()
        config.update(admin={"users": [USER]}, metrics={"host": "127.0.0.1", "port": metrics_port})
        with e2e_common.Proxy(upstream_port=pg.port, **config) as proxy:
            def gauge(name: str) -> float:
                url = f"http://127.0.0.1:{metrics_port}/metrics"
                with urllib.request.urlopen(url, timeout=5) as response:
                    body = response.read().decode()
                found = re.search(rf"^{name} ([0-9.e+]+)$", body, re.M)
                self.assertIsNotNone(found, f"{name} missing from /metrics")
                return float(found.group(1))

            def console(sql: str):
                with psycopg.connect(proxy.dsn(user=USER, password=PASSWORD, dbname="seedproxy"),
                                     autocommit=True) as admin:
                    cursor = admin.execute(sql)
                    return cursor.fetchall() if cursor.description else None

            first = park(proxy, "observed")
            pools = console("SHOW POOLS")
            self.assertEqual([row[:4] for row in pools], [("postgres", USER, 1, 0)])
            self.assertGreaterEqual(pools[0][4], 0.0)
            self.assertEqual((gauge("seedproxy_server_pool_parked"),
                              gauge("seedproxy_server_pool_parked_total"),
                              gauge("seedproxy_server_pool_reused_total")), (1, 1, 0))
            self.assertEqual(park(proxy, "observed"), first)  # reused, then parked again
            self.assertEqual((gauge("seedproxy_server_pool_parked"),
                              gauge("seedproxy_server_pool_parked_total"),
                              gauge("seedproxy_server_pool_reused_total")), (1, 2, 1))
            console("KILL postgres")
            watch.wait_gone(first)
            self.assertEqual(console("SHOW POOLS"), [])
            self.assertEqual(gauge("seedproxy_server_pool_parked"), 0)


class Refused(unittest.TestCase):
    """server_pool needs the proxy's own authentication (it must know who the next client is
    before handing it a backend) and one upstream host."""

    def refusal(self, **edits) -> str:
        proxy = e2e_common.Proxy(upstream_port=pg.port, start=False)
        try:
            config = proxy.make_config(free_port())
            config["server_pool"] = {"enabled": True}
            config.update(edits)
            path = proxy.config_path
            with open(path, "w") as f:
                json.dump(config, f)
            done = subprocess.run([proxy.binary, "--config", path], capture_output=True,
                                  text=True, timeout=20)
        finally:
            proxy.cleanup()
        self.assertNotEqual(done.returncode, 0, done.stderr)
        return done.stdout + done.stderr

    def test_relayed_authentication(self):
        for auth in ({"auth": {"mode": "relay"}}, {}):
            with self.subTest(**auth):
                output = self.refusal(**auth)
                self.assertIn("server_pool.enabled", output)
                self.assertIn("auth.mode", output)

    def test_several_upstream_hosts(self):
        output = self.refusal(auth={"mode": "proxy"}, upstream={
            "hosts": [{"host": "127.0.0.1", "port": pg.port}, {"host": "127.0.0.1", "port": free_port()}]})
        self.assertIn("server_pool", output)


if __name__ == "__main__":
    e2e_common.main()
