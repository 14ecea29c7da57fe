#!/usr/bin/python3
"""PostgreSQL 15's own regression suite, run directly and through seedproxy, outputs compared byte for byte.

    SEEDPROXY_BIN=build/proxy/seedproxy /usr/bin/python3 tests/regress/run_suite.py --mode passthrough
    SEEDPROXY_BIN=... /usr/bin/python3 tests/regress/run_suite.py --mode seeded [--only join,union]

One PostgreSQL 15 cluster (initdb -E UTF8 --locale=C, tests/harness/pgcluster.py). Every file of
parallel_schedule runs in order, one at a time, with psql the way pg_regress runs it (same flags and
environment), first straight into database `regression`, then - after that database is dropped and
made afresh - through seedproxy into a new `regression`. The twins run one after the other, not side
by side, so that both have the name the outputs print (foreign_data, dependency).

Modes:
- passthrough: no seeds. Any difference fails.
- seeded: right after test_setup, seeds on tenk1, onek, int4_tbl and int8_tbl are declared through
  seedproxy (configuration reload), while the direct twin gets the same attributes, at the same point,
  as real `GENERATED ALWAYS AS (...) STORED` columns. Both sides then run the same VACUUM as
  test_setup did for those tables.

Each output file that differs is split into statements (psql_script.py); every statement whose
output differs is looked up in expected_differences.txt (known_differences.py). The run fails on a
difference not listed there, and reports listed entries that no longer differ. Outputs, unified
diffs, a per-statement report and ready-to-edit entries for the differences found are written to
--work-dir (default: a temporary folder, kept only when the run fails).

Exit status: 0 pass, 1 unexplained differences or stale list entries, 2 the run itself failed.
"""

from __future__ import annotations

import argparse
import difflib
import json
import os
import pwd
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, ".."))  # tests/, for harness

import fetch_suite  # noqa: E402
import known_differences  # noqa: E402
from psql_script import Script  # noqa: E402

from harness.pgcluster import PG_BIN, PgCluster, PgClusterError  # noqa: E402
from harness.proxy import Proxy, ProxyError, default_binary  # noqa: E402

DATABASE = "regression"
EXPECTED_LIST = os.path.join(HERE, "expected_differences.txt")
PSQL = os.path.join(PG_BIN, "psql")
PG_PKGLIBDIR = os.environ.get("SEEDPROXY_PG_PKGLIBDIR", "/usr/lib/postgresql/15/lib")
SPI_MODULES = ["autoinc.so", "refint.so"]

# The seeds of the seeded mode: (table, attribute, type, expression), in declaration order, which is
# also the order of the direct twin's ADD COLUMNs (so `*` lists them alike). Different shapes and types;
# names no regression file uses, so what gets exercised is `*`, whole-row references and DDL.
SEEDS = [
    ("tenk1", "seed_sum", "integer", "unique1 + unique2"),
    ("tenk1", "seed_s4", "text", "lower(string4::text)"),
    ("onek", "seed_ratio", "numeric(10,2)", "hundred / 7.0"),
    ("int4_tbl", "seed_sign", "text", "CASE WHEN f1 < 0 THEN 'neg' WHEN f1 = 0 THEN 'zero' ELSE 'pos' END"),
    ("int4_tbl", "seed_double", "bigint", "f1::bigint * 2"),
    ("int8_tbl", "seed_diff", "numeric", "q1::numeric - q2"),
    ("int8_tbl", "seed_txt", "text", "q1::text || ':' || q2::text"),
]
# What test_setup did to those tables after loading them; both twins repeat it after the seeds.
AFTER_SEEDS_SQL = ["VACUUM ANALYZE tenk1", "VACUUM ANALYZE onek", "VACUUM int4_tbl", "VACUUM int8_tbl"]
SEED_AFTER_FILE = "test_setup"


class RunError(RuntimeError):
    pass


def log(msg: str) -> None:
    print(f"run_suite: {msg}", file=sys.stderr, flush=True)


