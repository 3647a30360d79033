"""The source text of a user message: found without the intro line too, protected apart from it."""

from __future__ import annotations

import copy

import pytest

from argalign.core.source_text import find_source, text_block, unclear
from argalign.scoring.gate import gate
from argalign.scoring.invariants import check_row

TEXT = ("Every member of the Riverside club who has lived near the harbour supports Harbour "
        "Athletic. Jonas has lived near the harbour all his life.\n\n"
        "So, some say, Jonas must support Harbour Athletic. But Jonas is a member of the Rovers "
        "supporters' club, and no member of that club supports Harbour Athletic.")
# The issue's example: an instruction, a blank line, then the text (no intro line).
ISSUE_MESSAGE = f"Instruction: What do you make of this?\n\n{TEXT}"


def _row(user: str) -> dict:
    message = {"content": None, "name": None, "role": None, "thinking": None, "tool_calls": None,
               "tools": None}
    return {"source_id": "s", "messages": [
        {**message, "role": "system", "content": "You analyse arguments.", "tools": "[]"},
        {**message, "role": "user", "content": user},
        {**message, "role": "assistant", "thinking": "Step 1: read the text.", "content": "It is invalid."}]}


def _with_user(row: dict, content: str) -> dict:
    row = copy.deepcopy(row)
    row["messages"][1]["content"] = content
    row["messages"][2]["thinking"] = "A new opening. Step 1: read the text."
    return row


@pytest.mark.parametrize("message, before, after", [
    (ISSUE_MESSAGE, "Instruction: What do you make of this?\n\n", ""),
    (f"{TEXT}\n\nIdentify the premises.\n\nPlease use Argdown.", "",
     "\n\nIdentify the premises.\n\nPlease use Argdown."),
    (f"Task: reconstruct the argument.\n\n{TEXT}\n\nWhich premise is implicit?",
     "Task: reconstruct the argument.\n\n", "\n\nWhich premise is implicit?"),
])
def test_the_text_is_found_without_an_intro_line(message, before, after):
    span = find_source(message)
    assert span is not None
    assert (span.before, span.intro, span.source, span.after) == (before, "", TEXT, after)
    assert before + span.source + after == message


def test_an_intro_line_is_found_first():
    span = find_source(f"Reconstruct it.\n\nHere is the text:\n{TEXT}")
    assert (span.before, span.intro, span.source) == ("Reconstruct it.\n\n", "Here is the text:\n", TEXT)


@pytest.mark.parametrize("message", [
    "Quick check: is this argument valid?",
    "Now formalize premise (4).",
    TEXT,  # a text and no instruction at all: nothing tells what is what
    f"What do you make of this? {TEXT.replace(chr(10) * 2, ' ')}",  # no paragraph break
])
def test_no_source_text_where_none_can_be_told_apart(message):
    assert find_source(message) is None


def test_a_long_message_without_a_source_text_is_unclear():
    long_text = TEXT + "\n\n" + TEXT
    assert unclear(long_text) and unclear(f"What do you make of this? {long_text}")
    assert not unclear("Quick check: is this argument valid?")
    assert not unclear(f"Instruction: What do you make of this?\n\n{long_text}")


def test_the_text_block_leaves_out_instruction_lines_at_its_ends_only():
    message = ("Instruction: analyse the text.\nTry to reconstruct it from the following text:\n"
               f"{TEXT}\n\nNow consider:\n\n{TEXT}\n\nGenerate SMTLIB code.\n\nYour turn.")
    assert text_block(message) == f"{TEXT}\n\nNow consider:\n\n{TEXT}"
    assert text_block("Quick check: is this argument valid?") is None


@pytest.mark.parametrize("mode", ["A", "B"])
def test_one_word_of_the_issue_text_changed_is_a_violation_in_both_modes(mode):
    original = _row(ISSUE_MESSAGE)
    edited = _with_user(original, ISSUE_MESSAGE.replace("all his life", "all her life"))
    codes = {v.code for v in check_row(original, edited, mode)}
    assert "SOURCE_TEXT_NOT_VERBATIM" in codes
    assert gate(original, edited, mode).outcome == "rejected"
    # rewriting only the instruction is Mode A's right
    rewritten = _with_user(original, f"Reconstruct the argument in Argdown.\n\n{TEXT}")
    assert check_row(original, rewritten, "A") == []


def test_text_outside_the_source_text_found_is_protected_too():
    """The intro line finds only the second text; the long paragraph before it is text too."""
    first = "Jonas wrote to the club last week, and what he wrote matters. " * 11
    message = f"{first.strip()}\n\nConsider the following text:\n{TEXT}"
    span = find_source(message)
    assert span.source == TEXT
    original = _row(message)
    dropped = _with_user(original, f"Reconstruct the argument.\n\nConsider the following text:\n{TEXT}")
    (violation,) = check_row(original, dropped, "A")
    assert violation.code == "SOURCE_TEXT_NOT_VERBATIM" and "from 'Jonas wrote" in violation.detail


def test_lines_before_an_intro_line_are_instructions_whatever_their_wording():
    original = _row(f"Case 12. Our club debated this one.\nHere is the text:\n{TEXT}")
    rewritten = _with_user(original, f"Reconstruct the argument.\n\nHere is the text:\n{TEXT}")
    assert check_row(original, rewritten, "A") == []
