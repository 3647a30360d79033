"""``argalign export``: cleaned rows as training files for LLaMA-Factory (ShareGPT) or OpenAI.

Input: a cleaned file (``<data>/cleaned/<config>/<split>.jsonl``, envelopes with a ``row``, or
plain rows with ``messages``) or a cleaned folder (every ``<config>/<split>.jsonl`` in it;
``*.rejects.jsonl`` skipped). Output in ``out``: one JSONL file per input file, at the same
relative place (``<config>/<split>.jsonl``; none for a file whose every row is rejected, and no
``dataset_info.json`` when no row is exported at all); ``rejects.jsonl`` with every row that could not be
converted and why; a ``dataset_info.json`` naming each file for LLaMA-Factory (``sharegpt`` or
``openai`` formatting, with tags that load tool rows); and, in the summary, the token length of
the longest row and the ``cutoff_len`` it needs (:mod:`argalign.core.tokens`).

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
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from argalign.core.datadir import REJECTS_SUFFIX, DataDir, Subset
from argalign.core.errors import ConfigError, RowError
from argalign.core.jsonl import iter_jsonl, refuse_overwrite, write_json_atomic, write_jsonl_atomic
from argalign.core.records import Outcome, Reject
from argalign.core.results import StageResult
from argalign.core.schema import Example, parse_conversation

log = logging.getLogger(__name__)

THINK_OPEN, THINK_CLOSE = "<think>\n", "\n</think>\n\n"
TOOL_RESPONSE_SEP = "\n</tool_response>\n<tool_response>\n"
ODD_TAGS, EVEN_TAGS = ("human", "observation"), ("gpt", "function_call")
SHAREGPT_TAGS = {"role_tag": "from", "content_tag": "value", "user_tag": "human", "assistant_tag": "gpt",
                 "observation_tag": "observation", "function_tag": "function_call"}
# LLaMA-Factory's "openai" formatting: its README's tags lack the two tool roles, so a tool
# result ("tool") is an unknown role (the row is dropped, or the load fails with KeyError).
OPENAI_TAGS = {"role_tag": "role", "content_tag": "content", "user_tag": "user",
               "assistant_tag": "assistant", "system_tag": "system", "observation_tag": "tool",
               "function_tag": "function_call"}
DATASET_INFO = {
    "sharegpt": {"formatting": "sharegpt",
                 "columns": {"messages": "conversations", "system": "system", "tools": "tools"},
                 "tags": SHAREGPT_TAGS},
    "openai": {"formatting": "openai", "columns": {"messages": "messages", "tools": "tools"},
               "tags": OPENAI_TAGS},
}


# --- reading cleaned files -----------------------------------------------------------------

def cleaned_files(path: str | Path) -> list[tuple[Path, str]]:
    """``(file, relative output name)`` for a cleaned file or folder (a data folder works too)."""
    path = Path(path)
    if path.is_file():
        in_cleaned = path.parent.parent.name == "cleaned"  # keep <config>/<split>.jsonl
        return [(path, f"{path.parent.name}/{path.name}" if in_cleaned else path.name)]
    if not path.is_dir():
        raise ConfigError(f"--in {path}: no such file or folder")
    if DataDir(path).stage("cleaned").is_dir():
        path = DataDir(path).stage("cleaned")
    files = sorted(p for p in path.glob("*/*.jsonl")
                   if not p.name.endswith(REJECTS_SUFFIX) and not p.name.startswith("."))
    if not files:
        raise ConfigError(f"--in {path}: no <config>/<split>.jsonl files in it")
    return [(p, p.relative_to(path).as_posix()) for p in files]


def finished_clean(inputs: list[tuple[Path, str]]) -> list[tuple[Path, str]]:
    """The inputs a finished clean step vouches for, checked as publish checks them.

    Files in a ``cleaned`` folder need its ``summary.json`` (RunError when it is missing, or
    when a file holds another number of rows than it says were kept: the clean did not finish);
    a file it does not list, left by an earlier clean, is left out with a warning. Files
    elsewhere are plain rows and pass as they are.
    """
    kept: list[tuple[Path, str]] = []
    summaries: dict[Path, tuple[DataDir, dict[str, Any]]] = {}
    for path, name in inputs:
        if path.parent.parent.name != "cleaned":
            kept.append((path, name))
            continue
        root = path.parent.parent.parent
        if root not in summaries:
            data = DataDir(root)
            summary = data.finished("cleaned", "clean")
            data.listed("cleaned", summary)  # every file it lists is there
            summaries[root] = data, summary
        data, summary = summaries[root]
        subset = Subset(path.parent.name, path.name.removesuffix(".jsonl"))
        if subset.key not in summary["subsets"]:
            log.warning("%s is not in %s (an earlier clean left it): not exported", path,
                        data.marker("cleaned"))
            continue
        with path.open("rb") as fh:
            data.check_kept(subset, summary, sum(1 for line in fh if line.strip()))
        kept.append((path, name))
    if not kept:
        raise ConfigError("--in: no file of the last clean step to export")
    return kept


def iter_examples(path: Path) -> Iterator[tuple[str, Example | RowError]]:
    """Yield ``(where, example)`` per line; a line that is not a row yields its RowError."""
    for lineno, record in iter_jsonl(path):
        where = f"{path.name}:{lineno}"
        try:
            yield where, Example.from_record(record if isinstance(record, dict) else {}, where=where)
        except RowError as e:
            yield where, e


# --- ShareGPT --------------------------------------------------------------------------------

@dataclass
class _Turn:
    tag: str
    think: list[str] = field(default_factory=list)
    text: list[str] = field(default_factory=list)
    calls: list[dict[str, Any]] = field(default_factory=list)


def _calls(row_id: str, index: int, tool_calls: str | None) -> list[dict[str, Any]]:
    """``[{"name", "arguments"}]`` from a message's tool_calls JSON (arguments as an object)."""
    out = []
    for call in json.loads(tool_calls) if tool_calls else []:
        fn = call.get("function", call) if isinstance(call, dict) else None
        if not isinstance(fn, dict) or not isinstance(fn.get("name"), str):
            raise RowError(row_id, "BAD_TOOL_CALL", "a tool call has no function name", index)
        arguments = fn.get("arguments", {})
        if isinstance(arguments, str):
            try:
                arguments = json.loads(arguments)
            except json.JSONDecodeError as e:
                raise RowError(row_id, "BAD_TOOL_CALL", "tool call arguments are not JSON", index) from e
        out.append({"id": call.get("id"), "name": fn["name"], "arguments": arguments})
    return out


