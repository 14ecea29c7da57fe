#!/usr/bin/python3
"""Throwaway PostgreSQL 15 clusters on a free 127.0.0.1 port, for e2e tests, the demo and benchmarks.

Module use (tests)::

    from harness.pgcluster import PgCluster
    with PgCluster() as pg:                     # temp dir, removed on stop()
        pg.create_user("scram_user", "secret", "scram-sha-256")
        print(pg.port, pg.dsn(user="scram_user", password="secret"))
        rows = pg.psql("select 1")

Command-line use (scripts; the cluster directory persists, it is never deleted)::

    /usr/bin/python3 tests/harness/pgcluster.py start  --dir DIR [--max-connections N] [--set key=value ...]
    /usr/bin/python3 tests/harness/pgcluster.py stop   --dir DIR
    /usr/bin/python3 tests/harness/pgcluster.py status --dir DIR

``start`` runs initdb if DIR holds no cluster yet, picks a free TCP port, starts the server and
prints exactly one line ``port=NNNN`` on stdout; it also writes the port number to ``DIR/port``.
Starting an already running cluster prints its current port and changes nothing. ``stop`` stops
the server (fast mode; a stopped cluster is not an error). ``status`` prints ``running port=NNNN``
and exits 0, or prints ``stopped`` and exits 3 (pg_ctl's convention). Diagnostics go to stderr;
a failure exits 1.

Layout of a cluster directory::

    DIR/data/            PGDATA (owned by the postgres OS user when run as root)
    DIR/data/harness.conf  settings written by every start (port, listen address, overrides)
    DIR/port             the port of the last start
    DIR/postgres.log     server log
    DIR/                 also the unix socket directory when its path is short enough

``use_tls(cert, key, ca)`` before ``start(settings)`` turns TLS on and, by default, makes every
TCP rule ``hostssl`` (PostgreSQL then refuses plain-text TCP clients); the harness's own
connections use libpq's sslmode=prefer, so they keep working.

Every server is configured with listen_addresses='127.0.0.1', fsync=off,
password_encryption=scram-sha-256, max_connections=200 (overridable) and this pg_hba.conf::

    host  all scram_user 127.0.0.1/32 scram-sha-256
    host  all md5_user   127.0.0.1/32 md5
    host  all all        127.0.0.1/32 trust
    local all all                     trust

PostgreSQL refuses to run as root, so when the effective uid is 0, initdb and pg_ctl run as the
``postgres`` OS user (via runuser) and the cluster directory is chowned to it.
"""

from __future__ import annotations

import argparse
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

PG_BIN = os.environ.get("SEEDPROXY_PG_BIN", "/usr/lib/postgresql/15/bin")
HOST = "127.0.0.1"
PG_OS_USER = "postgres"
# sun_path holds 108 bytes; PostgreSQL appends "/.s.PGSQL.NNNNN" (+ NUL).
_MAX_SOCKET_DIR = 107 - len("/.s.PGSQL.65535")

HBA_CONF = """\
# Written by tests/harness/pgcluster.py
host  all scram_user 127.0.0.1/32 scram-sha-256
host  all md5_user   127.0.0.1/32 md5
host  all all        127.0.0.1/32 trust
local all all                     trust
"""


class PgClusterError(RuntimeError):
    pass


