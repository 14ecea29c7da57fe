#!/usr/bin/python3
"""A 2.2 GB COPY TO STDOUT (more than 2^31 bytes) streams through seedproxy intact in bounded memory."""

import fcntl
import os
import subprocess
import time
import unittest

import e2e_common
import psycopg

from harness.pgcluster import PgCluster

ROWS = 2_200_000
WIDTH = 1000
EXPECTED_BYTES = ROWS * (WIDTH + 1)  # each row: WIDTH 'x' then a newline
# Bounded memory: the resident set may grow by at most this much while 2.2 GB stream through...
MAX_GROWTH_KIB = 16 * 1024
# ...and stays under this peak (sanitizer builds carry shadow memory and a quarantine).
MAX_HWM_KIB = 64 * 1024 * (4 if os.environ.get("ASAN_OPTIONS") else 1)

pg: PgCluster = None
px = None


def setUpModule():
    global pg, px
    pg = PgCluster().start()
    px = e2e_common.target(pg.port)


def tearDownModule():
    e2e_common.stop(px, pg)


class Stream(unittest.TestCase):
    def test_copy_over_2_gib(self):
        self.assertGreater(EXPECTED_BYTES, 2 ** 31)
        sql = f"COPY (SELECT repeat('x', {WIDTH}) FROM generate_series(1, {ROWS})) TO STDOUT"
        proc = subprocess.Popen(["psql", "-X", "-q", "-h", "127.0.0.1", "-p", str(px.port), "-U", "postgres",
                                 "-d", "postgres", "-v", "ON_ERROR_STOP=1", "-c", sql],
                                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:  # a 1 MiB pipe: fewer wake-ups for psql and for us (F_SETPIPE_SZ)
            fcntl.fcntl(proc.stdout.fileno(), 1031, 1 << 20)
        except OSError:
            pass
        total = newlines = 0
        foreign = b""
        rss_samples = []
        t0 = time.monotonic()
        next_sample = 0
        try:
            while True:
                chunk = proc.stdout.read1(1 << 20)
                if not chunk:
                    break
                total += len(chunk)
                newlines += chunk.count(b"\n")
                if not foreign:
                    foreign = chunk.translate(None, b"x\n")[:32]
                if px.is_proxy and total >= next_sample:
                    rss_samples.append(px.rss_kib())
                    next_sample += 256 << 20
            proc.stdout.close()
            stderr = proc.stderr.read().decode(errors="replace")
            proc.stderr.close()
            rc = proc.wait(timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        elapsed = time.monotonic() - t0
        print(f"\n  streamed {total} bytes in {elapsed:.1f}s ({total / elapsed / 1e6:.0f} MB/s)")
        self.assertEqual(rc, 0, stderr)
        self.assertEqual(foreign, b"", "unexpected bytes in the COPY stream")
        self.assertEqual(newlines, ROWS)
        self.assertEqual(total, EXPECTED_BYTES)
        if px.is_proxy:
            hwm = px.hwm_kib()
            print(f"  proxy VmRSS samples (KiB): {rss_samples}; VmHWM {hwm} KiB")
            self.assertLess(hwm, MAX_HWM_KIB, f"proxy peak RSS {hwm} KiB")
            self.assertGreaterEqual(len(rss_samples), 8)
            growth = max(rss_samples) - rss_samples[0]
            self.assertLess(growth, MAX_GROWTH_KIB, f"proxy RSS grew by {growth} KiB while streaming")
            self.assertTrue(px.running())

    def test_proxy_usable_after_stream(self):
        with psycopg.connect(px.dsn(), autocommit=True) as conn:
            self.assertEqual(conn.execute("select 'after'").fetchone(), ("after",))


if __name__ == "__main__":
    e2e_common.main()
