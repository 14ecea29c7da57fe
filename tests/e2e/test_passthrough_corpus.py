#!/usr/bin/python3
"""Statements that do not touch a seed reach PostgreSQL byte for byte as the client sent them.

The server logs every statement (log_statement = 'all') as CSV (csvlog: one record per message,
multi-line texts quoted, so the text is recovered exactly). Each client connection carries its own
application_name; after a run the test reads that session's records in order and compares the
statement texts PostgreSQL received with the texts the client sent:

- simple protocol:   "statement: TEXT"
- extended protocol: "execute NAME: TEXT"
- a statement PostgreSQL rejects before logging it (syntax error, failed Parse): the ERROR
  record's query field.

The corpus (about 260 distinct statements, each sent in four client modes: psycopg 3 simple,
extended and named-prepared, psycopg2; plus hand-built protocol messages) is seeded-database
traffic that mentions the
seeded table, its physical columns and even the seeded attribute's *name* in ways that are not the
attribute (other tables' columns, aliases, literals, comments, dollar quotes, shadowing CTEs, another
schema through search_path), DDL, DML, transaction control, COPY, PREPARE, cursors, LISTEN/NOTIFY, odd
whitespace and unicode; plus a database without seeds where the same texts that are rewritten in
the seeded database must pass. A control set of statements that DO read or write the attribute must
arrive rewritten (or replaced by the refusal statement), which proves the comparison can fail.
"""

from __future__ import annotations

import csv
import io
import os
import re
import unittest

import e2e_common
import psycopg
import psycopg2

from harness import wire
from harness.pgcluster import PgCluster

SEEDS = [
    {"database": "bank", "entity": "public.account", "attribute": "risk_score", "type": "numeric(8,2)",
     "expression": "balance / 1000.0 + credit_limit / 500.0", "materialize": {"policy": "never"}},
    {"database": "bank", "entity": "public.account", "attribute": "txn_count", "type": "bigint",
     "expression": "(SELECT count(*) FROM public.txn t WHERE t.account_id = account.id)",
     "materialize": {"policy": "never"}},
]

BANK_SQL = """
CREATE TABLE customer (id int PRIMARY KEY, name text NOT NULL, segment text, risk_score int);
CREATE TABLE account (id int PRIMARY KEY, customer_id int REFERENCES customer (id), owner text NOT NULL,
                      balance numeric(12,2), credit_limit numeric(12,2), opened_on date NOT NULL,
                      status text NOT NULL DEFAULT 'open');
CREATE TABLE txn (id int PRIMARY KEY, account_id int NOT NULL REFERENCES account (id),
                  amount numeric(12,2) NOT NULL, at timestamptz NOT NULL, kind text NOT NULL);
CREATE SCHEMA other;
CREATE TABLE other.account (id int PRIMARY KEY, risk_score text, note text);
INSERT INTO customer SELECT i, 'customer ' || i, 'sme', i % 10 FROM generate_series(1, 20) i;
INSERT INTO account (id, customer_id, owner, balance, credit_limit, opened_on)
  SELECT i, 1 + i % 20, 'owner ' || lpad(i::text, 3, '0'), i * 10.5, i * 3, date '2024-01-01' + i
  FROM generate_series(1, 50) i;
INSERT INTO txn SELECT i, 1 + i % 50, i - 100, timestamptz '2024-01-01 00:00+00' + i * interval '1 hour', 'debit'
  FROM generate_series(1, 200) i;
INSERT INTO other.account SELECT i, 'other ' || i, 'note' FROM generate_series(1, 5) i;
"""

# A database without seeds, whose account table has physical columns named like the seeds.
PLAIN_SQL = """
CREATE TABLE account (id int PRIMARY KEY, balance numeric, credit_limit numeric, risk_score numeric(8,2),
                      txn_count int);
INSERT INTO account SELECT i, i, i, i / 10.0, i FROM generate_series(1, 10) i;
"""

