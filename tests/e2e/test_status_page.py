#!/usr/bin/python3
"""The status page at / of the metrics port, as a real browser draws it (docs/metrics.md).

Three seeds on one 20,000-row table, each in another phase: `subtotal` stays virtual (policy
never) and has been read, `tax` is materialized (MATERIALIZE, polled until done), `weight` is
paused in the middle of its backfill (small batches, PAUSE once a third is done). Headless
Chromium loads the page, lets its script fetch /status.json and render, and dumps the DOM; the
test reads the seed rows (phase, reads in window) and the materialization (progress bar, percent,
paused) from it, then takes a screenshot.

Chromium is required: without it the test fails, unless SEEDPROXY_E2E_NO_BROWSER=1, which skips
the browser tests (the /status.json checks still run). SEEDPROXY_STATUS_SCREENSHOT=path keeps a
copy of the screenshot (docs/status-page.png is made that way).
"""

import json
import os
import shutil
import signal
import subprocess
import tempfile
import unittest
import urllib.request
from html.parser import HTMLParser

import e2e_common
import materialize_common as mc
import psycopg2

from harness.pgcluster import PgCluster, free_port

DB = "shop"
ROWS = 20_000
SUBTOTAL_READS = 25  # statements reading the virtual seed
TAX_READS = 7        # statements reading `tax` before it is materialized
PAUSE_AT = 0.3       # the fraction of `weight`'s backfill after which it is paused
BROWSER_TIMEOUT = 60
SEEDS = [
    {"database": DB, "entity": "public.orders", "attribute": "subtotal", "type": "integer",
     "expression": "price * quantity", "materialize": {"policy": "never"}},
    {"database": DB, "entity": "public.orders", "attribute": "tax", "type": "integer",
     "expression": "price * quantity / 5",
     "materialize": {"policy": "threshold", "reads": 100, "window_seconds": 86400}},
    {"database": DB, "entity": "public.orders", "attribute": "weight", "type": "integer",
     "expression": "quantity * 3 + 5", "materialize": {"policy": "manual"}},
]
# Batches of at most 50 rows with a pause twice their length: `weight` is caught mid-backfill.
SLOW_BACKFILL = {"max_batch_rows": 50, "initial_batch_rows": 20, "target_batch_seconds": 0.02,
                 "pause_ratio": 2}

pg: PgCluster = None
px = None
metrics_port = 0


def chromium() -> str | None:
    """The browser: SEEDPROXY_CHROMIUM when set (a path or a name on PATH), else chromium."""
    named = os.environ.get("SEEDPROXY_CHROMIUM")
    if named:
        return shutil.which(named)
    return shutil.which("chromium") or shutil.which("chromium-browser")


def no_browser() -> bool:
    return os.environ.get("SEEDPROXY_E2E_NO_BROWSER") == "1"


def url(path: str = "/") -> str:
    return f"http://127.0.0.1:{metrics_port}{path}"


def status() -> dict:
    with urllib.request.urlopen(url("/status.json"), timeout=5) as response:
        return json.loads(response.read())


def seed_of(document: dict, attribute: str) -> dict | None:
    return next((s for s in document["seeds"] if s["attribute"] == attribute), None)


def job_of(document: dict, attribute: str) -> dict | None:
    return next((m for m in document["materializations"] if m["attribute"] == attribute), None)


def failed(row: dict) -> bool:
    """Stops a wait at once when the engine reports an error for the materialization."""
    if row.get("error"):
        raise AssertionError(f"{row['attribute']}: the materialization failed: {row}")
    return False


