"""Alignment modes as DSPy programs that align a whole conversation, turn by turn.

Contract: ``forward(row=...)`` takes an original row and returns ``dspy.Prediction(row=...,
edits=...)``. The output row is a copy of the original in which only user ``content`` and the
first non-empty assistant ``thinking`` of a turn are replaced: a request gets our sentence asking
for the plan's methods (before its kept instructions in Mode A, appended in Mode B) or, when it
is vague, the LM's instructions; a thinking gets the LM's first sentences before its kept
opening, plan, middle and closing. So the hard invariants hold by construction. Every LM output
is checked; a call that fails to parse, is cut off, or gives an unusable field is retried with a
fresh sample, and after the last attempt :class:`AlignmentFailed` is raised: the original is
never returned in its place (Mode A keeps a thinking whose sentences fail every check when its
request changed, and says so in ``retries``).

:class:`AlignConversation` walks the turns and owns the retries. A mode is a subclass that
declares its predictors, how it treats the request (:meth:`~AlignConversation.treat_request`),
what it appends to a kept request (:meth:`~AlignConversation.clarify`) and what it accepts from
the thinking rewrite (:meth:`~AlignConversation.check_thinking`). How far the user message may
change is the mode's policy, declared apart in :data:`argalign.core.policies.USER_CHANGE` so that
checking a row needs no DSPy. A new mode is one class, one line in :data:`MODES` and one line
in :data:`argalign.core.policies.USER_CHANGE`; runs that name no modes take it only once it is added
to :data:`argalign.core.defaults.DEFAULT_MODES`.
"""

from __future__ import annotations

import copy
import json
import logging
import re
import sys
from dataclasses import dataclass, field
from typing import Any, ClassVar

import dspy
from dspy.utils.callback import BaseCallback
from dspy.utils.exceptions import (
    AdapterParseError,
    LMLockTimeoutError,
    LMRateLimitError,
    LMTimeoutError,
)

from argalign.core.defaults import DEFAULT_THINKING
from argalign.core.deliverables import (
    Delivered,
    delivered,
    method_words,
    requested,
)
from argalign.core.errors import ArgalignError
from argalign.core.policies import CLARIFICATION_SEPARATOR, DEFAULT_MAX_USER_CHANGE
from argalign.core.redact import scrub
from argalign.core.schema import Conversation, Turn, parse_conversation
from argalign.core.source_text import find_source, unclear
from argalign.core.thinking import ThinkingParts, shorten, split_thinking
from argalign.modes.signatures import (
    RewriteWholeThinking,
)
from argalign.scoring.checks import (
    CODES as QUALITY_CODES,
)
from argalign.scoring.checks import (
    Finding,
    check_closing,
    check_method_named,
    check_opening,
    first_reply,
    instructions,
    nearly_same,
    new_frame,
    what_follows,
)

log = logging.getLogger(__name__)

THINKING_SCOPES = ("blocks", "full")
MAX_REQUEST_CHARS = 2000
MAX_CLARIFICATION_CHARS = DEFAULT_MAX_USER_CHANGE  # the invariant's bound
MAX_PROSE_CHARS = 4000
MIN_WORDS = 3


class AlignmentFailed(ArgalignError):
    """The LM gave no usable output within the attempts allowed."""

    def __init__(self, code: str, reason: str, attempts: int):
        self.code, self.reason, self.attempts = code, reason, attempts
        super().__init__(f"{code}: {reason} (after {attempts} attempts)")


class QualityRejected(AlignmentFailed):
    """Every attempt failed a quality check (:mod:`argalign.scoring.checks`): the row is rejected."""


class InvalidOutput(ValueError):
    """One LM output that cannot be used; the call is retried."""

    def __init__(self, code: str, reason: str):
        self.code = code
        super().__init__(reason)

    @classmethod
    def raise_for(cls, findings: list[Finding]) -> None:
        if findings:
            first = findings[0]
            more = f" (and {len(findings) - 1} more)" if len(findings) > 1 else ""
            raise cls(first.code, first.detail + more)


@dataclass(frozen=True)
class ThinkingContext:
    """What a thinking rewrite is checked against."""

    original: str
    parts: ThinkingParts
    request: str
    response: Delivered
    first: bool = True  # the turn's first reply (not a thinking after tool results)


