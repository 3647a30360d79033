"""The hard invariants: what an aligned row may change, checked against its original.

An aligned row may change only the user messages' ``content`` and the assistant messages'
``thinking`` (text stays text, null stays null). Everything else is compared as JSON values
with their types (:func:`same_json`: ``1``, ``1.0`` and ``true`` differ; ``NaN`` equals itself)
and strings byte for byte. Each violation has a stable code (see :data:`CODES`) and the index
of the message concerned. A rewrite that differs from the original only in whitespace,
non-breaking spaces, invisible format characters or Unicode normalization is unchanged
(:func:`is_unchanged`), never a success.
How far a user message may change is the mode's policy (:data:`argalign.core.policies.USER_CHANGE`).
:func:`argalign.scoring.gate.gate`, above this module and :mod:`argalign.scoring.checks`, turns these
violations and the quality checks' findings into an outcome. Nothing here imports DSPy.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Any

from argalign.core import codes
from argalign.core.policies import (
    CLARIFICATION_SEPARATOR,
    DEFAULT_MAX_USER_CHANGE,
    UserChange,
    user_change_policy,
)
from argalign.core.records import Violation
from argalign.core.schema import MESSAGE_KEYS
from argalign.core.source_text import find_source, protected_text

# What validate reports: the invariants of a row and the ids across two files.
CODES: dict[str, str] = {**codes.INVARIANT, **codes.ID}

_SAME_ON_EVERY_MESSAGE = {
    "role": "ROLE_CHANGED",
    "name": "NAME_CHANGED",
    "tool_calls": "TOOL_CALLS_CHANGED",
    "tools": "TOOLS_CHANGED",
}
_CONTENT_BY_ROLE = {
    "assistant": "ASSISTANT_CONTENT_CHANGED",
    "system": "SYSTEM_CONTENT_CHANGED",
    "tool": "TOOL_CONTENT_CHANGED",
}


def same_json(a: Any, b: Any) -> bool:
    """Equality of JSON values with their types: ``1``, ``1.0`` and ``true`` differ, ``NaN``
    equals ``NaN``, ``0.0`` and ``-0.0`` differ, strings compare code point for code point.
    Object keys compare as a set (JSON objects are unordered), list items in order."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same_json(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(same_json(x, y) for x, y in zip(a, b))
    if isinstance(a, float):
        return repr(a) == repr(b)
    return a == b


def appended_clarification(before: str, after: str) -> str:
    """The clarification appended to ``before`` to give ``after`` ("" if they are equal).

    ``after`` must be ``before`` unchanged, then :data:`CLARIFICATION_SEPARATOR` and one line
    with no leading or trailing whitespace: exactly what the Mode B module writes. Checked in
    linear time. ValueError with the code and the reason otherwise.
    """
    if after == before:
        return ""
    if not after.startswith(before):
        at = next((k for k, (a, b) in enumerate(zip(before, after)) if a != b),
                  min(len(before), len(after)))
        raise ValueError("USER_CONTENT_EDITED",
                         f"the original user content is not kept as it is (it differs at character {at})")
    added = after[len(before):]
    clarification = added[len(CLARIFICATION_SEPARATOR):]
    if not added.startswith(CLARIFICATION_SEPARATOR) or not clarification \
            or "\n" in clarification or "\r" in clarification or clarification != clarification.strip():
        raise ValueError("CLARIFICATION_MALFORMED", f"the appended {len(added)} characters are not "
                         "a blank line and then one line of text")
    return clarification


def check_row(
    original: dict[str, Any],
    aligned: Any,
    mode: str,
    *,
    max_user_change: int = DEFAULT_MAX_USER_CHANGE,
) -> list[Violation]:
    """All invariant violations of ``aligned`` against ``original`` for a registered mode."""
    if not isinstance(aligned, dict) or not isinstance(aligned.get("messages"), list) or not all(
        isinstance(m, dict) for m in aligned["messages"]
    ):
        return [Violation("MALFORMED", None, "aligned row has no list of message objects")]
    policy = user_change_policy(mode)
    if policy is None:
        return [Violation("UNKNOWN_MODE", None, f"mode {mode!r} is not a registered mode")]
    violations: list[Violation] = []
    for key in sorted(set(original) | set(aligned)):
        if key != "messages" and (key not in original or key not in aligned
                                  or not same_json(original[key], aligned[key])):
            violations.append(Violation("OTHER_FIELD_CHANGED", None, f"row column {key!r} changed"))

    before, after = original["messages"], aligned["messages"]
    if len(before) != len(after):
        violations.append(
            Violation("MESSAGE_COUNT", None, f"{len(before)} messages became {len(after)}")
        )
    for i, (old, new) in enumerate(zip(before, after)):
        violations.extend(_check_message(i, old, new, policy, max_user_change))
    return violations


