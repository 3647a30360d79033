"""Align one example and say how it ended: the unit of work of ``align`` and ``run``.

Input: an :class:`~argalign.core.schema.Example`, a compiled or zero-shot program, an LM.
Output: a :class:`~argalign.core.records.ResultRecord` with exactly one outcome:

- ``aligned``: the rewrite passed every invariant and differs from the original;
- ``unchanged``: the rewrite is identical to the original (not a success);
- ``failed``: the LM gave no usable output within its attempts (reason and code kept);
- ``rejected``: the input row is malformed, or the rewrite broke an invariant.

The record carries provenance (mode, model, program fingerprint, attempts, tokens, latency)
and, when a judge is given, the metric components of the original and the aligned row.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from typing import Any

import dspy

from argalign.core.errors import RowError
from argalign.core.records import Outcome, ResultRecord
from argalign.core.schema import Example, parse_conversation
from argalign.modes.base import AlignConversation, AlignmentFailed, QualityRejected
from argalign.scoring.gate import gate
from argalign.scoring.metrics import MutualPredictability, score_aligned, score_row

log = logging.getLogger(__name__)


def _usage(lm: dspy.BaseLM | None, start: int) -> dict[str, int]:
    if lm is None:
        return {"calls": 0, "input_tokens": 0, "output_tokens": 0}
    from argalign.models.lm import usage_from_history

    return usage_from_history(lm, start)


def align_example(
    example: Example,
    program: AlignConversation,
    *,
    model: str,
    lm: dspy.BaseLM | None = None,
    adapter: dspy.Adapter | None = None,
    program_id: str = "zero-shot",
    judge: MutualPredictability | None = None,
    judge_lm: dspy.BaseLM | None = None,
    judge_adapter: dspy.Adapter | None = None,
) -> ResultRecord:
    """Align one example; never raises for a bad row or a bad LM answer.

    ``judge_lm`` and ``judge_adapter`` are the judge model's (default: ``lm`` and ``adapter``).
    """
    record = ResultRecord(
        id=example.id,
        source_id=example.row.get("source_id") if isinstance(example.row, dict) else None,
        config=example.config, split=example.split, index=example.index,
        mode=program.mode, model=model, program=program_id,
    )
    started = time.monotonic()
    start = len(lm.history) if lm is not None else 0
    aligned: dict[str, Any] | None = None
    try:
        parse_conversation(example.row, example.id)
        with dspy.context(**({"lm": lm} if lm is not None else {}),
                          **({"adapter": adapter} if adapter is not None else {})):
            prediction = program(row=example.row)
        aligned = prediction.row
        record.attempts = prediction.calls
        record.retries = list(prediction.retries)
        verdict = gate(example.row, aligned, program.mode)
        record.outcome, record.codes, record.reason = (verdict.outcome, verdict.codes,
                                                       verdict.reason())
        if verdict.outcome is Outcome.REJECTED:
            aligned = None
        elif verdict.outcome is Outcome.UNCHANGED:
            record.reason = verdict.reason() or "the rewrite is identical to the original"
    except RowError as e:
        record.outcome, record.codes, record.reason = Outcome.REJECTED, [e.code], str(e)
    except QualityRejected as e:
        # Every attempt failed a quality check: not an LM failure, a rewrite not to keep.
        record.outcome, record.codes, record.reason = Outcome.REJECTED, [e.code], e.reason
        record.attempts = e.attempts
    except AlignmentFailed as e:
        record.outcome, record.codes, record.reason = Outcome.FAILED, [e.code], e.reason
        record.attempts = e.attempts
    except Exception as e:  # noqa: BLE001 - one bad sample never kills a batch
        from argalign.core.redact import scrub

        # An exception's text can quote a request, and a request can carry a key: redact it
        # before it reaches a log or a file (so no raw traceback is logged either).
        reason = scrub(f"{type(e).__name__}: {e}")
        log.error("unexpected error on %s: %s", example.id, reason)
        record.outcome, record.codes, record.reason = Outcome.FAILED, ["INTERNAL_ERROR"], reason
    record.latency_s = round(time.monotonic() - started, 3)
    usage = _usage(lm, start)
    record.calls, record.input_tokens, record.output_tokens = (
        usage["calls"], usage["input_tokens"], usage["output_tokens"])
    kept = record.outcome in (Outcome.ALIGNED, Outcome.UNCHANGED)
    if judge is not None and kept:
        record.scores = score_pair(example.row, aligned, program.mode, judge,
                                   judge_lm if judge_lm is not None else lm,
                                   judge_adapter or adapter)
    record.row = aligned if kept else None
    return record


def score_pair(original: dict[str, Any], aligned: dict[str, Any] | None, mode: str,
               judge: MutualPredictability, judge_lm: dspy.BaseLM | None,
               adapter: dspy.Adapter | None) -> dict[str, Any]:
    """Metric components of the original (baseline) and of the aligned row, and what the
    judge's calls cost (``usage``: calls and tokens, read from the judge LM's history, and
    seconds).  ``latency_s`` of the record is the alignment's alone."""
    history = getattr(judge_lm, "history", None)  # a scripted judge in a test may keep none
    start = len(history) if history is not None else 0
    started = time.monotonic()
    with dspy.context(trace=None, **({"lm": judge_lm} if judge_lm is not None else {}),
                      **({"adapter": adapter} if adapter is not None else {})):
        try:
            before = score_row(original, judge).components()
            after = score_aligned(original, aligned, mode, judge).components()
        except Exception as e:  # noqa: BLE001 - a judge failure must not lose the row
            return {"error": f"{type(e).__name__}: {e}"}
    scores = {"baseline": before, Outcome.ALIGNED.value: after}
    if history is not None:
        scores["usage"] = {**_usage(judge_lm, start),
                           "seconds": round(time.monotonic() - started, 3)}
    return scores


def scores_of(comparison: str, judge_lm: dspy.BaseLM | None = None,
              adapter: dspy.Adapter | None = None) -> Callable[[Mapping[str, Any], Mapping[str, Any]],
                                                             dict[str, Any] | None]:
    """``compute(inputs, outputs)`` for :func:`argalign.tracking.genai.scorer`: the scores of an
    example given as ``inputs = {"row": original, "mode": mode}`` and ``outputs = {"row":
    aligned}`` (None when the inputs do not hold both)."""
    judge = MutualPredictability(comparison)

    def compute(inputs: Mapping[str, Any], outputs: Mapping[str, Any]) -> dict[str, Any] | None:
        original, mode = inputs.get("row"), inputs.get("mode")
        if not isinstance(original, dict) or not isinstance(mode, str):
            return None
        return score_pair(original, outputs.get("row"), mode, judge, judge_lm, adapter)

    return compute
