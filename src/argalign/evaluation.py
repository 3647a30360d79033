"""Score a program on examples: one row per example, the evidence an optimizer and a benchmark read.

Input: a program, ``dspy.Example`` objects with ``id``, ``row`` (the original) and ``mode``, and
a metric from :func:`argalign.metrics.make_metric`. Output: one row per example::

    {"id", "outcome", "score", "forward", "backward", "coherence", "gate", "codes",
     "feedback", "error"}

``evaluate(..., keep_output=True)`` adds ``"output"``: the program's rewritten row (None when it
gave up), so a benchmark can show rewrites next to their originals.

``outcome`` is what the batch runner would record (``aligned``, ``unchanged``, ``failed``,
``rejected``): a program that gives up on a row (:class:`~argalign.modules.AlignmentFailed`)
scores 0 like a rewrite the gate turns away, and ``codes`` says why.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

import dspy

log = logging.getLogger(__name__)

COMPONENTS = ("score", "forward", "backward", "invariant_pass_rate")


def metric_row(example: dspy.Example, prediction: Any, result: Any,
               error: BaseException | None = None) -> dict[str, Any]:
    """One example's row from the program's prediction (or error) and the metric's result."""
    from argalign.modules import AlignmentFailed, QualityRejected

    gate = str(getattr(result, "gate", "error"))
    codes = list(getattr(result, "codes", None) or [])
    failure = getattr(prediction, "failure", None)
    if failure and getattr(prediction, "row", None) is None:  # failures_as_predictions
        outcome = "rejected" if getattr(prediction, "rejected", False) else "failed"
        codes = list(getattr(prediction, "codes", None) or codes)
    elif isinstance(error, QualityRejected):
        outcome, codes = "rejected", [error.code]
    elif isinstance(error, AlignmentFailed):
        outcome, codes = "failed", [error.code]
    elif error is not None or getattr(prediction, "row", None) is None:
        outcome = "failed"
    else:
        outcome = {"pass": "aligned", "unchanged": "unchanged"}.get(gate, "rejected")
    coherence = getattr(result, "coherence", None)
    return {"id": example.id, "outcome": outcome,
            "score": float(getattr(result, "score", result) or 0.0),
            "forward": float(getattr(result, "forward", 0.0) or 0.0),
            "backward": float(getattr(result, "backward", 0.0) or 0.0),
            "coherence": None if coherence is None else float(coherence),
            "gate": gate, "codes": codes, "feedback": str(getattr(result, "feedback", "")),
            "error": None if error is None else f"{type(error).__name__}: {error}"}


def evaluate(program: dspy.Module, examples: Sequence[dspy.Example], metric: Callable,
             *, desc: str | None = None, keep_output: bool = False) -> list[dict[str, Any]]:
    """Score ``program`` on ``examples`` one by one; a progress bar when ``desc`` is given.

    Each row also has ``seconds`` (aligning and scoring that example) and, with
    ``keep_output``, ``output`` (the rewritten row).
    """
    from tqdm import tqdm

    rows = []
    for example in tqdm(examples, desc=desc, unit="conv", file=sys.stderr, leave=False,
                        disable=desc is None, dynamic_ncols=True):
        error, started = None, time.monotonic()
        try:
            prediction = program(row=example.row)
        except Exception as e:  # noqa: BLE001 - a failed alignment scores 0 with its reason
            error, prediction = e, dspy.Prediction(row=None)
        result = metric(example, prediction)
        rows.append(metric_row(example, prediction, result, error))
        rows[-1]["seconds"] = round(time.monotonic() - started, 1)
        if keep_output:
            rows[-1]["output"] = getattr(prediction, "row", None)
        log.info("evaluated %s (%d/%d): score %.3f, %s, %.0f s", example.id, len(rows),
                 len(examples), rows[-1]["score"], rows[-1]["outcome"], rows[-1]["seconds"])
    return rows


def summarize(rows: Sequence[dict[str, Any]]) -> dict[str, float]:
    """A program's score: means over every row; ``invariant_pass_rate`` is the share the gate
    let through.

    Every row counts and a row the gate turns away scores 0: this is what an optimizer
    maximises (a program that gives up more often scores lower). It is not the before/after
    table's mean, which is over the rows that ended ``aligned`` only
    (:func:`argalign.scoreboard.counted`).
    """
    n = len(rows) or 1
    return {
        "score": sum(r["score"] for r in rows) / n,
        "forward": sum(r["forward"] for r in rows) / n,
        "backward": sum(r["backward"] for r in rows) / n,
        "invariant_pass_rate": sum(r["gate"] == "pass" for r in rows) / n,
    }
