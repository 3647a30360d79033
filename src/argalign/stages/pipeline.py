"""``argalign pipeline``: prepare, run, merge and clean in one command.

Input: a source (the bundled sample by default, a Hub id, a dataset folder or a JSONL file).
Output: everything under one data directory (see :mod:`argalign.stages.run`), the review report
``<data>/report.html`` beside ``cleaned/``, and a summary with one row per (config, split):
examples, run outcomes, rows kept by clean and rows set aside.
Running it again resumes the run (``prepare`` draws the same sample for the same seed).
Publishing is left to a hook: pass ``publish``, a callable that receives the cleaned
directory (``argalign pipeline --publish-repo`` passes one that calls :mod:`argalign.stages.publish`).
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from argalign.core.datadir import DataDir
from argalign.core.lock import locked
from argalign.core.records import MISSING, OUTCOMES, Outcome
from argalign.core.results import StageResult, Table, subset_table
from argalign.stages.clean import CleanSummary, clean
from argalign.stages.merge import MergeSummary, merge
from argalign.stages.run.runner import RunOptions, run_batch
from argalign.stages.run.summary import RunSummary

if TYPE_CHECKING:
    from argalign.stages.prepare import PrepareResult
    from argalign.stages.report import ReportSummary

log = logging.getLogger(__name__)

TABLE_COLUMNS = ("examples", *OUTCOMES, "cleaned", "set_aside")


@dataclass(frozen=True)
class PipelineResult(StageResult):
    """What every stage of the pipeline returned, and one row per (config, split) of
    :data:`TABLE_COLUMNS`: examples, run outcomes, rows kept by clean and rows set aside."""

    prepare: PrepareResult
    run: RunSummary
    merge: MergeSummary
    clean: CleanSummary
    published: object
    report: ReportSummary | None
    table: dict[str, dict[str, int]]

    def as_dict(self) -> dict[str, Any]:
        published = self.published
        return {"prepare": self.prepare.as_dict(), "run": self.run.as_dict(),
                "merge": self.merge.as_dict(), "clean": self.clean.as_dict(),
                "published": published.as_dict() if isinstance(published, StageResult)
                else published,
                "report": self.report.as_dict() if self.report is not None else None,
                "table": self.table}

    def as_table(self) -> Table:
        """:attr:`table` with a total row, as ``argalign pipeline`` prints it."""
        return subset_table(self.table, TABLE_COLUMNS)


def pipeline(*, source: str | None, configs: list[str], splits: list[str], n: int | None,
             seed: int, data: str | Path, run: RunOptions,
             publish: Callable[[Path], Any] | None = None, report: bool = True) -> PipelineResult:
    """Run every stage; return each stage's result and the per-subset table.

    ``report`` writes the review report (:mod:`argalign.stages.report`) to ``<data>/report.html``.
    """
    from argalign.stages.prepare import prepare

    folder = DataDir(data)
    # The data folder's lock for the whole pipeline (each step takes it again: re-entrant); a
    # folder that prepare makes is locked from when it exists.
    with locked(folder.root, "pipeline"):
        log.info("pipeline: prepare %s -> %s", source or "sample", folder.stage("raw"))
        prepared = prepare(source=source, configs=configs, splits=splits, n=n, seed=seed,
                           data=folder.root)
        with locked(folder.root, "pipeline"):
            return _steps(folder, prepared, configs=configs, splits=splits, seed=seed,
                          run=run, publish=publish, report=report)


def _steps(folder: DataDir, prepared: PrepareResult, *, configs: list[str], splits: list[str],
           seed: int, run: RunOptions, publish: Callable[[Path], Any] | None,
           report: bool) -> PipelineResult:
    options = dataclasses.replace(run, data=folder.root, seed=seed, configs=tuple(configs),
                                  splits=tuple(splits))
    ran = run_batch(options)
    merged = merge(folder.root, ran.run)
    cleaned = clean(folder.root)
    reported = None
    if report:
        from argalign.stages.report import build_report

        reported = build_report(folder.root, run_name=ran.run)
    published = publish(folder.stage("cleaned")) if publish is not None else None
    return PipelineResult(prepare=prepared, run=ran, merge=merged, clean=cleaned,
                          published=published, report=reported,
                          table=_table(ran, merged, cleaned))


def _table(ran: RunSummary, merged: MergeSummary, cleaned: CleanSummary
           ) -> dict[str, dict[str, int]]:
    """Per (config, split): the raw examples, the run's outcomes, rows kept and set aside."""
    table = {}
    for key, counts in cleaned.subsets.items():
        outcomes = ran.subsets.get(key, {})
        table[key] = {"examples": merged.subsets[key].raw,
                      **{k: outcomes.get(k, 0) for k in OUTCOMES},
                      "cleaned": counts[Outcome.ALIGNED],
                      "set_aside": counts["rows_in"] - counts[Outcome.ALIGNED] + counts[MISSING]}
    return table
