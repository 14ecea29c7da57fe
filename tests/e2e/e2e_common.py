"""Shared plumbing for the e2e scripts: import path, proxy bookkeeping, a runner that exits non-zero."""

import os
import sys
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from harness.proxy import Proxy, direct_mode, target  # noqa: E402,F401

_finished_logs: list[tuple[str, str]] = []


def finish(px) -> None:
    """Stops a Proxy (or Direct) and keeps its log so main() can print it if a test failed."""
    if px is None:
        return
    px.stop()
    if getattr(px, "is_proxy", False):
        _finished_logs.append((px.log_path, px.log_text()))
    px.cleanup()


def stop(px, pg) -> None:
    """tearDownModule's work: the proxy (keeping its log), then the PostgreSQL cluster."""
    try:
        finish(px)
    finally:
        if pg is not None:
            pg.stop()


def wait_until_readable(px, database: str, sql: str, what: str, timeout: float = 20) -> tuple:
    """Polls `sql` through the proxy until it returns a row (e.g. once the seeds are live)."""
    import psycopg

    def row():
        try:
            with psycopg.connect(px.dsn(database), autocommit=True) as conn:
                return conn.execute(sql).fetchone()
        except psycopg.Error:
            return None
    return poll(row, timeout, interval=0.05, what=what)


def poll(predicate, timeout: float, interval: float = 0.02, what: str = "condition"):
    """Calls predicate until it returns a truthy value; returns it, or raises AssertionError."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


def main() -> None:
    started = time.monotonic()
    prog = unittest.main(exit=False, verbosity=2)
    ok = prog.result.wasSuccessful()
    if not ok:
        for path, text in _finished_logs:
            # The warnings and errors of the whole run first: the tail alone may miss the cause.
            serious = [line for line in text[:-12000].splitlines()
                       if " warning " in line or " error " in line]
            if serious:
                sys.stderr.write(f"--- seedproxy log {path}: warnings and errors before the tail ---\n"
                                 + "\n".join(serious[-200:]) + "\n")
            sys.stderr.write(f"--- seedproxy log {path} (last 12000 chars) ---\n{text[-12000:]}\n")
    sys.stderr.write(f"{os.path.basename(sys.argv[0])}: {'OK' if ok else 'FAILED'} "
                     f"in {time.monotonic() - started:.1f}s{' (direct mode)' if direct_mode() else ''}\n")
    sys.exit(0 if ok else 1)
