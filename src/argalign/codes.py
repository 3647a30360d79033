"""Every code a user can see, with what it means: one catalogue, one line per code.

Codes appear in result records (``codes``), rejects files, ``failures.jsonl``, ``validate``
reports and error messages. Each table below is one kind of code; a new code is one line in
its table, and ``argalign codes`` prints them all. A code means one thing wherever it appears
and is never in two tables.
"""

from __future__ import annotations

# An input row or line that cannot be used (prepare, align, validate, export).
ROW: dict[str, str] = {
    "LINE_NOT_JSON": "a line of a JSONL file is not valid JSON",
    "NOT_A_ROW": "a line is neither a prepared example nor a row with a 'messages' list",
    "NOT_AN_OBJECT": "a row or a message is not a JSON object",
    "NO_MESSAGES": "the row has no 'messages' list",
    "EMPTY_MESSAGES": "the row's 'messages' list is empty",
    "MISSING_KEY": "a message lacks one of content, name, role, thinking, tool_calls, tools",
    "UNKNOWN_ROLE": "a message's role is not system, user, assistant or tool",
    "BAD_VALUE": "a message key holds a value of the wrong type",
    "FIELD_NOT_JSON": "a message's tools or tool_calls is not the JSON it must encode",
    "INVALID_TEXT": "a text holds a lone surrogate, which UTF-8 cannot encode",
    "MISPLACED_SYSTEM": "a system message is not the first message",
    "NO_USER_BEFORE_REPLY": "an assistant or tool message comes before any user message",
    "EMPTY_ASSISTANT": "an assistant message has no content, thinking or tool calls",
    "NO_USER_MESSAGE": "the conversation has no user message",
    "SOURCE_UNCLEAR": "Mode A cannot tell the instructions from the text of a long user message, "
                      "so it leaves the row alone (rejected) rather than rewrite the text away",
}

# An aligned row against its original: what a rewrite may not change (invariants, validate).
INVARIANT: dict[str, str] = {
    "MALFORMED": "the aligned row is not a row with a messages list of objects",
    "MESSAGE_COUNT": "a message was added or removed",
    "KEY_ADDED": "a message has a key the original message does not have",
    "KEY_REMOVED": "a message lacks a key the original message has",
    "ROLE_CHANGED": "a message's role changed (messages reordered or replaced)",
    "NAME_CHANGED": "a message's name changed",
    "TOOL_CALLS_CHANGED": "an assistant message's tool_calls changed",
    "TOOLS_CHANGED": "the tools declaration changed",
    "ASSISTANT_CONTENT_CHANGED": "an assistant message's content changed (even by one byte)",
    "SYSTEM_CONTENT_CHANGED": "the system message's content changed",
    "TOOL_CONTENT_CHANGED": "a tool result's content changed",
    "THINKING_ADDED": "thinking that was null became text",
    "THINKING_REMOVED": "thinking that was text became null",
    "THINKING_ON_NON_ASSISTANT": "thinking of a system, user or tool message changed",
    "USER_CONTENT_EMPTY": "a user message became empty or null",
    "USER_CHANGE_EXCEEDS_BOUND": "Mode B appended a clarification longer than the bound",
    "USER_CONTENT_EDITED": "Mode B did not keep the original user content as it is",
    "CLARIFICATION_MALFORMED": "Mode B appended something other than one clarification line",
    "SOURCE_TEXT_NOT_VERBATIM": "the source text of a user message is no longer in it verbatim",
    "OTHER_FIELD_CHANGED": "another key of a message or a row column changed",
    "UNKNOWN_MODE": "the record names no known mode, so its user-change policy cannot be checked",
}

# Example ids across two files or within one (prepare, validate, clean).
ID: dict[str, str] = {
    "ID_MISSING": "an example of the original has no counterpart (no aligned row, no result)",
    "ID_EXTRA": "an example that the original does not have",
    "ID_DUPLICATE": "the same example id occurs twice",
}

# Quality checks: a rewrite that keeps every invariant and is still worse than the original.
QUALITY: dict[str, str] = {
    "PLACEHOLDER_LEAKED": "a placeholder, field name or template marker leaked into a message",
    "PLAN_DROPPED": "the rewritten thinking no longer lists the steps its middle works through",
    "DELIVERABLE_DROPPED": "Mode A: the request no longer names a method, format, question or "
                           "tool that the original request named and the response uses",
    "REQUEST_QUOTES_ANSWER": "the request copies a long span of the answer (games the metric)",
    "REQUEST_COPIES_SYSTEM": "the request repeats the system prompt",
    "CLARIFICATION_REPEATS": "Mode B: the clarification repeats what the request already says",
    "CLARIFICATION_CONTRADICTS": "Mode B: the clarification asks for something the answer does "
                                 "not do",
}

# One LM output that cannot be used; after the last attempt the example ends ``failed``.
LM: dict[str, str] = {
    "PARSE_ERROR": "the LM output could not be parsed into the expected fields",
    "TRUNCATED": "the LM output was cut off at max_tokens",
    "TIMEOUT": "the LM endpoint did not answer in time",
    "RATE_LIMITED": "the LM endpoint refused the request for its rate limit",
    "LM_ERROR": "the LM endpoint failed in another way",
    "INVALID_FIELD": "an output field is not text, or not the one sentence it must be",
    "EMPTY_FIELD": "a required output field is empty",
    "FIELD_TOO_LONG": "an output field is longer than allowed",
    "TOO_SHORT": "a required output field has fewer than three words (an echoed placeholder)",
    "SOURCE_RETYPED": "the rewritten request retypes the source text instead of leaving it out",
}

# A batch run's own failures (run).
RUN: dict[str, str] = {
    "RAW_UNREADABLE": "the raw example could not be read again during the run",
    "INTERNAL_ERROR": "an unexpected error while aligning the example (reported, redacted)",
    "FAILED": "the metric scored an example that produced no aligned row (it scores 0)",
}

# A cleaned row that has no form in a training format (export).
EXPORT: dict[str, str] = {
    "BAD_TOOL_CALL": "a tool call has no function name, or its arguments are not JSON",
    "CONTENT_WITH_TOOL_CALLS": "an assistant message with both content and tool calls",
    "INVALID_SHAREGPT": "the turns do not alternate as LLaMA-Factory's ShareGPT reader requires",
    "ORPHAN_TOOL_RESULT": "a tool result answers no open tool call",
}

KINDS: dict[str, dict[str, str]] = {"row": ROW, "invariant": INVARIANT, "id": ID,
                                    "quality": QUALITY, "lm": LM, "run": RUN, "export": EXPORT}


def catalogue() -> dict[str, tuple[str, str]]:
    """``code -> (kind, meaning)`` for every code."""
    return {code: (kind, meaning) for kind, table in KINDS.items()
            for code, meaning in table.items()}


def meaning(code: str) -> str:
    """What a code means; KeyError for a code that is not in the catalogue."""
    return catalogue()[code][1]
