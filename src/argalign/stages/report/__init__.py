"""``argalign report``: a run as one self-contained HTML page for review before publishing.

Input: a data folder and a run. Output: ``report.html`` (by default beside ``cleaned/``) with
the outcome counts, the before/after scores with their intervals and plots, the codes, the
LM's cost, and every conversation side by side, original and aligned, with buttons to label
the rewrite better, same or worse and download the labels as an oracle file (see
:mod:`argalign.stages.report.page`). :func:`build_report` also returns the figures' names, so a
caller can log the same figures to MLflow.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from argalign.core.datadir import DataDir
from argalign.core.results import StageResult

log = logging.getLogger(__name__)

REPORT_FILE = "report.html"


@dataclass(frozen=True)
class ReportSummary(StageResult):
    """What ``report`` wrote: the page, its run, how many examples and bytes, the figures."""

    out: str
    run: str
    examples: int
    size: int
    plots: list[str]

    def as_dict(self) -> dict[str, Any]:
        return {"out": self.out, "run": self.run, "examples": self.examples, "bytes": self.size,
                "plots": self.plots}


def default_path(data: str | Path) -> Path:
    """Where ``pipeline`` and ``report`` write it: ``<data>/report.html``, beside ``cleaned/``."""
    return DataDir(data).root / REPORT_FILE


def build_report(data: str | Path, *, run_name: str | None = None,
                 page: str | Path | None = None) -> ReportSummary:
    """Write the report of a run; return where, its size and the figures' names."""
    from argalign.core.files import atomic_write
    from argalign.core.jsonl import refuse_overwrite
    from argalign.scoring import plots
    from argalign.stages.report.collect import collect
    from argalign.stages.report.page import render

    path = Path(page) if page is not None else default_path(data)
    # The report reads the raw and result files: it may not replace one, nor write among them.
    refuse_overwrite([path], [], "--page", data_trees=True, data=data)
    view = collect(data, run_name)
    figures = plots.score_figures(view.scores)
    try:
        uris = {name: plots.png_data_uri(figure) for name, figure in figures.items()}
    finally:
        plots.close(figures)
    page = render(view, uris, data_dir=str(data),
                  labels_key=f"{Path(data).resolve()}#{view.run}")
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(path, "w") as fh:
        fh.write(page)
    log.info("report of run %s (%d examples) written to %s", view.run, len(view.rows), path)
    return ReportSummary(out=str(path), run=view.run, examples=view.examples,
                         size=len(page.encode("utf-8")), plots=sorted(uris))
