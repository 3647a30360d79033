"""Rows, messages and conversations as the Hub dataset stores them.

A row is a dict with a ``messages`` list and any number of other columns (``source_id``, ...).
Every message has exactly the keys ``content, name, role, thinking, tool_calls, tools`` with
``None`` for absent values; ``tools`` is a JSON string on the system message, ``tool_calls`` a
JSON string on assistant messages. Rows are kept as plain dicts so that reading and writing
them back is lossless, unknown keys included; :func:`parse_conversation` checks a row and gives
a typed, read-only view of it with its turn structure.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, replace
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError

from argalign.core.errors import RowError
from argalign.core.source_text import MIN_SOURCE_CHARS, find_source  # noqa: F401 - re-exported

MESSAGE_KEYS = ("content", "name", "role", "thinking", "tool_calls", "tools")
Role = Literal["system", "user", "assistant", "tool"]
ROLES: tuple[str, ...] = ("system", "user", "assistant", "tool")


class Message(BaseModel):
    """One message. Unknown keys are kept (``extra="allow"``) so nothing is lost."""

    model_config = ConfigDict(extra="allow", frozen=True, strict=True)

    content: str | None
    name: str | None
    role: Role
    thinking: str | None
    tool_calls: str | None
    tools: str | None


@dataclass(frozen=True)
class Turn:
    """One user message and the assistant and tool messages that answer it (indices)."""

    user_index: int
    reply_indices: tuple[int, ...]
    assistant_indices: tuple[int, ...]


@dataclass(frozen=True)
class Conversation:
    """A checked row: its messages and turns. The row dict itself is left untouched."""

    row_id: str
    messages: tuple[Message, ...]
    turns: tuple[Turn, ...]

    @property
    def system(self) -> Message | None:
        return self.messages[0] if self.messages and self.messages[0].role == "system" else None


@dataclass(frozen=True)
class Example:
    """A row with where it came from. ``id`` is stable: see :func:`example_id`."""

    id: str
    config: str
    split: str
    index: int
    row: dict[str, Any]

    def to_record(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "config": self.config,
            "split": self.split,
            "index": self.index,
            "row": self.row,
        }

    @classmethod
    def from_record(cls, record: Any, *, where: str = "") -> Example:
        """Read a prepared line; a plain row (with ``messages`` at top level) is accepted too.

        A plain row's id is its :func:`example_id` or, without one, its :func:`content_key`
        (never its line number, so a blank or reordered line changes no id); its index is the
        line number taken from ``where`` (``file:line``), or -1.
        """
        if not isinstance(record, dict):
            raise RowError(where or "?", "NOT_A_ROW", f"line is a JSON {type(record).__name__}, "
                           "not an object (a prepared example or a row with a 'messages' list)")
        if "row" in record and "id" in record:
            if not isinstance(record["id"], str):
                raise RowError(where or "?", "NOT_A_ROW", f"the example's id is a "
                               f"{type(record['id']).__name__}, not a string")
            return cls(
                id=record["id"],
                config=str(record.get("config", "")),
                split=str(record.get("split", "")),
                index=int(record.get("index", -1)),
                row=record["row"],
            )
        if "messages" in record:
            if not isinstance(record["messages"], list):
                raise RowError(where or "?", "NO_MESSAGES", "the row's 'messages' is a "
                               f"{type(record['messages']).__name__}, not a list")
            tail = where.rsplit(":", 1)[-1] if where else ""
            index = int(tail) if tail.isdigit() else -1
            row_id = example_id(record, "", "", index) if has_id(record) else content_key(record)
            return cls(id=row_id, config="", split="", index=index, row=record)
        raise RowError(where or "?", "NOT_A_ROW", "line is neither a prepared example nor a row "
                       "with a 'messages' list")


ID_COLUMNS = ("source_id", "example_id")
CONTENT_KEY_PREFIX = "row:"


def has_id(row: dict[str, Any]) -> bool:
    """Whether the row has a non-empty ``source_id`` or ``example_id``."""
    return any(row.get(key) not in (None, "") for key in ID_COLUMNS)


def example_id(row: dict[str, Any], config: str, split: str, index: int) -> str:
    """``source_id``, else ``example_id``, else ``<config>/<split>/<index>``.

    A string ``source_id`` is the id as it is. Any other id value is written with its column
    and its JSON form (``source_id=12345``, ``example_id=7``, ``example_id="7"``), so ``12345``
    and ``"12345"`` never count as the same id.
    """
    for key in ID_COLUMNS:
        value = row.get(key)
        if value in (None, ""):
            continue
        if key == "source_id" and isinstance(value, str):
            return value
        return f"{key}={json.dumps(value, ensure_ascii=False, sort_keys=True)}"
    return f"{config}/{split}/{index}"


def content_key(row: dict[str, Any]) -> str:
    """An id for a row without one: a digest of everything an aligned row must keep.

    User ``content`` and assistant ``thinking`` are left out, so a row and its rewrite get the
    same key; values keep their JSON types. Rows that agree on everything else share a key
    (:class:`PlainRowIds` numbers them in file order).
    """
    kept = []
    for m in row.get("messages") or []:
        if isinstance(m, dict):
            role = m.get("role")
            m = {k: v for k, v in m.items() if not (k == "content" and role == "user")
                 and not (k == "thinking" and role == "assistant")}
        kept.append(m)
    rest = {k: v for k, v in row.items() if k != "messages"}
    text = json.dumps([rest, kept], sort_keys=True, ensure_ascii=False)
    digest = hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:16]
    return f"{CONTENT_KEY_PREFIX}{digest}"


class PlainRowIds:
    """Examples of one file in order; a repeated content key gets ``#2``, ``#3`` ... appended."""

    def __init__(self) -> None:
        self._seen: dict[str, int] = {}

    def example(self, record: Any, where: str) -> Example:
        example = Example.from_record(record, where=where)
        if "messages" not in record or "row" in record or has_id(record):
            return example
        count = self._seen[example.id] = self._seen.get(example.id, 0) + 1
        return example if count == 1 else replace(example, id=f"{example.id}#{count}")


