"""Score a program on examples: one row per example, the evidence an optimizer and a benchmark read.

Input: a program, ``dspy.Example`` objects with ``id``, ``row`` (the original) and ``mode``, and
a metric from :func:`argalign.scoring.metrics.make_metric`. Output: one row per example::

    {"id", "outcome", "score", "forward", "backward", "coherence", "gate", "codes",
     "feedback", "error"}

``evaluate(..., keep_output=True)`` adds ``"output"``: the program's rewritten row (None when it
gave up), so a benchmark can show rewrites next to their originals.

``outcome`` is what the batch runner would record (an :class:`~argalign.core.records.Outcome`'s
word: ``aligned``, ``unchanged``, ``failed``, ``rejected``), read from the metric's gate: a
program that gives up on a row (:class:`~argalign.modes.base.AlignmentFailed`) scores 0 like a
rewrite the gate turns away, and ``codes`` says why. ``gate`` is the metric's word for it
(:func:`argalign.core.records.gate_word`), ``error`` when the metric gave a bare number.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

import dspy

from argalign.core.records import Outcome

log = logging.getLogger(__name__)

COMPONENTS = ("score", "forward", "backward", "invariant_pass_rate")


def _unscored(score: float) -> dspy.Prediction:
    """A metric result for a bare number (``dspy.Evaluate``'s ``failure_score`` when a program
    raised): that score, no parts, no outcome."""
    return dspy.Prediction(score=score, forward=0.0, backward=0.0, coherence=None, outcome=None,
                           gate="error", codes=[], feedback="")


def _outcome(prediction: Any, scored: dspy.Prediction, error: BaseException | None
             ) -> tuple[Outcome, list[str]]:
    """What the runner would record for this prediction, and the codes that say why."""
    from argalign.modes.base import AlignmentFailed, QualityRejected

    # A DSPy prediction has only the fields its program set: ``dspy.Evaluate`` gives an empty
    # one for a program that raised, and only a failure returned as a prediction
    # (``failures_as_predictions``) has ``failure``, with ``codes`` and ``rejected``.
    row = getattr(prediction, "row", None)
    if getattr(prediction, "failure", None) and row is None:
        return (Outcome.REJECTED if prediction.rejected else Outcome.FAILED,
                list(prediction.codes or scored.codes))
    if isinstance(error, QualityRejected):
        return Outcome.REJECTED, [error.code]
    if isinstance(error, AlignmentFailed):
        return Outcome.FAILED, [error.code]
    if error is not None or row is None:
        return Outcome.FAILED, list(scored.codes)
    kept = scored.outcome in (Outcome.ALIGNED, Outcome.UNCHANGED)
    return (scored.outcome if kept else Outcome.REJECTED), list(scored.codes)


def metric_row(example: dspy.Example, prediction: Any, result: dspy.Prediction | float,
               error: BaseException | None = None) -> dict[str, Any]:
    """One example's row from the program's prediction (or error) and the metric's result.

    ``result`` is what :func:`argalign.scoring.metrics.make_metric` returns, or a bare number
    (``dspy.Evaluate``'s ``failure_score``: no parts, no outcome, gate ``error``).
    """
    scored = result if isinstance(result, dspy.Prediction) else _unscored(float(result))
    outcome, codes = _outcome(prediction, scored, error)
    return {"id": example.id, "outcome": outcome.value, "score": float(scored.score),
            "forward": float(scored.forward), "backward": float(scored.backward),
            "coherence": None if scored.coherence is None else float(scored.coherence),
            "gate": scored.gate, "codes": codes, "feedback": str(scored.feedback),
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
    (:func:`argalign.scoring.scoreboard.counted`).
    """
    n = len(rows) or 1
    return {
        "score": sum(r["score"] for r in rows) / n,
        "forward": sum(r["forward"] for r in rows) / n,
        "backward": sum(r["backward"] for r in rows) / n,
        "invariant_pass_rate": sum(r["outcome"] == Outcome.ALIGNED for r in rows) / n,
    }
