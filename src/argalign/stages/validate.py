"""``argalign validate``: check an aligned file against its original, row by row, by id.

Input: the original (prepared examples or plain rows) and the aligned file (examples or
result records, whose ``row`` is the aligned row, or null for a failed example).
Rows are matched by id (:func:`argalign.core.schema.example_id`: ``source_id``, else ``example_id``;
a row with neither by :func:`argalign.core.schema.content_key`), never by line number.
Output: a report line per id with its outcome (``aligned``, ``unchanged``, ``failed``,
``rejected``: see :func:`argalign.scoring.gate.gate`) and violation codes, and a summary. An
id that is missing, extra or repeated is ``rejected`` with an ``ID_*`` code. Originals are
not held in memory: only their byte offsets are, so validating a large split stays small.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from argalign.core.errors import ConfigError, RowError
from argalign.core.files import regular_file
from argalign.core.jsonl import (
    iter_jsonl,
    iter_with_offsets,
    read_at,
    refuse_json_array,
    refuse_overwrite,
    write_jsonl_atomic,
)
from argalign.core.policies import DEFAULT_MAX_USER_CHANGE
from argalign.core.records import Outcome, Violation
from argalign.core.results import StageResult
from argalign.core.schema import Example, PlainRowIds, parse_conversation
from argalign.scoring.gate import gate


@dataclass
class ValidateSummary(StageResult):
    """What ``validate`` found: rows per outcome, violations per code, and one report line per
    row (``report``, written with ``--report``; not in :meth:`as_dict`)."""

    outcomes: Counter = field(default_factory=Counter)
    codes: Counter = field(default_factory=Counter)
    report: list[dict[str, Any]] = field(default_factory=list)

    @property
    def rejected(self) -> int:
        return self.outcomes[Outcome.REJECTED.value]

    def as_dict(self) -> dict[str, Any]:
        return {"rows": sum(self.outcomes.values()), "outcomes": dict(self.outcomes),
                "codes": dict(self.codes)}


def index_offsets(path: Path, *, not_rows: list[RowError] | None = None) -> dict[str, int]:
    """Map each example id in a JSONL file to the byte offset of its line.

    Ids as :class:`~argalign.core.schema.PlainRowIds` gives them; an id that occurs twice is a
    RowError naming both lines (one of the two would otherwise go unchecked). A line that is
    no row (``NOT_A_ROW``, ``NO_MESSAGES``) is a RowError too, or, with ``not_rows``, is added
    there (its id is ``file:line``) and the other lines are read on.
    """
    ids, offsets, lines = PlainRowIds(), {}, {}
    for lineno, offset, record in iter_with_offsets(path):
        try:
            row_id = ids.example(record, f"{path.name}:{lineno}").id
        except RowError as e:
            if not_rows is None:
                raise
            not_rows.append(e)
            continue
        if row_id in offsets:
            raise RowError(row_id, "ID_DUPLICATE", f"{path}: lines {lines[row_id]} and {lineno} "
                           "have the same id; ids must be unique to match rows")
        offsets[row_id], lines[row_id] = offset, lineno
    return offsets


def validate_files(original_path: str | Path, aligned_path: str | Path, mode: str, *,
                   out: str | Path | None = None,
                   max_user_change: int = DEFAULT_MAX_USER_CHANGE) -> ValidateSummary:
    original_path = regular_file(original_path, "--original")
    aligned_path = regular_file(aligned_path, "--aligned")
    refuse_json_array(original_path, "--original")
    refuse_json_array(aligned_path, "--aligned")
    if out is not None:
        if Path(out).is_dir():
            raise ConfigError(f"--out {out} is a folder; give a file name")
        refuse_overwrite([out], [original_path, aligned_path], "--out")
    bad_originals: list[RowError] = []
    offsets = index_offsets(original_path, not_rows=bad_originals)
    if not offsets and not bad_originals:
        raise ConfigError(f"--original {original_path} has no rows: nothing to validate against")
    summary = ValidateSummary()
    seen: set[str] = set()

    def add(row_id: str, outcome: Outcome, violations: list[Violation], reason: str = "") -> None:
        summary.outcomes[outcome.value] += 1
        summary.codes.update(v.code for v in violations)
        summary.report.append({
            "id": row_id,
            "outcome": outcome.value,
            "codes": sorted({v.code for v in violations}),
            "violations": [v.as_dict() for v in violations],
            **({"reason": reason} if reason else {}),
        })

    for error in bad_originals:  # no aligned row can match a line that is no row
        add(error.row_id, Outcome.REJECTED,
            [Violation(error.code, error.message_index, f"--original: {error.problem}")])
    ids = PlainRowIds()
    for lineno, record in iter_jsonl(aligned_path):
        try:
            example = ids.example(record, f"{aligned_path.name}:{lineno}")
        except RowError as e:  # reported; the other lines are checked on
            add(e.row_id, Outcome.REJECTED, [Violation(e.code, e.message_index, e.problem)])
            continue
        if example.id in seen:
            add(example.id, Outcome.REJECTED, [Violation("ID_DUPLICATE", None, f"line {lineno}")])
            continue
        seen.add(example.id)
        if example.id not in offsets:
            add(example.id, Outcome.REJECTED, [Violation("ID_EXTRA", None, f"line {lineno}")])
            continue
        original = Example.from_record(read_at(original_path, offsets[example.id])).row
        try:  # a malformed original cannot say what a rewrite must keep
            parse_conversation(original, example.id)
        except RowError as e:
            add(example.id, Outcome.REJECTED, [Violation(
                e.code, e.message_index, f"the original row is malformed: {e.problem}")])
            continue
        verdict = gate(original, example.row, mode, max_user_change=max_user_change)
        add(example.id, verdict.outcome, verdict.violations, str(record.get("reason") or ""))

    for row_id in offsets:
        if row_id not in seen:
            add(row_id, Outcome.REJECTED, [Violation("ID_MISSING", None, "not in the aligned file")])

    if out is not None:
        write_jsonl_atomic(out, summary.report)
    return summary
