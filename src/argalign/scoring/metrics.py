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

The parts are measured by a *comparison* (:data:`COMPARISONS`). With ℓ the response's main
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

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

import dspy

from argalign.core.codes import catalogue
from argalign.core.defaults import DEFAULT_COMPARISON
from argalign.core.deliverables import TASKS, Delivered, asked, delivered, plan_steps, requested
from argalign.core.records import Outcome, Rejection, gate_word
from argalign.core.schema import Conversation, Turn, parse_conversation, split_source
from argalign.core.thinking import shorten, split_thinking
from argalign.scoring.checks import CODES as QUALITY_CODES
from argalign.scoring.checks import content_words, own_sentences
from argalign.scoring.gate import gate
from argalign.scoring.judge import METHOD_OPTIONS, Judge

SOURCE_PLACEHOLDER = "[the text to analyse]"
# What the judge sees of an answer: its beginning shows its form (Argdown, SMT-LIB, spans).
ANSWER_CHARS = 600


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


# --- what each part looks at ------------------------------------------------------------------

@dataclass(frozen=True)
class ThinkingView:
    """One thinking: its frame (opening and closing, middle left out), its steps, and its
    prose (the frame without the step list).

    Sentences of the prose that are not the assistant's own (the request copied, the user's
    imperatives, a tool call written as text: :func:`argalign.scoring.checks.own_sentences`) are left
    out of both, so that echoing the request or its label words raises no part.
    """

    frame: str
    planned: tuple[str, ...]
    headed: tuple[str, ...]
    prose: str = ""

    @property
    def plan_coverage(self) -> float:
        """Share of the middle's step headings that the opening lists (1 without headings)."""
        if not self.headed:
            return 1.0
        planned = {_norm(s) for s in self.planned}
        return sum(_norm(s) in planned for s in self.headed) / len(self.headed)


@dataclass(frozen=True)
class TurnView:
    request: str
    response: str
    delivered: Delivered
    thinkings: tuple[ThinkingView, ...]


def visible_request(content: str | None) -> str:
    """The request as the judge sees it: the source text replaced by a placeholder.

    Mutual predictability is about task, method, format and detail; the source text is the
    same whatever the request asks, and its topic words would swamp the comparison.
    """
    content = content or ""
    parts = split_source(content)
    if parts is None:
        return shorten(content, 1500)
    before, _, after = parts
    return shorten(f"{before}{SOURCE_PLACEHOLDER}{after}", 1500)


def turn_views(row: dict[str, Any]) -> list[TurnView]:
    conversation = parse_conversation(row, str(row.get("source_id", "row")))
    return [_turn_view(conversation, turn) for turn in conversation.turns]


def _turn_view(conversation: Conversation, turn: Turn) -> TurnView:
    messages = [conversation.messages[i] for i in turn.assistant_indices]
    answer = next((m.content for m in reversed(messages) if m.content), "") or ""
    calls = [m.tool_calls for m in messages if m.tool_calls]
    thoughts = [m.thinking for m in messages if m.thinking]
    what = delivered(answer, calls, thoughts)
    steps = [s for t in thoughts for s in plan_steps(split_thinking(t).middle)] or \
            [s for t in thoughts for s in plan_steps(t)]
    lines = []
    if steps:
        lines.append("Steps of its reasoning:\n" + "\n".join(f"- {s}" for s in steps[:20]))
    if calls:
        lines.append("Tools it called: " + "; ".join(shorten(c, 300) for c in calls))
    if what.task == "verdict":
        # The verdict itself (yes or no) says nothing about the task; a score must not depend
        # on it.
        lines.append(f"Its answer: a short answer of {len(answer.split())} words.")
    else:
        lines.append("Its answer:\n" + shorten(answer, ANSWER_CHARS))
    request = visible_request(conversation.messages[turn.user_index].content)
    return TurnView(request, "\n\n".join(lines), what,
                    tuple(_thinking_view(t, instructions_of(request)) for t in thoughts))


def _thinking_view(thinking: str, request: str) -> ThinkingView:
    parts = split_thinking(thinking)
    preamble = own_sentences(parts.preamble, request)
    closing = own_sentences(parts.closing, request)
    frame = shorten("\n".join(p for p in (preamble, parts.plan) if p), 1500)
    if closing:
        frame += "\n[...]\n" + shorten(closing, 500)
    return ThinkingView(frame, tuple(plan_steps(parts.opening)), tuple(plan_steps(parts.middle)),
                        "\n".join(p for p in (preamble, closing) if p))