def parse_schedule(path: str) -> tuple[list[str], set[str]]:
    """The files in order, and those whose failures pg_regress ignores (`ignore: random`)."""
    names: list[str] = []
    ignored: set[str] = set()
    with open(path) as f:
        for number, raw in enumerate(f, 1):
            line = raw.split("#", 1)[0].strip()
            if not line:
                continue
            kind, sep, rest = line.partition(":")
            if not sep or kind.strip() not in ("test", "ignore"):
                raise RunError(f"{path}:{number}: cannot read schedule line {raw.strip()!r}")
            if kind.strip() == "test":
                names.extend(rest.split())
            else:
                ignored.update(rest.split())
    if not names:
        raise RunError(f"{path}: no tests in the schedule")
    return names, ignored


def _as_root() -> bool:
    return os.geteuid() == 0


class Side:
    """One twin: where psql connects, where its outputs go, how long its files took."""

    def __init__(self, name: str, port: int, out_dir: str):
        self.name = name
        self.port = port
        self.out_dir = out_dir
        self.seconds = 0.0
        self.file_seconds: dict[str, float] = {}
        os.makedirs(out_dir, exist_ok=True)

    @staticmethod
    def from_timings(work: str, tests: list[str]) -> tuple["Side", "Side"]:
        """The two sides of an earlier run in `work` (--compare-only), times from its timings.tsv."""
        sides = (Side("direct", 0, os.path.join(work, "direct")), Side("proxied", 0, os.path.join(work, "proxied")))
        with open(os.path.join(work, "timings.tsv")) as f:
            for row in f.read().splitlines()[1:]:
                test, *secs = row.split("\t")
                for side, s in zip(sides, secs):
                    side.file_seconds[test] = float(s)
                    side.seconds += float(s)
        for side in sides:
            missing = [t for t in tests if t not in side.file_seconds]
            if missing:
                raise RunError(f"{work} has no {side.name} output for {', '.join(missing[:5])}")
        return sides


