#!/usr/bin/python3
"""Runs a test binary against a throwaway PostgreSQL 15: starts a cluster (tests/harness/pgcluster.py),
exports SEEDPROXY_TEST_PGHOST / SEEDPROXY_TEST_PGPORT / SEEDPROXY_PG_BIN, runs the binary with the
remaining arguments, stops the cluster and exits with the binary's status."""

import os
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from harness.pgcluster import PG_BIN, PgCluster  # noqa: E402


def main() -> int:
    if len(sys.argv) < 2:
        print("usage: run_with_postgres.py BINARY [ARGS...]", file=sys.stderr)
        return 2
    with PgCluster() as pg:
        env = dict(os.environ)
        env["SEEDPROXY_TEST_PGHOST"] = pg.host
        env["SEEDPROXY_TEST_PGPORT"] = str(pg.port)
        env["SEEDPROXY_PG_BIN"] = PG_BIN
        return subprocess.run(sys.argv[1:], env=env).returncode


if __name__ == "__main__":
    sys.exit(main())
