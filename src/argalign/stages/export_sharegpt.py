"""The ``sharegpt`` export format: rows for LLaMA-Factory's ShareGPT formatting.

ShareGPT rules (LLaMA-Factory's ``SharegptDatasetConverter`` skips a row unless turn 0, 2, 4 ...
is ``human``/``observation``, turn 1, 3, 5 ... is ``gpt``/``function_call``, and the count is even):

- the system message becomes the ``system`` column; its ``tools`` the ``tools`` column (a JSON
  list of function definitions, ``{"type": "function"}`` wrappers removed; ``""`` when none);
- thinking becomes a ``<think>\\n...\\n</think>\\n\\n`` block at the start of the value
  (``thinking="drop"`` leaves it out);
- assistant ``tool_calls`` become a ``function_call`` turn whose value is ``{"name", "arguments"}``
  as JSON (a JSON list for several calls); a tool result becomes an ``observation`` turn;
- a thinking-only assistant message directly before a tool call is folded into the
  ``function_call`` value as its ``<think>`` block: LLaMA-Factory's ``FunctionFormatter`` takes
  a leading think block off a function value and puts it back in front of the rendered call;
- consecutive turns of one kind are merged: human and gpt values joined by a blank line,
  thinking blocks joined into one, calls into one list, observations joined with
  ``\\n</tool_response>\\n<tool_response>\\n`` as LLaMA-Factory's own OpenAI converter does;
- gpt turns left empty (thinking dropped) are removed and trailing human turns are trimmed;
- a row that still breaks the rule (an assistant message with both content and tool calls, a
  call that gets no result, a tool result without a call ...) is written to the rejects file.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from argalign.core.errors import RowError
from argalign.core.schema import parse_conversation
from argalign.stages.export_format import Format, dataset_info_writer, function_definitions, tool_calls

THINK_OPEN, THINK_CLOSE = "<think>\n", "\n</think>\n\n"
TOOL_RESPONSE_SEP = "\n</tool_response>\n<tool_response>\n"
ODD_TAGS, EVEN_TAGS = ("human", "observation"), ("gpt", "function_call")
SHAREGPT_TAGS = {"role_tag": "from", "content_tag": "value", "user_tag": "human", "assistant_tag": "gpt",
                 "observation_tag": "observation", "function_tag": "function_call"}
# LLaMA-Factory's dataset_info.json entry of a ShareGPT file.
DATASET_INFO = {"formatting": "sharegpt",
                "columns": {"messages": "conversations", "system": "system", "tools": "tools"},
                "tags": SHAREGPT_TAGS}


@dataclass
class _Turn:
    tag: str
    think: list[str] = field(default_factory=list)
    text: list[str] = field(default_factory=list)
    calls: list[dict[str, Any]] = field(default_factory=list)


def _push(turns: list[_Turn], turn: _Turn) -> None:
    last = turns[-1] if turns else None
    if last is not None and last.tag == turn.tag:
        last.think += turn.think
        last.text += turn.text
        last.calls += turn.calls
    elif last is not None and last.tag == "gpt" and not last.text and turn.tag == "function_call":
        turn.think = last.think + turn.think  # a thinking-only message before its tool call
        turns[-1] = turn
    else:
        turns.append(turn)


def _value(turn: _Turn) -> str:
    think = THINK_OPEN + "\n\n".join(turn.think) + THINK_CLOSE if turn.think else ""
    if turn.tag == "function_call":
        calls = [{"name": c["name"], "arguments": c["arguments"]} for c in turn.calls]
        return think + json.dumps(calls[0] if len(calls) == 1 else calls, ensure_ascii=False)
    sep = TOOL_RESPONSE_SEP if turn.tag == "observation" else "\n\n"
    return think + sep.join(turn.text)


def sharegpt_problem(conversations: list[dict[str, str]]) -> str | None:
    """Why LLaMA-Factory would skip these turns, or None (its converter's rule, no system turn)."""
    if not conversations:
        return "no turns left"
    for i, turn in enumerate(conversations):
        allowed = ODD_TAGS if i % 2 == 0 else EVEN_TAGS
        if turn.get("from") not in allowed:
            return f"turn {i} is {turn.get('from')!r}, expected one of {', '.join(allowed)}"
        if not isinstance(turn.get("value"), str):
            return f"turn {i} has no string value"
    if len(conversations) % 2:
        return f"odd number of turns ({len(conversations)}): the last must be gpt or function_call"
    return None


def to_sharegpt(row: dict[str, Any], row_id: str, *, thinking: bool = True) -> dict[str, Any]:
    """One row as ``{"conversations", "system", "tools"}``, or RowError if it cannot be valid."""
    conv = parse_conversation(row, row_id)
    system, tools = "", ""
    turns: list[_Turn] = []
    for i, m in enumerate(conv.messages):
        if m.role == "system":
            system = m.content or ""
            functions = function_definitions(m.tools)
            tools = json.dumps(functions, ensure_ascii=False) if functions else ""
        elif m.role == "user":
            _push(turns, _Turn("human", text=[m.content or ""]))
        elif m.role == "tool":
            _push(turns, _Turn("observation", text=[m.content or ""]))
        else:
            think = [m.thinking] if thinking and m.thinking else []
            calls = tool_calls(row_id, i, m.tool_calls)
            if calls and m.content:
                raise RowError(row_id, "CONTENT_WITH_TOOL_CALLS", "an assistant message with both "
                               "content and tool calls has no ShareGPT form", i)
            if calls:
                _push(turns, _Turn("function_call", think=think, calls=calls))
            else:
                _push(turns, _Turn("gpt", think=think, text=[m.content] if m.content else []))
    turns = [t for t in turns if not (t.tag == "gpt" and not t.think and not t.text)]
    merged: list[_Turn] = []
    for turn in turns:  # removing empty turns can bring two of a kind together again
        _push(merged, turn)
    while merged and merged[-1].tag == "human":
        merged.pop()
    conversations = [{"from": t.tag, "value": _value(t)} for t in merged]
    problem = sharegpt_problem(conversations)
    if problem:
        raise RowError(row_id, "INVALID_SHAREGPT", problem)
    return {"conversations": conversations, "system": system, "tools": tools}


def sharegpt_texts(converted: dict[str, Any]) -> list[str]:
    """What a trainer tokenizes of a ShareGPT row: system prompt, tools, each turn."""
    return [converted["system"], converted["tools"],
            *(turn["value"] for turn in converted["conversations"])]


SHAREGPT = Format(to_sharegpt, sharegpt_texts, dataset_info_writer(DATASET_INFO))