class Runner:
    def __init__(self, args, suite: str):
        self.args = args
        self.suite = suite
        self.work = os.path.abspath(args.work_dir)
        # The server reads data/ and regress.so and writes results/ under these (COPY ... FROM/TO a
        # file), so they live in a folder the postgres OS user can reach, whoever runs this script.
        self.srv = tempfile.mkdtemp(prefix="seedproxy-regress-")
        os.chmod(self.srv, 0o755)
        self.srcdir = os.path.join(self.srv, "src")
        shutil.copytree(suite, self.srcdir, ignore=shutil.ignore_patterns("COMPLETE", "*.tmp"))
        # triggers.sql loads contrib/spi's autoinc and refint from the same folder as regress.so
        # (pg_regress's build puts them there); the installed server ships them.
        for module in SPI_MODULES:
            path = os.path.join(PG_PKGLIBDIR, module)
            if not os.path.isfile(path):
                raise RunError(f"{path} is missing: it comes with the postgresql-15 package")
            shutil.copy(path, self.srcdir)
        self.builddir = os.path.join(self.srv, "build")
        os.makedirs(os.path.join(self.builddir, "results"))
        self._share_with_postgres()
        self.pg: PgCluster | None = None
        self.proxy: Proxy | None = None

    def _share_with_postgres(self) -> None:
        for root, dirs, files in os.walk(self.srv):
            os.chmod(root, 0o755)
            for f in files:
                os.chmod(os.path.join(root, f), 0o644 if not f.endswith(".so") else 0o755)
        if _as_root():
            pw = pwd.getpwnam("postgres")
            for root, dirs, files in os.walk(self.builddir):
                os.chown(root, pw.pw_uid, pw.pw_gid)
        else:
            os.chmod(os.path.join(self.builddir, "results"), 0o777)

    def cleanup(self) -> None:
        """Stops everything; keeps the proxy's and the server's logs in the work folder."""
        if self.proxy is not None:
            self.proxy.stop()
            shutil.copy(self.proxy.log_path, os.path.join(self.work, "seedproxy.log"))
            self.proxy.cleanup()
        if self.pg is not None:
            if self.pg.base_dir and os.path.exists(self.pg.log_file):
                shutil.copy(self.pg.log_file, os.path.join(self.work, "postgres.log"))
            self.pg.stop()
        shutil.rmtree(self.srv, ignore_errors=True)

    # -- psql as pg_regress runs it --------------------------------------------------------------
    def psql_env(self, port: int, test: str) -> dict:
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("PG", "LC_")) and k not in ("LANG", "LANGUAGE")}
        env.update({
            "PGHOST": "127.0.0.1", "PGPORT": str(port), "PGUSER": "postgres", "PGAPPNAME": f"pg_regress/{test}",
            "PG_ABS_SRCDIR": self.srcdir, "PG_ABS_BUILDDIR": self.builddir, "PG_LIBDIR": self.srcdir,
            "PG_DLSUFFIX": ".so", "PGTZ": "America/Los_Angeles", "PGDATESTYLE": "Postgres, MDY",
            "PGOPTIONS": "-c intervalstyle=postgres_verbose", "LANG": "C", "LC_MESSAGES": "C",
        })
        return env

    def run_file(self, side: Side, test: str) -> None:
        infile = os.path.join(self.srcdir, "sql", f"{test}.sql")
        if not os.path.isfile(infile):
            raise RunError(f"schedule names {test}, but {infile} does not exist")
        outfile = os.path.join(side.out_dir, f"{test}.out")
        started = time.monotonic()
        with open(infile, "rb") as fin, open(outfile, "wb") as fout:
            try:
                proc = subprocess.run([PSQL, "-X", "-a", "-q", "-d", DATABASE, "-v", "HIDE_TABLEAM=on",
                                       "-v", "HIDE_TOAST_COMPRESSION=on"], stdin=fin, stdout=fout,
                                      stderr=subprocess.STDOUT, env=self.psql_env(side.port, test),
                                      cwd=self.builddir, timeout=self.args.file_timeout)
            except subprocess.TimeoutExpired:
                raise RunError(f"{side.name}: {test}.sql did not finish within {self.args.file_timeout}s "
                               f"(partial output in {outfile})") from None
        side.file_seconds[test] = time.monotonic() - started
        side.seconds += side.file_seconds[test]
        if proc.returncode not in (0, 1, 3):  # 2: connection lost (a crash), as pg_regress would see it
            log(f"warning: {side.name}: psql exited with {proc.returncode} on {test}.sql")
        if self.proxy is not None and side.name == "proxied" and not self.proxy.running():
            raise RunError(f"seedproxy exited ({self.proxy.proc.returncode}) during {test}.sql:\n"
                           f"{self.proxy.log_text()[-6000:]}")

    # -- databases ------------------------------------------------------------------------------
    def create_database(self) -> None:
        """What pg_regress does before the first file."""
        with self.pg.connect() as conn:
            conn.execute(f'CREATE DATABASE "{DATABASE}" TEMPLATE=template0')
            for setting, value in (("lc_messages", "C"), ("lc_monetary", "C"), ("lc_numeric", "C"),
                                   ("lc_time", "C"), ("bytea_output", "hex"),
                                   ("timezone_abbreviations", "Default")):
                conn.execute(f'ALTER DATABASE "{DATABASE}" SET {setting} TO \'{value}\'')

    def drop_database(self) -> None:
        with self.pg.connect() as conn:
            conn.execute(f'DROP DATABASE "{DATABASE}" WITH (FORCE)')

    # -- seeds ----------------------------------------------------------------------------------
    def add_generated_columns(self) -> None:
        with self.pg.connect(DATABASE) as conn:
            for table, attr, typ, expr in SEEDS:
                conn.execute(f"ALTER TABLE public.{table} ADD COLUMN {attr} {typ} GENERATED ALWAYS AS ({expr}) STORED")
            for sql in AFTER_SEEDS_SQL:
                conn.execute(sql)

    def declare_seeds(self) -> None:
        px = self.proxy
        px.config["seeds"] = [{"database": DATABASE, "entity": f"public.{t}", "attribute": a, "type": ty,
                               "expression": e, "materialize": {"policy": "never"}} for t, a, ty, e in SEEDS]
        with open(px.config_path, "w") as f:
            json.dump(px.config, f, indent=2)
        env = self.psql_env(px.port, "reload")
        proc = subprocess.run([PSQL, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", "seedproxy", "-c", "RELOAD"],
                              stdin=subprocess.DEVNULL, capture_output=True, text=True, env=env, timeout=120)
        if proc.returncode != 0:
            raise RunError(f"RELOAD with the seeds failed: {proc.stdout}{proc.stderr}\n{px.log_text()[-4000:]}")
        # RELOAD answers once the registry is written; sessions see the seeds once the proxy has
        # reloaded the database (notification). Poll from new sessions until every seed reads.
        probe = "; ".join(f"SELECT {a} FROM public.{t} LIMIT 0" for t, a, _, _ in SEEDS)
        deadline = time.monotonic() + 30
        while True:
            proc = subprocess.run([PSQL, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", DATABASE, "-c", probe],
                                  stdin=subprocess.DEVNULL, capture_output=True, text=True, env=env, timeout=60)
            if proc.returncode == 0:
                break
            if time.monotonic() > deadline:
                raise RunError(f"the seeds are not readable through the proxy 30s after RELOAD: "
                               f"{proc.stderr.strip()}\n{px.log_text()[-4000:]}")
            time.sleep(0.05)
        for sql in AFTER_SEEDS_SQL:
            proc = subprocess.run([PSQL, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", DATABASE, "-c", sql],
                                  stdin=subprocess.DEVNULL, capture_output=True, text=True, env=env, timeout=120)
            if proc.returncode != 0:
                raise RunError(f"{sql} through the proxy failed: {proc.stderr.strip()}")

    # -- the run --------------------------------------------------------------------------------
    def start_proxy(self) -> Proxy:
        return Proxy(self.args.binary, self.pg.port,
                     admin={"users": ["postgres"]},
                     reload={"watch_file": False},
                     # no engine, and read counts written only at the end: no background writes
                     # into the database under test that could change what a file prints
                     materialization={"enabled": False, "reads_flush_seconds": 86400},
                     log={"level": "info"})

    def run_side(self, side: Side, tests: list[str], seeded: bool, declare) -> None:
        log(f"{side.name}: {len(tests)} files on port {side.port}")
        for test in tests:
            self.run_file(side, test)
            if seeded and test == SEED_AFTER_FILE:
                declare()

    def run(self, tests: list[str]) -> tuple[Side, Side]:
        seeded = self.args.mode == "seeded"
        self.pg = PgCluster()
        self.pg.start()
        log(f"PostgreSQL on port {self.pg.port}; suite in {self.srcdir}")
        direct = Side("direct", self.pg.port, os.path.join(self.work, "direct"))
        self.create_database()
        self.run_side(direct, tests, seeded, self.add_generated_columns)
        self.drop_database()
        self.create_database()
        self.proxy = self.start_proxy()
        proxied = Side("proxied", self.proxy.port, os.path.join(self.work, "proxied"))
        self.run_side(proxied, tests, seeded, self.declare_seeds)
        with open(os.path.join(self.work, "timings.tsv"), "w") as f:
            f.write("file\tdirect_s\tproxied_s\n")
            for test in tests:
                f.write(f"{test}\t{direct.file_seconds[test]:.3f}\t{proxied.file_seconds[test]:.3f}\n")
        return direct, proxied


# -- comparing ------------------------------------------------------------------------------------
def read(path: str) -> bytes:
    with open(path, "rb") as f:
        return f.read()


def compare(work: str, srcdir: str, tests: list[str], mode: str):
    """Per differing file: (hunks, [Difference], report text)."""
    diffs_dir = os.path.join(work, "diffs")
    os.makedirs(diffs_dir, exist_ok=True)
    files: dict[str, tuple[int, list]] = {}
    report: list[str] = []
    for test in tests:
        a = read(os.path.join(work, "direct", f"{test}.out"))
        b = read(os.path.join(work, "proxied", f"{test}.out"))
        if a == b:
            continue
        ta = a.decode("utf-8", "surrogateescape")
        tb = b.decode("utf-8", "surrogateescape")
        udiff = list(difflib.unified_diff(ta.split("\n"), tb.split("\n"), f"direct/{test}.out",
                                          f"proxied/{test}.out", lineterm=""))
        with open(os.path.join(diffs_dir, f"{test}.diff"), "w", encoding="utf-8", errors="surrogateescape") as f:
            f.write("\n".join(udiff) + "\n")
        hunks = sum(1 for ln in udiff if ln.startswith("@@"))
        with open(os.path.join(srcdir, "sql", f"{test}.sql"), encoding="utf-8", errors="surrogateescape") as f:
            script = Script(f.read())
        out_a, out_b = script.outputs(ta), script.outputs(tb)
        found: list[known_differences.Difference] = []
        for idx in sorted(set(out_a) | set(out_b)):
            if out_a.get(idx, []) == out_b.get(idx, []):
                continue
            if idx < 0:
                d = known_differences.Difference(test, None, "(output before the first statement)")
            else:
                d = known_differences.Difference(test, script.statements[idx].line, script.head(idx))
            found.append(d)
            report.append(f"=== {d.key}\n--- statement\n"
                          f"{script.statement_text(idx, 40) if idx >= 0 else ''}\n--- direct\n"
                          + "\n".join(out_a.get(idx, [])) + "\n--- proxied\n" + "\n".join(out_b.get(idx, [])) + "\n")
        if not found:
            found.append(known_differences.Difference(test, None, "(the files differ; no statement could be blamed)"))
        files[test] = (hunks, found)
    with open(os.path.join(work, "statements.txt"), "w", encoding="utf-8", errors="surrogateescape") as f:
        f.write("\n".join(report))
    with open(os.path.join(work, "differences.txt"), "w", encoding="utf-8", errors="surrogateescape") as f:
        f.write(f"[{mode}]\n")
        for test, (_, found) in files.items():
            for d in found:
                f.write(known_differences.entry_line(d) + "\n")
    return files


def matches_postgres_expected(srcdir: str, work: str, tests: list[str]) -> list[str]:
    """Direct outputs that match none of PostgreSQL's expected/NAME.out, NAME_1.out, ... (information)."""
    misses = []
    for test in tests:
        out = read(os.path.join(work, "direct", f"{test}.out"))
        candidates = [os.path.join(srcdir, "expected", f"{test}.out")]
        candidates += [os.path.join(srcdir, "expected", f"{test}_{k}.out") for k in range(1, 10)]
        if not any(os.path.isfile(c) and read(c) == out for c in candidates):
            misses.append(test)
    return misses


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--mode", choices=("passthrough", "seeded"), required=True)
    ap.add_argument("--binary", help="seedproxy binary (default: $SEEDPROXY_BIN)")
    ap.add_argument("--cache-dir", default=fetch_suite.default_cache_dir(), help="suite cache (default: %(default)s)")
    ap.add_argument("--suite-dir", help="use this src/test/regress copy (with regress.so) instead of fetching")
    ap.add_argument("--expected", default=EXPECTED_LIST, help="known differences (default: %(default)s)")
    ap.add_argument("--work-dir", help="outputs, diffs and reports (default: a temp folder, kept on failure)")
    ap.add_argument("--only", help="comma-separated files to run (test_setup always runs first); no list check")
    ap.add_argument("--file-timeout", type=float, default=300, help="seconds per file per side (default: %(default)s)")
    ap.add_argument("--compare-only", action="store_true",
                    help="run nothing: compare the outputs an earlier run left in --work-dir again")
    args = ap.parse_args()
    if args.compare_only and not args.work_dir:
        ap.error("--compare-only needs --work-dir")

    started = time.monotonic()
    own_work = args.work_dir is None
    if own_work:
        args.work_dir = tempfile.mkdtemp(prefix=f"pg-regress-{args.mode}-")
    elif not args.compare_only:
        shutil.rmtree(args.work_dir, ignore_errors=True)
        os.makedirs(args.work_dir)
    runner = None
    try:
        entries = known_differences.parse(args.expected, args.mode)
        suite = args.suite_dir or fetch_suite.ensure_suite(args.cache_dir)
        tests, ignored = parse_schedule(os.path.join(suite, "parallel_schedule"))
        if args.only:
            wanted = [t.strip() for t in args.only.split(",") if t.strip()]
            unknown = [t for t in wanted if t not in tests]
            if unknown:
                raise RunError(f"--only names files not in the schedule: {', '.join(unknown)}")
            tests = [t for t in tests if t == SEED_AFTER_FILE or t in wanted]
        if args.compare_only:
            direct, proxied = Side.from_timings(args.work_dir, tests)
        else:
            args.binary = args.binary or default_binary()
            runner = Runner(args, suite)
            direct, proxied = runner.run(tests)
        files = compare(args.work_dir, suite, tests, args.mode)
        not_expected = matches_postgres_expected(suite, args.work_dir, tests)
    except (RunError, ProxyError, PgClusterError, fetch_suite.FetchError, known_differences.ListError, OSError,
            subprocess.SubprocessError) as e:
        log(f"error: {e}")
        log(f"outputs so far in {args.work_dir}")
        return 2
    finally:
        if runner is not None:
            runner.cleanup()

    # Like pg_regress, a difference in a file the schedule marks `ignore:` (random) is reported only.
    diffs = [d for test, (_, found) in files.items() if test not in ignored for d in found]
    explained, unexplained, problems = known_differences.match(entries, diffs)
    stale = [] if args.only else [e for e in entries if not e.matched]

    print(f"\n== PostgreSQL regression suite through seedproxy, mode {args.mode} ==")
    try:
        with open(os.path.join(suite, "COMPLETE")) as f:
            print(f"suite: {f.read().strip()}")
    except OSError:
        print(f"suite: {suite}")
    print(f"files run: {len(tests)} per side; direct {direct.seconds:.1f}s, through seedproxy {proxied.seconds:.1f}s")
    slowest = sorted(tests, key=lambda t: proxied.file_seconds[t] - direct.file_seconds[t], reverse=True)[:5]
    print("most time added by the proxy: " + ", ".join(
        f"{t} {direct.file_seconds[t]:.1f}s -> {proxied.file_seconds[t]:.1f}s" for t in slowest))
    print(f"direct outputs matching PostgreSQL's expected files: {len(tests) - len(not_expected)}/{len(tests)}"
          + (f" (not: {' '.join(not_expected)})" if not_expected and len(not_expected) <= 20 else ""))
    print(f"files differing: {len(files)}; statements differing: {len(diffs)} "
          f"({len(explained)} listed, {len(unexplained)} not listed)")
    for test, (hunks, found) in files.items():
        listed = sum(1 for d, _ in explained if d.file == test)
        print(f"  {test:28} {hunks:4} hunk(s) {len(found):4} statement(s)  {listed} listed")
    for test in sorted(ignored & set(files)):
        print(f"IGNORED (the schedule says ignore: {test}): {len(files[test][1])} statement(s) differ")
    for d in unexplained:
        print(f"NOT LISTED: {known_differences.entry_line(d)}")
    for p in problems:
        print(f"LIST: {p}")
    for e in stale:
        print(f"NO LONGER DIFFERS (remove it from the list): {e.where}: {e.key} {e.head}  # {e.cls}: {e.reason}")
    ok = not unexplained and not problems and not stale
    if ok and own_work:
        shutil.rmtree(args.work_dir, ignore_errors=True)
    else:
        print(f"outputs, diffs (diffs/), per-statement report (statements.txt) and entries for every "
              f"difference (differences.txt): {args.work_dir}")
    print(f"{'PASS' if ok else 'FAIL'} in {time.monotonic() - started:.0f}s")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
