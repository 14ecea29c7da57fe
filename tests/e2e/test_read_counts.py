#!/usr/bin/python3
"""Reads counted durably, summed over proxies (docs/registry.md, "Counting reads").

Clients read seeds through the proxy with the simple protocol (one read per executed statement
that reads the attribute, however often it names it); every proxy's flusher writes its counts per
minute and instance to "seedproxy"."read_counts". The sums there must be exact: across a restart,
at shutdown, with two proxies in front of one database, in SHOW SEEDS, and while a seed is rolled
back, deleted under a pending flush, or a database loses its registry.
"""

import subprocess
import unittest

import e2e_common
import psycopg

from harness import wire
from harness.pgcluster import PgCluster

DB = "counted"
GONE = "gone"  # its registry is dropped while the proxy still counts reads there
FLUSH = {"reads_flush_seconds": 0.2}
# How long a wait for the flusher may take: many rounds, for a loaded machine.
DEADLINE = 30
EXPRESSIONS = {"doubled": "price * 2", "tripled": "price * 3", "quadrupled": "price * 4",
               "halved": "price / 2"}

pg: PgCluster = None
px_a = None
px_b = None


def seeds() -> list:
    out = [{"database": DB, "entity": "public.item", "attribute": attribute, "type": "integer",
            "expression": expression, "materialize": {"policy": "never"}}
           for attribute, expression in EXPRESSIONS.items()]
    out.append({"database": GONE, "entity": "public.item", "attribute": "doubled", "type": "integer",
                "expression": "price * 2", "materialize": {"policy": "never"}})
    return out


def make_proxy(instance: str, materialization: dict = FLUSH) -> e2e_common.Proxy:
    return e2e_common.Proxy(upstream_port=pg.port, instance=instance, seeds=seeds(),
                            control={"user": "postgres"}, admin={"users": ["postgres"]},
                            materialization=materialization)


def setUpModule():
    global pg, px_a, px_b
    if e2e_common.direct_mode():
        raise unittest.SkipTest("read counting is the proxy's own")
    pg = PgCluster().start()
    for database in (DB, GONE):
        with pg.connect() as conn:
            conn.execute(f"CREATE DATABASE {database}")
        with pg.connect(database) as conn:
            conn.execute("CREATE TABLE item (id int PRIMARY KEY, price int NOT NULL)")
            conn.execute("INSERT INTO item VALUES (1, 10), (2, 20), (3, 30)")
    px_a = make_proxy("reads-a")
    px_b = make_proxy("reads-b")


def tearDownModule():
    e2e_common.finish(px_a)
    e2e_common.finish(px_b)
    if pg is not None:
        pg.stop()


def direct(sql: str, params=None, database: str = DB):
    with pg.connect(database) as conn:
        cursor = conn.execute(sql, params)
        return cursor.fetchall() if cursor.description else []


def counted(attribute: str = "doubled", instance: str | None = None, database: str = DB) -> int:
    """The reads of `attribute` in read_counts, of one instance or of all."""
    sql = ('SELECT coalesce(sum("reads"), 0) FROM "seedproxy"."read_counts" '
           'WHERE "attribute_name" = %s AND (%s::text IS NULL OR "instance" = %s)')
    return int(direct(sql, (attribute, instance, instance), database)[0][0])


def wait_counted(expected: int, attribute: str = "doubled", instance: str | None = None,
                 database: str = DB) -> None:
    last = []

    def reached():
        last[:] = [counted(attribute, instance, database)]
        if last[0] > expected:
            raise AssertionError(f"{attribute}: {last[0]} reads counted, more than the {expected} made")
        return last[0] == expected
    try:
        e2e_common.poll(reached, timeout=DEADLINE, interval=0.05,
                        what=f"{expected} reads of {attribute}")
    except AssertionError as e:
        raise AssertionError(f"{e} ({last[0] if last else '?'} counted)") from None


def read(px, sql: str, database: str = DB, times: int = 1) -> None:
    """Runs `sql` as simple Query messages through the proxy."""
    with wire.WireClient(px.port) as client:
        client.connect(database=database)
        for _ in range(times):
            client.simple_query(sql)


def show_seeds(px) -> dict:
    out = subprocess.run(["psql", "-X", "-h", px.host, "-p", str(px.port), "-U", "postgres",
                          "-d", "seedproxy", "-At", "-F", "|", "-v", "ON_ERROR_STOP=1",
                          "-c", "SHOW SEEDS"], capture_output=True, text=True, timeout=30)
    if out.returncode != 0:
        raise AssertionError(out.stderr)
    rows = [line.split("|") for line in out.stdout.splitlines()]
    return {(r[0], r[1], r[2]): int(r[5]) for r in rows}


