"""Mode A and Mode B as DSPy programs that align a whole conversation, turn by turn.

Contract: ``forward(row=...)`` takes an original row and returns ``dspy.Prediction(row=...,
edits=...)``. The output row is a copy of the original in which only user ``content`` (Mode
A: the instructions around the verbatim source text; Mode B: at most an appended
clarification) and non-empty assistant ``thinking`` (opening and closing around a verbatim
middle) are replaced, so the hard invariants hold by construction. Every LM output is
checked; a call that fails to parse, is cut off, or gives an unusable field is retried with
a fresh sample, and after the last attempt :class:`AlignmentFailed` is raised: the original
is never returned in its place.
"""

from __future__ import annotations

import copy
import json
import logging
from dataclasses import dataclass, field
from typing import Any

import dspy

from argalign.errors import ArgalignError
from argalign.schema import Conversation, parse_conversation, split_source
from argalign.signatures import (
    RewriteRequest,
    RewriteThinkingForAnswer,
    RewriteThinkingForRequest,
    RewriteWholeThinking,
)
from argalign.thinking import ThinkingParts, shorten, split_thinking
from argalign.tracking import scrub

log = logging.getLogger(__name__)

MODES = ("A", "B")
THINKING_SCOPES = ("blocks", "full")
MAX_REQUEST_CHARS = 2000
MAX_CLARIFICATION_CHARS = 200
MAX_PROSE_CHARS = 4000
MIN_WORDS = 3


class AlignmentFailed(ArgalignError):
    """The LM gave no usable output within the attempts allowed."""

    def __init__(self, code: str, reason: str, attempts: int):
        self.code, self.reason, self.attempts = code, reason, attempts
        super().__init__(f"{code}: {reason} (after {attempts} attempts)")


class InvalidOutput(ValueError):
    """One LM output that cannot be used; the call is retried."""

    def __init__(self, code: str, reason: str):
        self.code = code
        super().__init__(reason)


@dataclass
class CallLog:
    """What the LM calls of one conversation cost and which of them had to be retried."""

    calls: int = 0
    failures: list[str] = field(default_factory=list)


def _tool_summary(tool_calls: str | None, limit: int = 600) -> str:
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


def _check_prose(value: Any, name: str, *, required: bool, limit: int = MAX_PROSE_CHARS) -> str:
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


