"""Labelled rewrites kept as patches against their originals.

A curator's reading of real rewrites ("better", "same" or "worse" than the original, and why)
is the oracle that calibrates the metric. The originals may not be ours to copy (the six real
rows are read from ``../shared`` at run time), and a rewrite holds its original's source text
and thinking verbatim by construction. So a labelled rewrite is stored as a line-level patch:
the lines the rewrite kept are referred to by their place in the original, and only the lines
the LM wrote are stored.

Line: ``{"id", "origin": "real" | "sample", "original_id", "mode", "patch", "label", "why"}``,
with ``patch`` a list, per changed message field, of ``{"message", "field", "ops"}``, and each
op either ``["=", start, end]`` (the original's lines start..end) or ``["+", [lines]]``.
"""

from __future__ import annotations

import copy
import difflib
import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from argalign.errors import ConfigError

LABELS = {"better": "a", "worse": "b", "same": "same"}


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
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(None, a, b, autojunk=False).get_opcodes():
        if tag == "equal":
            ops.append(["=", i1, i2])
        elif j2 > j1:
            ops.append(["+", b[j1:j2]])
    return ops


def apply_patch(original: Mapping[str, Any], patch: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """The aligned row: ``original`` with each patched field rebuilt from the patch."""
    row = copy.deepcopy(dict(original))
    for change in patch:
        message = row["messages"][change["message"]]
        old = message[change["field"]].split("\n")
        lines: list[str] = []
        for op in change["ops"]:
            lines.extend(old[op[1]:op[2]] if op[0] == "=" else op[1])
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
