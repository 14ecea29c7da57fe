#!/usr/bin/python3
"""Fails when an #include points up or sideways between the source folders' layers.

The layers, lowest first (docs/architecture.md): common <- config, rewriter <- seeds <- proxy,
and inside rewriter/, seeds/ and proxy/ one folder per concern with its own order below. A file
may include its own folder and any folder of a lower rank; nothing else. Folders at the same rank
are independent of each other. Run from anywhere; exits 1 and names every offending line.
"""

from __future__ import annotations

import pathlib
import re
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent

# folder -> rank; a folder may include only folders of strictly lower rank (or itself).
RANKS = {
    "common": 0,
    "config": 10,
    "rewriter/parse": 11,
    "rewriter/catalog": 12,
    "rewriter/statements": 12,
    "rewriter/resolve": 13,
    "rewriter/splice": 14,
    "seeds/control": 21,
    "seeds/validate": 22,
    "seeds/registry": 23,
    "seeds/reads": 24,
    "seeds/materialize": 24,
    "proxy/wire": 31,
    "proxy/auth": 32,
    "proxy/io": 32,
    "proxy/observe": 32,
    "proxy/tls": 33,
    "proxy/credentials": 33,
    "proxy/pool": 33,
    "proxy/admin": 34,
    "proxy/session": 35,
    "proxy/server": 36,
}
# config and the rewriter are both built on common alone: neither may include the other.
INDEPENDENT = [("config", "rewriter/")]

INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"')


def folder_of(path: str) -> str | None:
    parts = pathlib.PurePosixPath(path).parts
    for depth in (2, 1):
        candidate = "/".join(parts[:depth])
        if candidate in RANKS:
            return candidate
    return None


def independent(a: str, b: str) -> bool:
    for x, y in INDEPENDENT:
        if (a.startswith(x) and b.startswith(y)) or (a.startswith(y) and b.startswith(x)):
            return True
    return False


def problems() -> list[str]:
    found = []
    for top in ("common", "config", "rewriter", "seeds", "proxy"):
        for path in sorted((ROOT / top).rglob("*")):
            if path.suffix not in (".cpp", ".hpp", ".h", ".in"):
                continue
            source = path.relative_to(ROOT).as_posix()
            here = folder_of(source)
            if here is None:
                found.append(f"{source}: not in a known layer folder (add it to scripts/check_layers.py)")
                continue
            for number, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
                match = INCLUDE.match(line)
                if not match or "/" not in match.group(1):
                    continue
                there = folder_of(match.group(1))
                if there is None or there == here:
                    continue
                if RANKS[there] >= RANKS[here] or independent(here, there):
                    found.append(f"{source}:{number}: {here} must not include {match.group(1)} ({there})")
    return found


def main() -> int:
    found = problems()
    for line in found:
        print(line, file=sys.stderr)
    if found:
        print(f"check_layers: {len(found)} include(s) point up or sideways", file=sys.stderr)
        return 1
    print("check_layers: every include points down")
    return 0


if __name__ == "__main__":
    sys.exit(main())
