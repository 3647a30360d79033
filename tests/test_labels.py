"""Labelled rewrites as line patches: the original's kept lines are referred to, never copied."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from argalign.core.errors import ConfigError
from argalign.core.schema import split_source
from argalign.core.thinking import split_thinking
from argalign.scoring.labels import apply_patch, labelled_pairs, make_patch


def _rewritten(row: dict) -> dict:
    new = copy.deepcopy(row)
    user = next(m for m in new["messages"] if m["role"] == "user")
    _, source, _ = split_source(user["content"])
    user["content"] = f"Reconstruct the argument, then answer the question.\n\n{source}"
    message = next(m for m in new["messages"] if m.get("thinking"))
    message["thinking"] = split_thinking(message["thinking"]).join(
        preamble="I reconstruct first: the question turns on it.", closing="So: no.")
    return new


def test_a_patch_rebuilds_the_rewrite_and_holds_only_new_lines(real_rows):
    for row in real_rows:
        aligned = _rewritten(row)
        patch = make_patch(row, aligned)
        assert apply_patch(row, patch) == aligned
        stored = json.dumps(patch)
        _, source, _ = split_source(next(m for m in row["messages"]
                                         if m["role"] == "user")["content"])
        middle = split_thinking(next(m["thinking"] for m in row["messages"]
                                     if m.get("thinking"))).middle
        # The text and the kept middle are referred to, not copied.
        kept = [line for line in (source + "\n" + middle).split("\n") if len(line) > 30]
        assert kept and not any(json.dumps(line)[1:-1] in stored for line in kept)


def test_labelled_pairs_are_oracle_lines_and_missing_originals_are_named(real_rows, tmp_path):
    row = real_rows[0]
    lines = [{"id": "r0-A", "origin": "real", "original_id": "0", "mode": "A",
              "patch": make_patch(row, _rewritten(row)), "label": "better", "why": "asks"},
             {"id": "s9-B", "origin": "sample", "original_id": "nowhere", "mode": "B",
              "patch": [], "label": "same", "why": "-"}]
    path = tmp_path / "labels.jsonl"
    path.write_text("".join(json.dumps(x) + "\n" for x in lines), "utf-8")
    pairs, missing = labelled_pairs(path, {("real", "0"): row})
    assert missing == ["s9-B"]
    assert pairs[0]["better"] == "a" and pairs[0]["b"] == row
    assert pairs[0]["a"] == _rewritten(row)
    path.write_text(json.dumps({**lines[0], "label": "fine"}) + "\n", "utf-8")
    with pytest.raises(ConfigError, match="labels.jsonl:1: label"):
        labelled_pairs(path, {("real", "0"): row})


def test_the_bundled_labelled_rewrites_apply_to_their_originals(real_data_path):
    import importlib.resources

    from support import read_rows

    sample = Path(str(importlib.resources.files("argalign") / "data" / "sample"))
    path = Path(str(importlib.resources.files("argalign") / "data" / "oracle" / "rewrites.jsonl"))
    originals = {("real", str(r["example_id"])): r for r in read_rows(real_data_path)}
    originals |= {("sample", r["source_id"]): r for file in sorted(sample.glob("*/*.jsonl"))
                  for r in read_rows(file)}
    pairs, missing = labelled_pairs(path, originals)
    assert pairs and not missing
    for pair in pairs:
        assert pair["a"] != pair["b"] and pair["why"]
        assert len(pair["a"]["messages"]) == len(pair["b"]["messages"])


def test_moved_instructions_and_a_kept_opening_are_referred_to_not_stored(real_rows):
    # Mode A puts its sentence before the request's own lines, which move; Mode B's and A's
    # thinking gets new first sentences before the kept opening, on the same line.
    for row in real_rows:
        aligned = copy.deepcopy(row)
        user = next(m for m in aligned["messages"] if m["role"] == "user")
        lines = user["content"].split("\n")
        user["content"] = "\n".join(["Please map the argument before anything else."]
                                    + lines[::-1])
        message = next(m for m in aligned["messages"] if m.get("thinking"))
        message["thinking"] = "Whether it holds turns on the map. " + message["thinking"]
        patch = make_patch(row, aligned)
        assert apply_patch(row, patch) == aligned
        stored = json.dumps(patch)
        assert "Please map the argument" in stored and "turns on the map" in stored
        first = next(m for m in row["messages"] if m.get("thinking"))["thinking"].split("\n")[0]
        kept = [line for line in lines + [first] if len(line) > 30]
        assert kept and not any(json.dumps(line)[1:-1] in stored for line in kept)