@dataclass
class CallLog:
    """What the LM calls of one conversation cost and which of them had to be retried."""

    calls: int = 0
    failures: list[str] = field(default_factory=list)


def tool_summary(tool_calls: str | None, limit: int = 600) -> str:
    if not tool_calls:
        return ""
    try:
        calls = json.loads(tool_calls)
        text = "; ".join(
            f"{c.get('function', {}).get('name', '?')}"
            f"({json.dumps(c.get('function', {}).get('arguments'), ensure_ascii=False)})"
            for c in calls
        )
    except (json.JSONDecodeError, AttributeError):
        text = tool_calls
    return shorten(text, limit)


def check_prose(value: Any, name: str, *, required: bool, limit: int = MAX_PROSE_CHARS) -> str:
    if not isinstance(value, str):
        raise InvalidOutput("INVALID_FIELD", f"{name} is not text")
    value = value.strip()
    if required and not value:
        raise InvalidOutput("EMPTY_FIELD", f"{name} is empty")
    if len(value) > limit:
        raise InvalidOutput("FIELD_TOO_LONG", f"{name} has {len(value)} characters (max {limit})")
    if required and len(value.split()) < MIN_WORDS:
        # Small models sometimes echo a placeholder ("{request}", "[100]") instead of text.
        raise InvalidOutput("TOO_SHORT", f"{name} has fewer than {MIN_WORDS} words: {value!r}")
    return value


@dataclass(frozen=True)
class Request:
    """A user message as the LM sees it: the source text, if any, masked by a placeholder.

    ``unclear``: a long message in which no source text is found (see
    :func:`argalign.core.source_text.unclear`); a mode that rewrites requests must refuse it.
    """

    content: str
    masked: str
    intro: str = ""
    source: str | None = None
    unclear: bool = False
    rest: str = ""  # the instructions around the source text, without its intro line

    @classmethod
    def of(cls, content: str) -> Request:
        span = find_source(content)
        if span is None:
            return cls(content, content, unclear=unclear(content), rest=content.strip())
        masked = f"{span.before}{span.intro}[SOURCE TEXT: {len(span.source)} characters]{span.after}"
        rest = "\n".join(part.strip() for part in (span.before, span.after) if part.strip())
        return cls(content, masked, span.intro.rstrip("\n"), span.source, rest=rest)

    def with_instructions(self, instructions: str) -> str:
        """The user message with new instructions and the source text (and its intro line)
        kept verbatim."""
        if self.source is None:
            return instructions
        return "\n\n".join([instructions, f"{self.intro}\n{self.source}" if self.intro else self.source])