class AlignConversation(dspy.Module):
    """Align every turn of a conversation in Mode ``A`` or ``B``."""

    def __init__(self, mode: str = "A", thinking: str = "blocks", attempts: int = 3,
                 retry_temperature: float = 0.9):
        super().__init__()
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, not {mode!r}")
        if thinking not in THINKING_SCOPES:
            raise ValueError(f"thinking must be one of {THINKING_SCOPES}, not {thinking!r}")
        self.mode, self.thinking_scope = mode, thinking
        self.attempts, self.retry_temperature = attempts, retry_temperature
        if mode == "A":
            self.rewrite_request = dspy.Predict(RewriteRequest)
            self.rewrite_thinking = dspy.Predict(RewriteThinkingForRequest)
        else:
            self.rewrite_thinking = dspy.Predict(RewriteThinkingForAnswer)
        if thinking == "full":
            self.rewrite_whole = dspy.Predict(RewriteWholeThinking)

    # -- LM calls with retries ------------------------------------------------------------

    def _call(self, predictor: dspy.Predict, check, calls: CallLog, **inputs: str):
        """Call a predictor until ``check(prediction)`` accepts it; return what it returns."""
        last = "no attempt"
        for attempt in range(self.attempts):
            config = {} if attempt == 0 else {
                "rollout_id": attempt, "temperature": self.retry_temperature}
            calls.calls += 1
            before = _last_entry()
            try:
                prediction = predictor(**inputs, config=config)
                _raise_if_truncated(before)
                return check(prediction)
            except InvalidOutput as e:
                last = f"{e.code}: {e}"
            except Exception as e:  # noqa: BLE001 - parse errors, HTTP errors, timeouts
                # A reply cut off mid-JSON fails to parse: report the cause, not the symptom.
                code = "TRUNCATED" if _cut_off(before) else _error_code(e)
                # Scrubbed before it is shortened (a cut key would no longer match) and before it
                # is logged: an endpoint's error message may quote the request's key.
                last = f"{code}: {shorten(scrub(str(e)), 300)}"
            calls.failures.append(last)
            log.debug("attempt %d failed: %s", attempt + 1, last)
        code = last.split(":", 1)[0]
        raise AlignmentFailed(code, last, self.attempts)

    # -- the program ----------------------------------------------------------------------

    def forward(self, row: dict[str, Any]) -> dspy.Prediction:
        conversation = parse_conversation(row, str(row.get("source_id", "row")))
        new_row = copy.deepcopy(row)
        messages = new_row["messages"]
        calls = CallLog()
        edits: list[dict[str, Any]] = []
        history: list[str] = []
        for turn in conversation.turns:
            request = self._align_request(conversation, turn, messages, history, calls, edits)
            clarified = False
            for i in turn.assistant_indices:
                if not conversation.messages[i].thinking:
                    continue  # null stays null, "" stays "": nothing to align
                first = not any(conversation.messages[j].role == "tool"
                                for j in turn.reply_indices if j < i)
                new_thinking, clarification = self._align_thinking(
                    conversation, turn, i, request, "first reply" if first else
                    "after tool results", calls)
                messages[i]["thinking"] = new_thinking
                edits.append({"message_index": i, "field": "thinking"})
                if clarification and not clarified:
                    messages[turn.user_index]["content"] += "\n\n" + clarification
                    edits.append({"message_index": turn.user_index, "field": "content",
                                  "kind": "clarification"})
                    clarified = True
            answer = _final_content(conversation, turn)
            history.append(f"User: {shorten(request, 300)}\nAssistant: {shorten(answer, 300)}")
        return dspy.Prediction(row=new_row, edits=edits, calls=calls.calls,
                               retries=calls.failures)

    def _align_request(self, conversation: Conversation, turn, messages: list[dict],
                       history: list[str], calls: CallLog, edits: list[dict]) -> str:
        """Mode A: rewrite the request and return it; Mode B: return it as it stands."""
        content = conversation.messages[turn.user_index].content or ""
        parts = split_source(content)
        if parts is None:
            masked, excerpt, intro, source = content, "", "", None
        else:
            before, source, after = parts
            intro = before.rstrip("\n").rsplit("\n", 1)[-1]
            masked = f"{before}[SOURCE TEXT: {len(source)} characters]{after}"
            excerpt = shorten(source, 500)
        if self.mode == "B":
            return masked
        system = conversation.system
        tool_calls = "; ".join(filter(None, (_tool_summary(conversation.messages[i].tool_calls)
                                             for i in turn.assistant_indices))) or "none"

        def check(prediction: dspy.Prediction) -> str:
            request = _check_prose(prediction.request, "request", required=True,
                                   limit=MAX_REQUEST_CHARS)
            if source is not None and source[:200] in request:
                raise InvalidOutput("SOURCE_RETYPED", "the request repeats the source text")
            return request

        request = self._call(
            self.rewrite_request, check, calls,
            system_prompt=shorten(system.content if system else "", 600),
            history="\n\n".join(history)[-1500:],
            original_request=shorten(masked, 1500),
            source_excerpt=excerpt,
            answer=shorten(_final_content(conversation, turn), 1500),
            tool_calls=tool_calls,
            plan=_plan(conversation, turn),
        )
        new_content = request if source is None else f"{request}\n\n{intro}\n{source}"
        messages[turn.user_index]["content"] = new_content
        edits.append({"message_index": turn.user_index, "field": "content", "kind": "request"})
        return request

    def _align_thinking(self, conversation: Conversation, turn, index: int, request: str,
                        position: str, calls: CallLog) -> tuple[str, str]:
        thinking = conversation.messages[index].thinking or ""
        answer = shorten(_what_follows(conversation, turn, index), 1200)
        if self.thinking_scope == "full":
            def check_full(prediction: dspy.Prediction) -> str:
                return _check_prose(prediction.new_thinking, "new_thinking", required=True,
                                    limit=max(MAX_PROSE_CHARS, 2 * len(thinking)))

            new = self._call(self.rewrite_whole, check_full, calls, request=shorten(request, 1500),
                             position=position, thinking=thinking, answer=answer)
            return new, ""

        parts: ThinkingParts = split_thinking(thinking)

        def check(prediction: dspy.Prediction) -> tuple[str, str, str]:
            opening = _check_prose(prediction.opening, "opening", required=True)
            closing = _check_prose(prediction.closing, "closing", required=False)
            clarification = ""
            if self.mode == "B":
                clarification = _check_prose(getattr(prediction, "clarification", ""),
                                             "clarification", required=False,
                                             limit=MAX_CLARIFICATION_CHARS)
                if "\n" in clarification:
                    raise InvalidOutput("INVALID_FIELD", "clarification is not one sentence")
            return opening, closing, clarification

        opening, closing, clarification = self._call(
            self.rewrite_thinking, check, calls,
            request=shorten(request, 1500),
            position=position,
            original_opening=shorten(parts.opening, 1500),
            middle_outline=parts.outline(),
            original_closing=shorten(parts.closing, 800),
            answer=answer,
        )
        return parts.join(opening, closing if (closing or not parts.closing) else None), \
            clarification


def _final_content(conversation: Conversation, turn) -> str:
    for i in reversed(turn.assistant_indices):
        if conversation.messages[i].content:
            return conversation.messages[i].content or ""
    return ""


def _what_follows(conversation: Conversation, turn, index: int) -> str:
    """What the assistant does right after a thinking: its answer or its next tool call."""
    for i in turn.assistant_indices:
        if i < index:
            continue
        message = conversation.messages[i]
        if message.content:
            return message.content
        if message.tool_calls:
            return "Tool call: " + _tool_summary(message.tool_calls, 1000)
    return ""


def _plan(conversation: Conversation, turn) -> str:
    for i in turn.assistant_indices:
        thinking = conversation.messages[i].thinking
        if thinking:
            parts = split_thinking(thinking)
            return shorten(parts.opening, 800) + "\n" + parts.outline(800)
    return "(no reasoning given)"


def _error_code(error: Exception) -> str:
    name = type(error).__name__
    if "Parse" in name:
        return "PARSE_ERROR"
    if "Timeout" in name:
        return "TIMEOUT"
    if "RateLimit" in name:
        return "RATE_LIMITED"
    if isinstance(error, TruncatedOutput):
        return "TRUNCATED"
    return "LM_ERROR"


class TruncatedOutput(RuntimeError):
    """The LM stopped at max_tokens (``finish_reason == "length"``)."""


def _last_entry() -> dict | None:
    lm = dspy.settings.lm
    return lm.history[-1] if lm is not None and lm.history else None


def _cut_off(before: dict | None) -> bool:
    """Whether the LM call made since ``before`` (its latest history entry) hit max_tokens."""
    from argalign.lm import finish_reason

    latest = _last_entry()
    # Compared by identity: a call that failed before reaching the LM adds no entry, and an
    # earlier truncated call must not fail this one.
    return latest is not None and latest is not before and finish_reason(latest) == "length"


def _raise_if_truncated(before: dict | None) -> None:
    if _cut_off(before):
        raise TruncatedOutput("the LM output was cut off at max_tokens")
