#!/usr/bin/python3
"""Fetches PostgreSQL 15's regression suite, for the installed server's exact version, from Debian's
source package, caches it, and builds regress.so.

    /usr/bin/python3 tests/regress/fetch_suite.py [--cache-dir DIR]

prints the suite directory (the cached copy of src/test/regress: sql/, expected/, data/,
parallel_schedule, regress.so) as its only line on stdout. Progress goes to stderr.

Cache: DIR (default $SEEDPROXY_REGRESS_CACHE, else ${XDG_CACHE_HOME:-~/.cache}/seedproxy/pg-regress)
holds one folder per installed version, `postgresql-15_<version>/`, complete once it holds the file
`COMPLETE`. A complete folder is used as it is: nothing is downloaded again. Concurrent runs take
turns on a lock file.

Where the source comes from: `apt-get source postgresql-15=<installed version>` (when the archives
list it but cannot deliver it - a mirror may carry a security update's binaries and not its source -
the newest other postgresql-15 source they deliver, with a warning; SOURCE_VERSION says which), with a private
`deb-src` list made from the machine's own `deb` entries (both one-line `.list` and deb822
`.sources`, Signed-By kept) for the archives that carry postgresql-15, and private list and cache
directories, so the system's apt sources, lists and caches are left as they were. Needs dpkg-dev
(dpkg-source) and postgresql-server-dev-15 (server headers for regress.so); scripts/setup.sh
installs both.
"""

from __future__ import annotations

import argparse
import fcntl
import functools
import os
import re
import shutil
import subprocess
import sys
import tempfile

PACKAGE = "postgresql-15"
PG_CONFIG = os.environ.get("SEEDPROXY_PG_CONFIG", "/usr/lib/postgresql/15/bin/pg_config")
# What the runner needs from src/test/regress (the rest is the C test driver).
SUITE_ITEMS = ["sql", "expected", "data", "parallel_schedule", "resultmap", "regress.c"]
APT_TIMEOUT = 600


class FetchError(RuntimeError):
    pass


def log(msg: str) -> None:
    print(f"fetch_suite: {msg}", file=sys.stderr, flush=True)


def default_cache_dir() -> str:
    if os.environ.get("SEEDPROXY_REGRESS_CACHE"):
        return os.environ["SEEDPROXY_REGRESS_CACHE"]
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "seedproxy", "pg-regress")


def _run(cmd: list[str], what: str, cwd: str | None = None, timeout: float = APT_TIMEOUT) -> str:
    try:
        proc = subprocess.run(cmd, cwd=cwd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True, timeout=timeout,
                              env=dict(os.environ, LC_ALL="C", DEBIAN_FRONTEND="noninteractive"))
    except FileNotFoundError:
        raise FetchError(f"{what}: {cmd[0]} is not installed (run scripts/setup.sh)") from None
    except subprocess.TimeoutExpired:
        raise FetchError(f"{what}: {' '.join(cmd)} did not finish within {timeout}s") from None
    if proc.returncode != 0:
        raise FetchError(f"{what} failed (exit {proc.returncode}): {' '.join(cmd)}\n{proc.stdout[-6000:]}")
    return proc.stdout


def installed_version() -> str:
    try:
        out = subprocess.run(["dpkg-query", "-W", "-f=${db:Status-Status} ${Version}", PACKAGE],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, check=False)
    except FileNotFoundError:
        raise FetchError("dpkg-query not found: this script needs a Debian system") from None
    status, _, version = out.stdout.strip().partition(" ")
    if out.returncode != 0 or status != "installed" or not version:
        raise FetchError(f"package {PACKAGE} is not installed (run scripts/setup.sh)")
    return version


# -- the private deb-src list ---------------------------------------------------------------------
def _system_source_files() -> tuple[list[str], list[str]]:
    """(one-line files, deb822 files) that apt itself reads."""
    out = _run(["apt-config", "shell", "SL", "Dir::Etc::sourcelist/f", "SP", "Dir::Etc::sourceparts/d"],
               "reading apt's configuration")
    paths = dict(re.findall(r"^(SL|SP)='(.*)'$", out, re.M))
    one_line, deb822 = [], []
    if paths.get("SL") and os.path.isfile(paths["SL"]):
        one_line.append(paths["SL"])
    parts = paths.get("SP")
    if parts and os.path.isdir(parts):
        for name in sorted(os.listdir(parts)):
            full = os.path.join(parts, name)
            if name.endswith(".list"):
                one_line.append(full)
            elif name.endswith(".sources"):
                deb822.append(full)
    return one_line, deb822


def _norm_uri(uri: str) -> str:
    return uri.rstrip("/")


