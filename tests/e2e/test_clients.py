#!/usr/bin/python3
"""Real client libraries (psycopg 3, psycopg2) see the same results through seedproxy as directly."""

import threading
import unittest

import e2e_common
import psycopg
import psycopg2
import psycopg2.extensions
from psycopg.pq import TransactionStatus

from harness.pgcluster import PgCluster

# Deterministic queries covering the common type families; each result must be identical
# (values, column names, type OIDs) through the proxy and directly.
CORPUS = [
    "select 1::int4 as a, 2::int8 as b, 3::int2 as c, '-2147483648'::int4 as minint",
    "select 12345.6789::numeric(12,4) as n, -0.5::numeric as neg, 1e40::numeric as big",
    "select 'hello'::text as t, ''::text as empty, 'ünïcödé ✓'::varchar(20) as v, 'x'::char(3) as c",
    "select '\\xdeadbeef00'::bytea as b, ''::bytea as empty, decode(repeat('ff00', 5000), 'hex') as big",
    "select '2024-02-29 12:34:56.789+02'::timestamptz as ts, '2024-01-01'::date as d, "
    "'12:00:01.5'::time as t, interval '1 day 2 hours 3 seconds' as i, '2024-03-01 00:00'::timestamp as naive",
    "select array[1,2,3]::int[] as ia, array['a',null,'c']::text[] as ta, '{}'::int[] as empty, "
    "array[[1,2],[3,4]] as matrix",
    "select '{\"a\":[1,2,{\"b\":null}]}'::json as j, '{\"k\": \"v\", \"n\": 1.5}'::jsonb as jb",
    "select null::int as i, null::text as t, null as unknown, null::bytea as b",
    "select g from generate_series(1, 0) g",
    "select g, g * g as sq, g::text as s from generate_series(1, 1000) g",
    "select true as t, false as f, null::bool as n",
    "select 1.5::float8 as d, 2.25::float4 as r, 'Infinity'::float8 as inf, '-Infinity'::float4 as ninf",
    "select '6ba7b810-9dad-11d1-80b4-00c04fd430c8'::uuid as u",
    "select '192.168.0.1/24'::inet as i, '10.0.0.0/8'::cidr as c, '08:00:2b:01:02:03'::macaddr as m",
    "select oid, typname, typlen from pg_type where oid < 30 order by oid",
    "select repeat('x', 100000) as long_text, length(repeat('y', 100000)) as len",
    "select 'a'::name as nm, 42::oid as o, 'r'::\"char\" as ch",
    "values (1, 'a'), (2, 'b'), (3, null)",
    "select x from (select 1 as x union all select 2) s where x > 5",
    "select 'a' as \"Mixed Case\", 'b' as \"with space\", 'c' as \"ünï\"",
    "select int4range(1, 10) as r, '[2024-01-01,2024-02-01)'::daterange as dr",
    "select md5(string_agg(g::text, ',' order by g)) as digest from generate_series(1, 10000) g",
    "select 42::money::numeric as m, '1 day'::interval * 3 as i3, 7 / 2 as intdiv, 7 % 3 as rem",
    "select current_setting('server_version_num') as v, current_database() as db, current_user as u",
    "select row(1, 'a') as rec",
    "select g % 3 as k, count(*) as n, sum(g) as s from generate_series(1, 100) g group by 1 order by 1",
    "select $$it's \"quoted\"$$ as q, E'tab\\there' as esc, chr(128512) as emoji",
]

PARAM_QUERIES = [
    ("select %s::int + %s::int as s", (40, 2)),
    ("select %s::text || %s::text as c", ("foo", "bar")),
    ("select %s::bytea as b", (b"\x00\x01\xff",)),
    ("select %s::numeric * 2 as n", ("1.25",)),
    ("select %s::int[] as a", ([1, 2, 3],)),
    ("select %s::text is null as isnull", (None,)),
]

pg: PgCluster = None
px = None


def setUpModule():
    global pg, px
    pg = PgCluster().start()
    px = e2e_common.target(pg.port)


def tearDownModule():
    e2e_common.stop(px, pg)


def _describe3(cur):
    return [(d.name, d.type_code) for d in cur.description] if cur.description else None


def _run_psycopg3(port_dsn, binary):
    out = []
    with psycopg.connect(port_dsn, autocommit=True) as conn:
        for q in CORPUS:
            cur = conn.cursor(binary=binary)
            cur.execute(q)
            out.append((q, _describe3(cur), cur.fetchall()))
        for q, params in PARAM_QUERIES:
            cur = conn.cursor(binary=binary)
            cur.execute(q, params)
            out.append((q, _describe3(cur), cur.fetchall()))
    return out