def _norm(step: str) -> str:
    return " ".join(step.lower().rstrip(".").split())


# --- comparisons ------------------------------------------------------------------------------

@dataclass
class Parts:
    """The parts of one turn; ``None`` where a comparison cannot measure a part."""

    forward: float | None
    backward: float | None
    coherence: float | None
    notes: str = ""

    @property
    def score(self) -> float:
        values = [v for v in (self.forward, self.backward, self.coherence) if v is not None]
        return sum(values) / len(values) if values else 0.0


class Comparison:
    """How the parts of a turn are measured. A subclass fills in :meth:`parts`."""

    name: ClassVar[str]
    uses_lm: ClassVar[bool] = False
    # Judge calls per turn, for budgets (GEPA's metric-call budget).
    calls_per_turn: ClassVar[int] = 0

    def parts(self, view: TurnView) -> Parts:
        raise NotImplementedError


def _coherence(view: TurnView, part: Callable[[ThinkingView], tuple[float, float, str]]
               ) -> tuple[float | None, list[str]]:
    """Mean over the turn's thinkings of plan(t) * (leads + follows) / 2, and a note each."""
    if not view.thinkings:
        return None, []
    values, notes = [], []
    for t in view.thinkings:
        leads, follows, note = part(t)
        values.append(t.plan_coverage * 0.5 * (leads + follows))
        notes.append(f"{note}; its plan lists {t.plan_coverage:.0%} of the steps its middle "
                     f"works through")
    return sum(values) / len(values), notes


def _inner(p: dict[str, float], q: dict[str, float]) -> float:
    return sum(p[k] * q.get(k, 0.0) for k in p)


def _mass(p: dict[str, float], labels: set[str] | frozenset[str]) -> float:
    return sum(v for k, v in p.items() if k in labels)


def method_target(what: Delivered) -> frozenset[str]:
    """The options of the method reading that fit a response: its plan's major methods, or,
    for a plan without one, no analysis or a light one."""
    return what.major_methods & set(METHOD_OPTIONS) or frozenset(("none", "gist"))


def _top(p: dict[str, float]) -> str:
    label = max(p, key=p.get)
    return f"{label} {p[label]:.2f}"


class JudgeComparison(Comparison):
    """Readings by the judge model, scored from its token probabilities.

    The four ``*_value`` methods are the formula (see the module docstring); a variant of the
    comparison overrides them and keeps the readings.
    """

    name = "judge"
    uses_lm = True
    calls_per_turn = 4

    def __init__(self, judge: Judge | None = None):
        self.judge = judge or Judge()

    def forward_value(self, p_request: dict[str, float], task: str, what: Delivered,
                      p_method: dict[str, float] | None = None) -> float:
        """½ P_request(what the response delivers) + ½ P_method(how far its plan goes)."""
        delivered_part = _mass(p_request, {task} | (what.expectable & set(TASKS)))
        if p_method is None:
            return delivered_part
        return 0.5 * delivered_part + 0.5 * _mass(p_method, method_target(what))

    def backward_value(self, p_response: dict[str, float], p_request: dict[str, float]) -> float:
        return _inner(p_response, p_request)

    def leads_value(self, p_thinking: dict[str, float], task: str, what: Delivered) -> float:
        return _mass(p_thinking, {task} | (what.expectable & set(TASKS)))

    def follows_value(self, p_thinking: dict[str, float], p_request: dict[str, float]) -> float:
        return _inner(p_thinking, p_request)

    def parts(self, view: TurnView) -> Parts:
        p_request = self.judge.read("request", view.request)
        p_method = self.judge.read("method", view.request)
        p_response = self.judge.read("response", view.response)
        what = view.delivered
        task = what.task or max(p_response, key=p_response.get)
        forward = self.forward_value(p_request, task, what, p_method)
        backward = self.backward_value(p_response, p_request)
        def thinking(t: ThinkingView) -> tuple[float, float, str]:
            p_thinking = self.judge.read("thinking", t.frame)
            return (self.leads_value(p_thinking, task, what),
                    self.follows_value(p_thinking, p_request),
                    f"a reader of the thinking's opening and closing expects {_top(p_thinking)}")

        coherence, notes = _coherence(view, thinking)
        target = method_target(what)
        notes.insert(0, f"the response delivers {task}; a reader of the request expects "
                        f"{_top(p_request)} (P({task}) = {p_request[task]:.2f}) and as the "
                        f"deepest analysis {_top(p_method)} (P({'/'.join(sorted(target))}) = "
                        f"{_mass(p_method, target):.2f}); a reader of the response infers a "
                        f"request for {_top(p_response)}")
        return Parts(forward, backward, coherence, "; ".join(notes))