def _archives_with_package() -> set[str]:
    """URIs of the archives whose (binary) indexes list PACKAGE, any version; empty when unknown."""
    try:
        out = _run(["apt-cache", "madison", PACKAGE], "apt-cache madison")
    except FetchError:
        return set()
    uris = set()
    for line in out.splitlines():
        fields = [f.strip() for f in line.split("|")]
        if len(fields) == 3 and fields[2]:
            uris.add(_norm_uri(fields[2].split()[0]))
    return uris


def _one_line_entries(path: str) -> list[tuple[str, str]]:
    """(uri, 'deb-src ...' line) for every deb / deb-src line of a one-line sources file."""
    out = []
    with open(path, errors="replace") as f:
        for raw in f:
            line = raw.split("#", 1)[0].strip()
            m = re.match(r"^(deb|deb-src)\s+(\[[^\]]*\]\s+)?(\S+)\s+(.*)$", line)
            if m:
                out.append((_norm_uri(m.group(3)), f"deb-src {m.group(2) or ''}{m.group(3)} {m.group(4)}"))
    return out


def _deb822_entries(path: str) -> list[tuple[list[str], str]]:
    """(uris, stanza rewritten with `Types: deb-src`) for every enabled deb stanza of a .sources file."""
    with open(path, errors="replace") as f:
        text = f.read()
    out = []
    for stanza in re.split(r"\n\s*\n", text):
        lines = [ln for ln in stanza.splitlines() if not ln.startswith("#")]
        fields: dict[str, str] = {}
        key = None
        for ln in lines:
            if ln[:1].isspace() and key:
                fields[key] += "\n" + ln
            elif ":" in ln:
                key, _, value = ln.partition(":")
                key = key.strip().lower()
                fields[key] = value.strip()
        types = fields.get("types", "").split()
        if not ({"deb", "deb-src"} & set(types)) or fields.get("enabled", "yes").lower() == "no":
            continue
        kept = [ln for ln in lines if not re.match(r"^types\s*:", ln, re.I)]
        out.append(([_norm_uri(u) for u in fields.get("uris", "").split()],
                    "Types: deb-src\n" + "\n".join(kept) + "\n"))
    return out


def write_private_sources(apt_dir: str) -> None:
    """deb-src entries for the archives that carry PACKAGE (all archives when apt cannot tell)."""
    one_line_files, deb822_files = _system_source_files()
    wanted = _archives_with_package()
    lines = [ln for p in one_line_files for uri, ln in _one_line_entries(p) if not wanted or uri in wanted]
    stanzas = [st for p in deb822_files for uris, st in _deb822_entries(p)
               if not wanted or wanted & set(uris)]
    if not lines and not stanzas:
        raise FetchError("found no apt source entries to derive deb-src entries from "
                         f"(looked in {', '.join(one_line_files + deb822_files) or 'nothing'})")
    with open(os.path.join(apt_dir, "sources.list"), "w") as f:
        f.write("# deb-src entries for fetch_suite.py\n" + "\n".join(sorted(set(lines))) + "\n")
    os.makedirs(os.path.join(apt_dir, "sources.list.d"), exist_ok=True)
    with open(os.path.join(apt_dir, "sources.list.d", "system.sources"), "w") as f:
        f.write("\n".join(stanzas))


def apt_options(apt_dir: str) -> list[str]:
    opts = {
        "Dir::Etc::SourceList": os.path.join(apt_dir, "sources.list"),
        "Dir::Etc::SourceParts": os.path.join(apt_dir, "sources.list.d"),
        "Dir::State::Lists": os.path.join(apt_dir, "lists"),
        "Dir::Cache": os.path.join(apt_dir, "cache"),
        # The download goes into our own folder, which the unprivileged _apt user cannot write.
        "APT::Sandbox::User": "root" if os.geteuid() == 0 else "",
        "DPkg::Lock::Timeout": "600",
    }
    return [arg for k, v in opts.items() if v for arg in ("-o", f"{k}={v}")]


def _version_order(a: str, b: str) -> int:
    if a == b:
        return 0
    lower = subprocess.run(["dpkg", "--compare-versions", a, "lt", b], check=False).returncode == 0
    return -1 if lower else 1


def _source_versions(opts: list[str]) -> list[str]:
    out = _run(["apt-cache", *opts, "showsrc", "--only-source", PACKAGE], "apt-cache showsrc")
    versions, package = [], None
    for line in out.splitlines():
        if line.startswith("Package:"):
            package = line.split(":", 1)[1].strip()
        elif line.startswith("Version:") and package == PACKAGE:
            versions.append(line.split(":", 1)[1].strip())
    return sorted(set(versions), key=functools.cmp_to_key(_version_order), reverse=True)