# Statements for the seeded database that must arrive unchanged.
BANK_PASS = [
    "SELECT 1",
    "select id, owner from account where id = 1",
    "SELECT id, balance, credit_limit FROM account ORDER BY id LIMIT 5",
    "  SELECT   id ,owner   FROM   account   WHERE id<5     ",
    "SELECT\tid\tFROM\taccount\tWHERE\tid\t=\t2",
    "SELECT id\r\nFROM account\r\nWHERE id = 3",
    "\n\n  SELECT id FROM account WHERE id = 4  \n\n",
    "SELECT id FROM account WHERE id = 5;",
    "/* leading comment */ SELECT id FROM account WHERE id = 6",
    "SELECT id FROM account WHERE id = 7 -- trailing comment",
    "SELECT id /* risk_score in a comment */ FROM account WHERE id = 8",
    "-- risk_score in a line comment\nSELECT id FROM account WHERE id = 9",
    "SELECT /* nested /* comment */ still comment */ id FROM account WHERE id = 10",
    "SELECT 'risk_score' AS literal, id FROM account WHERE id = 11",
    "SELECT $$risk_score$$ AS dollar, $tag$it's a \"risk_score\" $$ inside$tag$ AS tagged",
    "SELECT E'risk\\_score\\n\\ttab\\\\' AS escaped",
    "SELECT U&'d\\0061t\\+000061' AS unicode_escape",
    "SELECT 'ünïcødé ✓ 🙂 risk_score' AS \"naïve ✓\"",
    "SELECT 1 AS ß, 'ß' AS \"ẞ\"",
    "SELECT id AS risk_score FROM account WHERE id = 12",
    "SELECT id AS \"risk_score\", owner AS txn_count FROM account WHERE id = 13",
    "SELECT 1 AS risk_score",
    "SELECT NULL::numeric(8,2) AS risk_score, 0::bigint AS txn_count",
    "SELECT risk_score FROM customer WHERE id = 1",
    "SELECT c.risk_score, a.balance FROM customer c JOIN account a ON a.customer_id = c.id WHERE a.id = 14",
    "SELECT a.id FROM account a WHERE EXISTS (SELECT 1 FROM customer c WHERE c.id = a.customer_id AND "
    "risk_score > 5) ORDER BY a.id LIMIT 3",
    "SELECT risk_score FROM other.account WHERE id = 1",
    "SELECT o.risk_score, a.owner FROM other.account o JOIN account a ON a.id = o.id WHERE a.id = 2",
    "WITH account AS (SELECT 1 AS id, 2 AS risk_score) SELECT risk_score FROM account",
    "WITH risk_score AS (SELECT 1 AS x) SELECT x FROM risk_score",
    "SELECT risk_score FROM (SELECT 3 AS risk_score) AS account",
    "SELECT \"Risk_Score\" FROM account",
    "SELECT txn_count FROM customer",
    "SELECT count(*) FROM account",
    "SELECT status, count(*), sum(balance) FROM account GROUP BY status ORDER BY status",
    "SELECT id FROM account WHERE balance > (SELECT avg(balance) FROM account) ORDER BY id LIMIT 3",
    "SELECT a.id, t.amount FROM account a JOIN txn t ON t.account_id = a.id WHERE t.id < 3 ORDER BY t.id",
    "SELECT id, owner FROM account ORDER BY balance DESC NULLS LAST, id LIMIT 2",
    "SELECT DISTINCT status FROM account ORDER BY 1",
    "SELECT id, row_number() OVER (PARTITION BY status ORDER BY id) FROM account WHERE id < 5",
    "SELECT id FROM account WHERE id IN (SELECT account_id FROM txn WHERE amount > 99) ORDER BY id LIMIT 3",
    "SELECT account.id FROM account WHERE account.id = 15",
    "SELECT public.account.owner FROM public.account WHERE id = 16",
    "SELECT count(a.id) FROM account a",
    "VALUES (1, 'risk_score'), (2, 'txn_count')",
    "TABLE customer",
    "SELECT pg_typeof(balance) FROM account WHERE id = 1",
    "SELECT json_build_object('risk_score', balance) FROM account WHERE id = 1",
    "SELECT id FROM account WHERE owner LIKE 'owner 0%' ORDER BY id LIMIT 2",
    "SELECT id FROM account WHERE owner ~ '^owner [0-9]+$' ORDER BY id LIMIT 1",
    "SELECT 'a' || 'b', 2 ^ 10, 7 % 3, -1::int, @ -5",
    "SELECT ARRAY[1,2,3] @> ARRAY[2], '{\"risk_score\": 1}'::jsonb ? 'risk_score'",
    "SELECT '{\"risk_score\": 1}'::jsonb -> 'risk_score', '{\"a\": {\"risk_score\": 2}}'::jsonb #> '{a,risk_score}'",
    "SELECT now() IS NOT NULL, current_date > '2000-01-01'",
    "SELECT 1 WHERE false",
    "SELECT id FROM account WHERE owner = 'O''Brien'",
    "SELECT 'x' AS \"quoted \"\"identifier\"\" with risk_score\"",
    "SELECT '\\x00ff'::bytea, 1e3, .5, 1_000",
    "SELECT x FROM generate_series(1, 3) AS x",
    "SELECT lower('RISK_SCORE'), upper('txn_count')",
    "SELECT id FROM account TABLESAMPLE SYSTEM (100) REPEATABLE (1) WHERE id = 1",
    "SELECT id, owner FROM account WHERE id = 1 FOR SHARE",
    "SELECT 1 +",                                                   # syntax error: ERROR record
    "SELEC risk_score FROM account",                                # syntax error naming the attribute
    "SELECT 1/0",
    "SELECT no_such_column FROM account",
    "INSERT INTO customer (id, name, segment, risk_score) VALUES (9001, 'pt', 'sme', 3)",
    "UPDATE customer SET risk_score = risk_score + 1 WHERE id = 9001",
    "UPDATE customer SET risk_score = 2 WHERE id = 9001 RETURNING risk_score",
    "DELETE FROM customer WHERE id = 9001 RETURNING id, risk_score",
    "INSERT INTO account (id, customer_id, owner, balance, credit_limit, opened_on) "
    "VALUES (9001, 1, 'pt', 10, 20, '2024-01-01') RETURNING id, balance",
    "UPDATE account SET balance = balance + 1 WHERE id = 9001 RETURNING balance, credit_limit",
    "UPDATE account SET owner = 'risk_score' WHERE id = 9001",
    "DELETE FROM account WHERE id = 9001 RETURNING id",
    "INSERT INTO account (id, customer_id, owner, opened_on) SELECT 9002, 1, 'x', current_date",
    "INSERT INTO account (id, customer_id, owner, opened_on) VALUES (9002, 1, 'dup', current_date) "
    "ON CONFLICT (id) DO UPDATE SET owner = EXCLUDED.owner",
    "DELETE FROM account WHERE id = 9002",
    "INSERT INTO txn (id, account_id, amount, at, kind) VALUES (90001, 1, 1.5, '2024-01-01', 'fee') "
    "ON CONFLICT (id) DO NOTHING",
    "DELETE FROM txn WHERE id = 90001",
    "BEGIN",
    "SAVEPOINT sp1",
    "UPDATE account SET credit_limit = credit_limit WHERE id = 1",
    "RELEASE SAVEPOINT sp1",
    "SELECT 1/0",
    "SELECT 'ignored in a failed transaction'",
    "ROLLBACK",
    "BEGIN ISOLATION LEVEL REPEATABLE READ",
    "SELECT id FROM account WHERE id = 1 FOR UPDATE",
    "COMMIT",
    "START TRANSACTION READ ONLY",
    "SHOW transaction_read_only",
    "END",
    "SET search_path = other, public",
    "SELECT risk_score FROM account WHERE id = 1",                 # other.account's physical column
    "SELECT * FROM account WHERE id = 2",
    "SELECT a.risk_score FROM account a ORDER BY a.id",
    "SHOW search_path",
    "RESET search_path",
    "SET work_mem = '8MB'",
    "RESET work_mem",
    "CREATE TABLE pt_scores (id int PRIMARY KEY, risk_score numeric(8,2), note text)",
    "CREATE INDEX pt_scores_risk ON pt_scores (risk_score)",
    "COMMENT ON COLUMN pt_scores.risk_score IS 'a physical column named like the seed'",
    "INSERT INTO pt_scores VALUES (1, 1.5, 'one'), (2, 2.5, $$two's$$)",
    "SELECT risk_score FROM pt_scores ORDER BY id",
    "SELECT * FROM pt_scores ORDER BY id",
    "ALTER TABLE pt_scores ADD COLUMN txn_count int",
    "ALTER TABLE pt_scores RENAME COLUMN note TO remark",
    "DROP TABLE pt_scores",
    "CREATE VIEW pt_view AS SELECT id, owner, balance FROM account WHERE balance > 0",
    "SELECT * FROM pt_view ORDER BY id LIMIT 2",
    "DROP VIEW pt_view",
    "CREATE FUNCTION pt_fn(x int) RETURNS int LANGUAGE sql AS $$ SELECT x + 1 $$",
    "SELECT pt_fn(41)",
    "DROP FUNCTION pt_fn(int)",
    "CREATE FUNCTION pt_fn2() RETURNS text LANGUAGE plpgsql AS $body$ BEGIN RETURN 'risk_score from account'; END $body$",
    "DROP FUNCTION pt_fn2()",
    "DO $$ BEGIN PERFORM 1; RAISE NOTICE 'risk_score %', 1; END $$",
    "DO $do$ DECLARE r record; BEGIN SELECT id INTO r FROM account WHERE id = 1; END $do$",
    "EXPLAIN SELECT id FROM account WHERE id = 1",
    "EXPLAIN (COSTS OFF) SELECT balance FROM account WHERE balance > 5",
    "PREPARE pt_q(int) AS SELECT owner FROM account WHERE id = $1",
    "EXECUTE pt_q(3)",
    "DEALLOCATE pt_q",
    "BEGIN",
    "DECLARE pt_c CURSOR FOR SELECT id, owner FROM account ORDER BY id",
    "FETCH 2 FROM pt_c",
    "CLOSE pt_c",
    "COMMIT",
    "LISTEN pt_channel",
    "NOTIFY pt_channel, 'risk_score changed'",
    "UNLISTEN pt_channel",
    "VACUUM (ANALYZE) customer",
    "ANALYZE account",
    "COPY (SELECT id, owner FROM account WHERE id < 4 ORDER BY id) TO STDOUT",
    "COPY account (id, owner, balance) TO STDOUT",
    "COPY account TO STDOUT",
    "COPY customer (id, name, segment, risk_score) TO STDOUT",
    # large (parsed: under the proxy's 1 MiB parse bound) and huge (forwarded unparsed)
    "SELECT count(*), sum(balance) FROM account WHERE id IN (" + ",".join(str(i % 50 + 1) for i in range(120_000)) + ")",
    "SELECT count(*) FROM customer WHERE risk_score IN (" + ",".join(str(i % 10) for i in range(600_000)) + ")",
]