def free_port(host: str = HOST) -> int:
    """A TCP port that was free a moment ago (bind port 0, read it, close)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def port_accepts(host: str, port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def _as_root() -> bool:
    return os.geteuid() == 0


def _chown_to_pg(path: str) -> None:
    if _as_root():
        pw = pwd.getpwnam(PG_OS_USER)
        os.chown(path, pw.pw_uid, pw.pw_gid)


def _run_pg(args: list[str], check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess:
    """Runs a PostgreSQL server binary, as the postgres OS user when we are root."""
    cmd = list(args)
    if _as_root():
        cmd = ["runuser", "-u", PG_OS_USER, "--"] + cmd
    env = dict(os.environ)
    env.setdefault("LC_ALL", "C")
    proc = subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True, timeout=timeout, env=env, cwd="/")
    if check and proc.returncode != 0:
        raise PgClusterError(f"{' '.join(args)} failed ({proc.returncode}):\n{proc.stdout}{proc.stderr}")
    return proc


def _quote_conf(value) -> str:
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, (int, float)):
        return str(value)
    return "'" + str(value).replace("'", "''") + "'"


class PgCluster:
    """One PostgreSQL cluster. base_dir=None: a temp dir, deleted by stop()."""

    def __init__(self, base_dir: str | None = None):
        self._owns_dir = base_dir is None
        self._base_arg = base_dir
        self.base_dir: str | None = None
        self.host = HOST
        self.port: int | None = None
        self._socket_tmp: str | None = None
        self._reaper: subprocess.Popen | None = None
        self._reaper_fd: int | None = None

    # -- paths -------------------------------------------------------------------------------
    @property
    def data_dir(self) -> str:
        return os.path.join(self.base_dir, "data")

    @property
    def log_file(self) -> str:
        return os.path.join(self.base_dir, "postgres.log")

    @property
    def port_file(self) -> str:
        return os.path.join(self.base_dir, "port")

    def _prepare_base(self) -> None:
        if self.base_dir is not None:
            return
        if self._owns_dir:
            self.base_dir = tempfile.mkdtemp(prefix="seedproxy-pg-")
        else:
            self.base_dir = os.path.abspath(self._base_arg)
            os.makedirs(self.base_dir, exist_ok=True)
        os.chmod(self.base_dir, 0o755)
        _chown_to_pg(self.base_dir)

    def _socket_dir(self) -> str:
        if len(self.base_dir) <= _MAX_SOCKET_DIR:
            return self.base_dir
        if self._socket_tmp is None:
            self._socket_tmp = tempfile.mkdtemp(prefix="pgsock-")
            os.chmod(self._socket_tmp, 0o755)
            _chown_to_pg(self._socket_tmp)
        return self._socket_tmp

    def initialised(self) -> bool:
        return self.base_dir is not None and os.path.exists(os.path.join(self.data_dir, "PG_VERSION"))

    # -- lifecycle ---------------------------------------------------------------------------
    def init(self) -> None:
        self._prepare_base()
        if self.initialised():
            return
        _run_pg([os.path.join(PG_BIN, "initdb"), "-D", self.data_dir, "-A", "trust", "-U", "postgres",
                 "--no-sync", "-E", "UTF8", "--locale=C"])
        with open(os.path.join(self.data_dir, "pg_hba.conf"), "w") as f:
            f.write(HBA_CONF)
        with open(os.path.join(self.data_dir, "postgresql.conf"), "a") as f:
            f.write("\n# seedproxy test harness: per-start settings\ninclude_if_exists = 'harness.conf'\n")

    def running_pid(self) -> int | None:
        """The postmaster pid if the server is running, else None."""
        if not self.initialised():
            return None
        try:
            with open(os.path.join(self.data_dir, "postmaster.pid")) as f:
                pid = int(f.readline().strip())
        except (OSError, ValueError):
            return None
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        except PermissionError:
            pass
        return pid

    def _write_settings(self, port: int, settings: dict) -> None:
        conf = {
            "listen_addresses": HOST,
            "port": port,
            "unix_socket_directories": self._socket_dir(),
            "fsync": False,
            "synchronous_commit": False,
            "full_page_writes": False,
            "max_connections": 200,
            "password_encryption": "scram-sha-256",
            "logging_collector": False,
        }
        conf.update(settings or {})
        path = os.path.join(self.data_dir, "harness.conf")
        with open(path, "w") as f:
            f.write("# Written by tests/harness/pgcluster.py on every start\n")
            for k, v in conf.items():
                f.write(f"{k} = {_quote_conf(v)}\n")
        _chown_to_pg(path)

    def start(self, settings: dict | None = None, timeout: float = 60) -> "PgCluster":
        self.init()
        pid = self.running_pid()
        if pid is not None:
            self.port = self._read_port()
            return self
        last_error = None
        for _attempt in range(5):  # a free port can be taken between probing and binding
            port = free_port()
            self._write_settings(port, settings or {})
            # the log is appended to; remember where this attempt starts for diagnostics
            log_offset = os.path.getsize(self.log_file) if os.path.exists(self.log_file) else 0
            proc = _run_pg([os.path.join(PG_BIN, "pg_ctl"), "start", "-w", "-t", str(int(timeout)),
                            "-D", self.data_dir, "-l", self.log_file], check=False, timeout=timeout + 30)
            if proc.returncode == 0:
                self._spawn_reaper()
                self.port = port
                with open(self.port_file, "w") as f:
                    f.write(f"{port}\n")
                self.wait_ready(timeout)
                return self
            log_tail = self._log_since(log_offset)
            last_error = f"pg_ctl start failed ({proc.returncode}):\n{proc.stdout}{proc.stderr}\n{log_tail}"
            if "already in use" not in log_tail and "could not bind" not in log_tail:
                break
        raise PgClusterError(last_error)

    def _log_since(self, offset: int) -> str:
        try:
            with open(self.log_file, errors="replace") as f:
                f.seek(offset)
                return f.read()[-4000:]
        except OSError:
            return ""

    def _read_port(self) -> int | None:
        try:
            with open(self.port_file) as f:
                return int(f.read().strip())
        except (OSError, ValueError):
            value = self._harness_setting("port")
            return int(value) if value and value.isdigit() else None

    def _harness_setting(self, key: str) -> str | None:
        """A value from data/harness.conf as written by the last start (quotes removed)."""
        try:
            with open(os.path.join(self.data_dir, "harness.conf")) as f:
                for line in f:
                    k, sep, v = line.partition("=")
                    if sep and k.strip() == key:
                        return v.strip().strip("'")
        except OSError:
            pass
        return None

    def wait_ready(self, timeout: float = 60) -> None:
        """Polls until a trust connection can run a query (e.g. after crash recovery)."""
        import psycopg
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            try:
                with psycopg.connect(self.dsn(connect_timeout=2), autocommit=True) as c:
                    c.execute("select 1")
                    return
            except psycopg.Error as e:
                last = e
                time.sleep(0.05)
        raise PgClusterError(f"cluster on port {self.port} not ready after {timeout}s: {last}")

    def stop(self, mode: str = "fast", timeout: float = 60) -> None:
        if self._socket_tmp is None and self.initialised():
            # a CLI cluster whose path was too long for a socket: find the temp socket dir again
            sock = self._harness_setting("unix_socket_directories")
            if sock and os.path.basename(sock).startswith("pgsock-") and sock != self.base_dir:
                self._socket_tmp = sock
        try:
            if self.running_pid() is not None:
                _run_pg([os.path.join(PG_BIN, "pg_ctl"), "stop", "-w", "-t", str(int(timeout)),
                         "-m", mode, "-D", self.data_dir], check=False, timeout=timeout + 30)
                if self.running_pid() is not None:
                    _run_pg([os.path.join(PG_BIN, "pg_ctl"), "stop", "-w", "-m", "immediate",
                             "-D", self.data_dir], check=False, timeout=timeout + 30)
        finally:
            if self._socket_tmp:
                shutil.rmtree(self._socket_tmp, ignore_errors=True)
                self._socket_tmp = None
            if self._owns_dir and self.base_dir:
                shutil.rmtree(self.base_dir, ignore_errors=True)
                self.base_dir = None
            self._release_reaper()

    def _spawn_reaper(self) -> None:
        """A detached helper that stops the server and removes a temp cluster if this process dies
        without calling stop() (killed by a test timeout, Ctrl-C, crash). It waits for EOF on a pipe
        only this process holds, so it costs nothing while we are alive. CLI clusters persist: none."""
        if not self._owns_dir or self._reaper is not None:
            return
        r, w = os.pipe()  # both ends non-inheritable; only r is passed, as the reaper's stdin
        argv = [sys.executable, os.path.abspath(__file__), "_reap", "--dir", self.base_dir]
        if self._socket_tmp:
            argv += ["--socket-dir", self._socket_tmp]
        self._reaper = subprocess.Popen(argv, stdin=r, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                        start_new_session=True, cwd="/")
        os.close(r)
        self._reaper_fd = w

    def _release_reaper(self) -> None:
        if self._reaper_fd is not None:
            os.close(self._reaper_fd)
            self._reaper_fd = None
        if self._reaper is not None:
            try:
                self._reaper.wait(timeout=30)
            except subprocess.TimeoutExpired:
                pass
            self._reaper = None

    def __enter__(self) -> "PgCluster":
        if self.port is None:
            self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    # -- clients -----------------------------------------------------------------------------
    def dsn(self, dbname: str = "postgres", user: str = "postgres", **kw) -> str:
        parts = {"host": self.host, "port": self.port, "dbname": dbname, "user": user}
        parts.update(kw)
        return " ".join(f"{k}={quote_dsn_value(v)}" for k, v in parts.items())

    def connect(self, dbname: str = "postgres", user: str = "postgres", autocommit: bool = True, **kw):
        import psycopg
        return psycopg.connect(self.dsn(dbname, user, **kw), autocommit=autocommit)

    def psql(self, sql: str, params=None, dbname: str = "postgres"):
        """Runs SQL (several statements allowed when params is None); returns the last result's rows
        or None when it returned no rows."""
        with self.connect(dbname) as conn:
            cur = conn.execute(sql, params)
            return cur.fetchall() if cur.description is not None else None

    def create_user(self, name: str, password: str, method: str = "scram-sha-256", superuser: bool = False) -> None:
        from psycopg import sql
        if method not in ("md5", "scram-sha-256"):
            raise ValueError(f"unknown password method {method!r}")
        with self.connect() as conn:
            conn.execute(sql.SQL("SET password_encryption = {}").format(sql.Literal(method)))
            conn.execute(sql.SQL("CREATE ROLE {} LOGIN {} PASSWORD {}").format(
                sql.Identifier(name), sql.SQL("SUPERUSER" if superuser else "NOSUPERUSER"),
                sql.Literal(password)))

    def use_tls(self, cert: str, key: str, ca: str | None = None, hostssl_only: bool = True) -> dict:
        """Copies a certificate and key into the data directory and, with hostssl_only, rewrites
        pg_hba.conf so that TCP connections must use TLS (the unix socket stays trust, for the
        harness). Returns the settings to pass to start(): ssl = on and the file names."""
        import shutil as _shutil
        self.init()
        names = {"server.crt": cert, "server.key": key}
        if ca:
            names["root.crt"] = ca
        for name, source in names.items():
            target = os.path.join(self.data_dir, name)
            _shutil.copyfile(source, target)
            os.chmod(target, 0o600)
            _chown_to_pg(target)
        if hostssl_only:
            with open(os.path.join(self.data_dir, "pg_hba.conf"), "w") as f:
                f.write(HBA_CONF.replace("host  ", "hostssl "))
        settings = {"ssl": True, "ssl_cert_file": "server.crt", "ssl_key_file": "server.key"}
        if ca:
            settings["ssl_ca_file"] = "root.crt"
        return settings

    def backend_pids(self, application_name: str) -> list[int]:
        rows = self.psql("select pid from pg_stat_activity where application_name = %s order by pid",
                         (application_name,))
        return [r[0] for r in rows]

    def wait_backend_pids(self, application_name: str, count: int = 1, timeout: float = 10) -> list[int]:
        """Polls pg_stat_activity until exactly `count` backends carry application_name."""
        deadline = time.monotonic() + timeout
        pids: list[int] = []
        while time.monotonic() < deadline:
            pids = self.backend_pids(application_name)
            if len(pids) == count:
                return pids
            time.sleep(0.02)
        raise PgClusterError(f"expected {count} backends named {application_name!r}, have {pids}")

    def kill_backend(self, pid: int, sig: int = signal.SIGKILL) -> None:
        os.kill(pid, sig)


def quote_dsn_value(value) -> str:
    s = str(value)
    if s and all(c.isalnum() or c in "._-/:" for c in s):
        return s
    return "'" + s.replace("\\", "\\\\").replace("'", "\\'") + "'"


# -- command line ----------------------------------------------------------------------------
def _reap(base_dir: str, socket_dir: str | None) -> int:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    try:
        while sys.stdin.buffer.read(65536):
            pass
    except OSError:
        pass
    data_dir = os.path.join(base_dir, "data")
    if os.path.exists(os.path.join(data_dir, "postmaster.pid")):
        _run_pg([os.path.join(PG_BIN, "pg_ctl"), "stop", "-w", "-m", "immediate", "-D", data_dir], check=False)
    shutil.rmtree(base_dir, ignore_errors=True)
    if socket_dir:
        shutil.rmtree(socket_dir, ignore_errors=True)
    return 0


def _parse_set(items: list[str]) -> dict:
    out = {}
    for item in items or []:
        if "=" not in item:
            raise SystemExit(f"--set expects key=value, got {item!r}")
        k, v = item.split("=", 1)
        out[k.strip()] = v.strip()
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="pgcluster.py", description="Manage a throwaway PostgreSQL 15 cluster.")
    sub = ap.add_subparsers(dest="command", required=True)
    p_start = sub.add_parser("start", help="initdb if needed, start on a free port, print port=NNNN")
    p_start.add_argument("--dir", required=True)
    p_start.add_argument("--max-connections", type=int, default=None)
    p_start.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                         help="extra postgresql.conf setting (repeatable)")
    p_stop = sub.add_parser("stop", help="stop the cluster (fast mode)")
    p_stop.add_argument("--dir", required=True)
    p_reap = sub.add_parser("_reap", help=argparse.SUPPRESS)
    p_reap.add_argument("--dir", required=True)
    p_reap.add_argument("--socket-dir")
    p_status = sub.add_parser("status", help="print 'running port=NNNN' (exit 0) or 'stopped' (exit 3)")
    p_status.add_argument("--dir", required=True)
    args = ap.parse_args(argv)

    if args.command == "_reap":
        return _reap(args.dir, args.socket_dir)
    cluster = PgCluster(base_dir=args.dir)
    try:
        if args.command == "start":
            settings = _parse_set(args.set)
            if args.max_connections is not None:
                settings["max_connections"] = args.max_connections
            cluster.start(settings)
            print(f"port={cluster.port}", flush=True)
            return 0
        cluster.base_dir = os.path.abspath(args.dir)
        if args.command == "stop":
            if cluster.initialised():
                cluster.stop()
            return 0
        if args.command == "status":
            if cluster.running_pid() is not None:
                print(f"running port={cluster._read_port()}")
                return 0
            print("stopped")
            return 3
    except (PgClusterError, OSError, subprocess.SubprocessError) as e:
        print(f"pgcluster.py: {e}", file=sys.stderr)
        return 1
    return 2


if __name__ == "__main__":
    sys.exit(main())