def _check_json(row_id: str, index: int, key: str, value: str | None, kind: type) -> None:
    if value is None:
        return
    try:
        parsed = json.loads(value)
    except json.JSONDecodeError as e:
        raise RowError(row_id, "FIELD_NOT_JSON", f"'{key}' is not valid JSON: {e.msg} at char {e.pos}",
                       index) from e
    if not isinstance(parsed, kind):
        raise RowError(row_id, "FIELD_NOT_JSON",
                       f"'{key}' must encode a JSON {kind.__name__}, got {type(parsed).__name__}",
                       index)


def parse_message(row_id: str, index: int, raw: Any) -> Message:
    if not isinstance(raw, dict):
        raise RowError(row_id, "NOT_AN_OBJECT", f"message is a {type(raw).__name__}, not an object",
                       index)
    missing = [k for k in MESSAGE_KEYS if k not in raw]
    if missing:
        raise RowError(row_id, "MISSING_KEY", f"message lacks key(s) {', '.join(missing)}", index)
    if raw["role"] not in ROLES:
        raise RowError(row_id, "UNKNOWN_ROLE",
                       f"unknown role {raw['role']!r}; expected one of {', '.join(ROLES)}", index)
    try:
        message = Message.model_validate(raw)
    except ValidationError as e:
        first = e.errors()[0]
        loc = ".".join(str(p) for p in first["loc"])
        raise RowError(row_id, "BAD_VALUE", f"key '{loc}': {first['msg']}", index) from e
    _check_json(row_id, index, "tools", message.tools, list)
    _check_json(row_id, index, "tool_calls", message.tool_calls, list)
    return message


_SURROGATE = re.compile("[\ud800-\udfff]")