# Plain SELECTs that also run wrapped in comments, whitespace and a trailing semicolon.
VARIED = [s for s in BANK_PASS if s.startswith("SELECT") and "--" not in s and s.count("'") <= 2][:30]


def _variants(sql: str) -> list[str]:
    return [f"/* v1 */ {sql}", f"{sql} -- v2", "\n\t" + sql.replace(" FROM ", "\n  FROM\t") + "\n", f"{sql} ;"]


# Several statements in one simple Query (simple protocol only).
BANK_MULTI = [
    "SELECT 1; SELECT 2",
    "BEGIN; UPDATE account SET balance = balance WHERE id = 1; COMMIT",
    "SELECT id FROM account WHERE id = 1; SELECT risk_score FROM customer WHERE id = 1;",
]

# The unseeded database: texts that would be rewritten or refused in `bank` must pass here.
PLAIN_PASS = [
    "SELECT risk_score FROM account ORDER BY id",
    "SELECT * FROM account ORDER BY id",
    "SELECT a.txn_count, a.risk_score FROM account a WHERE a.id = 1",
    "SELECT id FROM account ORDER BY risk_score DESC LIMIT 2",
    "UPDATE account SET risk_score = 1 WHERE id = 1",
    "INSERT INTO account (id, risk_score, txn_count) VALUES (100, 1, 1)",
    "DELETE FROM account WHERE id = 100 RETURNING *",
    "COPY account (id, risk_score) TO STDOUT",
]