class AlignConversation(dspy.Module):
    """Base of the modes: walks the turns, rewrites each thinking, owns the retries.

    A subclass sets ``mode``, builds ``rewrite_thinking`` (and any other predictor) in
    ``__init__``, and may override :meth:`treat_request`, :meth:`clarify` and
    :meth:`check_thinking`. Its policy for user messages is ``USER_CHANGE[mode]``
    (:mod:`argalign.core.policies`).
    """

    mode: ClassVar[str]
    # Whether a thinking whose new sentences fail every check may stay as it was when the
    # request changed (the row is then aligned by its request alone), rather than reject the row.
    thinking_optional: ClassVar[bool] = False
    rewrite_thinking: dspy.Predict
    # While an optimizer compiles, a conversation the program gives up on is a prediction
    # (``row=None``, ``failure``, ``codes``) rather than an exception: DSPy drops a raising
    # example from GEPA's reflection, and the reflection needs exactly those failures' codes.
    failures_as_predictions: bool = False

    def __init__(self, thinking: str = DEFAULT_THINKING, attempts: int = 3, retry_temperature: float = 0.9):
        super().__init__()
        if thinking not in THINKING_SCOPES:
            raise ValueError(f"thinking must be one of {THINKING_SCOPES}, not {thinking!r}")
        self.thinking_scope = thinking
        self.attempts, self.retry_temperature = attempts, retry_temperature
        if thinking == "full":
            self.rewrite_whole = dspy.Predict(RewriteWholeThinking)

    # -- what a mode fills in ---------------------------------------------------------------

    def treat_request(self, conversation: Conversation, turn: Turn, request: Request,
                      history: list[str], calls: CallLog) -> str | None:
        """New instructions for the turn's user message, or None to keep it as it stands."""
        return None

    def clarify(self, conversation: Conversation, turn: Turn, request: Request) -> str:
        """A sentence of ours appended to a request that is kept, or "" (the default)."""
        return ""

    def check_thinking(self, prediction: dspy.Prediction, context: ThinkingContext) -> str:
        """The new opening prose (preamble) from a thinking rewrite, or InvalidOutput.

        The LM writes the sentences that go before the original opening prose (:func:`lead_in`);
        the new preamble is checked as a whole against the original, and what the LM wrote
        must name a method of the plan (in a first reply).
        """
        written, preamble = lead_in(check_prose(prediction.opening, "opening", required=True),
                                    context.parts.preamble)
        asks = instructions(context.request)
        InvalidOutput.raise_for(
            check_opening(context.parts.join(preamble=preamble).split(context.parts.middle)[0]
                          if context.parts.middle else context.parts.join(preamble=preamble),
                          original_thinking=context.original, request=asks)
            + (check_method_named(written, response=context.response, request=asks)
               if context.first and written else []))
        return preamble

    # -- LM calls with retries ------------------------------------------------------------

    def _call(self, predictor: dspy.Predict, check, calls: CallLog, **inputs: str):
        """Call a predictor until ``check(prediction)`` accepts it; return what it returns."""
        last = "no attempt"
        for attempt in range(self.attempts):
            config = {} if attempt == 0 else {
                "rollout_id": attempt, "temperature": self.retry_temperature}
            calls.calls += 1
            watch = TruncationWatch()
            try:
                with dspy.context(callbacks=[*dspy.settings.get("callbacks", []), watch]):
                    prediction = predictor(**inputs, config=config)
                if watch.cut_off:
                    raise TruncatedOutput("the LM output was cut off at max_tokens")
                return check(prediction)
            except InvalidOutput as e:
                last = f"{e.code}: {e}"
            except Exception as e:  # noqa: BLE001 - parse errors, HTTP errors, timeouts
                # A reply cut off mid-JSON fails to parse: report the cause, not the symptom.
                code = "TRUNCATED" if watch.cut_off else _error_code(e)
                # Scrubbed before it is shortened (a cut key would no longer match) and before it
                # is logged: an endpoint's error message may quote the request's key.
                last = f"{code}: {shorten(scrub(str(e)), 300)}"
            calls.failures.append(last)
            log.debug("attempt %d failed: %s", attempt + 1, last)
        code = last.split(":", 1)[0]
        if code in QUALITY_CODES:
            raise QualityRejected(code, last, self.attempts)
        raise AlignmentFailed(code, last, self.attempts)

    # -- the program ----------------------------------------------------------------------

    def forward(self, row: dict[str, Any]) -> dspy.Prediction:
        try:
            return self._align_row(row)
        except AlignmentFailed as e:
            if not self.failures_as_predictions:
                raise
            return dspy.Prediction(row=None, failure=f"{e.code}: {e.reason}", codes=[e.code],
                                   rejected=isinstance(e, QualityRejected), calls=e.attempts,
                                   retries=[])

    def _align_row(self, row: dict[str, Any]) -> dspy.Prediction:
        conversation = parse_conversation(row, str(row.get("source_id", "row")))
        new_row = copy.deepcopy(row)
        messages = new_row["messages"]
        calls = CallLog()
        edits: list[dict[str, Any]] = []
        history: list[str] = []
        for turn in conversation.turns:
            request = Request.of(conversation.messages[turn.user_index].content or "")
            instructions = self.treat_request(conversation, turn, request, history, calls)
            if instructions is not None:
                messages[turn.user_index]["content"] = request.with_instructions(instructions)
                edits.append({"message_index": turn.user_index, "field": "content",
                              "kind": "request"})
            seen = request.masked if instructions is None else instructions
            clarification = self.clarify(conversation, turn, request) if instructions is None \
                else ""
            if clarification:
                seen += CLARIFICATION_SEPARATOR + clarification  # what the thinking answers
            for i in turn.assistant_indices:
                if not conversation.messages[i].thinking:
                    continue  # null stays null, "" stays "": nothing to align
                first = first_reply(conversation, turn, i)
                if not first and self.thinking_scope == "blocks":
                    continue  # after tool results the reasoning goes on from them: kept
                parts = split_thinking(conversation.messages[i].thinking or "")
                if self.thinking_scope == "blocks" and not (parts.plan or parts.middle):
                    # Prose only, no plan and no worked steps or blocks: no method to give a
                    # reason for. A short follow-up's reasoning is kept (the local model's new
                    # sentences there were off-topic or gave the answer away before it).
                    continue
                try:
                    new_thinking = self._align_thinking(conversation, turn, i, seen, first, calls)
                except QualityRejected as e:
                    if not (self.thinking_optional and instructions is not None):
                        raise
                    # The new request carries the alignment; the original reasoning still
                    # leads from it to the answer. Kept, and the reason recorded.
                    calls.failures.append(f"{e.code}: thinking {i} kept as it was after "
                                          f"{e.attempts} attempts")
                    continue
                if new_thinking == conversation.messages[i].thinking:
                    continue  # the LM gave the opening back
                messages[i]["thinking"] = new_thinking
                edits.append({"message_index": i, "field": "thinking"})
            if clarification:
                messages[turn.user_index]["content"] += CLARIFICATION_SEPARATOR + clarification
                edits.append({"message_index": turn.user_index, "field": "content",
                              "kind": "clarification"})
            answer = final_content(conversation, turn)
            history.append(f"User: {shorten(seen, 300)}\nAssistant: {shorten(answer, 300)}")
        return dspy.Prediction(row=new_row, edits=edits, calls=calls.calls,
                               retries=calls.failures)

    def _align_thinking(self, conversation: Conversation, turn: Turn, index: int, request: str,
                        first: bool, calls: CallLog) -> str:
        thinking = conversation.messages[index].thinking or ""
        position = "first reply" if first else "after tool results"
        answer = shorten(_what_follows(conversation, turn, index), 1200)
        source = Request.of(conversation.messages[turn.user_index].content or "").source or ""
        follows = what_follows(conversation, turn, index)
        if self.thinking_scope == "full":
            asks = instructions(request)

            def check_full(prediction: dspy.Prediction) -> str:
                new = check_prose(prediction.new_thinking, "new_thinking", required=True,
                                   limit=max(MAX_PROSE_CHARS, 2 * len(thinking)))
                opening, closing = new_frame(thinking, new)
                InvalidOutput.raise_for(
                    check_opening(opening, original_thinking=thinking, request=asks)
                    + check_closing(closing, original_thinking=thinking, request=asks,
                                    source=source, answer=follows))
                return new

            return self._call(self.rewrite_whole, check_full, calls,
                              request=shorten(request, 1500), position=position,
                              thinking=thinking, answer=answer)

        parts: ThinkingParts = split_thinking(thinking)
        response = turn_delivers(conversation, turn)
        context = ThinkingContext(thinking, parts, request, response, first)
        preamble = self._call(
            self.rewrite_thinking, lambda p: self.check_thinking(p, context), calls,
            request=shorten(request, 1500),
            position=position,
            original_opening=shorten(parts.preamble, 1500),
            plan=shorten(parts.plan, 1500),
            middle_outline=parts.outline(),
            closing=shorten(parts.closing, 800),
            answer=answer,
            methods=methods_of(response),
        )
        # The original opening prose, the plan, the middle and the closing stay byte for byte:
        # the LM wrote only what goes before them. (Closings and openings the LM rewrote were
        # the same or worse: the plan restated in prose, the answer's gist, done steps announced.)
        return parts.join(preamble=preamble)


