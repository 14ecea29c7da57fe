"""Splits a psql script into statements, and a `psql -a` transcript of it into each statement's output.

A regression file's output (psql -X -a) echoes every input line as psql reads it (not empty lines, not COPY's data, not while ECHO is off),
followed by what the statement printed. To say *which statement* differs between two runs, the
transcript is aligned with the script, in order (or, when psql stopped early, by longest common
subsequence): transcript lines that match script lines are echoes, the rest is output, owned by the
statement whose line was echoed last.

Statements are found the way psql's lexer finds them, closely enough for keys: a `;` outside
quotes, comments and parentheses ends one; a backslash command ends one (`\\gset`) or is one (a line
starting with `\\`); the data lines after `COPY ... FROM stdin` belong to the COPY.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass

_COPY_FROM_STDIN = re.compile(r"^\s*(\\copy|copy)\b.*\bfrom\s+(stdin|pstdin|stdout)\b", re.I | re.S)
_SET_ECHO = re.compile(r"^\\set\s+ECHO\s+(\w+)")


@dataclass
class Statement:
    first: int  # 0-based line index of the line where it starts
    last: int   # 0-based line index of the line where it ends (inclusive)
    data_from: int | None = None  # COPY FROM stdin: its data lines (not echoed by psql) start here

    @property
    def line(self) -> int:
        """1-based line number where it starts: the key of a difference."""
        return self.first + 1


def split_statements(lines: list[str]) -> list[Statement]:
    out: list[Statement] = []
    start: int | None = None  # line where the current statement began
    depth = 0
    quote: str | None = None  # "'", "e'", '"', '$tag$' or '/*'
    comment_depth = 0
    i = 0
    while i < len(lines):
        line = lines[i]
        j = 0
        skip_to: int | None = None
        if start is None and quote is None and line.lstrip().startswith("\\"):
            stmt = Statement(i, i)
            if _COPY_FROM_STDIN.match(line.lstrip()):
                stmt.data_from, stmt.last = i + 1, _end_of_copy_data(lines, i)
            out.append(stmt)
            i = stmt.last + 1
            continue
        n = len(line)
        while j < n:
            c = line[j]
            if quote == "/*":
                if line.startswith("*/", j):
                    comment_depth -= 1
                    j += 2
                    if comment_depth == 0:
                        quote = None
                    continue
                if line.startswith("/*", j):
                    comment_depth += 1
                    j += 2
                    continue
                j += 1
                continue
            if quote in ("'", "e'"):
                if quote == "e'" and c == "\\":
                    j += 2
                    continue
                if c == "'":
                    if j + 1 < n and line[j + 1] == "'":
                        j += 2
                        continue
                    quote = None
                j += 1
                continue
            if quote == '"':
                if c == '"':
                    quote = None
                j += 1
                continue
            if quote is not None:  # dollar quote
                if line.startswith(quote, j):
                    j += len(quote)
                    quote = None
                    continue
                j += 1
                continue
            # outside quotes and comments
            if c.isspace():
                j += 1
                continue
            if line.startswith("--", j):
                break
            if line.startswith("/*", j):
                quote, comment_depth = "/*", 1
                j += 2
                continue
            if start is None:
                start = i
            if c == "'":
                before = line[j - 2] if j >= 2 else ""
                e_string = j > 0 and line[j - 1] in "eE" and not (before.isalnum() or before == "_")
                quote = "e'" if e_string else "'"
            elif c == '"':
                quote = '"'
            elif c == "$":
                m = re.match(r"\$([A-Za-z_][A-Za-z0-9_]*)?\$", line[j:])
                if m and not (j > 0 and (line[j - 1].isalnum() or line[j - 1] == "_")):
                    quote = m.group(0)
                    j += len(quote)
                    continue
            elif c == "(":
                depth += 1
            elif c == ")":
                depth = max(0, depth - 1)
            elif c == ";" and depth == 0:
                stmt = _finish(lines, start, i)
                out.append(stmt)
                start = None
                if stmt.last > i:  # COPY FROM stdin: its data lines follow
                    skip_to = stmt.last
                    break
            elif c == "\\":
                # a backslash command ends the statement (\gset, \gx, \crosstabview ...): the rest of the line is its
                out.append(_finish(lines, start, i))
                start, depth = None, 0
                break
            elif c == ":" and line.startswith(("'", '"'), j + 1):
                # psql variable interpolation :'name' / :"name": the quotes hold a variable name
                k = line.find(line[j + 1], j + 2)
                j = (k + 1) if k > 0 else n
                continue
            j += 1
        i = (skip_to if skip_to is not None else i) + 1
    if start is not None:
        out.append(Statement(start, len(lines) - 1))
    return out


def _finish(lines: list[str], start: int, end: int) -> Statement:
    stmt = Statement(start, end)
    text = "\n".join(lines[start:end + 1])
    if _COPY_FROM_STDIN.match(text):
        stmt.data_from, stmt.last = end + 1, _end_of_copy_data(lines, end)
    return stmt


def _end_of_copy_data(lines: list[str], stmt_end: int) -> int:
    for k in range(stmt_end + 1, len(lines)):
        if lines[k].rstrip("\r") == "\\.":
            return k
    return stmt_end


class Script:
    """One .sql file: its lines and statements, and which statement each line belongs to."""

    def __init__(self, text: str):
        self.lines = text.split("\n")
        self.statements = split_statements(self.lines)
        # line index -> statement index; lines between statements belong to the one before (-1: none)
        self.owner = [-1] * len(self.lines)
        current = -1
        k = 0
        for idx in range(len(self.lines)):
            while k < len(self.statements) and self.statements[k].first <= idx:
                current = k
                k += 1
            self.owner[idx] = current

    def statement_text(self, index: int, max_lines: int | None = None) -> str:
        s = self.statements[index]
        lines = self.lines[s.first:s.last + 1]
        if max_lines is not None and len(lines) > max_lines:
            lines = lines[:max_lines] + [f"... ({len(lines) - max_lines} more lines)"]
        return "\n".join(lines)

    def head(self, index: int, width: int = 70) -> str:
        """The statement's start, whitespace collapsed: a readable, checkable snippet."""
        text = " ".join(self.statement_text(index).split())
        return text if len(text) <= width else text[:width].rstrip()

    def outputs(self, transcript: str) -> dict[int, list[str]]:
        """Statement index (-1: before the first) -> the output lines psql printed for it."""
        out_lines = transcript.split("\n")
        echo_of = self._align_in_order(out_lines)
        if echo_of is None:
            echo_of = self._align_lcs(out_lines)
        result: dict[int, list[str]] = {}
        last_line = -1
        for idx, line in enumerate(out_lines):
            if idx in echo_of:
                last_line = echo_of[idx]
                continue
            owner = self.owner[last_line] if last_line >= 0 else -1
            result.setdefault(owner, []).append(line)
        return result

    def _align_in_order(self, out_lines: list[str]) -> dict[int, int] | None:
        """Transcript line -> script line it echoes, reading both in order as psql does; None when
        the transcript does not echo the whole script (\\quit, a crash): then the LCS decides."""
        silent = {k for s in self.statements if s.data_from is not None for k in range(s.data_from, s.last + 1)}
        echo = True  # \set ECHO none: psql echoes nothing until (and including) \set ECHO all
        for k, line in enumerate(self.lines):
            if not echo:
                silent.add(k)
            m = _SET_ECHO.match(line)
            if m:
                echo = m.group(1) == "all"
        echo_of: dict[int, int] = {}
        p = 0
        for idx, line in enumerate(out_lines):
            # psql echoes neither COPY's data nor empty lines outside quotes
            while p in silent or (p < len(self.lines) and self.lines[p] == "" and line != ""):
                p += 1
            if p < len(self.lines) and line == self.lines[p]:
                echo_of[idx] = p
                p += 1
        while p in silent:
            p += 1
        rest = self.lines[p:]
        return echo_of if all(not ln.strip() for ln in rest) else None

    def _align_lcs(self, out_lines: list[str]) -> dict[int, int]:
        matcher = difflib.SequenceMatcher(None, self.lines, out_lines, autojunk=False)
        echo_of: dict[int, int] = {}
        for a, b, size in matcher.get_matching_blocks():
            for k in range(size):
                echo_of[b + k] = a + k
        return echo_of