# Control set: these read or write a seeded attribute and must NOT arrive as sent.
BANK_REWRITE = [
    "SELECT risk_score FROM account WHERE id = 1",
    "SELECT a.txn_count FROM account a WHERE a.id = 1",
    "SELECT * FROM account WHERE id = 1",
    "SELECT id FROM account ORDER BY risk_score DESC NULLS LAST, id LIMIT 1",
    "/* risk_score */ SELECT risk_score FROM account WHERE id = 2",
    "UPDATE account SET risk_score = 1 WHERE id = 1",
]

MODES = ("simple3", "extended3", "prepared3", "psycopg2")

pg: PgCluster = None
px = None


def setUpModule():
    global pg, px
    if e2e_common.direct_mode():
        raise unittest.SkipTest("checks what the proxy sends; direct mode has no proxy")
    pg = PgCluster().start({
        "logging_collector": True, "log_destination": "csvlog", "log_directory": "log",
        "log_filename": "passthrough.log", "log_rotation_age": 0, "log_rotation_size": 0,
        "log_statement": "all",
    })
    for db, sql in (("bank", BANK_SQL), ("plain", PLAIN_SQL)):
        with pg.connect() as conn:
            conn.execute(f"CREATE DATABASE {db}")
        with pg.connect(db) as conn:
            conn.execute(sql)
    px = e2e_common.target(pg.port, seeds=SEEDS, control={"user": "postgres"})
    e2e_common.wait_until_readable(px, "bank", "SELECT risk_score FROM account WHERE id = 1",
                                   "the proxy to load bank's catalog")


