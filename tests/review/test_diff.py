"""review.diff: word-level diffs that rebuild both texts, kept parts folded with their length."""

from __future__ import annotations

import copy

import pytest

from argalign.stages.report.diff import PREVIEW_CHARS, conversation_parts, kept, word_diff


def _side(ops: list[list[str]], which: str) -> str:
    keep = {"=", "-"} if which == "before" else {"=", "+"}
    return "".join(text for op, text in ops if op in keep)


@pytest.mark.parametrize(("before", "after"), [
    ("Reconstruct the argument.", "Reconstruct the argument in Argdown, with a title."),
    ("Do the usual analysis.", "Formalize every premise in LaTeX and give the keys."),
    ("same text", "same text"),
    ("", "now something"),
    ("line one\n\nline two", "line one\nline 2\n\n"),
    ("Ünïcödé — quotes “here”", "Ünïcödé – quotes \"here\""),
])
def test_word_diff_rebuilds_both_sides(before, after):
    ops = word_diff(before, after)
    assert _side(ops, "before") == before and _side(ops, "after") == after
    assert all(op in "=-+" and text for op, text in ops)
    assert all(a[0] != b[0] for a, b in zip(ops, ops[1:]))  # runs of one kind are merged


def test_word_diff_marks_whole_words():
    ops = word_diff("Map the argument informally.", "Map the argument in Argdown.")
    assert ["-", "informally"] in ops and ["+", "in Argdown"] in ops


def test_kept_part_shows_its_length_and_both_ends():
    short = kept("source text", "abc")
    assert short == {"k": "kept", "label": "source text", "n": 3, "head": "abc"}
    text = "x" * 1000 + "END"
    long = kept("thinking: middle", text)
    assert long["n"] == 1003 and len(long["head"]) == PREVIEW_CHARS
    assert long["tail"].endswith("END") and len(long["tail"]) == PREVIEW_CHARS


def _rewrite(row: dict) -> dict:
    """Mode A style: a new request around the same source text, a new opening and closing."""
    aligned = copy.deepcopy(row)
    user = next(m for m in aligned["messages"] if m["role"] == "user")
    user["content"] = user["content"].replace(user["content"].split("\n", 1)[0],
                                              "Reconstruct the argument in Argdown with a title.", 1)
    assistant = next(m for m in aligned["messages"] if m["role"] == "assistant" and m["thinking"])
    assistant["thinking"] = "I will reconstruct it.\n" + assistant["thinking"] + "\n\nDone, in Argdown."
    return aligned


def test_conversation_parts_fold_what_stayed_and_diff_what_changed(sample_rows):
    row = next(r for r in sample_rows if r["messages"][1]["content"].split("\n", 1)[0].strip())
    aligned = _rewrite(row)
    messages = conversation_parts(row, aligned)
    assert [m["role"] for m in messages] == [m["role"] for m in row["messages"]]
    system, user = messages[0], messages[1]
    assert [p["k"] for p in system["parts"]] == ["kept"]
    kinds = {p["label"]: p for p in user["parts"]}
    assert kinds["request"]["k"] == "diff"
    assert kinds["source text"]["k"] == "kept" and kinds["source text"]["n"] > 100
    assistant = next(m for m in messages if m["role"] == "assistant")
    labels = [p["label"] for p in assistant["parts"]]
    assert labels[0] == "answer" and assistant["parts"][0]["k"] == "kept"
    assert "thinking: opening" in labels and "thinking: closing" in labels
    middle = next(p for p in assistant["parts"] if p["label"] == "thinking: middle")
    assert middle["k"] == "kept"
    opening = next(p for p in assistant["parts"] if p["label"] == "thinking: opening")
    assert ["+", "I will reconstruct it."] in [[op, t.strip()] for op, t in opening["ops"]]


def test_an_appended_clarification_keeps_the_source_folded(sample_rows):
    row = sample_rows[0]
    aligned = copy.deepcopy(row)
    aligned["messages"][1]["content"] += "\n\nGive the inference rules between the steps."
    user = conversation_parts(row, aligned)[1]
    source = next(p for p in user["parts"] if p["label"] == "source text")
    assert source["k"] == "kept"
    after = next(p for p in user["parts"] if p["label"] == "request (after the text)")
    assert ["+", "Give the inference rules between the steps."] in \
        [[op, t.strip()] for op, t in after["ops"]]


def test_a_row_without_an_aligned_version_shows_its_text(sample_rows):
    messages = conversation_parts(sample_rows[0], None)
    user = messages[1]
    assert user["parts"] == [{"k": "text", "label": "content",
                              "text": sample_rows[0]["messages"][1]["content"]}]
