#!/usr/bin/python3
"""Fails when a function in the sources runs past 100 lines (the house style's limit).

A function is recognised the way clang-format lays it out: its body opens with a line ending in
"{" that starts at column 0 (or closes a signature that did) and ends at the next "}" at column 0.
Namespaces, classes, structs, enums and initializer tables at column 0 are not functions. The
length counts the lines from the signature's first line to the closing brace, both included.
"""

from __future__ import annotations

import pathlib
import re
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
LIMIT = 100
FOLDERS = ("common", "config", "rewriter", "seeds", "proxy", "tests", "bench")
NOT_FUNCTION = re.compile(r"^(namespace|class|struct|enum|union|extern|template\s*<[^>]*>\s*(class|struct))\b")
SIGNATURE_START = re.compile(r"^[A-Za-z_\[~]")


def functions(lines: list[str]):
    """(name, first line number, length) for each column-0 function body."""
    start = None
    for number, line in enumerate(lines, 1):
        if start is None:
            if SIGNATURE_START.match(line) and not NOT_FUNCTION.match(line) and "=" not in line.split("(")[0]:
                begin = number
                # The signature may span lines; its body opens where a line ends with "{".
                probe = number
                while probe <= len(lines) and not lines[probe - 1].rstrip().endswith(("{", ";", "}")):
                    probe += 1
                if probe <= len(lines) and lines[probe - 1].rstrip().endswith("{") and "(" in "".join(lines[begin - 1 : probe]):
                    start = begin
                    name = re.split(r"\(", "".join(lines[begin - 1 : probe]))[0].split()[-1]
        elif line.startswith("}"):
            yield name, start, number - start + 1
            start = None


def main() -> int:
    found = []
    for folder in FOLDERS:
        for path in sorted((ROOT / folder).rglob("*.cpp")) + sorted((ROOT / folder).rglob("*.hpp")):
            lines = path.read_text(errors="replace").splitlines()
            for name, first, length in functions(lines):
                if length > LIMIT:
                    found.append(f"{path.relative_to(ROOT)}:{first}: {name} is {length} lines (limit {LIMIT})")
    for line in found:
        print(line, file=sys.stderr)
    if found:
        print(f"check_function_length: {len(found)} function(s) over {LIMIT} lines", file=sys.stderr)
        return 1
    print(f"check_function_length: every function is at most {LIMIT} lines")
    return 0


if __name__ == "__main__":
    sys.exit(main())
