"""What an export format is: :class:`Format` (a row converter, the texts a trainer tokenizes
of a converted row, a side-file writer), and what the built-in formats share: tool calls and
function definitions read from a row, and LLaMA-Factory's ``dataset_info.json``.

A new export format is one module (``export_<name>.py`` beside this one) that builds a
:class:`Format`, and one line in :data:`argalign.stages.export.CONVERTERS` (its import and its
entry). It imports this module, never the registry: the registry imports it.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from argalign.core.errors import RowError
from argalign.core.jsonl import write_json_atomic


@dataclass(frozen=True)
class Format:
    """An export format: a row converter, the texts a trainer tokenizes of a converted row, and
    what it writes beside the files (if anything).

    ``convert(row, row_id, *, thinking)`` returns the trainer's row, or raises
    :class:`~argalign.core.errors.RowError` for a row it cannot convert (the row goes to the
    rejects file); ``side_files(out, written)`` gets the rows written per relative file name and
    returns the side files it wrote, by name (they join the summary).
    """

    convert: Callable[..., dict[str, Any]]
    texts: Callable[[dict[str, Any]], list[str]]
    side_files: Callable[[Path, dict[str, int]], dict[str, str]] | None = None


def tool_calls(row_id: str, index: int, tool_calls: str | None) -> list[dict[str, Any]]:
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


def function_definitions(tools: str | None) -> list[dict[str, Any]]:
    """Function definitions from the system message's tools JSON, wrappers removed."""
    return [t["function"] if isinstance(t, dict) and t.get("type") == "function" and "function" in t
            else t for t in (json.loads(tools) if tools else [])]



def dataset_info(files: dict[str, str], entry: dict[str, Any]) -> dict[str, Any]:
    """LLaMA-Factory's ``dataset_info.json`` entries: dataset name -> relative file name, each
    with the format's ``entry`` (its ``formatting``, ``columns`` and ``tags``)."""
    return {name: {"file_name": file_name, **entry} for name, file_name in files.items()}


def dataset_info_writer(entry: dict[str, Any]) -> Callable[[Path, dict[str, int]], dict[str, str]]:
    """The side file of a LLaMA-Factory format: ``dataset_info.json`` naming every written file
    (none when no file was written: an earlier export's is removed, it would name files that
    are not there)."""

    def write(out: Path, written: dict[str, int]) -> dict[str, str]:
        if not written:
            (out / "dataset_info.json").unlink(missing_ok=True)
            return {}
        names = {"argalign-" + name.removesuffix(".jsonl").replace("/", "-"): name for name in written}
        write_json_atomic(out / "dataset_info.json", dataset_info(names, entry))
        return {"dataset_info": str(out / "dataset_info.json")}

    return write
