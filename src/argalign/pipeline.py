"""``argalign pipeline``: prepare, run, merge and clean in one command.

Input: a source (the bundled sample by default, a Hub id, a dataset folder or a JSONL file).
Output: everything under one data directory (see :mod:`argalign.run`), the review report
``<data>/report.html`` beside ``cleaned/``, and a summary with one row per (config, split):
examples, run outcomes, rows kept by clean and rows set aside.
Running it again resumes the run (``prepare`` draws the same sample for the same seed).
Publishing is left to a hook: pass ``publish``, a callable that receives the cleaned
directory (``argalign pipeline --publish-repo`` passes one that calls :mod:`argalign.publish`).
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from argalign.datadir import DataDir
from argalign.lock import locked
from argalign.records import MISSING, OUTCOMES, Outcome
from argalign.run.clean import clean
from argalign.run.merge import merge
from argalign.run.runner import RunOptions, run_batch

log = logging.getLogger(__name__)

TABLE_COLUMNS = ("examples", *OUTCOMES, "cleaned", "set_aside")


def pipeline(*, source: str | None, configs: list[str], splits: list[str], n: int | None,
             seed: int, data: str | Path, run: RunOptions,
             publish: Callable[[Path], Any] | None = None, report: bool = True) -> dict[str, Any]:
    """Run every stage; return ``{"prepare", "run", "merge", "clean", "report", "table"}``.

    ``report`` writes the review report (:mod:`argalign.review`) to ``<data>/report.html``.
    """
    from argalign.prepare import prepare

    folder = DataDir(data)
    # The data folder's lock for the whole pipeline (each step takes it again: re-entrant); a
    # folder that prepare makes is locked from when it exists.
    with locked(folder.root, "pipeline"):
        log.info("pipeline: prepare %s -> %s", source or "sample", folder.stage("raw"))
        prepared = prepare(source=source, configs=configs, splits=splits, n=n, seed=seed,
                           data=folder.root)
        with locked(folder.root, "pipeline"):
            return _steps(folder, prepared.as_dict(), configs=configs, splits=splits, seed=seed,
                          run=run, publish=publish, report=report)


def _steps(folder: DataDir, prepared: dict[str, Any], *, configs: list[str], splits: list[str],
           seed: int, run: RunOptions, publish: Callable[[Path], Any] | None,
           report: bool) -> dict[str, Any]:
    options = dataclasses.replace(run, data=folder.root, seed=seed, configs=tuple(configs),
                                  splits=tuple(splits))
    ran = run_batch(options)
    merged = merge(folder.root, ran["run"])
    cleaned = clean(folder.root)
    reported = None
    if report:
        from argalign.review import build_report

        reported = build_report(folder.root, run_name=ran["run"])
    published = publish(folder.stage("cleaned")) if publish is not None else None
    table = {}
    for key, counts in cleaned["subsets"].items():
        outcomes = ran["subsets"].get(key, {})
        table[key] = {"examples": merged["subsets"][key]["raw"],
                      **{k: outcomes.get(k, 0) for k in OUTCOMES},
                      "cleaned": counts[Outcome.ALIGNED],
                      "set_aside": counts["rows_in"] - counts[Outcome.ALIGNED] + counts[MISSING]}
    return {"prepare": prepared, "run": ran, "merge": merged, "clean": cleaned,
            "published": published, "report": reported, "table": table}

