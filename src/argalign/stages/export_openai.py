"""The ``openai`` export format: rows in the OpenAI chat format with ``reasoning_content``,
for OpenAI fine-tuning or LLaMA-Factory's ``openai`` formatting."""

from __future__ import annotations

import json
from typing import Any

from argalign.core.errors import RowError
from argalign.core.schema import parse_conversation
from argalign.stages.export_format import Format, dataset_info_writer, function_definitions, tool_calls

# LLaMA-Factory's "openai" formatting: its README's tags lack the two tool roles, so a tool
# result ("tool") is an unknown role (the row is dropped, or the load fails with KeyError).
OPENAI_TAGS = {"role_tag": "role", "content_tag": "content", "user_tag": "user",
               "assistant_tag": "assistant", "system_tag": "system", "observation_tag": "tool",
               "function_tag": "function_call"}
# LLaMA-Factory's dataset_info.json entry of an OpenAI file.
DATASET_INFO = {"formatting": "openai", "columns": {"messages": "messages", "tools": "tools"},
                "tags": OPENAI_TAGS}


def to_openai(row: dict[str, Any], row_id: str, *, thinking: bool = True) -> dict[str, Any]:
    """One row as ``{"messages", "tools"}`` in the OpenAI chat format with reasoning_content.

    A thinking-only assistant message is merged into the next assistant message (its
    ``reasoning_content``); tool calls get ids ``call_<n>`` unless they have one, and each tool
    result takes the id of the first open call of its name.
    """
    conv = parse_conversation(row, row_id)
    messages: list[dict[str, Any]] = []
    tools: list[dict[str, Any]] = []
    open_calls: list[tuple[str, str]] = []
    reasoning: list[str] = []
    n_calls = 0

    def flush() -> None:
        if reasoning:
            messages.append({"role": "assistant", "content": "", "reasoning_content": "\n\n".join(reasoning)})
            reasoning.clear()

    for i, m in enumerate(conv.messages):
        if m.role == "assistant":
            if thinking and m.thinking:
                reasoning.append(m.thinking)
            calls = tool_calls(row_id, i, m.tool_calls)
            if not m.content and not calls:
                continue
            message: dict[str, Any] = {"role": "assistant", "content": m.content}
            if reasoning:
                message["reasoning_content"] = "\n\n".join(reasoning)
                reasoning.clear()
            if calls:
                message["tool_calls"] = []
                for call in calls:
                    call_id = call["id"] or f"call_{n_calls}"
                    n_calls += 1
                    open_calls.append((call_id, call["name"]))
                    arguments = json.dumps(call["arguments"], ensure_ascii=False)
                    message["tool_calls"].append({"id": call_id, "type": "function",
                                                  "function": {"name": call["name"], "arguments": arguments}})
            messages.append(message)
            continue
        flush()
        if m.role == "system":
            tools = [{"type": "function", "function": f} for f in function_definitions(m.tools)]
            messages.append({"role": "system", "content": m.content or ""})
        elif m.role == "user":
            messages.append({"role": "user", "content": m.content or ""})
        else:
            match = next((c for c in open_calls if c[1] == m.name), open_calls[0] if open_calls else None)
            if match is None:
                raise RowError(row_id, "ORPHAN_TOOL_RESULT", "a tool result answers no open tool call", i)
            open_calls.remove(match)
            messages.append({"role": "tool", "tool_call_id": match[0], "name": m.name or match[1],
                             "content": m.content or ""})
    flush()
    return {"messages": messages, "tools": tools}


def openai_texts(converted: dict[str, Any]) -> list[str]:
    """What a trainer tokenizes of an OpenAI row: tools, then each message's text and calls."""
    texts = [json.dumps(converted["tools"], ensure_ascii=False) if converted["tools"] else ""]
    for message in converted["messages"]:
        calls = message.get("tool_calls")
        texts.append("\n".join(filter(None, [
            message.get("reasoning_content"), message.get("content"),
            json.dumps([c["function"] for c in calls], ensure_ascii=False) if calls else None])))
    return texts


OPENAI = Format(to_openai, openai_texts, dataset_info_writer(DATASET_INFO))
