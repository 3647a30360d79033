"""DSPy's prompts read and its answers written, for a fake LM that serves any DSPy program.

Contract: :func:`parse_prompt` reads the output fields and their types from the system prompt a
DSPy 3.4 adapter writes ("Your output fields are: 1. `a` (str): ...") and the answer format
from the prompt too: JSONAdapter ("Outputs will be a JSON object") gets ``"json"``, ChatAdapter
gets ``"chat"`` (``[[ ## field ## ]]`` sections ending with ``[[ ## completed ## ]]``), and a
prompt without DSPy fields gets ``"plain"`` with the one field ``{"text": "str"}``.
:func:`render` writes values in that format. :func:`typed_values` gives every field a value of
its type, hashed from the last user message: a pure function of the prompt, so two servers,
runs or processes answer the same prompt identically. Nothing here knows a program's fields.
Standard library only.
"""

from __future__ import annotations

import ast
import hashlib
import json
import re
from typing import Any

_FIELD_LINE = re.compile(r"^\d+\. `([^`]+)` \(")
_VOCABULARY = (
    "answer", "argument", "assistant", "balance", "because", "careful", "claim", "clear",
    "context", "conversation", "correct", "detail", "draft", "evidence", "example", "explain",
    "fact", "follow", "goal", "helpful", "idea", "instruction", "justify", "language", "logic",
    "meaning", "method", "model", "note", "option", "order", "point", "precise", "question",
    "reason", "request", "result", "review", "rewrite", "rule", "sample", "section", "simple",
    "source", "specific", "step", "structure", "summary", "support", "task", "text", "topic",
    "useful", "user", "value", "verify", "version", "word", "write", "reply",
)


def message_text(content: Any) -> str:
    """The text of a message's ``content``: a string, or the text parts of a multimodal list."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # multimodal parts
        return "".join(p.get("text", "") for p in content if isinstance(p, dict))
    return "" if content is None else str(content)


def last_user_text(messages: list[dict[str, Any]]) -> str:
    """The text of the last user message ("" without one): what hashed values are seeded from."""
    last_user = next((m for m in reversed(messages) if m.get("role") == "user"), {})
    return message_text(last_user.get("content"))


def _split_top(s: str) -> list[str]:
    """Split on commas outside brackets and quotes: "str, Literal['a, b']" -> two parts."""
    parts, depth, quote, start = [], 0, "", 0
    for i, ch in enumerate(s):
        if quote:
            quote = "" if ch == quote and s[i - 1] != "\\" else quote
        elif ch in "'\"":
            quote = ch
        elif ch in "[(":
            depth += 1
        elif ch in "])":
            depth -= 1
        elif ch == "," and depth == 0:
            parts.append(s[start:i].strip())
            start = i + 1
    tail = s[start:].strip()
    return [*parts, tail] if tail else parts


def _type_after(line: str, start: int) -> str:
    """The balanced type name from ``start`` (just after "(") to its closing ")"."""
    depth, quote = 0, ""
    for i in range(start, len(line)):
        ch = line[i]
        if quote:
            quote = "" if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch in "[(":
            depth += 1
        elif ch == "]":
            depth -= 1
        elif ch == ")":
            if depth == 0:
                return line[start:i]
            depth -= 1
    return line[start:]


def parse_prompt(body: dict[str, Any]) -> tuple[str, dict[str, str]]:
    """The answer format ("json", "chat" or "plain") and the output fields {name: type}."""
    messages = body.get("messages") or []
    system = "\n".join(message_text(m.get("content")) for m in messages if m.get("role") == "system")
    everything = "\n".join(message_text(m.get("content")) for m in messages)
    fields: dict[str, str] = {}
    _, found, section = system.partition("Your output fields are:\n")
    if found:
        section = section.split("\nAll interactions will be structured", 1)[0]
        for line in section.splitlines():
            match = _FIELD_LINE.match(line)
            if match:
                fields[match.group(1)] = _type_after(line, match.end()).strip()
    if not fields:
        return "plain", {"text": "str"}
    response_format = body.get("response_format") or {}
    if (
        "Outputs will be a JSON object" in system
        or "Respond with a JSON object" in everything
        or response_format.get("type") in ("json_object", "json_schema")
    ):
        return "json", fields
    return "chat", fields


def _words(seed_text: str, n: int) -> str:
    out: list[str] = []
    block = 0
    while len(out) < n:
        digest = hashlib.blake2b(f"{seed_text}\x00{block}".encode()).digest()
        out.extend(_VOCABULARY[b % len(_VOCABULARY)] for b in digest)
        block += 1
    text = " ".join(out[:n])
    return (text[:1].upper() + text[1:] + ".") if text else ""


def _value(type_str: str, seed_text: str, words: int) -> Any:
    head, _, rest = type_str.partition("[")
    head = head.strip().rsplit(".", 1)[-1]
    args = _split_top(rest[:-1]) if rest.endswith("]") else []
    if head in ("int",):
        return 1
    if head in ("float",):
        return 0.5
    if head in ("bool",):
        return True
    if head == "NoneType":
        return None
    if head == "Literal" and args:
        try:
            return ast.literal_eval(args[0])
        except (ValueError, SyntaxError):
            return args[0]
    if head in ("Union", "Optional") and args:
        arm = next((a for a in args if a != "NoneType"), args[0])
        return _value(arm, seed_text, words)
    if head in ("list", "List", "set", "Set", "tuple", "Tuple", "Sequence"):
        item = args[0] if args else "str"
        return [_value(item, f"{seed_text}\x00{i}", min(words, 5)) for i in range(3)]
    if head in ("dict", "Dict", "Mapping"):
        value_type = args[1] if len(args) > 1 else "str"
        return {"key": _value(value_type, seed_text, min(words, 5))}
    return _words(seed_text, words)  # str and anything unknown


def typed_values(
    fields: dict[str, str], messages: list[dict[str, Any]], words: int = 40
) -> dict[str, Any]:
    """A value for every field: str fields get ``words`` words hashed from the last user message."""
    seed = last_user_text(messages)
    return {name: _value(t, f"{seed}\x00{name}", words) for name, t in fields.items()}


def render(adapter: str, fields: dict[str, str], values: dict[str, Any]) -> str:
    """``values`` in the answer format of ``parse_prompt``: the fields in order, then any extras."""
    ordered = {k: values[k] for k in fields if k in values} | values
    if adapter == "plain":
        return " ".join(str(v) for v in ordered.values())
    if adapter == "json":
        return json.dumps(ordered, ensure_ascii=False)
    sections = [
        f"[[ ## {k} ## ]]\n{json.dumps(v) if isinstance(v, (list, dict)) else v}"
        for k, v in ordered.items()
    ]
    return "\n\n".join([*sections, "[[ ## completed ## ]]"])