def _run_psycopg2(port_dsn):
    out = []
    conn = psycopg2.connect(port_dsn)
    conn.autocommit = True
    try:
        for q in CORPUS:
            with conn.cursor() as cur:
                cur.execute(q)
                desc = [(d.name, d.type_code) for d in cur.description]
                out.append((q, desc, cur.fetchall()))
        for q, params in PARAM_QUERIES:
            with conn.cursor() as cur:
                cur.execute(q, params)
                desc = [(d.name, d.type_code) for d in cur.description]
                out.append((q, desc, [tuple(bytes(v) if isinstance(v, memoryview) else v for v in r)
                                      for r in cur.fetchall()]))
    finally:
        conn.close()
    return out


class ClientsThroughProxy(unittest.TestCase):
    maxDiff = 4000

    def assert_same(self, direct, proxied):
        self.assertEqual(len(direct), len(proxied))
        for (q, d_desc, d_rows), (_, p_desc, p_rows) in zip(direct, proxied):
            self.assertEqual(d_desc, p_desc, f"description differs for: {q}")
            self.assertEqual(d_rows, p_rows, f"rows differ for: {q}")

    def test_psycopg3_text_results_match_direct(self):
        self.assert_same(_run_psycopg3(pg.dsn(), False), _run_psycopg3(px.dsn(), False))

    def test_psycopg3_binary_results_match_direct(self):
        self.assert_same(_run_psycopg3(pg.dsn(), True), _run_psycopg3(px.dsn(), True))

    def test_psycopg2_results_match_direct(self):
        self.assert_same(_run_psycopg2(pg.dsn()), _run_psycopg2(px.dsn()))

    def test_corpus_sanity(self):
        # Guards against a corpus that compares nothing: the multi-row and empty cases are real.
        rows = dict((q, r) for q, _, r in _run_psycopg3(px.dsn(), False))
        self.assertEqual(len(rows["select g, g * g as sq, g::text as s from generate_series(1, 1000) g"]), 1000)
        self.assertEqual(rows["select g from generate_series(1, 0) g"], [])
        self.assertGreaterEqual(len(CORPUS), 25)

    def test_errors_keep_sqlstate(self):
        with psycopg.connect(px.dsn(), autocommit=True) as conn:
            with self.assertRaises(psycopg.errors.DivisionByZero) as cm:
                conn.execute("select 1/0")
            self.assertEqual(cm.exception.sqlstate, "22012")
            with self.assertRaises(psycopg.errors.UndefinedTable):
                conn.execute("select * from no_such_table")
            self.assertEqual(conn.execute("select 'still fine'").fetchone(), ("still fine",))

    def test_multiple_statements_in_one_query(self):
        with psycopg.connect(px.dsn(), autocommit=True) as conn:
            cur = conn.execute("select 1 as a; select 'two' as b, 3 as c")
            first = cur.fetchall()
            self.assertTrue(cur.nextset())
            self.assertEqual((first, cur.fetchall()), ([(1,)], [("two", 3)]))

    def test_prepared_statements(self):
        with psycopg.connect(px.dsn(), autocommit=True) as conn:
            for i in range(10):
                row = conn.execute("select %s::int * 3 as x, %s::text as t", (i, f"v{i}"), prepare=True).fetchone()
                self.assertEqual(row, (i * 3, f"v{i}"))
            names = [r[0] for r in conn.execute("select name from pg_prepared_statements").fetchall()]
            self.assertTrue(any(n.startswith("_pg3_") for n in names), names)
            # automatic preparation after prepare_threshold executions
            conn.prepare_threshold = 2
            for i in range(6):
                self.assertEqual(conn.execute("select %s::int + 100", (i,)).fetchone(), (i + 100,))
            count = conn.execute("select count(*) from pg_prepared_statements").fetchone()[0]
            self.assertGreaterEqual(count, 2)

    def test_pipeline_mode(self):
        with psycopg.connect(px.dsn(), autocommit=True) as conn:
            conn.execute("create temp table pipe_t (id int primary key, v text)")
            curs = []
            with conn.pipeline():
                for i in range(300):
                    curs.append(conn.execute("select %s::int * 2, %s::text", (i, str(i))))
                conn.cursor().executemany("insert into pipe_t values (%s, %s)", [(i, f"r{i}") for i in range(1000)])
            self.assertEqual([c.fetchone() for c in curs], [(i * 2, str(i)) for i in range(300)])
            self.assertEqual(conn.execute("select count(*), sum(id) from pipe_t").fetchone(), (1000, 499500))
            # an error inside a pipeline aborts the rest of that pipeline and leaves the connection usable
            with self.assertRaises(psycopg.errors.DivisionByZero):
                with conn.pipeline():
                    conn.execute("select 1")
                    conn.execute("select 1/0")
                    conn.execute("select 2")
            self.assertEqual(conn.execute("select 'after'").fetchone(), ("after",))

    def test_transaction_status_psycopg3(self):
        with psycopg.connect(px.dsn(), autocommit=True) as conn:
            info = conn.info
            self.assertEqual(info.transaction_status, TransactionStatus.IDLE)
            conn.execute("BEGIN")
            self.assertEqual(info.transaction_status, TransactionStatus.INTRANS)
            conn.execute("create temp table tx_t (x int)")
            with self.assertRaises(psycopg.errors.DivisionByZero):
                conn.execute("select 1/0")
            self.assertEqual(info.transaction_status, TransactionStatus.INERROR)
            with self.assertRaises(psycopg.errors.InFailedSqlTransaction):
                conn.execute("select 1")
            conn.execute("ROLLBACK")
            self.assertEqual(info.transaction_status, TransactionStatus.IDLE)
            with self.assertRaises(psycopg.errors.UndefinedTable):
                conn.execute("select * from tx_t")
        with psycopg.connect(px.dsn()) as conn:  # non-autocommit: implicit transaction
            conn.execute("select 1")
            self.assertEqual(conn.info.transaction_status, TransactionStatus.INTRANS)
            conn.commit()
            self.assertEqual(conn.info.transaction_status, TransactionStatus.IDLE)

    def test_transaction_status_psycopg2(self):
        conn = psycopg2.connect(px.dsn())
        try:
            ext = psycopg2.extensions
            cur = conn.cursor()
            cur.execute("select 1")
            self.assertEqual(conn.get_transaction_status(), ext.TRANSACTION_STATUS_INTRANS)
            with self.assertRaises(psycopg2.errors.DivisionByZero):
                cur.execute("select 1/0")
            self.assertEqual(conn.get_transaction_status(), ext.TRANSACTION_STATUS_INERROR)
            conn.rollback()
            self.assertEqual(conn.get_transaction_status(), ext.TRANSACTION_STATUS_IDLE)
        finally:
            conn.close()

    def test_server_side_cursors(self):
        with psycopg.connect(px.dsn()) as conn:
            with conn.cursor(name="big_cursor") as cur:
                cur.itersize = 137
                cur.execute("select g, repeat('z', g % 50) from generate_series(1, 20000) g")
                total = n = 0
                for g, s in cur:
                    total += g
                    n += 1
                    self.assertEqual(len(s), g % 50)
                self.assertEqual((n, total), (20000, 20000 * 20001 // 2))
            with conn.cursor(name="scroll_cursor", scrollable=True) as cur:
                cur.execute("select g from generate_series(1, 100) g")
                self.assertEqual(cur.fetchmany(3), [(1,), (2,), (3,)])
                cur.scroll(50, mode="absolute")
                self.assertEqual(cur.fetchone(), (51,))
        conn2 = psycopg2.connect(px.dsn())
        try:
            with conn2.cursor(name="p2_cursor") as cur:
                cur.itersize = 500
                cur.execute("select g from generate_series(1, 5000) g")
                self.assertEqual(sum(r[0] for r in cur), 5000 * 5001 // 2)
            conn2.commit()
        finally:
            conn2.close()

    def test_notice_in_do_block(self):
        notices = []
        with psycopg.connect(px.dsn(), autocommit=True) as conn:
            conn.add_notice_handler(lambda diag: notices.append((diag.severity, diag.sqlstate, diag.message_primary)))
            conn.execute("DO $$BEGIN RAISE NOTICE 'hello from %', 'plpgsql'; RAISE WARNING 'careful'; END$$")
        self.assertEqual(notices, [("NOTICE", "00000", "hello from plpgsql"), ("WARNING", "01000", "careful")])
        conn2 = psycopg2.connect(px.dsn())
        try:
            conn2.autocommit = True
            conn2.cursor().execute("DO $$BEGIN RAISE NOTICE 'p2 notice'; END$$")
            self.assertTrue(any("p2 notice" in n for n in conn2.notices), conn2.notices)
        finally:
            conn2.close()

    def test_parameter_status_and_backend_key(self):
        with psycopg.connect(px.dsn(application_name="clients_e2e"), autocommit=True) as conn:
            self.assertEqual(conn.info.parameter_status("application_name"), "clients_e2e")
            self.assertEqual(conn.info.parameter_status("server_encoding"), "UTF8")
            conn.execute("set application_name = 'renamed'")
            self.assertEqual(conn.info.parameter_status("application_name"), "renamed")
            self.assertEqual(conn.info.backend_pid, conn.execute("select pg_backend_pid()").fetchone()[0])

    def test_concurrent_connections(self):
        errors = []

        def worker(n):
            try:
                with psycopg.connect(px.dsn(), autocommit=True) as conn:
                    for i in range(50):
                        assert conn.execute("select %s::int", (n * 1000 + i,)).fetchone() == (n * 1000 + i,)
            except Exception as e:  # collected and asserted in the main thread
                errors.append(repr(e))

        threads = [threading.Thread(target=worker, args=(n,)) for n in range(16)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
        self.assertEqual(errors, [])
        self.assertFalse(any(t.is_alive() for t in threads))


if __name__ == "__main__":
    e2e_common.main()