def fetch_source(work: str, installed: str) -> tuple[str, str]:
    """Downloads and unpacks the source package in `work`: the installed version, or when the
    archives cannot deliver it (a mirror may carry a security update's binaries but not its source),
    the newest other postgresql-15 source they can. Returns (src/test/regress, its version)."""
    apt_dir = os.path.join(work, "apt")
    for d in ("lists/partial", "cache", "sources.list.d"):
        os.makedirs(os.path.join(apt_dir, d), exist_ok=True)
    write_private_sources(apt_dir)
    opts = apt_options(apt_dir)
    log("apt-get update (private deb-src list)")
    _run(["apt-get", *opts, "update"], "apt-get update with the private deb-src list")
    others = [v for v in _source_versions(opts) if v != installed]
    # the installed version first, then the newest not newer than it, then newer ones
    older = [v for v in others if _version_order(v, installed) < 0]
    candidates = [installed] + older + [v for v in reversed(others) if v not in older]
    failures = []
    for version in candidates:
        src = os.path.join(work, f"src-{len(failures)}")
        os.makedirs(src)
        log(f"apt-get source {PACKAGE}={version}")
        try:
            _run(["apt-get", *opts, "--only-source", "source", f"{PACKAGE}={version}"], "apt-get source", cwd=src)
        except FetchError as e:
            failures.append(f"{version}: {str(e).strip().splitlines()[-1]}")
            continue
        trees = [d for d in os.listdir(src) if os.path.isdir(os.path.join(src, d))]
        if len(trees) != 1:
            raise FetchError(f"apt-get source left {trees or 'no folder'} in {src}; expected one unpacked tree")
        regress = os.path.join(src, trees[0], "src", "test", "regress")
        if not os.path.isfile(os.path.join(regress, "parallel_schedule")):
            raise FetchError(f"{regress} has no parallel_schedule")
        if version != installed:
            log(f"warning: the archives do not deliver the source of {PACKAGE} {installed} (installed); "
                f"using the suite of {version}")
        return regress, version
    raise FetchError(f"no source of {PACKAGE} could be fetched from the archives:\n  " + "\n  ".join(failures))


def build_regress_so(suite: str) -> None:
    if not os.path.isfile(PG_CONFIG):
        raise FetchError(f"{PG_CONFIG} not found: install postgresql-server-dev-15 (scripts/setup.sh)")

    def cfg(flag: str) -> str:
        return _run([PG_CONFIG, flag], f"pg_config {flag}").strip()
    include = cfg("--includedir-server")
    if not os.path.isfile(os.path.join(include, "postgres.h")):
        raise FetchError(f"{include}/postgres.h missing: install postgresql-server-dev-15 (scripts/setup.sh)")
    tmp = os.path.join(suite, "regress.so.tmp")
    cmd = [cfg("--cc"), *cfg("--cflags").split(), *cfg("--cflags_sl").split(), "-shared",
           f"-I{include}", "-o", tmp, os.path.join(suite, "regress.c")]
    log("building regress.so")
    _run(cmd, "building regress.so", timeout=300)
    os.replace(tmp, os.path.join(suite, "regress.so"))


def ensure_suite(cache_dir: str | None = None) -> str:
    """The suite directory for the installed version, fetched and built if not cached yet."""
    version = installed_version()
    cache_dir = os.path.abspath(cache_dir or default_cache_dir())
    os.makedirs(cache_dir, exist_ok=True)
    target = os.path.join(cache_dir, f"{PACKAGE}_{version}")
    complete = os.path.join(target, "COMPLETE")
    with open(os.path.join(cache_dir, ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # a concurrent run fetching the same version finishes first
        if os.path.isfile(complete):
            return target
        work = tempfile.mkdtemp(prefix=".fetch-", dir=cache_dir)
        try:
            if not os.path.isfile(os.path.join(target, "parallel_schedule")):
                regress, source_version = fetch_source(work, version)
                staged = os.path.join(work, "suite")
                os.makedirs(staged)
                with open(os.path.join(staged, "SOURCE_VERSION"), "w") as f:
                    f.write(source_version + "\n")
                for item in SUITE_ITEMS:
                    path = os.path.join(regress, item)
                    if os.path.isdir(path):
                        shutil.copytree(path, os.path.join(staged, item))
                    elif os.path.isfile(path):
                        shutil.copy2(path, staged)
                    else:
                        raise FetchError(f"the source package has no src/test/regress/{item}")
                shutil.rmtree(target, ignore_errors=True)
                os.replace(staged, target)
            build_regress_so(target)
            try:
                with open(os.path.join(target, "SOURCE_VERSION")) as f:
                    source_version = f.read().strip()
            except FileNotFoundError:  # fetched by an earlier version of this script
                source_version = version
            with open(complete, "w") as f:
                f.write(f"suite of {PACKAGE} {source_version}, for installed {version}\n")
            log(f"suite ready in {target}")
            return target
        finally:
            shutil.rmtree(work, ignore_errors=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cache-dir", help="cache folder (default: %(default)s)", default=default_cache_dir())
    args = ap.parse_args()
    try:
        print(ensure_suite(args.cache_dir))
    except (FetchError, OSError) as e:
        print(f"fetch_suite: error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