def setUpModule():
    global pg, px, metrics_port
    if e2e_common.direct_mode():
        raise unittest.SkipTest("the status page is the proxy's own")
    if chromium() is None and not no_browser():
        raise AssertionError("chromium is not installed: the status page test drives a headless "
                             "browser (apt-get install chromium, or run scripts/setup.sh); set "
                             "SEEDPROXY_E2E_NO_BROWSER=1 to run only the /status.json checks")
    pg = PgCluster().start()
    with pg.connect() as conn:
        conn.execute(f"CREATE DATABASE {DB}")
    with pg.connect(DB) as conn:
        conn.execute("CREATE TABLE orders (id int PRIMARY KEY, price int NOT NULL, "
                     "quantity int NOT NULL)")
        conn.execute("INSERT INTO orders SELECT i, 1 + i %% 97, 1 + i %% 7 "
                     "FROM generate_series(1, %s) AS i", (ROWS,))
        conn.execute("ANALYZE orders")  # rows_total comes from pg_class.reltuples
    metrics_port = free_port()
    px = mc.make_proxy(pg.port, SEEDS, instance="status-page-test",
                       materialization=SLOW_BACKFILL,
                       metrics={"host": "127.0.0.1", "port": metrics_port})
    # Only `weight` is read before the counted reads below (an attempt may count even if it fails).
    e2e_common.wait_until_readable(px, DB, "SELECT weight FROM orders WHERE id = 1",
                                   "the seeds to be readable")

    # Reads through the proxy (simple protocol: one read per statement).
    conn = psycopg2.connect(px.dsn(DB))
    conn.autocommit = True
    with conn.cursor() as cur:
        for i in range(SUBTOTAL_READS):
            cur.execute("SELECT subtotal FROM orders WHERE id = %s", (i + 1,))
        for i in range(TAX_READS):
            cur.execute("SELECT tax FROM orders WHERE id = %s", (i + 1,))
    conn.close()

    # tax: materialized to the end.
    assert mc.command(px, "MATERIALIZE orders.tax") == ["MATERIALIZE"]
    mc.wait_step(px, "tax", "materialized", timeout=120)
    # weight: started, then paused once PAUSE_AT of it is done.
    assert mc.command(px, "MATERIALIZE orders.weight") == ["MATERIALIZE"]
    mc.wait_materialization(
        px, "weight", lambda r: not failed(r) and r["step"] == "backfilling"
        and mc.rows_done(r) >= PAUSE_AT * ROWS,
        120, f"step backfilling with rows_done >= {int(PAUSE_AT * ROWS)}")
    mc.pause(px, "orders.weight", "weight")

    # The page draws /status.json: wait until it says all of that (read counts are flushed).
    def settled():
        document = status()
        seeds = {a: seed_of(document, a) for a in ("subtotal", "tax", "weight")}
        job = job_of(document, "weight")
        return (all(seeds.values()) and seeds["subtotal"]["phase"] == "virtual"
                and seeds["subtotal"]["reads_in_window"] == SUBTOTAL_READS
                and seeds["tax"]["phase"] == "materialized"
                and seeds["tax"]["reads_in_window"] == TAX_READS
                and seeds["weight"]["phase"] == "materializing"
                and job is not None and job["paused"] and job["step"] == "backfilling")
    try:
        e2e_common.poll(settled, 30, 0.1, "/status.json to show subtotal virtual with its reads, "
                        "tax materialized and weight paused in its backfill")
    except AssertionError as e:
        document = status()
        raise AssertionError(f"{e}; last seeds: {document['seeds']}; last materializations: "
                             f"{document['materializations']}") from None


def tearDownModule():
    e2e_common.stop(px, pg)


# ---------------------------------------------------------------------------------------------
# the browser
def run_chromium(*args: str) -> subprocess.CompletedProcess:
    """Headless Chromium with a throw-away profile; killed (its whole process group) on timeout."""
    with tempfile.TemporaryDirectory(prefix="seedproxy-chromium-") as profile:
        command = [chromium(), "--headless=new", "--no-sandbox", "--disable-gpu",
                   "--disable-dev-shm-usage", "--no-first-run", "--no-default-browser-check",
                   "--disable-extensions", "--disable-background-networking",
                   f"--user-data-dir={profile}", "--virtual-time-budget=5000", *args]
        proc = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, start_new_session=True)
        try:
            out, err = proc.communicate(timeout=BROWSER_TIMEOUT)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            out, err = proc.communicate()
            raise AssertionError(f"chromium did not finish within {BROWSER_TIMEOUT}s: {command}\n"
                                 f"{err.decode(errors='replace')[-3000:]}")
        if proc.returncode != 0:
            raise AssertionError(f"chromium exited with {proc.returncode}: {command}\n"
                                 f"{err.decode(errors='replace')[-3000:]}")
        return subprocess.CompletedProcess(command, proc.returncode, out.decode(errors="replace"),
                                           err.decode(errors="replace"))


