"""Mutual predictability of request and answer, gated by the hard invariants.

Forward: a judge reads the request and predicts what the answer does; the prediction is
compared with the actual answer. Backward: a judge reads the answer (and its tool calls)
and reconstructs the request; that is compared with the actual request. Each comparison is
a score in [0, 1], either rated by the judge (``judge``, one more LM call) or by content-word
overlap (``lexical``, no LM call). The score of a conversation is the mean of forward and
backward over its turns. For an aligned row the invariants gate it: a violation or an
unchanged row scores 0.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import dspy

from argalign.invariants import Outcome, gate
from argalign.schema import parse_conversation, split_source
from argalign.signatures import PredictAnswer, RateMatch, ReconstructRequest
from argalign.thinking import shorten

COMPARISONS = ("judge", "lexical")

_WORD = re.compile(r"[a-z][a-z0-9-]{2,}")
_STOP = frozenset("""the and for that this with from are was were will would should could can
you your yours our they them their its it's not but have has had been being into onto
than then there here what
which who whom whose when where why how all any each every some such only own same very just
also more most other about above below under over again further once both few nor too out
off per via shall may might must does did doing done one two three four five user assistant
request answer text given following please""".split())  # noqa: SIM905


def content_words(text: str) -> set[str]:
    return {w for w in _WORD.findall(text.lower()) if w not in _STOP}


def lexical_match(prediction: str, actual: str) -> float:
    """F1 of content words: how much of each text the other covers."""
    a, b = content_words(prediction), content_words(actual)
    if not a or not b:
        return 0.0
    common = len(a & b)
    if not common:
        return 0.0
    precision, recall = common / len(a), common / len(b)
    return 2 * precision * recall / (precision + recall)


@dataclass
class Score:
    """A conversation's score and its parts, with the judge's words for GEPA's reflection."""

    score: float
    forward: float
    backward: float
    gate: str  # "pass", "unchanged", "violation" or "baseline"
    feedback: str
    turns: list[dspy.Prediction] = field(default_factory=list)
    codes: list[str] = field(default_factory=list)

    def components(self) -> dict[str, Any]:
        return {"score": round(self.score, 4), "forward": round(self.forward, 4),
                "backward": round(self.backward, 4), "gate": self.gate}


def visible_request(content: str | None) -> str:
    """The request as the judge sees it: the source text replaced by a placeholder.

    Mutual predictability is about task, method, format and detail. The source text is the
    same whatever the request asks, and its topic words would dominate a comparison (a vague
    request plus an excerpt overlapped with the answer more than an explicit one did).
    """
    content = content or ""
    parts = split_source(content)
    if parts is None:
        return shorten(content, 1500)
    before, source, after = parts
    return f"{before}[source text, {len(source)} characters]{after}"