def _check_text(row_id: str, row: dict[str, Any]) -> None:
    """RowError if a string (or key) anywhere in the row holds a lone surrogate."""
    # The common case in one pass of C code: every key and string of the row is in its JSON text
    # (unescaped, as ensure_ascii=False writes it); only a hit walks the row to say where.
    try:
        if not _SURROGATE.search(json.dumps(row, ensure_ascii=False, default=str)):
            return
    except (TypeError, ValueError):  # not JSON-shaped (a key that is not a string): walk it
        pass

    def where(value: Any, path: str) -> str | None:
        if isinstance(value, str):
            found = _SURROGATE.search(value)
            return f"{path} at character {found.start()}" if found else None
        items = value.items() if isinstance(value, dict) else enumerate(value) \
            if isinstance(value, list) else ()
        for key, item in items:
            if isinstance(key, str) and _SURROGATE.search(key):
                return f"a key of {path}"
            found = where(item, f"{path}.{key}" if isinstance(value, dict) else f"{path}[{key}]")
            if found:
                return found
        return None

    found = where(row, "row")
    if found:
        index = None
        if found.startswith("row.messages["):
            index = int(found[len("row.messages["):].split("]", 1)[0])
        raise RowError(row_id, "INVALID_TEXT", f"{found}: a lone surrogate (a half of a UTF-16 pair), "
                       "which is not text and cannot be written as UTF-8", index)


def parse_conversation(row: Any, row_id: str) -> Conversation:
    """Check a row and return its conversation view, or raise :class:`RowError`.

    Shape: ``[system] (user, (assistant | tool)*)+``; an assistant message needs content,
    thinking or tool calls. No string in the row may hold a lone surrogate (legal in JSON as
    ``"\\ud83d"``, but not text: UTF-8 cannot encode it).
    """
    if not isinstance(row, dict):
        raise RowError(row_id, "NOT_AN_OBJECT", f"row is a {type(row).__name__}, not an object")
    raw_messages = row.get("messages")
    if not isinstance(raw_messages, list):
        raise RowError(row_id, "NO_MESSAGES", "row has no 'messages' list")
    if not raw_messages:
        raise RowError(row_id, "EMPTY_MESSAGES", "'messages' is empty")
    _check_text(row_id, row)
    messages = tuple(parse_message(row_id, i, m) for i, m in enumerate(raw_messages))

    turns: list[Turn] = []
    user_index: int | None = None
    replies: list[int] = []
    for i, m in enumerate(messages):
        if m.role == "system":
            if i != 0:
                raise RowError(row_id, "MISPLACED_SYSTEM", "a system message must come first", i)
        elif m.role == "user":
            if user_index is not None:
                turns.append(_turn(messages, user_index, replies))
            user_index, replies = i, []
        else:
            if user_index is None:
                raise RowError(row_id, "NO_USER_BEFORE_REPLY",
                               f"{m.role} message before any user message", i)
            if m.role == "assistant" and not (m.content or m.thinking or m.tool_calls):
                raise RowError(row_id, "EMPTY_ASSISTANT",
                               "assistant message has no content, no thinking and no tool_calls", i)
            replies.append(i)
    if user_index is None:
        raise RowError(row_id, "NO_USER_MESSAGE", "conversation has no user message")
    turns.append(_turn(messages, user_index, replies))
    return Conversation(row_id=row_id, messages=messages, turns=tuple(turns))


def _turn(messages: tuple[Message, ...], user_index: int, replies: list[int]) -> Turn:
    assistant = tuple(i for i in replies if messages[i].role == "assistant")
    return Turn(user_index=user_index, reply_indices=tuple(replies), assistant_indices=assistant)


# --- the source text a task works on ------------------------------------------------------

def split_source(user_content: str) -> tuple[str, str, str] | None:
    """Split a user message into (before, source text, after), or ``None`` if none is found.

    ``before`` ends with the intro line, if there is one. See :mod:`argalign.core.source_text`.
    """
    span = find_source(user_content)
    return None if span is None else (span.before + span.intro, span.source, span.after)


def source_text(user_content: str | None) -> str | None:
    """The text the task works on, as it stands in the user message."""
    span = find_source(user_content)
    return span.source if span else None