class ReadCounts(unittest.TestCase):
    # Tests run in name order; counts accumulate, so each compares against what it found.

    def test_01_one_read_per_statement(self):
        doubled, tripled = counted("doubled"), counted("tripled")
        read(px_a, "SELECT doubled FROM item", times=5)
        # Three statements in one Query: two read doubled, one tripled, one neither.
        read(px_a, "SELECT doubled FROM item; SELECT tripled, doubled FROM item WHERE id = 1; "
                   "SELECT price FROM item")
        # Named twice, read once.
        read(px_a, "SELECT doubled, doubled + 1 FROM item WHERE doubled > 0")
        wait_counted(doubled + 8, "doubled")
        wait_counted(tripled + 1, "tripled")
        rows = direct('SELECT DISTINCT "instance", "minute" = date_trunc(\'minute\', "minute"), '
                      '"minute" > now() - interval \'5 minutes\' FROM "seedproxy"."read_counts"')
        self.assertEqual(rows, [("reads-a", True, True)])

    def test_02_counts_survive_a_restart_and_grow_from_there(self):
        global px_a
        before = counted()
        # Counted just before the restart: written by the next round or by the final flush.
        read(px_a, "SELECT doubled FROM item", times=2)
        e2e_common.finish(px_a)
        px_a = make_proxy("reads-a")
        read(px_a, "SELECT doubled FROM item", times=3)
        wait_counted(before + 5)

    def test_03_stopping_flushes_the_last_counts(self):
        # An hour between flushes: only the final flush at shutdown can write these.
        px = make_proxy("reads-final", {"reads_flush_seconds": 3600})
        try:
            read(px, "SELECT doubled FROM item", times=4)
            self.assertEqual(counted(instance="reads-final"), 0)
        finally:
            e2e_common.finish(px)
        self.assertEqual(counted(instance="reads-final"), 4)

    def test_04_two_proxies_each_write_their_own_rows(self):
        a, b, total = counted(instance="reads-a"), counted(instance="reads-b"), counted()
        read(px_a, "SELECT doubled FROM item", times=7)
        read(px_b, "SELECT doubled FROM item WHERE id = 2", times=5)
        wait_counted(a + 7, instance="reads-a")
        wait_counted(b + 5, instance="reads-b")
        self.assertEqual(counted(), total + 12)

    def test_05_show_seeds_shows_the_sum_over_proxies(self):
        read(px_b, "SELECT halved FROM item", times=3)
        read(px_a, "SELECT halved FROM item", times=2)
        wait_counted(5, "halved")
        expected = {attribute: counted(attribute) for attribute in ("doubled", "halved")}

        def shown():
            # The snapshot refreshes every 30 s; a registry notification refreshes it now.
            direct("SELECT pg_notify('seedproxy_registry', %s)", (DB,))
            listed = show_seeds(px_a)
            return all(listed.get((DB, "public.item", attribute)) == reads
                       for attribute, reads in expected.items())
        e2e_common.poll(shown, timeout=DEADLINE, interval=0.2,
                        what=f"SHOW SEEDS to list reads {expected}")

    def test_06_a_rolled_back_seed_does_not_stop_the_counting(self):
        tripled = counted("tripled")
        read(px_a, "SELECT tripled FROM item")
        direct('UPDATE "seedproxy"."seeds" SET "phase" = \'rolled_back\' '
               'WHERE "attribute_name" = \'tripled\'')
        direct("SELECT pg_notify('seedproxy_registry', %s)", (DB,))
        served = 0  # reads of tripled the proxy still served (and counted) before it knew
        with wire.WireClient(px_a.port) as client:
            client.connect(database=DB)

            def unknown():
                nonlocal served
                try:
                    client.simple_query("SELECT tripled FROM item")
                    served += 1
                    return False
                except wire.ServerError as e:
                    self.assertEqual(e.fields.get("C"), "42703", e.fields)
                    return True
            e2e_common.poll(unknown, timeout=DEADLINE, interval=0.05, what="tripled to be unknown")
        doubled = counted()
        read(px_a, "SELECT doubled FROM item", times=3)
        wait_counted(doubled + 3)
        # The reads made while it was virtual are written; the failed ones count nothing.
        wait_counted(tripled + 1 + served, "tripled")

    def test_07_a_seed_deleted_under_a_pending_flush_is_skipped(self):
        doubled = counted()
        with pg.connect(DB, autocommit=False) as holder:
            # Flushes wait behind this lock while the reads are counted and the seed goes away.
            holder.execute('LOCK TABLE "seedproxy"."read_counts" IN SHARE ROW EXCLUSIVE MODE')
            read(px_a, "SELECT quadrupled FROM item; SELECT doubled FROM item", times=3)
            holder.execute('DELETE FROM "seedproxy"."seeds" WHERE "attribute_name" = \'quadrupled\'')
            holder.commit()
        wait_counted(doubled + 3)
        read(px_a, "SELECT doubled FROM item", times=2)
        wait_counted(doubled + 5)
        self.assertEqual(counted("quadrupled"), 0)
        self.assertNotIn("read counts", px_a.log_text())

    def test_08_a_lost_connection_gives_the_counts_back_and_reconnects(self):
        doubled = counted()
        made = 0
        # Proxy A's flusher loses its connection in the middle of writing: the write waits behind
        # this lock and is terminated there. (An idle flusher connection makes no stable target:
        # it is closed after a round with nothing to write, and one killed then is only dropped.)
        # Told apart from proxy B's by the proxy's own ports; a prune that happens to wait instead
        # of the write is let through and the round tried again.
        def terminate_a_waiting_write():
            return direct("""SELECT CASE WHEN btrim(query, E' \\n') LIKE 'INSERT%%'
                                   THEN pg_terminate_backend(pid) ELSE false END
                               FROM pg_stat_activity
                              WHERE datname = %s AND wait_event_type = 'Lock' AND client_port = ANY(%s)
                                AND (btrim(query, E' \\n') LIKE 'INSERT INTO "seedproxy"."read_counts"%%'
                                     OR btrim(query, E' \\n') LIKE 'DELETE FROM "seedproxy"."read_counts"%%')""",
                          (DB, list(px_a.local_tcp_ports())))
        for _round in range(3):
            with pg.connect(DB, autocommit=False) as holder:
                holder.execute('LOCK TABLE "seedproxy"."read_counts" IN SHARE ROW EXCLUSIVE MODE')
                read(px_a, "SELECT doubled FROM item", times=4)
                made += 4
                waiting = e2e_common.poll(terminate_a_waiting_write, timeout=DEADLINE,
                                          what="proxy A's flusher to wait behind the lock")
                holder.commit()
            if (True,) in waiting:
                break
        else:
            self.fail("proxy A's flusher was pruning each time instead of writing")
        wait_counted(doubled + made)
        e2e_common.poll(lambda: "written again" in px_a.log_text(), timeout=DEADLINE,
                        what="the flusher to log that it writes again")
        self.assertEqual(px_a.log_text().count("keeping the read counts"), 1, px_a.log_text())

    def test_09_a_database_without_registry_is_skipped_silently(self):
        logged = len(px_a.log_text())
        read(px_a, "SELECT doubled FROM item", database=GONE, times=2)
        wait_counted(2, database=GONE)
        direct('DROP SCHEMA "seedproxy" CASCADE', database=GONE)
        doubled = counted()
        # The proxy still knows the seed there (no notification): these reads are counted, and
        # have nowhere to go.
        read(px_a, "SELECT doubled FROM item", database=GONE, times=3)
        read(px_a, "SELECT doubled FROM item", times=4)
        wait_counted(doubled + 4)
        read(px_a, "SELECT doubled FROM item", times=1)
        wait_counted(doubled + 5)
        self.assertNotIn("read counts", px_a.log_text()[logged:])

    def test_10_rows_past_every_window_are_pruned(self):
        insert = ('INSERT INTO "seedproxy"."read_counts" ("schema_name", "table_name", "attribute_name", '
                  '"minute", "instance", "reads") VALUES (\'public\', \'item\', \'doubled\', '
                  'date_trunc(\'minute\', now() - %s::interval), \'long-gone\', 1)')
        direct(insert, ("86400 seconds 2 minutes",))  # the window (24 h) and two minutes ago
        direct(insert, ("86280 seconds",))  # two minutes inside the window: kept
        # A fresh flusher prunes in its first round with something to write.
        px = make_proxy("reads-pruner")
        try:
            read(px, "SELECT doubled FROM item")
            e2e_common.poll(lambda: counted(instance="long-gone") == 1, timeout=DEADLINE,
                            what="the row past the window to be pruned")
            self.assertEqual(direct('SELECT "minute" > now() - interval \'86400 seconds 1 minute\' '
                                    'FROM "seedproxy"."read_counts" WHERE "instance" = \'long-gone\''),
                             [(True,)])
        finally:
            e2e_common.finish(px)


if __name__ == "__main__":
    e2e_common.main()
