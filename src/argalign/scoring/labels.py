"""Labelled rewrites kept as patches against their originals.

A curator's reading of real rewrites ("better", "same" or "worse" than the original, and why)
is the oracle that calibrates the metric. The originals may not be ours to copy (the six real
rows are read from ``../shared`` at run time), and a rewrite holds its original's source text
and thinking verbatim by construction. So a labelled rewrite is stored as a line-level patch:
the lines the rewrite kept are referred to by their place in the original, and only the lines
the LM wrote are stored.

Line: ``{"id", "origin": "real" | "sample", "original_id", "mode", "patch", "label", "why"}``,
with ``patch`` a list, per changed message field, of ``{"message", "field", "ops"}``, and each
op ``["=", start, end]`` (the original's lines start..end, in any order: a moved line is a
reference too), ``["<", prefix, k]`` (new words before the original's line k, as a thinking's new
first sentences before its kept opening) or ``["+", [lines]]`` (lines the LM wrote).
"""

from __future__ import annotations

import copy
import difflib
import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from argalign.core.errors import ConfigError

LABELS = {"better": "a", "worse": "b", "same": "same"}
# An original line at least this long that a new line ends with is referred to, not stored.
MIN_KEPT_TAIL = 20


def make_patch(original: Mapping[str, Any], aligned: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The changed string fields of ``aligned``'s messages as line patches against ``original``."""
    out = []
    for i, (old, new) in enumerate(zip(original["messages"], aligned["messages"])):
        for field in ("content", "thinking"):
            a, b = old.get(field), new.get(field)
            if a != b and isinstance(a, str) and isinstance(b, str):
                out.append({"message": i, "field": field, "ops": _ops(a, b)})
    return out


def _ops(old: str, new: str) -> list[list[Any]]:
    a, b = old.split("\n"), new.split("\n")
    ops: list[list[Any]] = []
    where = {line: k for k, line in enumerate(a) if line.strip()}
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(None, a, b, autojunk=False).get_opcodes():
        if tag == "equal":
            ops.append(["=", i1, i2])
            continue
        for line in b[j1:j2]:
            kept = where.get(line)
            tail = kept is None and next((k for k, old_line in enumerate(a)
                                          if len(old_line) >= MIN_KEPT_TAIL
                                          and line.endswith(old_line)), None)
            if kept is not None:
                ops.append(["=", kept, kept + 1])
            elif tail is not None and tail is not False:
                ops.append(["<", line[:len(line) - len(a[tail])], tail])
            elif ops and ops[-1][0] == "+":
                ops[-1][1].append(line)
            else:
                ops.append(["+", [line]])
    return ops


def apply_patch(original: Mapping[str, Any], patch: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """The aligned row: ``original`` with each patched field rebuilt from the patch."""
    row = copy.deepcopy(dict(original))
    for change in patch:
        message = row["messages"][change["message"]]
        old = message[change["field"]].split("\n")
        lines: list[str] = []
        for op in change["ops"]:
            if op[0] == "=":
                lines.extend(old[op[1]:op[2]])
            elif op[0] == "<":
                lines.append(op[1] + old[op[2]])
            else:
                lines.extend(op[1])
        message[change["field"]] = "\n".join(lines)
    return row


def labelled_pairs(path: str | Path, originals: Mapping[tuple[str, str], dict[str, Any]]
                   ) -> tuple[list[dict[str, Any]], list[str]]:
    """Oracle lines (``{"id", "a": aligned, "b": original, "better", "by", "why"}``, the format
    ``argalign score --oracle`` reads) for every labelled rewrite whose original is at hand, and
    the ids of those whose original is not (keyed by ``(origin, original_id)``)."""
    pairs, missing = [], []
    for lineno, line in enumerate(Path(path).read_text("utf-8").split("\n"), start=1):
        if not line.strip():
            continue
        record = json.loads(line)
        if record.get("label") not in LABELS:
            raise ConfigError(f"{path}:{lineno}: label must be one of {', '.join(LABELS)}")
        original = originals.get((record["origin"], str(record["original_id"])))
        if original is None:
            missing.append(record["id"])
            continue
        pairs.append({"id": record["id"], "a": apply_patch(original, record["patch"]),
                      "b": original, "better": LABELS[record["label"]], "by": "developer",
                      "why": record["why"], "mode": record["mode"]})
    return pairs, missing
