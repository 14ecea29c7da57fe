#!/usr/bin/python3
"""Fails when a `co_await` sits inside the condition of an `if`, `while` or `switch`.

GCC 12 (Debian 12's compiler, the one CI builds with) miscompiles some coroutines whose
suspension point is inside a condition together with temporaries that have destructors: the
frame is resumed with the condition's state half torn down, and the proxy crashed (SIGILL,
SIGSEGV) in two places before the rule existed. The house rule is therefore that an await stands
alone: `const auto ec = co_await write(...); if (ec) ...`. This check finds the condition of each
such statement by matching its parentheses (comments and string literals skipped) and reports
every condition, init-statement included, that awaits.
"""

from __future__ import annotations

import pathlib
import re
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
FOLDERS = ("common", "config", "rewriter", "seeds", "proxy", "tests", "bench")
KEYWORD = re.compile(r"\b(if|while|switch)\s*(constexpr\s*)?\(")


def blank_comments_and_strings(text: str) -> str:
    """The text with comments and the contents of literals replaced by spaces (newlines kept)."""
    out = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if text.startswith("//", i):
            end = text.find("\n", i)
            end = n if end < 0 else end
            out.append(" " * (end - i))
            i = end
        elif text.startswith("/*", i):
            end = text.find("*/", i + 2)
            end = n if end < 0 else end + 2
            out.append("".join(ch if ch == "\n" else " " for ch in text[i:end]))
            i = end
        elif text.startswith('R"', i):
            open_paren = text.find("(", i)
            delimiter = text[i + 2 : open_paren]
            end = text.find(")" + delimiter + '"', open_paren)
            end = n if end < 0 else end + len(delimiter) + 2
            out.append("".join(ch if ch == "\n" else " " for ch in text[i:end]))
            i = end
        elif c in "\"'":
            j = i + 1
            while j < n and text[j] != c:
                j += 2 if text[j] == "\\" else 1
            out.append(c + " " * (j - i - 1) + c)
            i = j + 1
        else:
            out.append(c)
            i += 1
    return "".join(out)


def awaiting_conditions(text: str):
    """(line number, keyword) for each condition that contains co_await."""
    code = blank_comments_and_strings(text)
    for match in KEYWORD.finditer(code):
        depth, j = 1, match.end()
        while j < len(code) and depth:
            depth += {"(": 1, ")": -1}.get(code[j], 0)
            j += 1
        if re.search(r"\bco_await\b", code[match.end() : j]):
            yield code.count("\n", 0, match.start()) + 1, match.group(1)


def main() -> int:
    failures = []
    for folder in FOLDERS:
        for path in sorted((ROOT / folder).rglob("*")):
            if path.suffix not in (".cpp", ".hpp") or not path.is_file():
                continue
            for line, keyword in awaiting_conditions(path.read_text(encoding="utf-8")):
                failures.append(f"{path.relative_to(ROOT)}:{line}: co_await inside an {keyword} condition")
    for failure in failures:
        print(failure)
    if failures:
        print(f"{len(failures)} awaits inside conditions; give each its own statement (GCC 12 miscompiles "
              "some of them, see scripts/check_awaits.py)", file=sys.stderr)
        return 1
    print("no co_await inside a condition")
    return 0


if __name__ == "__main__":
    sys.exit(main())