def tearDownModule():
    e2e_common.stop(px, pg)


# ---------------------------------------------------------------------------------------------
def _csv_path() -> str:
    return os.path.join(pg.data_dir, "log", "passthrough.csv")


csv.field_size_limit(1 << 30)  # statements of several MB are logged as one field


def log_offset() -> int:
    try:
        return os.path.getsize(_csv_path())
    except OSError:
        return 0


def _records(app: str, offset: int) -> list[list[str]]:
    """Records of the session named `app` written at or after byte `offset` (taken before the
    session started, so the offset is at a record boundary)."""
    try:
        with open(_csv_path(), "rb") as f:
            f.seek(offset)
            text = f.read().decode("utf-8")
    except (OSError, UnicodeDecodeError):
        return []
    out = []
    try:
        for rec in csv.reader(io.StringIO(text)):
            if len(rec) > 22 and rec[22] == app:
                out.append(rec)
    except csv.Error:
        pass  # a record still being written at the end of the file
    return out


EXECUTE_PREFIX = re.compile(r"^execute [^:]*: ", re.S)


def received_statements(app: str, sentinel: str, offset: int, timeout: float = 20) -> list[str]:
    """The statement texts PostgreSQL logged for the session named `app`, in order, once the
    sentinel statement (the session's last) is in the log."""
    def done():
        recs = _records(app, offset)
        return recs if any(sentinel in r[13] for r in recs) else None
    recs = e2e_common.poll(done, timeout, interval=0.05, what=f"the server log of {app}")
    recs.sort(key=lambda r: (r[3], int(r[6])))  # process id, session line number
    texts: list[str] = []
    for r in recs:
        severity, message, query = r[11], r[13], r[19]
        if severity == "LOG" and message.startswith("statement: "):
            texts.append(message[len("statement: "):])
        elif severity == "LOG" and EXECUTE_PREFIX.match(message):
            texts.append(EXECUTE_PREFIX.sub("", message, count=1))
        elif severity == "ERROR" and query and (not texts or texts[-1] != query):
            texts.append(query)  # rejected before it was logged (syntax error, failed Parse)
    return texts


