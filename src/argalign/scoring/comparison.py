"""What a comparison is: the views of a turn its parts look at, the :class:`Parts` it returns,
and the base class :class:`Comparison`; the formulas are in :mod:`argalign.scoring.metrics`.

A comparison is one module that subclasses :class:`Comparison` (``comparison_<name>.py`` beside
this one) and one line in :data:`argalign.scoring.metrics.COMPARISONS` (its import and its class
in the tuple). It imports this module, never the registry: the registry imports it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

from argalign.core.deliverables import Delivered, delivered, plan_steps
from argalign.core.schema import Conversation, Turn, parse_conversation, split_source
from argalign.core.thinking import shorten, split_thinking
from argalign.scoring.checks import own_sentences

SOURCE_PLACEHOLDER = "[the text to analyse]"
# What the judge sees of an answer: its beginning shows its form (Argdown, SMT-LIB, spans).
ANSWER_CHARS = 600


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
    """How the parts of a turn are measured. A subclass fills in :meth:`parts`.

    A comparison that asks the judge sets ``uses_lm`` and ``calls_per_turn``, and is built
    with the judge (``kind(judge)``, where ``judge`` is None for the default one on
    ``dspy.settings.lm``); any other is built with no argument (``kind()``).
    """

    name: ClassVar[str]
    uses_lm: ClassVar[bool] = False
    # Judge calls per turn, for budgets (GEPA's metric-call budget).
    calls_per_turn: ClassVar[int] = 0

    def parts(self, view: TurnView) -> Parts:
        raise NotImplementedError


def mean_coherence(view: TurnView, part: Callable[[ThinkingView], tuple[float, float, str]]
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


def instructions_of(request_view: str) -> str:
    return request_view.replace(SOURCE_PLACEHOLDER, " ")


def mean_present(values: list[float | None]) -> float | None:
    """The mean of the values that are there; None when none is."""
    present = [v for v in values if v is not None]
    return sum(present) / len(present) if present else None
