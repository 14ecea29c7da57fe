#!/usr/bin/python3
"""The central invariant across the phases of a materialization: the resolver issue's query corpus
(invariant_corpus.sql, run by test_invariant.py's machinery in all six client modes) returns the
same rows, column names, types and errors as the reference database whose risk_score is a real
GENERATED ALWAYS AS (...) STORED column

  (a) while risk_score is virtual,
  (b) in the middle of its backfill (MATERIALIZE, first batches done, PAUSE; the rest of the table
      still NULL in the new column, checked directly before and after the corpus), and
  (c) once it is materialized (SHOW MATERIALIZATIONS step materialized, SHOW SEEDS phase
      materialized, no row where the column differs from the expression).

Named prepared statements (psycopg prepare=True) made in phase (a) on one connection are executed
again, without a new Parse from the client, in (b) and (c) and must keep answering like the
reference. txn_count is a cross-table seed (policy never) and stays virtual throughout.
"""

from __future__ import annotations

import unittest

import e2e_common
import materialize_common as mc
import psycopg
import test_invariant as inv
from test_invariant import CorpusMixin, _all, _not_multi, _simple2

from harness.pgcluster import PgCluster

TARGET = "account.risk_score"
RISK_TYPE = "numeric(8,2)"

SEEDS = [
    {"database": "bank_virtual", "entity": "public.account", "attribute": "risk_score",
     "type": RISK_TYPE, "expression": inv.RISK_EXPR, "materialize": {"policy": "manual"}},
    {"database": "bank_virtual", "entity": "account", "attribute": "txn_count",
     "type": "bigint", "expression": inv.TXN_COUNT_EXPR, "materialize": {"policy": "never"}},
]

MODES = [("simple3", _all), ("extended3", _not_multi), ("prepared3", _not_multi),
         ("psycopg2", _simple2), ("servercursor3", inv.Case.read_only),
         ("servercursor2", inv.Case.read_only)]

# Statements prepared once (phase a) and executed in every phase. The UPDATE runs in a rolled-back
# transaction, so it exercises the write trigger in (b) and (c) without changing the data.
HELD = [
    ("SELECT id, risk_score FROM account WHERE id <= %s ORDER BY id", (40,)),
    ("SELECT * FROM account WHERE id BETWEEN %s AND %s ORDER BY id", (1, 20)),
    ("SELECT sum(risk_score), count(risk_score), max(txn_count) FROM account WHERE id > %s", (0,)),
    ("SELECT a.id, a.risk_score FROM account a WHERE a.risk_score > %s ORDER BY a.risk_score, a.id", (3,)),
    ("UPDATE account SET balance = balance + %s WHERE id = %s RETURNING id, risk_score, txn_count", (500, 7)),
]

# Differences the engine's objects make visible once the column exists (phases b and c), reported
# and not failed, like test_invariant.KNOWN_GAPS. Each is also checked precisely by a test below.
ENGINE_GAPS = {
    "explain_analyze_dml": (
        "EXPLAIN ANALYZE of an UPDATE lists the engine's write trigger (\"Trigger zzzz_seedproxy_...: "
        "calls=N\"), which a GENERATED column does not have; test_4 checks that this line is the only "
        "difference"),
}

pg: PgCluster = None
px = None
held_virtual = None  # psycopg connection through the proxy whose prepared statements live across phases
held_reference = None


def setUpModule():
    global pg, px, held_virtual, held_reference
    if e2e_common.direct_mode():
        raise unittest.SkipTest("materialization is the proxy's own")
    inv.corpus = inv.load_corpus()
    pg = PgCluster().start({"log_statement": "all", "log_line_prefix": "%m [%p] %d %a: "})
    inv.pg = pg
    inv._load_database("bank_virtual", reference=False)
    inv._load_database("bank_reference", reference=True)
    px = mc.make_proxy(pg.port, SEEDS, instance="invariant-mat")
    inv.px = px
    e2e_common.wait_until_readable(px, "bank_virtual", "SELECT risk_score, txn_count FROM account WHERE id = 1",
                                   "the proxy to load bank_virtual's catalog")
    held_virtual = psycopg.connect(px.dsn("bank_virtual", application_name="invariant_held"), autocommit=True)
    held_reference = psycopg.connect(pg.dsn("bank_reference", application_name="invariant_held"),
                                     autocommit=True)


def tearDownModule():
    for conn in (held_virtual, held_reference):
        if conn is not None:
            conn.close()
    e2e_common.stop(px, pg)