def _is_copy(sql: str) -> bool:
    return sql.lstrip().upper().startswith("COPY")


def send_all(dsn: str, mode: str, statements: list[str], sentinel: str) -> None:
    """Sends each statement as the client library in `mode` would; results and errors are ignored,
    only what reaches PostgreSQL matters here."""
    if mode == "psycopg2":
        conn = psycopg2.connect(dsn)
        conn.autocommit = True
        try:
            for sql in statements + [sentinel]:
                with conn.cursor() as cur:
                    try:
                        if _is_copy(sql):
                            cur.copy_expert(sql, io.StringIO())
                        else:
                            cur.execute(sql)
                    except psycopg2.Error:
                        pass
        finally:
            conn.close()
        return
    with psycopg.connect(dsn, autocommit=True) as conn:
        if mode != "prepared3":
            conn.prepare_threshold = None
        else:
            conn.prepared_max = 100_000  # no evictions (DEALLOCATE _pg3_N) in the middle
        for sql in statements:
            try:
                if _is_copy(sql):
                    with conn.cursor().copy(sql) as cp:
                        for _ in cp:
                            pass
                elif mode == "simple3":
                    conn.cursor().execute(sql)
                elif mode == "extended3":
                    conn.cursor(binary=True).execute(sql)
                else:
                    conn.cursor().execute(sql, prepare=True)
            except psycopg.Error:
                pass
        conn.cursor().execute(sentinel)


def _diff(sent: list[str], got: list[str]) -> str:
    lines = []
    for i in range(max(len(sent), len(got))):
        s = sent[i] if i < len(sent) else "<nothing>"
        g = got[i] if i < len(got) else "<nothing>"
        if s != g:
            lines.append(f"  #{i}: sent     {s!r}\n       received {g!r}")
        if len(lines) >= 30:
            lines.append("  ...")
            break
    return "\n".join(lines)


