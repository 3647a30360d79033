"""``argalign clean``: keep the aligned rows that pass the invariant checker, set aside the rest.

Input: ``<data>/merged/<config>/<split>.jsonl`` (from merge) and the raw subsets.
Output: ``<data>/cleaned/<config>/<split>.jsonl`` with one envelope per kept row,
``{"id", "config", "split", "index", "row", "provenance"}`` (see
:meth:`~argalign.core.records.ResultRecord.provenance`), in merged (raw) order;
``<split>.rejects.jsonl`` with every other example (unchanged, failed, rejected or
not_improved in the run, failing the checker here, or missing) as a
:class:`~argalign.core.records.Reject`; and
``<data>/cleaned/summary.json``. A row is kept only if its outcome is ``aligned`` and
:func:`argalign.scoring.gate.gate` finds it changed and within every invariant, so a row
edited by hand after the run is caught here; a line that is no result record
(:meth:`~argalign.core.records.ResultRecord.check`) is an error naming the file and line.
``merged/summary.json`` (merge's completion marker) is required; ``cleaned/summary.json`` is
this step's: removed first, written last, and required by publish. A clean that keeps no row
at all is an error (after writing the rejects).
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from argalign.core.datadir import DataDir, Subset
from argalign.core.errors import ConfigError, RunError
from argalign.core.jsonl import iter_jsonl, write_json_atomic, write_jsonl_atomic
from argalign.core.lock import locked
from argalign.core.policies import DEFAULT_MAX_USER_CHANGE
from argalign.core.records import MISSING, OUTCOMES, Outcome, Reject, ResultRecord
from argalign.core.results import StageResult, Table, subset_table
from argalign.scoring.gate import gate
from argalign.stages.merge import read_merged_summary
from argalign.stages.run.store import index_raw, read_example

log = logging.getLogger(__name__)

COLUMNS = ("rows_in", *OUTCOMES, MISSING)


@dataclass(frozen=True)
class CleanSummary(StageResult):
    """What ``clean`` did (``cleaned/summary.json``): the merged run, each subset's counts
    (:data:`COLUMNS` and ``checker_rejected``) and their total."""

    run: str | None
    subsets: dict[str, dict[str, int]]
    total: dict[str, int]

    def as_dict(self) -> dict[str, Any]:
        return {"run": self.run, "subsets": self.subsets, "total": self.total}

    def as_table(self) -> Table:
        """One row per subset and a total row, as ``argalign clean`` prints them."""
        return subset_table(self.subsets, COLUMNS)


def merged_subsets(data: DataDir) -> list[Subset]:
    """The subsets the last merge finished (its summary.json, written last, is required)."""
    summary = read_merged_summary(data)
    if summary is None:
        raise ConfigError(f"{data.marker('merged')} is missing: the merge did not run or did not "
                          f"finish; run `argalign merge --data {data.root}` first")
    return [Subset.of(key, data.marker("merged")) for key in summary.get("subsets", {})]


def _reject(record: ResultRecord, outcome: str, codes: list[str], reason: str,
            stage: str) -> dict[str, Any]:
    return Reject(stage=stage, id=record.id, codes=codes, reason=reason, outcome=outcome,
                  config=record.config, split=record.split, index=record.index,
                  mode=record.mode, model=record.model, run_outcome=record.outcome.value).to_dict()


def clean_subset(data: DataDir, subset: Subset, max_user_change: int = DEFAULT_MAX_USER_CHANGE
                 ) -> dict[str, int]:
    """Clean one subset; return its counts (see :data:`COLUMNS`)."""
    merged = data.file("merged", subset)
    if not merged.is_file():
        raise ConfigError(f"{merged} does not exist: run `argalign merge` first")
    source = data.file("raw", subset)
    raw = {e.id: e for e in index_raw(source)}
    counts: Counter = Counter()
    rejects: list[dict[str, Any]] = []
    seen: set[str] = set()

    def kept() -> Iterator[dict[str, Any]]:
        for lineno, line in iter_jsonl(merged):
            counts["rows_in"] += 1
            record = ResultRecord.read(line, where=f"{merged}:{lineno}")
            row_id, outcome = record.id, record.outcome
            if row_id in seen or row_id not in raw:
                code = "ID_DUPLICATE" if row_id in seen else "ID_EXTRA"
                rejects.append(_reject(record, Outcome.REJECTED.value, [code], f"id {row_id!r}: {code}",
                                       "clean"))
                counts[Outcome.REJECTED] += 1
                continue
            seen.add(row_id)
            if outcome is not Outcome.ALIGNED:
                rejects.append(_reject(record, outcome.value, list(record.codes or []),
                                       str(record.reason or ""), "run"))
                counts[outcome] += 1  # one of OUTCOMES: read() checked it
                continue
            original = read_example(source, raw[row_id].offset).row
            verdict = gate(original, record.row, str(record.mode), max_user_change=max_user_change)
            if verdict.outcome is not Outcome.ALIGNED:
                outcome = verdict.outcome.value
                reason = f"invariant check: {verdict.reason() or outcome}"
                rejects.append(_reject(record, outcome, verdict.codes, reason, "clean"))
                counts[outcome] += 1
                counts["checker_rejected"] += 1
                continue
            counts[Outcome.ALIGNED] += 1
            yield {"id": row_id, "config": subset.config, "split": subset.split,
                   "index": raw[row_id].index, "row": record.row,
                   "provenance": record.provenance()}

    write_jsonl_atomic(data.file("cleaned", subset), kept())
    for row_id, entry in raw.items():
        if row_id not in seen:
            rejects.append(Reject(stage="clean", id=row_id, codes=["ID_MISSING"],
                                  reason="no result in the merged file", outcome=MISSING,
                                  config=subset.config, split=subset.split,
                                  index=entry.index).to_dict())
            counts[MISSING] += 1
    write_jsonl_atomic(data.rejects("cleaned", subset), rejects)
    return {key: counts[key] for key in (*COLUMNS, "checker_rejected")}


def clean(data: str | Path, *, max_user_change: int = DEFAULT_MAX_USER_CHANGE) -> CleanSummary:
    """Clean every merged subset; write and return the summary."""
    with locked(data, "clean"):
        return _clean(DataDir(data), max_user_change)


def _clean(data: DataDir, max_user_change: int) -> CleanSummary:
    subsets = merged_subsets(data)
    if not subsets:
        raise ConfigError(f"nothing merged in {data.stage('merged')}: run `argalign merge` first")
    # The summary is the completion marker: gone while cleaning, written last.
    data.marker("cleaned").unlink(missing_ok=True)
    per_subset = {s.key: clean_subset(data, s, max_user_change) for s in subsets}
    total = Counter()
    for counts in per_subset.values():
        total.update(counts)
    merged = read_merged_summary(data) or {}
    summary = CleanSummary(run=merged.get("run"), subsets=per_subset,
                           total={key: total[key] for key in (*COLUMNS, "checker_rejected")})
    write_json_atomic(data.marker("cleaned"), summary.as_dict())
    log.info("clean: %s", ", ".join(f"{key} {summary.total[key]}" for key in COLUMNS))
    if not summary.total[Outcome.ALIGNED]:
        raise RunError(f"clean kept no row: all {summary.total['rows_in']} were set aside "
                       f"(reasons in {data.stage('cleaned')}/<config>/<split>.rejects.jsonl)")
    return summary