class StructuralComparison(Comparison):
    """Labels read by rules from the request, the answer's markup and the thinking's steps."""

    name = "structural"

    def parts(self, view: TurnView) -> Parts:
        named = requested(instructions_of(view.request))
        what = view.delivered
        expectable, everything = what.expectable, what.everything
        forward = len(named & expectable) / len(expectable) if expectable else None
        backward = len(named & everything) / len(named) if named else 0.0

        def thinking(t: ThinkingView) -> tuple[float, float, str]:
            prose = asked(t.prose)
            connects = len(prose & expectable) / len(expectable) if expectable else 0.0
            return (1.0 if what.task and what.task in asked(t.frame) else 0.0, connects,
                    f"the thinking's own prose names {sorted(prose & expectable) or 'nothing'} "
                    f"of {sorted(expectable)}")

        coherence, notes = _coherence(view, thinking)
        missing = sorted(expectable - named)
        notes.insert(0, f"the request names {sorted(named) or 'nothing'}; the response delivers "
                        f"{sorted(what.deliverables) or 'nothing the rules recognise'} by way of "
                        f"{sorted(what.major_methods) or 'no major method'}"
                        + (f"; a reader of the request cannot expect {missing}" if missing else "")
                        + (f"; the request asks for {sorted(named - everything)}, which the "
                           f"response does not do" if named - everything else ""))
        return Parts(forward, backward, coherence, "; ".join(notes))


class LexicalComparison(Comparison):
    """Content-word overlap: free, and blind to what the words mean (a baseline)."""

    name = "lexical"

    def parts(self, view: TurnView) -> Parts:
        both = lexical_match(view.request, view.response)

        def thinking(t: ThinkingView) -> tuple[float, float, str]:
            overlap = lexical_match(t.frame, view.request)
            return overlap, overlap, f"frame and request overlap {overlap:.2f}"

        coherence, _ = _coherence(view, thinking)
        return Parts(both, both, coherence, f"content-word F1 of request and response {both:.2f}")


class HybridComparison(JudgeComparison):
    """The judge's readings and the rules, each part the mean of the two.

    The rules are exact where the dataset's templates leave marks (a step heading, an SMT-LIB
    block) and blind to a request phrased in other words; the judge reads any phrasing but a
    small judge's readings are spread and noisy. Where one of them cannot measure a part, the
    other's value stands.
    """

    name = "hybrid"

    def __init__(self, judge: Judge | None = None):
        super().__init__(judge)
        self.rules = StructuralComparison()

    def parts(self, view: TurnView) -> Parts:
        read, ruled = super().parts(view), self.rules.parts(view)
        return Parts(_mean([read.forward, ruled.forward]), _mean([read.backward, ruled.backward]),
                     _mean([read.coherence, ruled.coherence]),
                     f"judge: {read.notes}; rules: {ruled.notes}")


COMPARISONS: dict[str, type[Comparison]] = {
    c.name: c for c in (JudgeComparison, HybridComparison, StructuralComparison,
                        LexicalComparison)
}


def instructions_of(request_view: str) -> str:
    return request_view.replace(SOURCE_PLACEHOLDER, " ")


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


def _mean(values: list[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return sum(present) / len(present) if present else None


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
        self._comparison = kind(judge) if issubclass(kind, JudgeComparison) else kind()

    @property
    def calls_per_turn(self) -> int:
        return self._comparison.calls_per_turn

    def score(self, row: dict[str, Any]) -> Score:
        """Score a conversation as it stands (an original, or an aligned row without its gate)."""
        turns = [self._comparison.parts(view) for view in turn_views(row)]
        forward = _mean([t.forward for t in turns]) or 0.0
        backward = _mean([t.backward for t in turns]) or 0.0
        coherence = _mean([t.coherence for t in turns])
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
