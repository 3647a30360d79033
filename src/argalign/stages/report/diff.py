"""What the report shows of one conversation: word-level diffs of what a rewrite may change,
and the length of what it kept.

Input: an original row and its aligned row (or None when the example failed). Output: a list
of *parts*, one or more per message, each a small dict the page renders:

- ``{"k": "diff", "label", "ops": [[op, text], ...]}`` with op ``=`` (both), ``-`` (only the
  original) or ``+`` (only the aligned row), for the request (the user message around its
  source text) and the opening and closing of each thinking;
- ``{"k": "kept", "label", "n": characters, "head", "tail"}`` for a part left as it was (the
  source text, the middle of a thinking, the system prompt, the answer, tool calls and
  results): collapsed on the page, with its length and its first and last characters;
- ``{"k": "text", "label", "text"}`` for a part of an original that has no aligned row.

Text is capped (:data:`DIFF_CHARS`, :data:`PREVIEW_CHARS`) so that a report of 10,000
conversations stays a file a browser opens.
"""

from __future__ import annotations

import difflib
import re
from typing import Any

from argalign.core.schema import split_source
from argalign.core.thinking import split_thinking

TOKEN = re.compile(r"\s+|\w+|[^\w\s]")
DIFF_CHARS = 6000  # per side of a diff; the rest is shown as one kept part
PREVIEW_CHARS = 240  # of a kept part, at its head and at its tail


def word_diff(before: str, after: str) -> list[list[str]]:
    """Word-level edit script from ``before`` to ``after``: ``[[op, text], ...]``."""
    a, b = TOKEN.findall(before), TOKEN.findall(after)
    ops: list[list[str]] = []

    def push(op: str, tokens: list[str]) -> None:
        if not tokens:
            return
        text = "".join(tokens)
        if ops and ops[-1][0] == op:
            ops[-1][1] += text
        else:
            ops.append([op, text])

    matcher = difflib.SequenceMatcher(None, a, b, autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            push("=", a[i1:i2])
        else:
            push("-", a[i1:i2])
            push("+", b[j1:j2])
    return ops


def kept(label: str, text: str) -> dict[str, Any]:
    """A part left unchanged: its length and its two ends."""
    part: dict[str, Any] = {"k": "kept", "label": label, "n": len(text)}
    if len(text) <= 2 * PREVIEW_CHARS:
        part["head"] = text
    else:
        part["head"], part["tail"] = text[:PREVIEW_CHARS], text[-PREVIEW_CHARS:]
    return part


def _diff(label: str, before: str, after: str) -> list[dict[str, Any]]:
    if before == after:
        return [kept(label, before)] if before else []
    if len(before) > DIFF_CHARS or len(after) > DIFF_CHARS:
        # A very long rewrite is diffed over its start; the rest is shown as its length only.
        return [{"k": "diff", "label": label, "ops": word_diff(before[:DIFF_CHARS], after[:DIFF_CHARS])},
                {"k": "kept", "label": f"{label} (rest, not compared)",
                 "n": max(len(before), len(after)) - DIFF_CHARS, "head": ""}]
    return [{"k": "diff", "label": label, "ops": word_diff(before, after)}]


def _user(before: str, after: str) -> list[dict[str, Any]]:
    """The request around the source text; the text itself (kept verbatim) folded."""
    parts = split_source(before)
    at = after.find(parts[1]) if parts and parts[1] else -1
    if parts is None or at < 0:
        return _diff("request", before, after)
    head, source, tail = parts
    # The aligned request is split around the same text (found again, not re-detected: a
    # rewritten request may change where the detector would put the text's edges).
    return [*_diff("request", head, after[:at]), kept("source text", source),
            *_diff("request (after the text)", tail, after[at + len(source):])]


def _thinking(before: str, after: str) -> list[dict[str, Any]]:
    if before == after:
        return [kept("thinking", before)]
    a, b = split_thinking(before), split_thinking(after)
    return [*_diff("thinking: opening", a.opening, b.opening),
            *(_diff("thinking: middle", a.middle, b.middle) if a.middle or b.middle else []),
            *_diff("thinking: closing", a.closing, b.closing)]


def _message_parts(role: str, before: dict[str, Any], after: dict[str, Any] | None) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    content, thinking = before.get("content"), before.get("thinking")
    if after is None:
        for label, text in (("thinking", thinking), ("content", content)):
            if isinstance(text, str) and text:
                out.append({"k": "text", "label": label, "text": text[:DIFF_CHARS]})
        return out
    if role == "user" and isinstance(content, str):
        out += _user(content, str(after.get("content") or ""))
    elif isinstance(content, str) and content:
        label = {"system": "system prompt", "assistant": "answer", "tool": "tool result"}.get(role, role)
        out += _diff(label, content, str(after.get("content") or ""))
    if isinstance(thinking, str) and thinking:
        out += _thinking(thinking, str(after.get("thinking") or ""))
    for key in ("tool_calls", "tools"):
        value = before.get(key)
        if isinstance(value, str) and value and value != "[]":
            out.append(kept(key.replace("_", " "), value))
    return out


def conversation_parts(original: dict[str, Any], aligned: dict[str, Any] | None) -> list[dict[str, Any]]:
    """One entry per message: ``{"role", "parts"}`` (see the module docstring)."""
    before = original.get("messages") or []
    after = (aligned or {}).get("messages") if aligned is not None else None
    out = []
    for i, message in enumerate(before):
        if not isinstance(message, dict):
            continue
        other = after[i] if isinstance(after, list) and i < len(after) else None
        role = str(message.get("role"))
        out.append({"role": role, "parts": _message_parts(role, message, other)})
    return out