class Node:
    def __init__(self, tag: str, attrs: dict, parent: "Node | None"):
        self.tag, self.attrs, self.parent, self.children = tag, attrs, parent, []

    def text(self) -> str:
        return "".join(c if isinstance(c, str) else c.text() for c in self.children)

    def classes(self) -> set:
        return set((self.attrs.get("class") or "").split())

    def find_all(self, predicate) -> list:
        found = []
        for child in self.children:
            if isinstance(child, Node):
                if predicate(child):
                    found.append(child)
                found.extend(child.find_all(predicate))
        return found

    def by_class(self, name: str) -> list:
        return self.find_all(lambda n: name in n.classes())

    def one_by_class(self, name: str) -> "Node":
        nodes = self.by_class(name)
        assert len(nodes) == 1, f"expected one .{name} in <{self.tag} {self.attrs}>, found {len(nodes)}"
        return nodes[0]


class Dom(HTMLParser):
    """A tree of the dumped DOM, enough to look elements up by class and attribute."""
    VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source",
            "track", "wbr"}

    def __init__(self, html: str):
        super().__init__(convert_charrefs=True)
        self.root = Node("#document", {}, None)
        self.current = self.root
        self.feed(html)
        self.close()

    def handle_starttag(self, tag, attrs):
        node = Node(tag, dict(attrs), self.current)
        self.current.children.append(node)
        if tag not in self.VOID:
            self.current = node

    def handle_startendtag(self, tag, attrs):
        self.current.children.append(Node(tag, dict(attrs), self.current))

    def handle_endtag(self, tag):
        node = self.current
        while node is not self.root and node.tag != tag:
            node = node.parent
        if node is not self.root:
            self.current = node.parent

    def handle_data(self, data):
        self.current.children.append(data)


def percent_of(text: str) -> float:
    text = text.strip()
    assert text.endswith("%"), f"not a percentage: {text!r}"
    return float(text[:-1])


def bar_width(bar: Node) -> float:
    """The width of a progress bar's fill, in percent, from its inline style."""
    fill = [c for c in bar.children if isinstance(c, Node)]
    assert fill, "a progress bar without its fill"
    style = dict(part.split(":", 1) for part in fill[0].attrs.get("style", "").split(";") if ":" in part)
    return percent_of(style.get("width", "").strip())


