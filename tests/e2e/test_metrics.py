#!/usr/bin/python3
"""The metrics port of a running seedproxy: /metrics counters move by exactly what the clients did
(connections, statements by kind, latency histogram, rewrite cache, reads of a virtual attribute,
protocol errors), /health follows PostgreSQL, /status.json lists the seed, / is the HTML page."""

import re
import socket
import struct
import unittest
import urllib.error
import urllib.request

import e2e_common
import psycopg
import psycopg2

from harness import wire
from harness.pgcluster import PgCluster, free_port

DB = "bank"
MAX_CLIENTS = 4
READ = {"database": DB, "entity": "public.account", "attribute": "risk_score"}
SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$')
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')

pg: PgCluster = None
px = None
metrics_port = 0


def setUpModule():
    global pg, px, metrics_port
    if e2e_common.direct_mode():
        raise unittest.SkipTest("the metrics port is the proxy's own")
    pg = PgCluster().start()
    with pg.connect() as conn:
        conn.execute(f"CREATE DATABASE {DB}")
    with pg.connect(DB) as conn:
        conn.execute("CREATE TABLE account (id int PRIMARY KEY, balance numeric NOT NULL)")
        conn.execute("INSERT INTO account VALUES (1, 10), (2, 20), (3, 30)")
        conn.execute("CREATE TABLE copied (x int)")
    metrics_port = free_port()
    px = e2e_common.Proxy(
        upstream_port=pg.port, instance="metrics-test", control={"user": "postgres"},
        metrics={"host": "127.0.0.1", "port": metrics_port},
        limits={"max_clients": MAX_CLIENTS},
        seeds=[dict(READ, type="numeric", expression="balance * 2")])
    e2e_common.wait_until_readable(px, DB, "SELECT risk_score FROM account WHERE id = 1",
                                   "the seed to be readable")


def tearDownModule():
    e2e_common.stop(px, pg)


def get(path: str):
    """(status, content type, body) of GET http://127.0.0.1:<metrics port><path>."""
    url = f"http://127.0.0.1:{metrics_port}{path}"
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.headers.get("Content-Type", ""), response.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.headers.get("Content-Type", ""), e.read().decode()


def scrape() -> dict:
    """Every sample of /metrics as {(name, frozenset(labels)): value}."""
    status, content_type, body = get("/metrics")
    assert status == 200, (status, body)
    assert content_type.startswith("text/plain; version=0.0.4"), content_type
    samples = {}
    for line in body.splitlines():
        if not line or line.startswith("#"):
            continue
        match = SAMPLE.match(line)
        assert match, f"unparseable exposition line: {line!r}"
        name, labels, value = match.groups()
        samples[(name, frozenset(LABEL.findall(labels or "")))] = float(value)
    return samples


def value(samples: dict, name: str, **labels) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