def _functions(tools: str | None) -> list[dict[str, Any]]:
    """Function definitions from the system message's tools JSON, wrappers removed."""
    return [t["function"] if isinstance(t, dict) and t.get("type") == "function" and "function" in t
            else t for t in (json.loads(tools) if tools else [])]


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
            functions = _functions(m.tools)
            tools = json.dumps(functions, ensure_ascii=False) if functions else ""
        elif m.role == "user":
            _push(turns, _Turn("human", text=[m.content or ""]))
        elif m.role == "tool":
            _push(turns, _Turn("observation", text=[m.content or ""]))
        else:
            think = [m.thinking] if thinking and m.thinking else []
            calls = _calls(row_id, i, m.tool_calls)
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


def dataset_info(files: dict[str, str], formatting: str = "sharegpt") -> dict[str, Any]:
    """LLaMA-Factory's ``dataset_info.json`` entries: dataset name -> relative file name."""
    entry = DATASET_INFO[formatting]
    return {name: {"file_name": file_name, **entry} for name, file_name in files.items()}


def sharegpt_texts(converted: dict[str, Any]) -> list[str]:
    """What a trainer tokenizes of a ShareGPT row: system prompt, tools, each turn."""
    return [converted["system"], converted["tools"],
            *(turn["value"] for turn in converted["conversations"])]


# --- OpenAI ----------------------------------------------------------------------------------

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
            calls = _calls(row_id, i, m.tool_calls)
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
            tools = [{"type": "function", "function": f} for f in _functions(m.tools)]
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


# --- the command -------------------------------------------------------------------------

def dataset_info_writer(formatting: str) -> Callable[[Path, dict[str, int]], dict[str, str]]:
    """The side file of a LLaMA-Factory format: ``dataset_info.json`` naming every written file
    (none when no file was written: an earlier export's is removed, it would name files that
    are not there)."""

    def write(out: Path, written: dict[str, int]) -> dict[str, str]:
        if not written:
            (out / "dataset_info.json").unlink(missing_ok=True)
            return {}
        names = {"argalign-" + name.removesuffix(".jsonl").replace("/", "-"): name for name in written}
        write_json_atomic(out / "dataset_info.json", dataset_info(names, formatting))
        return {"dataset_info": str(out / "dataset_info.json")}

    return write


@dataclass(frozen=True)
class Format:
    """An export format: a row converter, the texts a trainer tokenizes of a converted row, and
    what it writes beside the files (if anything)."""

    convert: Callable[..., dict[str, Any]]
    texts: Callable[[dict[str, Any]], list[str]]
    side_files: Callable[[Path, dict[str, int]], dict[str, str]] | None = None