def lead_in(written: str, preamble: str) -> tuple[str, str]:
    """``(new, preamble)``: the sentences the LM added and the new opening prose (they, then
    the original prose). A copy of the original inside what it wrote is taken out, so the
    original is never said twice."""
    original = preamble.strip()
    # Spaces only: a control character the JSON made of "\\forall" must reach the checks.
    new = re.sub(r" {2,}", " ", written.replace(original, " ")).strip() if original else written
    if not original:
        return new, new
    if not new or nearly_same(new, original):
        return "", original  # the LM gave the opening back: nothing new to say
    return new, f"{new} {original}"


def keeps_task(instructions: str, response: Delivered) -> bool:
    """Whether instructions already ask for what the answer mainly delivers (its task), so
    that Mode A keeps them word for word after its sentence asking for the method."""
    return response.task is not None and response.task in requested(instructions)


def methods_of(response: Delivered) -> str:
    """The plan's major methods, a line each, as the rewrite prompts show them."""
    return "\n".join(method_words(response)) or "none"


def final_content(conversation: Conversation, turn) -> str:
    for i in reversed(turn.assistant_indices):
        if conversation.messages[i].content:
            return conversation.messages[i].content or ""
    return ""


def turn_delivers(conversation: Conversation, turn: Turn) -> Delivered:
    messages = [conversation.messages[i] for i in turn.assistant_indices]
    return delivered(final_content(conversation, turn),
                     [m.tool_calls for m in messages if m.tool_calls],
                     [m.thinking for m in messages if m.thinking])


