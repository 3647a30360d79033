"""The acceptance gate of ``run`` and ``pipeline`` (on by default): keep a rewrite only if it
scores better than the original by a margin.

Input: an example, a program, the task LM and a scorer (the metric's judge). Output: the
:class:`~argalign.core.records.ResultRecord` of :func:`~argalign.programs.align.align_example`, with
``scores`` (original and rewrite) and ``acceptance``:

    {"attempts": int, "accepted": bool, "baseline": float, "margin": float,
     "scores": [float | None per attempt],
     "task": {"calls", "input_tokens", "output_tokens"}   # every attempt
     "extra": {"calls", "input_tokens", "output_tokens"}  # attempts after the first
     "judge": {"calls", "input_tokens", "output_tokens"}} # scoring the original and the rewrites

The original is scored once (:func:`~argalign.scoring.metrics.score_row`); a rewrite that ends
``aligned`` is scored through the gate (:func:`~argalign.scoring.metrics.score_aligned`). The first
rewrite with ``score_after >= score_before + margin`` is kept (``--accept-margin``, default
:data:`DEFAULT_MARGIN`). Otherwise the program runs again on a fresh sample (the task LM copied
with a new rollout id, at a temperature above 0), up to ``retries`` more times. When none is
better by the margin, the example ends ``not_improved`` with the original's score and the best
rewrite's score and no row: it never counts as a success and ``clean`` never keeps it. A first
attempt that ends ``failed``, ``rejected`` or ``unchanged`` keeps that outcome (the program has
its own retries for those); a later attempt that ends so simply does not improve. When the
judge cannot score, the example ends ``failed`` (``JUDGE_FAILED``), so ``run --retry-failed``
takes it up again.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from dataclasses import dataclass, replace
from typing import Any

import dspy

from argalign.core.defaults import DEFAULT_ACCEPT_MARGIN
from argalign.core.records import Outcome, ResultRecord
from argalign.core.schema import Example
from argalign.modes.base import AlignConversation
from argalign.programs.align import align_example
from argalign.scoring.metrics import MutualPredictability, Score, score_aligned, score_row

log = logging.getLogger(__name__)

USAGE_KEYS = ("calls", "input_tokens", "output_tokens")
# A fresh sample needs a temperature above 0; used when the task model's own is 0.
FRESH_TEMPERATURE = 0.9
# How much better a rewrite must score to be kept (see argalign.core.defaults).
DEFAULT_MARGIN = DEFAULT_ACCEPT_MARGIN
# Float slack in ``after - before >= margin``: 0.03 - 0.02 is 0.009999999999999998.
_EPSILON = 1e-9


@dataclass(frozen=True)
class Acceptance:
    """The gate: ``retries`` fresh samples after a first rewrite not better by ``margin``."""

    retries: int = 2
    margin: float = DEFAULT_MARGIN

    def __post_init__(self) -> None:
        if self.retries < 0:
            raise ValueError("the acceptance gate's retries must be >= 0")
        if not self.margin >= 0:
            raise ValueError("the acceptance gate's margin must be >= 0")

    def keeps(self, before: float, after: float) -> bool:
        """Whether a rewrite scoring ``after`` beats its original's ``before`` by the margin."""
        return after - before >= self.margin - _EPSILON


def fresh_lm(lm: dspy.BaseLM, attempt: int) -> dspy.BaseLM:
    """A copy of ``lm`` (same callbacks, own history) that samples again for ``attempt``."""
    temperature = (getattr(lm, "kwargs", None) or {}).get("temperature") or FRESH_TEMPERATURE
    return lm.copy(rollout_id=attempt, temperature=temperature)


def _usage(record: ResultRecord) -> Counter:
    return Counter({key: int(getattr(record, key) or 0) for key in USAGE_KEYS})


class _Scorer:
    """Scores with the judge, counting the judge LM's calls and tokens."""

    def __init__(self, scorer: MutualPredictability, lm: dspy.BaseLM | None,
                 adapter: dspy.Adapter | None):
        self.scorer, self.lm, self.adapter = scorer, lm, adapter
        self.usage: Counter = Counter()
        self.seconds = 0.0

    def __call__(self, fn, *args) -> Score:
        from argalign.models.lm import usage_from_history

        lm = self.lm if self.lm is not None else dspy.settings.lm
        start = len(lm.history) if lm is not None else 0
        started = time.monotonic()
        try:
            with dspy.context(trace=None, **({"lm": self.lm} if self.lm is not None else {}),
                              **({"adapter": self.adapter} if self.adapter is not None else {})):
                return fn(*args, self.scorer)
        finally:
            self.seconds += time.monotonic() - started
            if lm is not None:
                self.usage.update(usage_from_history(lm, start))

    def cost(self) -> dict[str, Any]:
        """``scores["usage"]`` as :func:`~argalign.programs.align.score_pair` writes it: every reading
        of the gate (the original and each rewrite), so the run's ``scoring`` counts them."""
        return {**_plain(self.usage), "seconds": round(self.seconds, 3)}


