"""The checked-in list of known, explained differences (expected_differences.txt): parsing and matching.

File format (blank lines and lines starting with '#' are comments):

    [seeded]                                       a section per mode: passthrough, seeded
    join:2874  select * from (int8_tbl i cross join  # BUG: the join alias' column list ...
    create_table:*  # INHERENT: every statement of the file may differ because ...

An entry names one statement by FILE:LINE (the regression file without .sql, the 1-based line where
the statement starts), then the start of its text (whitespace collapsed; checked, so a moved or
edited statement is reported instead of silently matching another), then `# CLASS: reason`, CLASS
being BUG (seedproxy should behave like the real column and does not) or INHERENT (a virtual
attribute cannot look like a real column there, or the twin's physical column changes something
else). FILE:* matches every differing statement of the file: for a cascade that one cause explains.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

CLASSES = ("BUG", "INHERENT")
_ENTRY = re.compile(r"^(?P<file>[A-Za-z0-9_.]+):(?P<line>\d+|\*)(?:\s+(?P<head>.*?))?\s+#\s*"
                    r"(?P<cls>" + "|".join(CLASSES) + r")\b:?\s*(?P<reason>.*)$")
_SECTION = re.compile(r"^\[(?P<mode>[a-z]+)\]\s*$")


class ListError(ValueError):
    pass


@dataclass
class Entry:
    file: str
    line: int | None  # None: the whole file
    head: str
    cls: str
    reason: str
    where: str  # path:line of the entry, for messages
    matched: list = field(default_factory=list)

    @property
    def key(self) -> str:
        return f"{self.file}:{'*' if self.line is None else self.line}"


def parse(path: str, mode: str) -> list[Entry]:
    entries: list[Entry] = []
    section = None
    seen: dict[str, str] = {}
    with open(path, encoding="utf-8") as f:
        for number, raw in enumerate(f, 1):
            line = raw.rstrip("\n")
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            m = _SECTION.match(line)
            if m:
                section = m.group("mode")
                continue
            m = _ENTRY.match(line)
            if not m:
                raise ListError(f"{path}:{number}: not an entry (FILE:LINE  statement start  # BUG|INHERENT: "
                                f"reason): {line!r}")
            if section is None:
                raise ListError(f"{path}:{number}: entry before any [mode] section")
            if not m.group("reason").strip():
                raise ListError(f"{path}:{number}: entry without a reason")
            if section != mode:
                continue
            e = Entry(m.group("file"), None if m.group("line") == "*" else int(m.group("line")),
                      " ".join((m.group("head") or "").split()), m.group("cls"), m.group("reason").strip(),
                      f"{path}:{number}")
            if e.key in seen:
                raise ListError(f"{e.where}: {e.key} is listed twice (also at {seen[e.key]})")
            seen[e.key] = e.where
            entries.append(e)
    return entries


@dataclass
class Difference:
    """One statement whose output differs (line None: a difference no statement could be blamed for)."""
    file: str
    line: int | None
    head: str

    @property
    def key(self) -> str:
        return f"{self.file}:{'?' if self.line is None else self.line}"


def match(entries: list[Entry], diffs: list[Difference]) -> tuple[list[tuple[Difference, Entry]],
                                                                     list[Difference], list[str]]:
    """(explained pairs, unexplained differences, problems with the list: stale heads)."""
    by_key = {(e.file, e.line): e for e in entries}
    explained, unexplained, problems = [], [], []
    for d in diffs:
        e = by_key.get((d.file, d.line)) if d.line is not None else None
        if e is not None and e.head and not d.head.startswith(e.head):
            problems.append(f"{e.where}: {e.key} names a statement starting {e.head!r}, but the statement "
                            f"there starts {d.head!r}: update the entry")
            e = None
        if e is None:
            e = by_key.get((d.file, None))
        if e is None:
            unexplained.append(d)
        else:
            e.matched.append(d)
            explained.append((d, e))
    return explained, unexplained, problems


def entry_line(d: Difference, cls: str = "BUG", reason: str = "TODO explain") -> str:
    """A ready-to-edit list entry for a difference."""
    line = "*" if d.line is None else d.line
    return f"{d.file}:{line}  {d.head}  # {cls}: {reason}"