@unittest.skipIf(no_browser(), "SEEDPROXY_E2E_NO_BROWSER=1")
class StatusPageInBrowser(unittest.TestCase):
    dom: Dom = None

    @classmethod
    def setUpClass(cls):
        result = run_chromium("--dump-dom", url("/"))
        cls.html = result.stdout
        cls.dom = Dom(result.stdout)

    def seed_row(self, attribute: str) -> Node:
        rows = self.dom.root.find_all(
            lambda n: n.tag == "tr" and n.attrs.get("data-seed", "").endswith("." + attribute))
        self.assertEqual(len(rows), 1, f"seed rows for {attribute}: {len(rows)}\n{self.html[-4000:]}")
        return rows[0]

    def test_1_page_has_rendered(self):
        bodies = self.dom.root.find_all(lambda n: n.tag == "body")
        self.assertEqual(len(bodies), 1)
        self.assertEqual(bodies[0].attrs.get("data-loaded"), "true",
                         "the page's script has not rendered /status.json (body data-loaded unset):\n"
                         + self.html[-4000:])
        self.assertEqual(self.dom.root.find_all(lambda n: n.attrs.get("id") == "instance")[0].text(),
                         "status-page-test")
        self.assertEqual(self.dom.root.find_all(lambda n: n.attrs.get("id") == "health")[0].text(),
                         "healthy")
        self.assertNotIn("Loading", self.dom.root.find_all(lambda n: n.tag == "main")[0].text())

    def test_2_each_seed_shows_its_phase_and_reads(self):
        expected = {"subtotal": "virtual", "tax": "materialized", "weight": "materializing"}
        for attribute, phase in expected.items():
            row = self.seed_row(attribute)
            self.assertEqual(row.attrs.get("data-phase"), phase, attribute)
            badge = row.find_all(lambda n: "badge" in n.classes() and "phase" in n.classes())
            self.assertEqual(len(badge), 1, attribute)
            self.assertEqual(badge[0].text().strip(), phase, attribute)
            self.assertIn(phase, badge[0].classes(), attribute)
        reads = {a: int(self.seed_row(a).one_by_class("reads").by_class("count")[0].text()
                        .replace(",", "")) for a in expected}
        self.assertEqual(reads["subtotal"], SUBTOTAL_READS)
        self.assertEqual(reads["tax"], TAX_READS)
        self.assertGreaterEqual(reads["weight"], 1)  # the readiness probe
        # The threshold seed shows its threshold and window; the others their policy.
        self.assertIn("/ 100 in 1d", self.seed_row("tax").one_by_class("reads").text())
        self.assertIn("policy never", self.seed_row("subtotal").one_by_class("reads").text())
        self.assertIn("policy manual", self.seed_row("weight").one_by_class("reads").text())

    def test_3_column_progress_per_seed(self):
        self.assertEqual(self.seed_row("tax").one_by_class("column").text().strip(), "100%")
        self.assertEqual(self.seed_row("subtotal").one_by_class("column").text().strip(), "–")
        weight = percent_of(self.seed_row("weight").one_by_class("column").text())
        self.assertGreater(weight, 0)
        self.assertLess(weight, 100)

    def test_4_paused_materialization_has_a_progress_bar(self):
        jobs = self.dom.root.find_all(lambda n: "job" in n.classes())
        self.assertEqual([j.attrs.get("data-seed") for j in jobs], [f"{DB} · public.orders.weight"],
                         "only the running materialization is listed (tax has finished)")
        job = jobs[0]
        self.assertIn("paused", job.classes())
        self.assertIn("paused", job.one_by_class("step").text())
        self.assertIn("backfilling", job.one_by_class("step").text())
        percent = percent_of(job.one_by_class("percent").text())
        self.assertGreaterEqual(percent, PAUSE_AT * 100 - 5)  # rows_total is an estimate
        self.assertLess(percent, 100)
        self.assertAlmostEqual(bar_width(job.one_by_class("bar")), percent, delta=0.1)
        document = status()
        rows_done = job_of(document, "weight")["rows_done"]
        self.assertEqual(int(job.one_by_class("rows-done").text().replace(",", "")), rows_done)
        self.assertEqual(job.one_by_class("eta").text(), "paused")
        self.assertEqual(job.by_class("error"), [])

    def test_5_screenshot(self):
        with tempfile.TemporaryDirectory(prefix="seedproxy-shot-") as directory:
            path = os.path.join(directory, "status-page.png")
            run_chromium("--hide-scrollbars", "--window-size=1280,640", f"--screenshot={path}", url("/"))
            self.assertTrue(os.path.exists(path), "chromium wrote no screenshot")
            with open(path, "rb") as f:
                png = f.read()
            self.assertEqual(png[:8], b"\x89PNG\r\n\x1a\n")
            width, height = int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")
            self.assertEqual((width, height), (1280, 640))
            # A blank 1280x640 PNG compresses to a few KiB; the drawn page is far larger.
            self.assertGreater(len(png), 30_000, f"screenshot is only {len(png)} bytes")
            keep = os.environ.get("SEEDPROXY_STATUS_SCREENSHOT")
            if keep:
                shutil.copyfile(path, keep)


class StatusDocument(unittest.TestCase):
    """What the page draws, without a browser (also runs with SEEDPROXY_E2E_NO_BROWSER=1)."""

    def test_status_json(self):
        document = status()
        self.assertEqual(seed_of(document, "subtotal")["threshold"]["policy"], "never")
        self.assertEqual(seed_of(document, "subtotal")["reads_in_window"], SUBTOTAL_READS)
        job = job_of(document, "weight")
        self.assertTrue(job["paused"])
        self.assertGreater(job["fraction"], 0)
        self.assertLess(job["fraction"], 1)
        self.assertEqual(job["error"], "")
        self.assertIsNone(job["eta_seconds"], "no ETA while paused")
        self.assertIsNone(job_of(document, "tax"), "a finished materialization is not listed")


if __name__ == "__main__":
    e2e_common.main()