def _what_follows(conversation: Conversation, turn, index: int) -> str:
    """What the assistant does right after a thinking: its answer or its next tool call."""
    for i in turn.assistant_indices:
        if i < index:
            continue
        message = conversation.messages[i]
        if message.content:
            return message.content
        if message.tool_calls:
            return "Tool call: " + tool_summary(message.tool_calls, 1000)
    return ""


def plan_of(conversation: Conversation, turn) -> str:
    for i in turn.assistant_indices:
        thinking = conversation.messages[i].thinking
        if thinking:
            parts = split_thinking(thinking)
            return shorten(parts.opening, 800) + "\n" + parts.outline(800)
    return "(no reasoning given)"


# DSPy's typed errors (dspy.utils.exceptions); the builtin TimeoutError covers DSPy's engine
# (lm15) and socket timeouts, and a credential lock that waited too long is a timeout too.
_TIMEOUTS: tuple[type[Exception], ...] = (LMTimeoutError, LMLockTimeoutError, TimeoutError)
_RATE_LIMITS: tuple[type[Exception], ...] = (LMRateLimitError,)


def _error_code(error: Exception) -> str:
    """The code of an LM call that raised: by the exception's type, ``LM_ERROR`` for any other."""
    if isinstance(error, AdapterParseError):
        return "PARSE_ERROR"
    if isinstance(error, _TIMEOUTS + _litellm_errors("Timeout")):
        return "TIMEOUT"
    if isinstance(error, _RATE_LIMITS + _litellm_errors("RateLimitError")):
        return "RATE_LIMITED"
    if isinstance(error, TruncatedOutput):
        return "TRUNCATED"
    return "LM_ERROR"


def _litellm_errors(name: str) -> tuple[type[Exception], ...]:
    """LiteLLM's exception class ``name``, when LiteLLM is loaded (its errors can come from
    nowhere else), without importing it: it takes seconds."""
    errors = sys.modules.get("litellm.exceptions")
    cls = getattr(errors, name, None)
    return (cls,) if isinstance(cls, type) else ()


class TruncatedOutput(RuntimeError):
    """The LM stopped at max_tokens (``finish_reason == "length"``)."""


class TruncationWatch(BaseCallback):
    """A DSPy callback that notes whether an LM call in its block stopped at max_tokens.

    As each LM call ends, the history entry that call recorded (:func:`argalign.models.lm.call_entry`:
    never another thread's) says why the reply ended (:func:`argalign.models.lm.finish_reason`).
    DSPy's returned outputs do not carry it.
    """

    def __init__(self) -> None:
        self.cut_off = False
        self._lms: dict[str, Any] = {}

    def on_lm_start(self, call_id: str, instance: Any, inputs: dict[str, Any]) -> None:
        self._lms[call_id] = instance

    def on_lm_end(self, call_id: str, outputs: Any, exception: Exception | None = None) -> None:
        from argalign.models.lm import call_entry, finish_reason

        lm = self._lms.pop(call_id, None)
        if lm is None or exception is not None or outputs is None:
            return
        entry = call_entry(lm, outputs)
        if entry is not None and finish_reason(entry) == "length":
            self.cut_off = True
