"""Cutting a thinking into opening, verbatim middle and closing; shortening long texts."""

from __future__ import annotations

import importlib.resources
import json
import re
from pathlib import Path

import pytest

from argalign.core.thinking import MAX_OPENING_CHARS, ThinkingParts, shorten, split_thinking

SAMPLE = Path(str(importlib.resources.files("argalign") / "data" / "sample"))
FENCE = re.compile(r"^```[^\n]*\n.*?^```", re.M | re.S)
HEADING_LINE = re.compile(r"^#{1,6} .*$", re.M)


def sample_thinkings() -> list[str]:
    return [m["thinking"] for path in sorted(SAMPLE.glob("*/*.jsonl"))
            for line in path.read_text(encoding="utf-8").splitlines()
            for m in json.loads(line)["messages"] if m["thinking"]]


def real_thinkings(path: Path) -> list[str]:
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    return [m["thinking"] for row in rows for m in row["messages"] if m["thinking"]]


def assert_middle_kept(thinking: str) -> None:
    parts = split_thinking(thinking)
    assert parts.middle in thinking
    assert parts.join() == thinking.strip()
    # Every fenced block and every step heading is in the middle, so no rewrite can touch it.
    for block in FENCE.findall(thinking):
        assert block in parts.middle
    for heading in HEADING_LINE.findall(thinking):
        if not any(heading in block for block in FENCE.findall(thinking)):
            assert heading in parts.middle and heading not in parts.closing
    new = parts.join("  A new opening.\n", "\nA new closing.  ")
    assert new.startswith("A new opening.\n\n")
    assert new.endswith("\n\nA new closing.") or not parts.middle and new.endswith("A new closing.")
    assert parts.middle in new
    assert len(new) == len("A new opening.") + len(parts.middle) + len("A new closing.") + (
        4 if parts.middle else 2)


def test_sample_thinkings_keep_their_middle():
    thinkings = sample_thinkings()
    assert len(thinkings) > 100
    for thinking in thinkings:
        assert_middle_kept(thinking)


def test_real_thinkings_keep_their_middle(real_data_path):
    thinkings = real_thinkings(real_data_path)
    assert len(thinkings) == 7
    for thinking in thinkings:
        assert_middle_kept(thinking)


def test_a_long_thinking_costs_no_more_than_a_short_one(real_data_path):
    first = json.loads(real_data_path.read_text(encoding="utf-8").splitlines()[0])
    thinking = first["messages"][2]["thinking"]
    assert len(thinking) > 40_000
    parts = split_thinking(thinking)
    assert len(parts.opening) <= MAX_OPENING_CHARS
    assert len(parts.opening) + len(parts.closing) < len(thinking) / 20
    assert len(parts.outline()) < 1300  # 1200 characters and the omission marker


def test_steps_after_the_last_block_stay_in_the_middle():
    thinking = ("I plan two steps.\n\n## Step 1: Reconstruct\n\n```argdown\n(1) A\n-----\n(2) B\n```"
                "\n\n## Step 2: Assess the premises\n\nPremise (1) is false.\n\n"
                "So the argument fails.")
    parts = split_thinking(thinking)
    assert parts.opening == "I plan two steps."
    assert parts.middle.endswith("## Step 2: Assess the premises\n\nPremise (1) is false.")
    assert parts.closing == "So the argument fails."


@pytest.mark.parametrize("last", ["(1) $p \\rightarrow q$", "- a list item", "<span>annotated</span>",
                                  "## Step 3: Answer"])
def test_a_last_paragraph_that_is_not_prose_is_no_closing(last):
    thinking = f"Plan.\n\n```argdown\n(1) A\n```\n\n## Step 2: Formalize\n\n{last}"
    parts = split_thinking(thinking)
    assert parts.closing == ""
    assert parts.middle.endswith(last)


def test_blocks_without_headings():
    thinking = "First I plan.\n\n```argdown\n(1) A\n```\n\nSome words.\n\n```smtlib\n(assert a)\n```\n\nDone."
    parts = split_thinking(thinking)
    assert parts == ThinkingParts("First I plan.", thinking[15:-7], "Done.")


@pytest.mark.parametrize(
    ("thinking", "expected"),
    [
        ("One paragraph only.", ("One paragraph only.", "", "")),
        ("  Padded.\n\n", ("Padded.", "", "")),
        ("Opening.\n\nClosing.", ("Opening.", "", "Closing.")),
        ("Opening.\n\nMiddle one.\n\nMiddle two.\n\nClosing.",
         ("Opening.", "Middle one.\n\nMiddle two.", "Closing.")),
    ],
)
def test_no_structure_is_cut_by_paragraphs(thinking, expected):
    assert split_thinking(thinking) == ThinkingParts(*expected)


def test_a_long_prose_opening_is_capped():
    paragraphs = [f"Paragraph {i} " + "x" * 490 for i in range(8)]
    parts = split_thinking("\n\n".join(paragraphs))
    assert parts.opening == paragraphs[0]
    assert parts.closing == paragraphs[-1]
    thinking = "\n\n".join(paragraphs) + "\n\n## Step 1\n\nWork.\n\nDone."
    parts = split_thinking(thinking)
    assert MAX_OPENING_CHARS <= len(parts.opening) < MAX_OPENING_CHARS + 500
    assert parts.middle.startswith(paragraphs[len(parts.opening.split("\n\n"))])
    assert parts.join() == thinking


@pytest.mark.parametrize(
    ("thinking", "expected"),
    [
        ("Plan.\n\n## Step 1\n\nDo x.\n\n## Step 2\n\nDo y.\n\nSo z.",
         ("Plan.", "## Step 1\n\nDo x.\n\n## Step 2\n\nDo y.", "So z.")),
        ("Plan.\n\n## Step 1\n\nDo x.\n\n## Step 2", ("Plan.", "## Step 1\n\nDo x.\n\n## Step 2", "")),
        ("## Step 1\nDo x.\n\nDone.", ("", "## Step 1\nDo x.", "Done.")),
        ("## Step 1\nDo x.", ("", "## Step 1\nDo x.", "")),
    ],
)
def test_headings_only(thinking, expected):
    parts = split_thinking(thinking)
    assert parts == ThinkingParts(*expected)
    assert parts.join() == thinking


def test_join_and_outline():
    parts = split_thinking("Plan.\n\n## Step 1\n\n```argdown\n(1) A\n```\n\nDone.")
    assert parts.join(closing="") == "Plan.\n\n## Step 1\n\n```argdown\n(1) A\n```"
    assert parts.join(opening="") == "## Step 1\n\n```argdown\n(1) A\n```\n\nDone."
    assert parts.join(opening="New.") == "New.\n\n## Step 1\n\n```argdown\n(1) A\n```\n\nDone."
    assert parts.outline() == "## Step 1\n```argdown"
    assert split_thinking("Opening.\n\nMiddle prose.\n\nClosing.").outline() == "Middle prose."


@pytest.mark.parametrize("text", [None, ""])
def test_shorten_nothing(text):
    assert shorten(text, 10) == ""


def test_shorten_keeps_short_texts():
    assert shorten("exactly ten", 11) == "exactly ten"


@pytest.mark.parametrize("limit", [10, 100, 1000])
def test_shorten_keeps_head_and_tail(limit):
    text = "".join(chr(ord("a") + i % 26) for i in range(5000))
    short = shorten(text, limit)
    head, tail = int(limit * 0.7), limit - int(limit * 0.7)
    assert short == f"{text[:head]}\n[... {5000 - limit} characters omitted ...]\n{text[-tail:]}"
    assert len(short) < limit + 50