def held_outcomes(conn) -> list:
    out = []
    for sql, params in HELD:
        try:
            with conn.transaction(force_rollback=sql.startswith("UPDATE")):
                cur = conn.execute(sql, params, prepare=True)
                desc = [(d.name, d.type_code, d.precision, d.scale) for d in cur.description]
                out.append({"columns": desc, "rows": [tuple(str(v) for v in r) for r in cur.fetchall()]})
        except psycopg.Error as e:
            out.append({"error": e.diag.sqlstate, "message": e.diag.message_primary})
    return out


def partially_backfilled() -> tuple[int, int]:
    """(rows whose new column is still NULL although the expression is not, rows filled)."""
    with pg.connect("bank_virtual") as conn:
        return conn.execute(
            f"SELECT count(*) FILTER (WHERE risk_score IS NULL AND (({inv.RISK_EXPR}))::{RISK_TYPE} IS NOT NULL), "
            "count(*) FILTER (WHERE risk_score IS NOT NULL) FROM account").fetchone()


class MaterializeInvariant(CorpusMixin, unittest.TestCase):
    maxDiff = None

    def run_phase(self, phase: str) -> None:
        saved = dict(inv.KNOWN_GAPS)
        if phase != "virtual":
            inv.KNOWN_GAPS.update(ENGINE_GAPS)
        try:
            for mode, select in MODES:
                with self.subTest(phase=phase, mode=mode):
                    self.run_mode(mode, select)
        finally:
            inv.KNOWN_GAPS.clear()
            inv.KNOWN_GAPS.update(saved)
        with self.subTest(phase=phase, check="prepared statements held since the virtual phase"):
            got, want = held_outcomes(held_virtual), held_outcomes(held_reference)
            for (sql, params), g, w in zip(HELD, got, want):
                self.assertEqual(g, w, f"phase {phase}: held prepared statement {sql} {params}")

    def test_1_virtual(self):
        self.assertEqual(mc.seed_phase(px, "risk_score"), "virtual")
        self.run_phase("virtual")

    def test_2_mid_backfill(self):
        # The backfill stalls at account 250 (mc.BackfillStall) after its first batches, so PAUSE
        # lands mid-backfill; the stall is gone before the corpus runs.
        with mc.BackfillStall(pg, "bank_virtual", "account", "id", 250):
            self.assertEqual(mc.command(px, f"MATERIALIZE {TARGET}"), ["MATERIALIZE"])
            row = mc.wait_backfilling(px, "risk_score", timeout=60)
            print(f"\n  mid-backfill: {row}")
            mc.pause(px, TARGET, "risk_score")
        missing, filled = partially_backfilled()
        self.assertGreater(missing, 0, "the backfill is not partial: nothing left to fill")
        self.assertGreater(filled, 0, "the backfill is not partial: nothing filled")
        self.assertEqual(mc.seed_phase(px, "risk_score"), "materializing")
        self.run_phase("mid-backfill")
        row = mc.materialization(px, "risk_score")
        self.assertEqual((row["step"], row["paused"]), ("backfilling", "t"), row)
        self.assertGreater(partially_backfilled()[0], 0, "the paused backfill went on during the corpus")
        self.assertEqual(mc.command(px, f"RESUME {TARGET}"), ["RESUME"])

    def test_3_materialized(self):
        row = mc.wait_step(px, "risk_score", "materialized", timeout=120)
        self.assertEqual(row["error"] or "", "", row)
        self.assertEqual(mc.seed_phase(px, "risk_score"), "materialized")
        self.assertEqual(mc.seed_phase(px, "txn_count"), "virtual")
        with pg.connect("bank_virtual") as conn:
            self.assertEqual(mc.mismatches(conn, "account", "risk_score", inv.RISK_EXPR, RISK_TYPE), 0)
            objects = mc.engine_objects(conn, "account", "risk_score")
        self.assertEqual(objects["columns"], 1, objects)
        self.assertEqual(len(objects["triggers"]), 1, objects)
        self.run_phase("materialized")

    def test_4_explain_analyze_differs_only_by_the_trigger_line(self):
        sql = ("EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF) "
               "UPDATE account SET balance = balance + 1 WHERE risk_score > 17")

        def plan(conn):
            with conn.transaction(force_rollback=True):
                return [r[0] for r in conn.execute(sql).fetchall()]
        with psycopg.connect(px.dsn("bank_virtual"), autocommit=True) as conn:
            got = plan(conn)
        want = plan(held_reference)
        # The write trigger shows only when its function ran: its WHEN skips rows whose column
        # would not change (here balance + 1 may leave the rounded risk_score as it was).
        extra = [line for line in got if line.startswith("Trigger zzzz_seedproxy_risk_score:")]
        self.assertLessEqual(len(extra), 1, got)
        self.assertEqual([line for line in got if line not in extra], want)


if __name__ == "__main__":
    e2e_common.main()
