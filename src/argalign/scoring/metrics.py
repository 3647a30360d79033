"""Mutual predictability of a request and the whole response, gated by invariants and checks.

Per turn, three parts, each in [0, 1]:

- **forward** F: from the request (its source text a placeholder), how predictable is what
  the assistant delivers;
- **backward** B: from the response (the steps of its thinking, its tool calls, its answer
  with any yes/no verdict masked), how recoverable is what the request asks;
- **coherence** C: for every thinking, does its frame (opening and closing) follow from the
  request and lead to the answer, and does its opening plan the steps its middle works through.

``turn = mean(F, B, C)`` (C is left out of a turn without thinking, and a part a comparison
cannot measure is left out), ``score = mean over turns``. An aligned row scores 0 when it
breaks a hard invariant, fails a quality check, or is unchanged.

The parts are measured by a *comparison*: a subclass of
:class:`~argalign.scoring.comparison.Comparison` in a module of its own
(``scoring/comparison_<name>.py``), registered in :data:`COMPARISONS`. With ℓ the response's main
task label read by rules (:mod:`argalign.core.deliverables`), P_x the judge's distribution over the
task labels after reading x (:mod:`argalign.scoring.judge`), ⟨P, Q⟩ = Σ_l P(l)·Q(l) the probability
that two readings agree, and plan(t) the share of the middle's step headings that the
thinking's opening lists:

- ``judge``: F = P_request(ℓ); B = ⟨P_response, P_request⟩;
  C = plan(t) · ½ (P_thinking(ℓ) + ⟨P_thinking, P_request⟩).
- ``structural`` (no LM): with R the labels the request names, D the response's main task and
  features, E = D plus the method its plan names: F = |R∩D| / |D|; B = |R∩E| / |R| (0 when R is
  empty); C = plan(t) · ½ ([ℓ named by the frame] + Jaccard of the task labels the frame and
  the request name).
- ``lexical`` (no LM, a baseline): F = B = content-word F1 of request and response view;
  C = plan(t) · content-word F1 of frame and request.
- ``hybrid`` (the default): each part the mean of its ``judge`` and ``structural`` values
  (where one of them cannot measure a part, the other's value stands). Measured on four
  validity checks (``bench/metric_validity.py``, README), it is the only comparison that meets
  every target: the rules are exact on the dataset's templates, the judge reads any phrasing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import dspy

from argalign.core.codes import catalogue
from argalign.core.defaults import DEFAULT_COMPARISON
from argalign.core.records import Outcome, Rejection, gate_word
from argalign.scoring.checks import CODES as QUALITY_CODES
from argalign.scoring.comparison import Comparison, Parts, mean_present, turn_views
from argalign.scoring.comparison_hybrid import HybridComparison
from argalign.scoring.comparison_judge import JudgeComparison
from argalign.scoring.comparison_lexical import LexicalComparison
from argalign.scoring.comparison_structural import StructuralComparison
from argalign.scoring.gate import gate
from argalign.scoring.judge import Judge

# A new comparison is its module's import above and its class in this tuple.
COMPARISONS: dict[str, type[Comparison]] = {
    c.name: c for c in (JudgeComparison, HybridComparison, StructuralComparison,
                        LexicalComparison)
}


# --- scores -------------------------------------------------------------------------------------

@dataclass
class Score:
    """A conversation's score and its parts, with words for GEPA's reflection.

    ``outcome`` is the gate's (:func:`score_aligned`), None for a conversation scored as it
    stands (:meth:`MutualPredictability.score`); ``rejection`` says why a rejected rewrite was
    turned away.
    """

    score: float
    forward: float
    backward: float
    coherence: float | None
    outcome: Outcome | None
    feedback: str
    codes: list[str] = field(default_factory=list)
    turns: list[Parts] = field(default_factory=list)
    rejection: Rejection | None = None

    def components(self) -> dict[str, Any]:
        """The JSON a result record keeps; the outcome as its ``gate`` word (:func:`gate_word`)."""
        out = {"score": round(self.score, 4), "forward": round(self.forward, 4),
               "backward": round(self.backward, 4),
               "gate": gate_word(self.outcome, self.rejection)}
        if self.coherence is not None:
            out["coherence"] = round(self.coherence, 4)
        if self.codes:
            out["codes"] = list(self.codes)
        return out


class MutualPredictability:
    """Scores conversations with one comparison (``judge``, ``structural`` or ``lexical``).

    Args:
        comparison: a name in :data:`COMPARISONS`, or a comparison object.
        judge: the :class:`~argalign.scoring.judge.Judge` of the ``judge`` comparison (default: one
            on ``dspy.settings.lm`` at call time, with calibration and a reading cache).
    """

    def __init__(self, comparison: str | Comparison = DEFAULT_COMPARISON,
                 judge: Judge | None = None):
        if isinstance(comparison, Comparison):
            self.comparison, self._comparison = comparison.name, comparison
            return
        if comparison not in COMPARISONS:
            raise ValueError(f"comparison must be one of {', '.join(COMPARISONS)}, "
                             f"not {comparison!r}")
        self.comparison = comparison
        kind = COMPARISONS[comparison]
        self._comparison = kind(judge) if kind.uses_lm else kind()

    @property
    def calls_per_turn(self) -> int:
        return self._comparison.calls_per_turn

    def score(self, row: dict[str, Any]) -> Score:
        """Score a conversation as it stands (an original, or an aligned row without its gate)."""
        turns = [self._comparison.parts(view) for view in turn_views(row)]
        forward = mean_present([t.forward for t in turns]) or 0.0
        backward = mean_present([t.backward for t in turns]) or 0.0
        coherence = mean_present([t.coherence for t in turns])
        feedback = "\n".join(
            f"Turn {k + 1}: forward {_fmt(t.forward)}, backward {_fmt(t.backward)}, coherence "
            f"{_fmt(t.coherence)}. {t.notes}" for k, t in enumerate(turns))
        total = sum(t.score for t in turns) / len(turns)
        return Score(total, forward, backward, coherence, None, feedback, turns=turns)


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}"


def score_row(row: dict[str, Any], scorer: MutualPredictability) -> Score:
    """Score a conversation as it stands (baseline or aligned), without the gate."""
    return scorer.score(row)


def score_aligned(original: dict[str, Any], aligned: dict[str, Any] | None, mode: str,
                  scorer: MutualPredictability) -> Score:
    """Gate by the invariants, the quality checks and unchangedness, then score."""
    verdict = gate(original, aligned, mode)
    if verdict.outcome is Outcome.FAILED:
        return Score(0.0, 0.0, 0.0, None, Outcome.FAILED, "No aligned row was produced.",
                     codes=["FAILED"])
    if verdict.outcome is Outcome.REJECTED:
        detail = "; ".join(f"{v.code} at message {v.message_index}: {v.detail}"
                           for v in verdict.violations[:5])
        why = Rejection.CHECK if set(verdict.codes) <= set(QUALITY_CODES) else Rejection.INVARIANT
        what = "Quality checks failed" if why is Rejection.CHECK else "Hard invariants violated"
        return Score(0.0, 0.0, 0.0, None, Outcome.REJECTED, f"{what}: {detail}",
                     codes=verdict.codes, rejection=why)
    if verdict.outcome is Outcome.UNCHANGED:
        return Score(0.0, 0.0, 0.0, None, Outcome.UNCHANGED,
                     "The conversation was returned unchanged; nothing was aligned."
                     + (f" ({verdict.reason()})" if verdict.reason() else ""))
    result = scorer.score(aligned)
    result.outcome = Outcome.ALIGNED
    return result


def _gain_words(original: dict[str, Any], result: Score, scorer: MutualPredictability) -> str:
    """For a rewrite that passed the gate: its score against the original's, so that the
    reflection sees whether the rewrite made the conversation better, not just how it scores."""
    if result.outcome is not Outcome.ALIGNED:
        return ""
    with dspy.context(trace=None):
        before = scorer.score(original).score
    verdict = "better than" if result.score > before else (
        "no better than" if result.score == before else "worse than")
    return (f"The original conversation scores {before:.2f}; this rewrite scores "
            f"{result.score:.2f} ({result.score - before:+.2f}), {verdict} the original.")


def _code_words(codes: list[str]) -> str:
    """What each check code means (from the code catalogue), for the reflection to fix."""
    known = catalogue()
    lines = [f"{code}: {known[code][1]}" for code in dict.fromkeys(codes) if code in known]
    return "What the codes mean:\n" + "\n".join(lines) if lines else ""


class PredictabilityMetric:
    """The DSPy metric: ``(gold, pred, trace, pred_name, pred_trace) -> Prediction(score, feedback)``.

    ``gold.row`` is the original, ``gold.mode`` the mode, ``pred.row`` the aligned row (None
    when the program gave up, with ``pred.failure`` and ``pred.codes`` saying why). The row is
    gated (:func:`score_aligned`), then scored by ``scorer``; the feedback, which GEPA's
    reflection reads, adds the score against the original's and what each code means. The
    prediction also carries the parts (``forward``, ``backward``, ``coherence``), the gate's
    ``outcome`` (an :class:`~argalign.core.records.Outcome`), its ``gate`` word and the ``codes``.
    """

    def __init__(self, scorer: MutualPredictability):
        self.scorer = scorer  # also scores originals with the same judge (bootstrap, benches)
        self.__name__ = f"mutual_predictability_{scorer.comparison}"

    @property
    def calls_per_turn(self) -> int:
        """Judge calls per turn scored (0 for a comparison that asks no LM)."""
        return self.scorer.calls_per_turn

    def __call__(self, gold: dspy.Example, pred: dspy.Prediction, trace: Any = None,
                 pred_name: str | None = None, pred_trace: Any = None) -> dspy.Prediction:
        aligned = getattr(pred, "row", None)
        with dspy.context(trace=None):
            result = score_aligned(gold.row, aligned, gold.mode, self.scorer)
        failure = getattr(pred, "failure", None)
        if aligned is None and failure:
            # The program gave up (its retries all failed): say why, so that GEPA's
            # reflection sees the quality-check or LM code.
            result.feedback = f"No aligned row was produced: every attempt failed ({failure})."
            result.codes = list(getattr(pred, "codes", None) or result.codes)
        result.feedback = "\n".join(filter(None, [
            result.feedback, _gain_words(gold.row, result, self.scorer),
            _code_words(result.codes)]))
        return dspy.Prediction(score=result.score, feedback=result.feedback,
                               forward=result.forward, backward=result.backward,
                               coherence=result.coherence, outcome=result.outcome,
                               gate=gate_word(result.outcome, result.rejection),
                               codes=list(result.codes))


def make_metric(judge_lm: dspy.BaseLM | None = None, comparison: str = DEFAULT_COMPARISON,
                adapter: dspy.Adapter | None = None) -> PredictabilityMetric:
    """The metric of one comparison; the judge reads with ``judge_lm`` (the task LM when None).

    ``adapter`` is accepted for compatibility: the judge's readings format their own prompts.
    """
    return PredictabilityMetric(
        MutualPredictability(comparison, Judge(judge_lm) if judge_lm is not None else None))