def align_accepted(example: Example, program: AlignConversation, *, acceptance: Acceptance,
                   scorer: MutualPredictability, model: str, lm: dspy.BaseLM,
                   adapter: dspy.Adapter | None = None, program_id: str = "zero-shot",
                   judge_lm: dspy.BaseLM | None = None,
                   judge_adapter: dspy.Adapter | None = None) -> ResultRecord:
    """Align ``example`` through the acceptance gate; never raises for a bad row or LM answer."""
    started = time.monotonic()
    score = _Scorer(scorer, judge_lm if judge_lm is not None else lm, judge_adapter or adapter)
    task: Counter = Counter()
    extra: Counter = Counter()
    scores: list[float | None] = []
    best: tuple[Score, ResultRecord] | None = None
    baseline: Score | None = None
    for attempt in range(acceptance.retries + 1):
        record = align_example(example, program, model=model,
                               lm=lm if attempt == 0 else fresh_lm(lm, attempt),
                               adapter=adapter, program_id=program_id)
        task.update(_usage(record))
        if attempt:
            extra.update(_usage(record))
        if record.outcome is not Outcome.ALIGNED:
            if attempt == 0:  # failed, rejected or unchanged: the program's own retries are spent
                return record
            scores.append(None)
            continue
        try:
            if baseline is None:
                baseline = score(score_row, example.row)
            after = score(score_aligned, example.row, record.row, program.mode)
        except Exception as e:  # noqa: BLE001 - a judge failure must not lose the example
            from argalign.tracking import scrub

            record = replace(record, row=None, outcome=Outcome.FAILED,
                             codes=["JUDGE_FAILED"], reason=scrub(
                                 f"the acceptance gate could not score: {type(e).__name__}: {e}"))
            return _finish(record, started, attempt + 1, False, baseline, scores, task, extra,
                           score.usage, acceptance.margin)
        scores.append(round(after.score, 4))
        if best is None or after.score > best[0].score:
            best = (after, record)
        if acceptance.keeps(baseline.score, after.score):
            break
        log.info("%s: rewrite %d scored %.3f, not better than the original's %.3f by %.3f",
                 example.id, attempt + 1, after.score, baseline.score, acceptance.margin)
    assert best is not None and baseline is not None  # attempt 0 was aligned and scored
    after, kept = best
    accepted = acceptance.keeps(baseline.score, after.score)
    if not accepted:
        kept = replace(kept, row=None, outcome=Outcome.NOT_IMPROVED, codes=["NOT_IMPROVED"],
                       reason=f"no rewrite scored at least the original's {baseline.score:.3f} "
                              f"+ {acceptance.margin:g} in {len(scores)} attempts "
                              f"(best {after.score:.3f})")
    kept.scores = {"baseline": baseline.components(), Outcome.ALIGNED.value: after.components(),
                   "usage": score.cost()}
    return _finish(kept, started, len(scores), accepted, baseline, scores, task, extra,
                   score.usage, acceptance.margin)


def _finish(record: ResultRecord, started: float, attempts: int, accepted: bool,
            baseline: Score | None, scores: list[float | None], task: Counter, extra: Counter,
            judge: Counter, margin: float) -> ResultRecord:
    # The record's cost and latency are the whole example's: every attempt and the scoring.
    record.calls, record.input_tokens, record.output_tokens = (task[k] for k in USAGE_KEYS)
    record.latency_s = round(time.monotonic() - started, 3)
    record.acceptance = {
        "attempts": attempts, "accepted": accepted,
        "baseline": round(baseline.score, 4) if baseline is not None else None, "margin": margin,
        "scores": scores, "task": _plain(task), "extra": _plain(extra), "judge": _plain(judge)}
    return record


def _plain(counter: Counter) -> dict[str, int]:
    return {key: int(counter[key]) for key in USAGE_KEYS}
