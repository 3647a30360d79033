"""One JSONL file in: its lines read as examples, in order, a bad line kept as its RowError so
that it ends with a reason (``align``, ``score``).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from argalign.core.errors import RowError
from argalign.core.schema import Example


def check_input(path: str | Path, flag: str) -> Path:
    """``path`` if it is a regular file holding JSON Lines (no JSON array); ConfigError if not."""
    from argalign.core.files import regular_file
    from argalign.core.jsonl import refuse_json_array

    path = regular_file(path, flag)
    refuse_json_array(path, flag)
    return path


def read_examples(path: str | Path, flag: str = "--in"
                   ) -> Iterator[tuple[Example | RowError, dict[str, Any] | None]]:
    """Yield ``(example, record)`` per non-blank line, in order. A line that is not JSON, or not
    a row, yields its RowError instead of an example, so that it ends ``rejected`` with its code."""
    from argalign.core.schema import PlainRowIds

    path = check_input(path, flag)
    ids = PlainRowIds()
    with path.open("rb") as fh:
        for lineno, raw in enumerate(fh, start=1):
            if not raw.strip():
                continue
            where = f"{path.stem}:{lineno}"
            try:
                record = json.loads(raw)
            except (json.JSONDecodeError, UnicodeDecodeError) as e:
                yield RowError(f"line {lineno}", "LINE_NOT_JSON", f"{where}: not valid JSON ({e})"), None
                continue
            try:
                yield ids.example(record, where), record
            except RowError as e:
                yield RowError(f"line {lineno}", e.code, e.problem, e.message_index), record


def originals_by_id(path: str | Path) -> dict[str, dict[str, Any]]:
    """The rows of an original file by example id (a bad line there is an error)."""
    out: dict[str, dict[str, Any]] = {}
    for example, _ in read_examples(path, "--original"):
        if isinstance(example, RowError):
            raise example
        out[example.id] = example.row
    return out