class Metrics(unittest.TestCase):
    def delta(self, before, after, name, **labels) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    def test_1_counters_move_by_what_the_clients_did(self):
        # The set-up's clients (and the harness's probe of the port) leave the gauge a moment
        # after they close: start from none open.
        def settled():
            samples = scrape()
            return samples if value(samples, "seedproxy_client_connections") == 0 else None
        before = e2e_common.poll(settled, 10, 0.02, "the set-up's client sessions to end")
        # Simple protocol (psycopg2 sends one Query per execute): three texts of the set-up's
        # shape with other keys (three rewrite cache hits: the shape cache splices the new
        # constant into the set-up's template), then one Query holding two statements that read
        # the attribute (one of them twice: still one read per statement), then a statement of
        # the seeded table that reads no seed, then one the rewriter never looks at.
        simple = psycopg2.connect(px.dsn(DB))
        simple.autocommit = True
        with simple.cursor() as cur:
            for key in (2, 3, 2):
                cur.execute(f"SELECT risk_score FROM account WHERE id = {key}")
                self.assertEqual(cur.fetchone()[0], 20 * key)
            cur.execute("SELECT risk_score FROM account WHERE id = 1; "
                        "SELECT risk_score, risk_score + 1 FROM account WHERE id = 3")
            self.assertEqual(cur.fetchone(), (60, 61))
            cur.execute("SELECT balance FROM account WHERE id = 1")
            cur.execute("SELECT 1")
        # Extended protocol, unnamed statement (Parse/Bind/Describe/Execute/Sync each time): one
        # miss, three hits, four reads.
        extended = psycopg.connect(px.dsn(DB), autocommit=True)
        for i in range(4):
            row = extended.execute("SELECT risk_score FROM account WHERE id = %s", (1 + i % 3,),
                                   prepare=False).fetchone()
            self.assertEqual(row[0], 20 * (1 + i % 3))
        during = scrape()
        simple.close()
        extended.close()

        self.assertEqual(self.delta(before, during, "seedproxy_client_connections_total"), 2)
        self.assertEqual(self.delta(before, during, "seedproxy_client_connections"), 2)
        self.assertEqual(self.delta(before, during, "seedproxy_upstream_connect_seconds_count"), 2)
        self.assertEqual(self.delta(before, during, "seedproxy_statements_total",
                                    kind="simple_query"), 6)
        self.assertEqual(self.delta(before, during, "seedproxy_statements_total",
                                    kind="extended_sync"), 4)
        self.assertEqual(self.delta(before, during, "seedproxy_statements_total",
                                    kind="function_call"), 0)
        # Every ReadyForQuery has reached the proxy before the client saw its result.
        self.assertEqual(self.delta(before, during, "seedproxy_statement_duration_seconds_count",
                                    kind="simple_query"), 6)
        self.assertEqual(self.delta(before, during, "seedproxy_statement_duration_seconds_count",
                                    kind="extended_sync"), 4)
        self.assertGreater(self.delta(before, during, "seedproxy_statement_duration_seconds_sum",
                                      kind="simple_query"), 0)
        # Misses: the two-statement text, the balance text, the extended text.
        self.assertEqual(self.delta(before, during, "seedproxy_rewrite_cache_misses_total"), 3)
        self.assertEqual(self.delta(before, during, "seedproxy_rewrite_cache_hits_total"), 6)
        self.assertEqual(self.delta(before, during, "seedproxy_rewrite_duration_seconds_count"), 9)
        self.assertEqual(self.delta(before, during, "seedproxy_attribute_reads_total", **READ),
                         3 + 2 + 4)

        # Closed sessions leave the gauge once the proxy has noticed.
        baseline = value(before, "seedproxy_client_connections")
        e2e_common.poll(lambda: value(scrape(), "seedproxy_client_connections") == baseline, 10,
                        what="seedproxy_client_connections back to its value before the test")

    def test_2_refused_clients_and_protocol_errors(self):
        before = scrape()
        held = [psycopg.connect(px.dsn(DB), autocommit=True) for _ in range(MAX_CLIENTS)]
        try:
            for sslmode in ("disable", "prefer"):
                # With prefer, libpq sends an SSLRequest first; it is answered N before the
                # refusal, so the real reason is shown (issue 14).
                with self.assertRaises(psycopg.OperationalError) as cm:
                    psycopg.connect(px.dsn(DB, sslmode=sslmode), connect_timeout=10)
                self.assertIn("sorry, too many clients already", str(cm.exception))
                self.assertNotIn("SSL", str(cm.exception))
        finally:
            for conn in held:
                conn.close()
        e2e_common.poll(lambda: value(scrape(), "seedproxy_client_connections") ==
                        value(before, "seedproxy_client_connections"), 10,
                        what="the held connections to close")
        with wire.WireClient(px.port) as c:
            c.connect()
            c.send(b"Q" + struct.pack("!I", 3))
            fields = wire.parse_error(c.expect_eof()[-1][1])
            self.assertEqual(fields.get("C"), "08P01", fields)
        after = e2e_common.poll(
            lambda: (s := scrape()) and
            self.delta(before, s, "seedproxy_protocol_errors_total", peer="client") >= 1 and s,
            10, what="the protocol error to be counted")
        self.assertEqual(self.delta(before, after, "seedproxy_client_connections_refused_total"), 2)
        self.assertEqual(self.delta(before, after, "seedproxy_client_connections_total"),
                         MAX_CLIENTS + 1)
        self.assertEqual(self.delta(before, after, "seedproxy_protocol_errors_total", peer="client"),
                         1)
        self.assertEqual(self.delta(before, after, "seedproxy_protocol_errors_total", peer="server"),
                         0)

    def test_3_seed_phase_and_process_metrics(self):
        samples = scrape()
        self.assertEqual(value(samples, "seedproxy_seed_phase", phase="virtual", **READ), 1)
        self.assertEqual(value(samples, "seedproxy_seed_phase", phase="materialized", **READ), 0)
        self.assertGreater(value(samples, "process_resident_memory_bytes"), 1 << 20)
        self.assertGreater(value(samples, "process_open_fds"), 3)
        self.assertGreater(value(samples, "process_cpu_seconds_total"), 0)
        self.assertEqual(value(samples, "seedproxy_upstream_errors_total", stage="connect"), 0)

    def test_4_status_document_and_page(self):
        import json
        status, content_type, body = get("/status.json")
        self.assertEqual(status, 200)
        self.assertTrue(content_type.startswith("application/json"), content_type)
        document = json.loads(body)
        self.assertEqual(document["instance"], "metrics-test")
        seeds = [(s["database"], s["entity"], s["attribute"], s["phase"]) for s in document["seeds"]]
        self.assertIn((DB, "public.account", "risk_score", "virtual"), seeds)
        self.assertGreaterEqual(document["statements"]["simple_query"], 6)
        status, content_type, body = get("/")
        self.assertEqual(status, 200)
        self.assertTrue(content_type.startswith("text/html"), content_type)
        self.assertIn("<html", body.lower())

    def test_5_copy_in_through_the_extended_protocol_keeps_latency_matched(self):
        # libpq's way: Parse/Bind/Execute(COPY ... FROM STDIN)/Sync, the data, CopyDone, Sync.
        # PostgreSQL ignores the first Sync (it arrives in copy-in mode) and answers the second:
        # two Syncs, one ReadyForQuery; the Query after it must be matched to its own.
        before = scrape()
        with wire.WireClient(px.port) as c:
            c.connect(database=DB)
            c.send(wire.parse("COPY copied FROM STDIN") + wire.bind() + wire.execute() + wire.sync())
            c.read_until("G")
            c.send(wire.message("d", b"1\n2\n") + wire.message("c") + wire.sync())
            self.assertIn("COPY 2", [wire.command_tag(b) for t, b in c.read_until("Z") if t == "C"])
            rows, _, _ = c.simple_query("SELECT count(*) FROM copied")
            self.assertEqual(rows, [["2"]])
        after = scrape()
        self.assertEqual(self.delta(before, after, "seedproxy_statements_total",
                                    kind="extended_sync"), 2)
        self.assertEqual(self.delta(before, after, "seedproxy_statement_duration_seconds_count",
                                    kind="extended_sync"), 1)
        self.assertEqual(self.delta(before, after, "seedproxy_statement_duration_seconds_count",
                                    kind="simple_query"), 1)

    def test_6_dashboard_and_alert_rules_use_only_exported_names(self):
        import json
        import os

        import yaml
        docs = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "docs")
        status, _, body = get("/metrics")
        self.assertEqual(status, 200)
        exported = set()
        for line in body.splitlines():
            if line.startswith("# TYPE "):
                name, kind = line.split()[2:4]
                exported.add(name)
                if kind == "histogram":
                    exported.update(name + suffix for suffix in ("_bucket", "_sum", "_count"))
            elif line and not line.startswith("#"):
                exported.add(SAMPLE.match(line).group(1))
        # Per-seed progress gauges exist only while a materialization has progress to report.
        only_while_materializing = {"seedproxy_materialization_rows_done",
                                    "seedproxy_materialization_rows_total",
                                    "seedproxy_materialization_rows_per_second"}
        with open(os.path.join(docs, "metrics.md")) as f:
            metrics_doc = f.read()
        for name in only_while_materializing:
            self.assertIn(name, metrics_doc)
        metric_name = re.compile(r"\b((?:seedproxy|process)_[a-z0-9_]+)")

        def exprs(node):
            if isinstance(node, dict):
                for key, item in node.items():
                    if key == "expr" and isinstance(item, str):
                        yield item
                    else:
                        yield from exprs(item)
            elif isinstance(node, list):
                for item in node:
                    yield from exprs(item)

        with open(os.path.join(docs, "grafana-dashboard.json")) as f:
            dashboard = json.load(f)
        with open(os.path.join(docs, "prometheus-alerts.yml")) as f:
            alerts = yaml.safe_load(f)
        self.assertTrue(alerts["groups"][0]["rules"], "no alert rules")
        for source, document in (("grafana-dashboard.json", dashboard), ("prometheus-alerts.yml", alerts)):
            expressions = list(exprs(document))
            self.assertTrue(expressions, f"{source} has no expressions")
            names = {n for e in expressions for n in metric_name.findall(e)}
            self.assertTrue(names, f"{source} names no metric")
            unknown = names - exported - only_while_materializing
            self.assertFalse(unknown, f"{source} uses names the binary does not export: {sorted(unknown)}")

    def test_7_refusal_log_lines_are_rate_limited(self):
        # Issue 14: 2,000 refusals wrote 2,101 log lines. Now at most 10 per 10 s, and a later
        # line says how many were left out.
        def refusal_lines():
            return [line for line in px.log_text().splitlines()
                    if "refused a client: limits.max_clients" in line]
        held = [psycopg.connect(px.dsn(DB), autocommit=True) for _ in range(MAX_CLIENTS)]
        try:
            counted = value(scrape(), "seedproxy_client_connections_refused_total")
            before = len(refusal_lines())
            for _ in range(300):
                socket.create_connection(("127.0.0.1", px.port)).close()
            e2e_common.poll(lambda: value(scrape(), "seedproxy_client_connections_refused_total")
                            >= counted + 300, 20, what="300 refusals counted")
            self.assertLess(len(refusal_lines()) - before, 100, "refusals are not rate-limited")

            def summary():
                socket.create_connection(("127.0.0.1", px.port)).close()
                return any("similar lines suppressed)" in line for line in refusal_lines())
            e2e_common.poll(summary, 30, interval=0.2, what="a line counting the suppressed ones")
        finally:
            for conn in held:
                conn.close()

    def test_8_silent_connections_leave_health_answering(self):
        # Issue 14: 64 connections that never send a request used to fill the port, and the
        # load balancer's next /health probe was reset.
        silent = [socket.create_connection(("127.0.0.1", metrics_port)) for _ in range(80)]
        try:
            for _ in range(3):
                status, _, body = get("/health")
                self.assertEqual((status, body), (200, "ok\n"))
        finally:
            for s in silent:
                s.close()

    def test_9_health_follows_postgresql(self):
        global pg
        e2e_common.poll(lambda: get("/health")[0] == 200, 10, what="/health to answer 200")
        pg.stop()
        pg = None  # stopped and removed: tearDownModule has nothing left to stop
        status, _, body = e2e_common.poll(lambda: (r := get("/health"))[0] == 503 and r, 15,
                                          what="/health to answer 503 once PostgreSQL is down")
        self.assertTrue(body.strip(), "a 503 without a reason")
        # A session that cannot reach PostgreSQL counts as an upstream connect error.
        with self.assertRaises(psycopg.OperationalError):
            psycopg.connect(px.dsn(DB), connect_timeout=10)
        self.assertEqual(value(scrape(), "seedproxy_upstream_errors_total", stage="connect"), 1)
        self.assertTrue(px.running())


if __name__ == "__main__":
    e2e_common.main()
