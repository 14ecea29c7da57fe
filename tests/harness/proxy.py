"""Running a seedproxy binary for end-to-end tests: JSON config in a temp dir, stderr to a log file.

    with Proxy(os.environ["SEEDPROXY_BIN"], upstream_port=pg.port,
               runtime={"shutdown_grace_seconds": 2}) as px:
        psycopg.connect(px.dsn())
        px.log_text(); px.rss_kib(); px.hwm_kib()

Overrides are merged into the default config one level deep per section (a dict value updates the
section, anything else replaces it). `target(upstream_port)` returns a Proxy, or - when the
environment sets SEEDPROXY_E2E_DIRECT=1 - a Direct stand-in pointing at PostgreSQL itself, so the
client-behaviour tests can be checked against a server without the proxy in between.
SEEDPROXY_E2E_THREADS=N gives every proxy N I/O threads unless the test sets its own.
"""

from __future__ import annotations

import copy
import ctypes
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

from .pgcluster import free_port, port_accepts, quote_dsn_value

HOST = "127.0.0.1"


# How a sanitizer's report begins (ASan, LSan, UBSan with print_stacktrace).
SANITIZER_MARKERS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error: ")


class ProxyError(RuntimeError):
    pass


def default_binary() -> str:
    b = os.environ.get("SEEDPROXY_BIN")
    if b:
        return b
    here = os.path.dirname(os.path.abspath(__file__))
    guess = os.path.normpath(os.path.join(here, "..", "..", "build", "proxy", "seedproxy"))
    if os.path.exists(guess):
        return guess
    raise ProxyError("set SEEDPROXY_BIN to the seedproxy binary")


def _die_with_parent() -> None:
    """Runs in the child before exec: SIGKILL the proxy if the test process dies (PR_SET_PDEATHSIG),
    so a killed test never leaves a proxy listening. Start proxies from the main thread: the signal
    follows the thread that forked."""
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # 1 = PR_SET_PDEATHSIG
    except OSError:
        pass


def direct_mode() -> bool:
    return os.environ.get("SEEDPROXY_E2E_DIRECT") == "1"


def _merge(base: dict, overrides: dict) -> dict:
    out = copy.deepcopy(base)
    for k, v in overrides.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k].update(copy.deepcopy(v))
        else:
            out[k] = copy.deepcopy(v)
    return out


def _dsn(port: int, dbname: str, user: str, kw: dict) -> str:
    parts = {"host": HOST, "port": port, "dbname": dbname, "user": user}
    parts.update(kw)
    return " ".join(f"{k}={quote_dsn_value(v)}" for k, v in parts.items())


