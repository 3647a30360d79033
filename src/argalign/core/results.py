"""What every stage returns, and the one table printer.

Each stage (``prepare``, ``validate``, ``run``, ``merge``, ``clean``, ``publish``, ``export``,
``report``, ``optimize``, ``pipeline``) returns a dataclass of its own, defined beside the
stage; each is a :class:`StageResult`, whose one ``as_dict()`` is what the CLI prints as JSON
and what the stage writes as its ``summary.json``. A result that the CLI shows as a table
gives a :class:`Table` (``as_table()``), and :func:`text_table` is the one function that
renders any table as plain text: a result's per-subset counts (:func:`subset_table` adds the
total line), the before/after scores, the compared runs, the codes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Table:
    """Rows of cells under a header (None: no header line); ``rule`` underlines the header."""

    header: Sequence[str] | None
    rows: Sequence[Sequence[object]]
    rule: bool = False


class StageResult:
    """A stage's result: a dataclass with one JSON shape."""

    def as_dict(self) -> dict[str, Any]:
        """The result as JSON values, keys in the order the CLI prints and the files keep."""
        raise NotImplementedError


def _cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() and abs(value) >= 1 else f"{value:.3f}"
    return str(value)


def _numeric(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def text_table(table: Table) -> str:
    """A table as plain text: each column as wide as its widest cell, two spaces apart.

    Numbers are right-aligned (a float with three decimals, or as a whole number when it is
    one), everything else left-aligned; None is an empty cell. Trailing blanks are cut. A row
    with more or fewer cells than the header is a ValueError.
    """
    header, rows, rule = table.header, table.rows, table.rule
    lines = [list(row) for row in rows]
    head = list(header) if header is not None else None
    columns = len(head) if head is not None else max((len(line) for line in lines), default=0)
    if any(len(line) != columns for line in lines):
        raise ValueError(f"every row needs {columns} cells: "
                         f"{next(line for line in lines if len(line) != columns)!r}")
    cells = [[_cell(value) for value in line] for line in lines]
    widths = [max([len(head[i]) if head is not None else 0, *(len(line[i]) for line in cells)])
              for i in range(columns)]
    right = [any(_numeric(line[i]) for line in lines) and
             all(_numeric(line[i]) or line[i] is None for line in lines) for i in range(columns)]

    def render(texts: Sequence[str]) -> str:
        return "  ".join(t.rjust(w) if r else t.ljust(w)
                         for t, w, r in zip(texts, widths, right)).rstrip()

    out = [] if head is None else [render(head)]
    if head is not None and rule:
        out.append(render(["-" * w for w in widths]))
    out += [render(line) for line in cells]
    return "\n".join(out)


def subset_table(subsets: Mapping[str, Mapping[str, int]], columns: Sequence[str]) -> Table:
    """Per-subset counts as a table: one row per ``config/split`` and a ``total`` row."""
    rows: list[list[object]] = [[key, *(int(counts.get(c, 0) or 0) for c in columns)]
                                for key, counts in subsets.items()]
    rows.append(["total", *(sum(int(counts.get(c, 0) or 0) for counts in subsets.values())
                            for c in columns)])
    return Table(["subset", *columns], rows)
