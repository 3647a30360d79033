"""How LLaMA-Factory 0.9.5 reads an exported folder, rebuilt for the tests (not a test module).

LLaMA-Factory reads ``dataset_info.json``, loads each entry's file with ``datasets`` and maps
every row through the converter its ``formatting`` names (``data/converter.py``); a row whose
roles do not alternate is skipped with a warning ("Invalid role tag", "Invalid message
count"), and a role the tags do not name fails the whole load with a KeyError. The rules below
follow that code's behaviour as read in the 0.9.5 wheel (written here from the description,
so a change in LLaMA-Factory needs a change here too):

- ``sharegpt``: a first message with the system tag is the system prompt (else the ``system``
  column); turns 0, 2, ... must be user or observation, 1, 3, ... assistant or function; the
  count must be even.
- ``openai``: an assistant message with ``tool_calls`` becomes a function turn whose content is
  the JSON list of the calls' ``function`` objects; consecutive tool results are joined into one
  observation turn; then the same alternation and parity rules. ``tools`` given as a list is
  dumped to JSON.

Every function turn must also pass the function formatter: after an optional leading think
block, its content is JSON (one call or a list), each call with a ``name`` and ``arguments``.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import datasets

USER, ASSISTANT, OBSERVATION, FUNCTION, SYSTEM = "user", "assistant", "observation", "function", "system"
DEFAULT_TAGS = {"role_tag": "from", "content_tag": "value", "user_tag": "human",
                "assistant_tag": "gpt", "observation_tag": "observation",
                "function_tag": "function_call", "system_tag": "system"}
TOOL_RESPONSE_JOIN = "\n</tool_response>\n<tool_response>\n"
THINK = re.compile(r"<think>.*?</think>", re.DOTALL)


@dataclass
class Loaded:
    """One dataset of the folder after conversion: kept rows and skipped rows with reasons."""

    name: str
    rows: list[dict[str, Any]] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)


def _roles(tags: dict[str, str]) -> dict[str, str]:
    return {tags["user_tag"]: USER, tags["assistant_tag"]: ASSISTANT,
            tags["observation_tag"]: OBSERVATION, tags["function_tag"]: FUNCTION,
            tags.get("system_tag"): SYSTEM}


def _alternation_problem(turns: list[dict[str, str]]) -> str | None:
    for i, turn in enumerate(turns):
        allowed = (USER, OBSERVATION) if i % 2 == 0 else (ASSISTANT, FUNCTION)
        if turn["role"] not in allowed:
            return "Invalid role tag"
    return "Invalid message count" if len(turns) % 2 else None


def _split_system(messages: list[dict[str, Any]], tags: dict[str, str], fallback: str
                  ) -> tuple[str, list[dict[str, Any]]]:
    if tags.get("system_tag") and messages and messages[0][tags["role_tag"]] == tags["system_tag"]:
        return messages[0][tags["content_tag"]], messages[1:]
    return fallback, messages


def convert_sharegpt(example: dict[str, Any], columns: dict[str, str], tags: dict[str, str]
                     ) -> tuple[dict[str, Any] | None, str | None]:
    roles = _roles(tags)
    system = example.get(columns["system"], "") if columns.get("system") else ""
    system, messages = _split_system(example[columns["messages"]], tags, system)
    turns = []
    for message in messages:
        role = message[tags["role_tag"]]
        if role not in roles or roles[role] == SYSTEM:
            return None, "Invalid role tag"
        turns.append({"role": roles[role], "content": message[tags["content_tag"]]})
    problem = _alternation_problem(turns)
    tools = example.get(columns["tools"], "") if columns.get("tools") else ""
    return (None, problem) if problem else ({"turns": turns, "system": system, "tools": tools}, None)


def convert_openai(example: dict[str, Any], columns: dict[str, str], tags: dict[str, str]
                   ) -> tuple[dict[str, Any] | None, str | None]:
    roles = _roles(tags)
    system = example.get(columns["system"], "") if columns.get("system") else ""
    system, messages = _split_system(example[columns["messages"]], tags, system)
    turns: list[dict[str, str]] = []
    pending: list[str] = []
    for message in messages:
        role, content = message[tags["role_tag"]], message[tags["content_tag"]]
        if role in (tags["assistant_tag"], tags["function_tag"]) and message.get("tool_calls"):
            content = json.dumps([call["function"] for call in message["tool_calls"]],
                                 ensure_ascii=False)
            role = tags["function_tag"]
        if role == tags["observation_tag"]:
            pending.append(content)
            continue
        if pending:
            turns.append({"role": OBSERVATION, "content": TOOL_RESPONSE_JOIN.join(pending)})
            pending = []
        turns.append({"role": roles[role], "content": content})  # KeyError, as in LLaMA-Factory
    problem = _alternation_problem(turns)
    tools = example.get(columns["tools"], "") if columns.get("tools") else ""
    if isinstance(tools, (list, dict)):
        tools = json.dumps(tools, ensure_ascii=False)
    return (None, problem) if problem else ({"turns": turns, "system": system, "tools": tools}, None)


CONVERTERS = {"sharegpt": convert_sharegpt, "openai": convert_openai}


def function_calls(content: str) -> list[dict[str, Any]]:
    """The calls of a function turn as the function formatter parses them (ValueError if not)."""
    calls = json.loads(THINK.sub("", content, count=1))
    calls = calls if isinstance(calls, list) else [calls]
    for call in calls:
        if not isinstance(call, dict) or "name" not in call or "arguments" not in call:
            raise ValueError(f"not a call: {call!r}")
    return calls


def load_folder(folder: Path, cache_dir: Path) -> dict[str, Loaded]:
    """Every dataset of ``folder/dataset_info.json``, loaded and converted."""
    info = json.loads((folder / "dataset_info.json").read_text("utf-8"))
    out = {}
    for name, attr in info.items():
        tags = {**DEFAULT_TAGS, **attr.get("tags", {})}
        columns = {"messages": "conversations", **attr.get("columns", {})}
        rows = datasets.load_dataset("json", data_files=str(folder / attr["file_name"]),
                                     split="train", cache_dir=str(cache_dir))
        loaded = Loaded(name)
        for example in rows:
            converted, problem = CONVERTERS[attr.get("formatting", "alpaca")](example, columns, tags)
            if problem:
                loaded.skipped.append(problem)
                continue
            for turn in converted["turns"]:
                if turn["role"] == FUNCTION:
                    function_calls(turn["content"])
            loaded.rows.append(converted)
        out[name] = loaded
    return out