class Proxy:
    is_proxy = True

    def __init__(self, binary: str | None = None, upstream_port: int | None = None, *,
                 upstream_host: str = HOST, start: bool = True, **config_overrides):
        if upstream_port is None:
            raise ValueError("upstream_port is required")
        self.binary = binary or default_binary()
        self.upstream_port = upstream_port
        self.upstream_host = upstream_host
        self.overrides = config_overrides
        self.dir = tempfile.mkdtemp(prefix="seedproxy-e2e-")
        self.config_path = os.path.join(self.dir, "seedproxy.json")
        self.log_path = os.path.join(self.dir, "seedproxy.log")
        self.host = HOST
        self.port: int | None = None
        self.proc: subprocess.Popen | None = None
        self.config: dict | None = None
        self._log = None
        if start:
            try:
                self.start()
            except BaseException:
                # Nobody holds this object yet to clean it up; the error carries the log.
                self.cleanup()
                raise

    def make_config(self, port: int) -> dict:
        base = {
            "listen": {"host": HOST, "port": port},
            "upstream": {"host": self.upstream_host, "port": self.upstream_port},
            # SEEDPROXY_E2E_THREADS runs the suite's proxies with several I/O threads (the
            # accept loop's hand-over, cross-thread admin and shutdown); a test's own wins.
            "runtime": {"threads": int(os.environ.get("SEEDPROXY_E2E_THREADS", "1")),
                        "shutdown_grace_seconds": 2},
            "limits": {"max_message_bytes": 1073741824, "startup_timeout_seconds": 15,
                       "connect_timeout_seconds": 5},
            "log": {"level": "info"},
        }
        return _merge(base, self.overrides)

    def start(self, timeout: float = 20) -> "Proxy":
        last = None
        for _attempt in range(5):  # the probed port may be taken before the proxy binds it
            self.config = self.make_config(free_port())
            port = self.config["listen"]["port"]
            with open(self.config_path, "w") as f:
                json.dump(self.config, f, indent=2)
            if self._log:
                self._log.close()
            self._log = open(self.log_path, "ab")
            self.proc = subprocess.Popen([self.binary, "--config", self.config_path],
                                         stdin=subprocess.DEVNULL, stdout=self._log, stderr=self._log,
                                         preexec_fn=_die_with_parent)
            self.port = port
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    break
                if port_accepts(HOST, port, timeout=0.5):
                    return self
                time.sleep(0.01)
            if self.proc.poll() is None:
                self.kill()
                raise ProxyError(f"seedproxy did not accept on port {port} within {timeout}s\n{self.log_text()}")
            last = f"seedproxy exited with {self.proc.returncode} during startup\n{self.log_text()}"
            if "in use" not in last.lower():
                break
        raise ProxyError(last)

    # -- observation -------------------------------------------------------------------------
    @property
    def pid(self) -> int:
        return self.proc.pid

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def log_text(self) -> str:
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def _status_kib(self, key: str) -> int:
        with open(f"/proc/{self.pid}/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
        raise ProxyError(f"{key} not in /proc/{self.pid}/status")

    def rss_kib(self) -> int:
        return self._status_kib("VmRSS")

    def hwm_kib(self) -> int:
        return self._status_kib("VmHWM")

    def local_tcp_ports(self) -> set[int]:
        """The local ports of the TCP sockets this proxy process holds: its upstream connections
        appear in pg_stat_activity.client_port with these, which tells them from another proxy's."""
        return {local for local, _ in self._tcp_sockets()}

    def ports_connected_to(self, remote_port: int) -> set[int]:
        """The local ports of this proxy's established TCP connections to `remote_port` (for
        PostgreSQL's port: its upstream connections, control connections included)."""
        return {local for local, (remote, state) in self._tcp_sockets()
                if remote == remote_port and state == "01"}

    def _tcp_sockets(self) -> list[tuple[int, tuple[int, str]]]:
        """(local port, (remote port, state as /proc/net/tcp writes it)) of every TCP socket this
        process holds."""
        inodes = set()
        fd_dir = f"/proc/{self.pid}/fd"
        for fd in os.listdir(fd_dir):
            try:
                target = os.readlink(os.path.join(fd_dir, fd))
            except OSError:
                continue  # closed meanwhile
            if target.startswith("socket:["):
                inodes.add(target[len("socket:["):-1])
        sockets = []
        for table in ("/proc/net/tcp", "/proc/net/tcp6"):
            with open(table) as f:
                next(f)
                for line in f:
                    fields = line.split()
                    if fields[9] in inodes:
                        local = int(fields[1].rsplit(":", 1)[1], 16)
                        remote = int(fields[2].rsplit(":", 1)[1], 16)
                        sockets.append((local, (remote, fields[3])))
        return sockets

    def dsn(self, dbname: str = "postgres", user: str = "postgres", **kw) -> str:
        return _dsn(self.port, dbname, user, kw)

    # -- control -----------------------------------------------------------------------------
    def signal(self, sig: int) -> None:
        self.proc.send_signal(sig)

    def wait_exit(self, timeout: float) -> int:
        """Return code; raises subprocess.TimeoutExpired if still running after timeout."""
        return self.proc.wait(timeout=timeout)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)

    def stop(self, timeout: float = 15) -> int | None:
        """SIGTERM, wait up to timeout, then SIGKILL. Returns the exit code."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        if self._log:
            self._log.close()
            self._log = None
        return self.proc.returncode

    def sanitizer_report(self) -> str:
        """What AddressSanitizer, LeakSanitizer or UBSan wrote to the log (the proxy's stderr),
        e.g. at exit, after every test passed; empty when nothing."""
        text = self.log_text()
        for marker in SANITIZER_MARKERS:
            at = text.find(marker)
            if at >= 0:
                return text[max(0, at - 200):at + 6000]
        return ""

    def cleanup(self) -> None:
        """Stops the proxy and removes its directory; raises AssertionError if a sanitizer
        reported anything (a report at exit would otherwise go unseen)."""
        self.stop()
        report = self.sanitizer_report()
        if os.environ.get("SEEDPROXY_KEEP_LOGS"):
            shutil.copy(self.log_path, os.path.join(os.environ["SEEDPROXY_KEEP_LOGS"],
                                                    os.path.basename(self.dir) + ".log"))
        shutil.rmtree(self.dir, ignore_errors=True)
        if report:
            raise AssertionError(f"sanitizer report in the proxy's log:\n{report}")

    def __enter__(self) -> "Proxy":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self.stop()
        if exc_type is not None:
            sys.stderr.write(f"--- seedproxy log ({self.log_path}) ---\n{self.log_text()[-8000:]}\n")
        report = self.sanitizer_report()
        shutil.rmtree(self.dir, ignore_errors=True)
        if report and exc_type is None:
            raise AssertionError(f"sanitizer report in the proxy's log:\n{report}")


class Direct:
    """Stand-in for Proxy that points clients straight at PostgreSQL (SEEDPROXY_E2E_DIRECT=1)."""

    is_proxy = False

    def __init__(self, upstream_port: int):
        self.host = HOST
        self.port = upstream_port
        self.pid = None

    def running(self) -> bool:
        return True

    def log_text(self) -> str:
        return ""

    def dsn(self, dbname: str = "postgres", user: str = "postgres", **kw) -> str:
        return _dsn(self.port, dbname, user, kw)

    def stop(self, timeout: float = 15):
        return 0

    def cleanup(self) -> None:
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        pass


def target(upstream_port: int, **config_overrides):
    """A started Proxy in front of upstream_port, or Direct when SEEDPROXY_E2E_DIRECT=1."""
    if direct_mode():
        return Direct(upstream_port)
    return Proxy(None, upstream_port, **config_overrides)