def _turn_views(row: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(request, answer, tool calls) for each turn of a row."""
    conversation = parse_conversation(row, str(row.get("source_id", "row")))
    views = []
    for turn in conversation.turns:
        request = visible_request(conversation.messages[turn.user_index].content)
        answer = ""
        tools = []
        for i in turn.assistant_indices:
            message = conversation.messages[i]
            if message.content:
                answer = message.content
            if message.tool_calls:
                tools.append(shorten(message.tool_calls, 400))
        views.append((request, shorten(answer, 2000), "; ".join(tools) or "none"))
    return views


class MutualPredictability(dspy.Module):
    """The judge program: two predictions and, with ``judge`` comparison, two ratings."""

    def __init__(self, comparison: str = "judge"):
        super().__init__()
        if comparison not in COMPARISONS:
            raise ValueError(f"comparison must be one of {COMPARISONS}")
        self.comparison = comparison
        self.predict_answer = dspy.Predict(PredictAnswer)
        self.reconstruct_request = dspy.Predict(ReconstructRequest)
        self.rate = dspy.Predict(RateMatch)

    def _compare(self, prediction: str, actual: str, notes: list[str]) -> float:
        if self.comparison == "lexical":
            return lexical_match(prediction, actual)
        rated = self.rate(prediction=prediction, actual=actual)
        notes.append(str(rated.reason))
        return max(0.0, min(10.0, float(rated.rating))) / 10.0

    def forward(self, request: str, answer: str, tool_calls: str) -> dspy.Prediction:
        """One turn: ``forward``, ``backward`` in [0, 1], the two predictions, judge notes."""
        notes: list[str] = []
        predicted = str(self.predict_answer(request=request).predicted_answer)
        actual_answer = answer if tool_calls == "none" else f"{answer}\nTool calls: {tool_calls}"
        forward = self._compare(predicted, actual_answer, notes)
        reconstructed = str(self.reconstruct_request(answer=answer, tool_calls=tool_calls)
                            .reconstructed_request)
        backward = self._compare(reconstructed, request, notes)
        return dspy.Prediction(forward=forward, backward=backward, predicted_answer=predicted,
                               reconstructed_request=reconstructed, notes=notes)


def score_row(row: dict[str, Any], judge: MutualPredictability) -> Score:
    """Score a conversation as it stands (baseline or aligned), without the gate."""
    turns = [judge(request=r, answer=a, tool_calls=t) for r, a, t in _turn_views(row)]
    forward = sum(t.forward for t in turns) / len(turns)
    backward = sum(t.backward for t in turns) / len(turns)
    feedback = "\n".join(
        f"Turn {k + 1}: forward {t.forward:.2f} (a reader of the request expected: "
        f"{shorten(t.predicted_answer, 300)}); backward {t.backward:.2f} (a reader of the answer "
        f"reconstructed the request as: {shorten(t.reconstructed_request, 300)})"
        + (f"; judge: {' / '.join(t.notes)}" if t.notes else "")
        for k, t in enumerate(turns)
    )
    return Score((forward + backward) / 2, forward, backward, "baseline", feedback, turns)


def score_aligned(original: dict[str, Any], aligned: dict[str, Any] | None, mode: str,
                  judge: MutualPredictability) -> Score:
    """Gate by the invariants, then score. A violation or an unchanged row scores 0."""
    if aligned is None:
        return Score(0.0, 0.0, 0.0, "violation", "No aligned row was produced.", codes=["FAILED"])
    verdict = gate(original, aligned, mode)
    if verdict.outcome is Outcome.REJECTED:
        detail = "; ".join(f"{v.code} at message {v.message_index}: {v.detail}"
                           for v in verdict.violations[:5])
        return Score(0.0, 0.0, 0.0, "violation", f"Hard invariants violated: {detail}",
                     codes=verdict.codes)
    if verdict.outcome is Outcome.UNCHANGED:
        return Score(0.0, 0.0, 0.0, "unchanged",
                     "The conversation was returned unchanged; nothing was aligned.")
    score = score_row(aligned, judge)
    score.gate = "pass"
    return score


def make_metric(judge_lm: dspy.LM | None = None, comparison: str = "judge",
                adapter: dspy.Adapter | None = None):
    """A DSPy metric ``(gold, pred, trace, pred_name, pred_trace) -> Prediction(score, feedback)``.

    ``gold.row`` is the original, ``gold.mode`` the mode, ``pred.row`` the aligned row. The
    judge runs on ``judge_lm`` (the task LM when None).
    """
    judge = MutualPredictability(comparison)

    def metric(gold, pred, trace=None, pred_name=None, pred_trace=None) -> dspy.Prediction:
        aligned = getattr(pred, "row", None)
        with dspy.context(trace=None, **({"lm": judge_lm} if judge_lm is not None else {}),
                          **({"adapter": adapter} if adapter is not None else {})):
            result = score_aligned(gold.row, aligned, gold.mode, judge)
        return dspy.Prediction(score=result.score, feedback=result.feedback,
                               forward=result.forward, backward=result.backward,
                               gate=result.gate)

    metric.__name__ = f"mutual_predictability_{comparison}"
    return metric