def _check_message(
    i: int, old: dict[str, Any], new: dict[str, Any], policy: UserChange, max_user_change: int
) -> list[Violation]:
    out: list[Violation] = []
    for key in sorted(set(new) - set(old)):
        out.append(Violation("KEY_ADDED", i, f"key {key!r} added"))
    for key in sorted(set(old) - set(new)):
        out.append(Violation("KEY_REMOVED", i, f"key {key!r} removed"))
    for key, code in _SAME_ON_EVERY_MESSAGE.items():
        if key in old and key in new and not same_json(old[key], new[key]):
            out.append(Violation(code, i, f"{key} changed"))
    for key in sorted((set(old) & set(new)) - set(MESSAGE_KEYS)):
        if not same_json(old[key], new[key]):
            out.append(Violation("OTHER_FIELD_CHANGED", i, f"key {key!r} changed"))

    role = old.get("role")
    content_code = _CONTENT_BY_ROLE.get(role)
    if content_code and not same_json(old.get("content"), new.get("content")):
        out.append(Violation(content_code, i, f"{role} content changed"))

    old_thinking, new_thinking = old.get("thinking"), new.get("thinking")
    if role != "assistant":
        if not same_json(old_thinking, new_thinking):
            out.append(Violation("THINKING_ON_NON_ASSISTANT", i, f"{role} thinking changed"))
    elif old_thinking is None and new_thinking is not None:
        out.append(Violation("THINKING_ADDED", i, "null thinking became text"))
    elif old_thinking is not None and new_thinking is None:
        out.append(Violation("THINKING_REMOVED", i, "thinking became null"))
    elif old_thinking is not None and not isinstance(new_thinking, str):
        out.append(Violation("OTHER_FIELD_CHANGED", i, "thinking is no longer text"))

    if role == "user":
        out.extend(_check_user(i, old.get("content"), new.get("content"), policy, max_user_change))
    return out


def _check_user(
    i: int, old: str | None, new: Any, policy: UserChange, max_user_change: int
) -> list[Violation]:
    if old is None:
        return [] if new is None else [Violation("OTHER_FIELD_CHANGED", i, "null user content set")]
    if not isinstance(new, str) or not new.strip():
        return [Violation("USER_CONTENT_EMPTY", i, "user content became empty")]
    out: list[Violation] = []
    span = find_source(old)
    if span is not None and span.source not in new:
        out.append(Violation("SOURCE_TEXT_NOT_VERBATIM", i,
                             f"the {len(span.source)}-character source text is no longer verbatim"))
    else:  # checked apart from the source text found, which could miss part of the text
        lost = next((part for part in protected_text(old) if part not in new), None)
        if lost is not None:
            out.append(Violation("SOURCE_TEXT_NOT_VERBATIM", i, f"the {len(lost)} characters of text "
                                 f"from {lost[:40]!r} on are no longer verbatim"))
    if policy is UserChange.APPEND:
        try:
            clarification = appended_clarification(old, new)
        except ValueError as e:
            code, detail = e.args
            out.append(Violation(code, i, detail))
        else:
            if len(clarification) > max_user_change:
                out.append(Violation("USER_CHANGE_EXCEEDS_BOUND", i, f"a clarification of "
                                     f"{len(clarification)} characters, bound {max_user_change}"))
    return out


# Whitespace and the invisible format characters a rewrite may add or drop unseen: soft hyphen,
# zero-width spaces and joiners, direction marks, word joiner, byte order mark.
_INVISIBLE = re.compile("[\\s\u00ad\u061c\u180e\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u206f"
                        "\ufeff\ufff9-\ufffb]+")


def _visible(text: str) -> str:
    """``text`` in Unicode compatibility normalization, without whitespace or invisible marks."""
    return _INVISIBLE.sub("", unicodedata.normalize("NFKC", text))


def _same_visible(a: Any, b: Any) -> bool:
    if type(a) is not type(b):
        return False
    if isinstance(a, str):
        return a == b or _visible(a) == _visible(b)
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_same_visible(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(_same_visible(x, y) for x, y in zip(a, b))
    return same_json(a, b)


def is_unchanged(original: dict[str, Any], aligned: dict[str, Any]) -> bool:
    """True when the rewrite is the original up to whitespace, non-breaking spaces, invisible
    format characters (zero-width spaces) and Unicode normalization: not a success."""
    return _same_visible(original.get("messages"), aligned.get("messages"))