# A new export format is one converter and one line here.
CONVERTERS: dict[str, Format] = {
    "sharegpt": Format(to_sharegpt, sharegpt_texts, dataset_info_writer("sharegpt")),
    "openai": Format(to_openai, openai_texts, dataset_info_writer("openai")),
}
FORMATS = tuple(CONVERTERS)


@dataclass(frozen=True)
class ExportedFile:
    """One input file: where it was read and written (None: every row rejected), and counts."""

    source: str
    target: str | None
    rows: int
    rejected: int

    def as_dict(self) -> dict[str, Any]:
        return {"in": self.source, "out": self.target, "rows": self.rows,
                Outcome.REJECTED.value: self.rejected}


@dataclass(frozen=True)
class ExportSummary(StageResult):
    """What ``export`` wrote: the files, rows and rejects, the longest row's tokens
    (:meth:`argalign.core.tokens.Lengths.as_dict`), the rejects file when there is one, and the
    format's side files by name (``dataset_info``)."""

    format: str
    thinking: str
    out: str
    files: list[ExportedFile]
    tokens: dict[str, Any]
    rejects: str | None = None
    side_files: dict[str, str] = field(default_factory=dict)

    @property
    def rows(self) -> int:
        return sum(f.rows for f in self.files)

    @property
    def rejected(self) -> int:
        return sum(f.rejected for f in self.files)

    def as_dict(self) -> dict[str, Any]:
        return {"format": self.format, "thinking": self.thinking, "out": self.out,
                "files": [f.as_dict() for f in self.files], "rows": self.rows,
                Outcome.REJECTED.value: self.rejected, "tokens": self.tokens,
                **({"rejects": self.rejects} if self.rejects is not None else {}),
                **self.side_files}


def export(inp: str | Path, out_dir: str | Path, fmt: str, *, keep_thinking: bool = True,
           tokenizer: str | Path | None = None) -> ExportSummary:
    """Convert every row of the cleaned input into ``out_dir``; returns a summary (files, rows,
    rejects, and the token length of the longest row with the ``cutoff_len`` it needs, see
    :mod:`argalign.core.tokens`). ``keep_thinking=False`` leaves the thinking out of every row."""
    from argalign.core.tokens import Lengths, load_tokenizer

    if fmt not in CONVERTERS:
        raise ConfigError(f"--format {fmt!r}: expected one of {', '.join(FORMATS)}")
    spec, out = CONVERTERS[fmt], Path(out_dir)
    lengths = Lengths(load_tokenizer(tokenizer))
    inputs = cleaned_files(inp)
    refuse_overwrite([*(out / name for _, name in inputs), out / "rejects.jsonl",
                      out / "dataset_info.json"], [path for path, _ in inputs], "--out-dir")
    inputs = finished_clean(inputs)
    rejects: list[dict[str, Any]] = []
    files: list[ExportedFile] = []
    written: dict[str, int] = {}
    for path, name in inputs:
        before = len(rejects)

        def rows(path: Path = path, name: str = name) -> Iterator[dict[str, Any]]:
            for where, example in iter_examples(path):
                try:
                    if isinstance(example, RowError):
                        raise example
                    converted = spec.convert(example.row, example.id, thinking=keep_thinking)
                    lengths.add(f"{name}:{where.rsplit(':', 1)[-1]}", example.id,
                                spec.texts(converted))
                    yield converted
                except (RowError, json.JSONDecodeError) as e:
                    error = e if isinstance(e, RowError) else RowError(where, "FIELD_NOT_JSON", str(e))
                    line = f"{name}:{where.rsplit(':', 1)[-1]}"
                    rejects.append(Reject.from_error(error, stage="export", where=line).to_dict())

        count = write_jsonl_atomic(out / name, rows(), empty=False)
        if count:
            written[name] = count
        files.append(ExportedFile(source=str(path), target=str(out / name) if count else None,
                                  rows=count, rejected=len(rejects) - before))
        log.info("%s: %d rows written, %d rejected", name, count, len(rejects) - before)
    log.info("%s", lengths.message())
    rejects_path = None
    if rejects:
        rejects_path = str(out / "rejects.jsonl")
        write_jsonl_atomic(out / "rejects.jsonl", rejects)
        log.warning("%d rows could not be converted; see %s", len(rejects), rejects_path)
    side_files = spec.side_files(out, written) if spec.side_files is not None else {}
    return ExportSummary(format=fmt, thinking="keep" if keep_thinking else "drop", out=str(out),
                         files=files, tokens=lengths.as_dict(), rejects=rejects_path,
                         side_files=side_files)