class PassThrough(unittest.TestCase):
    maxDiff = None

    def run_mode(self, db: str, mode: str, statements: list[str]) -> None:
        app = f"pt_{db}_{mode}"
        sentinel = f"SELECT 'end of {app}'"
        offset = log_offset()
        send_all(px.dsn(db, application_name=app), mode, statements, sentinel)
        got = received_statements(app, sentinel, offset)
        if mode == "prepared3":
            # psycopg drops its prepared statements itself after DDL and ROLLBACK
            got = [g for g in got if g != "DEALLOCATE ALL"]
        sent = statements + [sentinel]
        if got != sent:
            self.fail(f"{db}/{mode}: PostgreSQL received something else than the client sent "
                      f"({sum(1 for s, g in zip(sent, got) if s != g)} differ, {len(sent)} sent, "
                      f"{len(got)} received):\n{_diff(sent, got)}")

    def bank_statements(self, mode: str) -> list[str]:
        stmts = list(BANK_PASS)
        for sql in VARIED:
            stmts += _variants(sql)
        if mode in ("simple3", "psycopg2"):
            stmts += BANK_MULTI
        return stmts

    def test_bank_simple_protocol_psycopg3(self):
        self.run_mode("bank", "simple3", self.bank_statements("simple3"))

    def test_bank_extended_protocol_psycopg3(self):
        self.run_mode("bank", "extended3", self.bank_statements("extended3"))

    def test_bank_named_prepared_psycopg3(self):
        self.run_mode("bank", "prepared3", self.bank_statements("prepared3"))

    def test_bank_simple_protocol_psycopg2(self):
        self.run_mode("bank", "psycopg2", self.bank_statements("psycopg2"))

    def test_unseeded_database(self):
        for mode in ("simple3", "extended3"):
            with self.subTest(mode=mode):
                self.run_mode("plain", mode, PLAIN_PASS)

    def test_raw_protocol_bytes(self):
        """Messages built by hand: CRLF, tabs, a Parse with declared parameter types, a named
        statement, a multi-statement Query."""
        app = "pt_bank_wire"
        texts_q = ["SELECT id FROM account WHERE id = 1\r\n", "\tSELECT\t'tab'\t",
                   "SELECT 1 AS a;\n SELECT 'risk_score' AS b ;"]
        texts_p = [("", "SELECT owner FROM account WHERE id = $1", [23], [b"1"]),
                   ("pt_named", "SELECT risk_score FROM customer WHERE id = $1::int", [0], [b"2"]),
                   ("", "UPDATE account SET status = $1 WHERE id = $2 RETURNING id", [25, 23], [b"open", b"3"])]
        offset = log_offset()
        with wire.WireClient(px.port) as c:
            c.connect(user="postgres", database="bank", application_name=app)
            for sql in texts_q:
                c.send(wire.query(sql))
                c.read_until("Z")
            for name, sql, oids, params in texts_p:
                c.send(wire.parse(sql, name, oids) + wire.bind("", name, params) + wire.execute() + wire.sync())
                msgs = c.read_until("Z")
                self.assertNotIn("E", [t for t, _ in msgs], sql)
            sentinel = f"SELECT 'end of {app}'"
            c.send(wire.query(sentinel))
            c.read_until("Z")
        got = received_statements(app, sentinel, offset)
        sent = texts_q + [sql for _, sql, _, _ in texts_p] + [sentinel]
        self.assertEqual(got, sent, _diff(sent, got))

    def test_seed_statements_are_rewritten(self):
        """The control set: if these arrived unchanged the comparison above would prove nothing."""
        app = "pt_bank_rewrite"
        sentinel = f"SELECT 'end of {app}'"
        offset = log_offset()
        send_all(px.dsn("bank", application_name=app), "simple3", BANK_REWRITE, sentinel)
        got = received_statements(app, sentinel, offset)
        self.assertEqual(len(got), len(BANK_REWRITE) + 1, got)
        self.assertEqual(got[-1], sentinel)
        for sent, received in zip(BANK_REWRITE, got):
            with self.subTest(sql=sent):
                self.assertNotEqual(sent, received)
                if sent.startswith("UPDATE"):
                    self.assertIn("seedproxy refused statement", received)
                    # What PostgreSQL logs says what happened, in words (issue 12 part 4).
                    self.assertIn("/* seedproxy refused the client's statement here and answered "
                                  "it with ERROR 428C9: column \"risk_score\" can only be "
                                  "updated to DEFAULT", received)
                else:
                    self.assertTrue(re.search(r"balance\"? / 1000\.0|count\(\*\)", received), received)

    def test_zz_corpus_size(self):
        # runs last (name order): the modes above together sent this many pass-through statements
        bank = len(self.bank_statements("simple3"))
        self.assertGreaterEqual(bank, 250)
        self.assertGreaterEqual(len(set(self.bank_statements("simple3"))), 200)


if __name__ == "__main__":
    e2e_common.main()
