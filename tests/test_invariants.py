"""The hard invariants: one mutation of a real row per violation code, and what is allowed."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from argalign.core.jsonl import iter_jsonl, write_jsonl_atomic
from argalign.core.policies import DEFAULT_MAX_USER_CHANGE
from argalign.core.records import Outcome
from argalign.core.schema import Example, split_source
from argalign.scoring.gate import Verdict, gate
from argalign.scoring.invariants import (
    CODES,
    appended_clarification,
    check_row,
    is_unchanged,
)
from argalign.stages.validate import validate_files
from support import OWN_METHOD_SENTENCE

BOUND = DEFAULT_MAX_USER_CHANGE



# --- mutation helpers: each returns an edit that changes one field of a deep copy ----------

def _flip(text: str, at: int | None = None) -> str:
    """``text`` with one character replaced (in the middle unless ``at`` is given)."""
    at = len(text) // 2 if at is None else at
    return text[:at] + ("x" if text[at] != "x" else "y") + text[at + 1:]


def set_field(i: int, key: str, value: Any) -> Callable[[dict], dict]:
    def edit(row: dict) -> dict:
        old = row["messages"][i][key]
        row["messages"][i][key] = value(old) if callable(value) else value
        return row
    return edit


def drop_key(i: int, key: str) -> Callable[[dict], dict]:
    def edit(row: dict) -> dict:
        del row["messages"][i][key]
        return row
    return edit


def add_key(i: int, key: str, value: Any) -> Callable[[dict], dict]:
    def edit(row: dict) -> dict:
        row["messages"][i][key] = value
        return row
    return edit


def set_column(key: str, value: Any) -> Callable[[dict], dict]:
    def edit(row: dict) -> dict:
        row[key] = value(row.get(key)) if callable(value) else value
        return row
    return edit


def drop_column(key: str) -> Callable[[dict], dict]:
    def edit(row: dict) -> dict:
        del row[key]
        return row
    return edit


def drop_message(i: int) -> Callable[[dict], dict]:
    def edit(row: dict) -> dict:
        del row["messages"][i]
        return row
    return edit


def append_message(copy_of: int) -> Callable[[dict], dict]:
    def edit(row: dict) -> dict:
        row["messages"].append(dict(row["messages"][copy_of]))
        return row
    return edit


def flip_source(i: int = 1) -> Callable[[dict], dict]:
    """Change one character in the middle of the source text of user message ``i``."""
    def edit(row: dict) -> dict:
        content = row["messages"][i]["content"]
        before, source, _ = split_source(content)
        row["messages"][i]["content"] = _flip(content, len(before) + len(source) // 2)
        return row
    return edit


def clarification(n_chars: int) -> str:
    """One line of exactly ``n_chars`` characters, with no whitespace at either end."""
    text = ("Keep the answer short, and state each premise. " * 20)[:n_chars]
    return text[:-1] + "." if text.endswith(" ") else text


def append_user(n_chars: int, i: int = 1, separator: str = "\n\n") -> Callable[[dict], dict]:
    """Append a clarification of exactly ``n_chars`` characters to user message ``i`` (as Mode B)."""
    return set_field(i, "content", lambda c: c + separator + clarification(n_chars))


def cut_user_head(n_chars: int, i: int = 1) -> Callable[[dict], dict]:
    """Delete the first ``n_chars`` characters of the instruction before the source text."""
    return set_field(i, "content", lambda c: c[n_chars:])


def _rethink_copy(row: dict) -> dict:
    """A legitimate rewrite (thinking only): nothing wrong but the mode the row names."""
    row["messages"][2]["thinking"] = f"{OWN_METHOD_SENTENCE} {row['messages'][2]['thinking']}"
    return row


@dataclass(frozen=True)
class Mutation:
    name: str
    row: int
    edit: Callable[[dict], Any]
    index: int | None
    mode: str = "A"
    max_user_change: int = BOUND
    original_edit: Callable[[dict], dict] | None = None


# Real row 0: system, user, assistant(thinking), assistant(tool_calls), tool, assistant(both).
# Real rows 1-5: system, user, assistant(thinking + content).
MUTATIONS: dict[str, list[Mutation]] = {
    "MALFORMED": [
        Mutation("messages not a list", 1, set_column("messages", "system, user"), None),
        Mutation("a message not an object", 1,
                 lambda r: {**r, "messages": [*r["messages"][:2], "assistant: yes"]}, None),
        Mutation("row not an object", 1, lambda r: [r], None),
    ],
    "MESSAGE_COUNT": [
        Mutation("last message removed", 1, drop_message(2), None),
        Mutation("tool result removed at the end", 0, drop_message(5), None),
        Mutation("message added", 2, append_message(2), None),
    ],
    "KEY_ADDED": [
        Mutation("unknown key on assistant", 1, add_key(2, "weight", 1), 2),
        Mutation("unknown null key on system", 0, add_key(0, "x", None), 0),
    ],
    "KEY_REMOVED": [
        Mutation("name removed from user", 1, drop_key(1, "name"), 1),
        Mutation("tools removed from system", 3, drop_key(0, "tools"), 0),
    ],
    "ROLE_CHANGED": [
        Mutation("assistant became tool", 1, set_field(2, "role", "tool"), 2),
        Mutation("user became assistant", 4, set_field(1, "role", "assistant"), 1),
    ],
    "NAME_CHANGED": [
        Mutation("tool name one char", 0, set_field(4, "name", _flip), 4),
        Mutation("user name null to text", 1, set_field(1, "name", "alice"), 1),
    ],
    "TOOL_CALLS_CHANGED": [
        Mutation("tool_calls one char", 0, set_field(3, "tool_calls", _flip), 3),
        Mutation("tool_calls null to empty list", 1, set_field(2, "tool_calls", "[]"), 2),
        Mutation("tool_calls to null", 0, set_field(3, "tool_calls", None), 3),
    ],
    "TOOLS_CHANGED": [
        Mutation("tools one char", 0, set_field(0, "tools", _flip), 0),
        Mutation("empty tools to null", 2, set_field(0, "tools", None), 0),
        Mutation("tools reformatted", 5, set_field(0, "tools", "[ ]"), 0),
    ],
    "ASSISTANT_CONTENT_CHANGED": [
        Mutation("one byte", 1, set_field(2, "content", _flip), 2),
        Mutation("one byte of a 4-char answer", 5, set_field(2, "content", lambda c: c[:-1]), 2),
        Mutation("one byte of the final Argdown", 0, set_field(5, "content", _flip), 5),
        Mutation("null content to empty string", 0, set_field(2, "content", ""), 2),
        Mutation("content to null", 3, set_field(2, "content", None), 2),
        Mutation("trailing space", 4, set_field(2, "content", lambda c: c + " "), 2),
    ],
    "SYSTEM_CONTENT_CHANGED": [
        Mutation("one char", 2, set_field(0, "content", _flip), 0),
        Mutation("to null", 0, set_field(0, "content", None), 0),
    ],
    "TOOL_CONTENT_CHANGED": [
        Mutation("one char", 0, set_field(4, "content", _flip), 4),
    ],
    "THINKING_ADDED": [
        Mutation("null thinking to text", 0, set_field(3, "thinking", "Call the tool."), 3),
        Mutation("null thinking to empty string", 0, set_field(3, "thinking", ""), 3),
    ],
    "THINKING_REMOVED": [
        Mutation("thinking-only message", 0, set_field(2, "thinking", None), 2),
        Mutation("thinking with content", 1, set_field(2, "thinking", None), 2),
    ],
    "THINKING_ON_NON_ASSISTANT": [
        Mutation("user", 1, set_field(1, "thinking", "hmm"), 1),
        Mutation("system", 2, set_field(0, "thinking", "hmm"), 0),
        Mutation("tool", 0, set_field(4, "thinking", ""), 4),
    ],
    "USER_CONTENT_EMPTY": [
        Mutation("empty string", 1, set_field(1, "content", ""), 1),
        Mutation("whitespace", 2, set_field(1, "content", " \n\t"), 1),
        Mutation("null", 3, set_field(1, "content", None), 1),
        Mutation("not text", 3, set_field(1, "content", ["a list"]), 1),
        Mutation("empty in mode B", 4, set_field(1, "content", ""), 1, mode="B"),
    ],
    "USER_CHANGE_EXCEEDS_BOUND": [
        Mutation("appended past the bound", 3, append_user(BOUND + 1), 1, mode="B"),
        Mutation("bound of 0, one char added", 1, append_user(1), 1, mode="B", max_user_change=0),
    ],
    "USER_CONTENT_EDITED": [
        Mutation("instruction cut by one character", 3, cut_user_head(1), 1, mode="B"),
        Mutation("one character of the instruction", 2, set_field(1, "content", lambda c: _flip(c, 3)),
                 1, mode="B"),
        Mutation("edited and a clarification appended", 1,
                 lambda r: append_user(20)(set_field(1, "content", lambda c: "Now: " + c)(r)), 1, mode="B"),
        Mutation("a clarification put in front", 4, set_field(1, "content", lambda c: "Be brief.\n\n" + c),
                 1, mode="B"),
    ],
    "CLARIFICATION_MALFORMED": [
        Mutation("no blank line", 1, append_user(30, separator=" "), 1, mode="B"),
        Mutation("one newline", 2, append_user(30, separator="\n"), 1, mode="B"),
        Mutation("two lines", 3, set_field(1, "content", lambda c: c + "\n\nBe brief.\nUse Argdown."), 1,
                 mode="B"),
        Mutation("two clarifications", 4, lambda r: append_user(20)(append_user(20)(r)), 1, mode="B"),
        Mutation("trailing space", 5, set_field(1, "content", lambda c: c + "\n\nBe brief. "), 1, mode="B"),
        Mutation("a blank line only", 1, set_field(1, "content", lambda c: c + "\n\n"), 1, mode="B"),
    ],
    "SOURCE_TEXT_NOT_VERBATIM": [
        *(Mutation(f"mode A row {r}", r, flip_source(), 1) for r in range(6)),
    ],
    "UNKNOWN_MODE": [
        Mutation("a row claims mode C", 1, _rethink_copy, None, mode="C"),
        Mutation("mode null (as clean reads it)", 1, _rethink_copy, None, mode="None"),
    ],
    "OTHER_FIELD_CHANGED": [
        Mutation("row column one char", 1, set_column("example_id", lambda v: v + 1), None),
        Mutation("row column added", 1, set_column("x_new", "v"), None),
        Mutation("row column removed", 1, drop_column("example_id"), None),
        Mutation("unknown message key changed", 2, set_field(2, "x_w", 2), 2,
                 original_edit=add_key(2, "x_w", 1)),
        Mutation("null user content set", 1, set_field(1, "content", "Hi"), 1,
                 original_edit=set_field(1, "content", None)),
        Mutation("int column became float", 1, set_column("example_id", float), None),
    ],
}

# The id codes concern a whole file, so they are produced through validate_files.
FILE_MUTATIONS: dict[str, Callable[[list[dict]], list[dict]]] = {
    "ID_MISSING": lambda recs: recs[:2] + recs[3:],
    "ID_EXTRA": lambda recs: [*recs, {**recs[2], "id": "not-in-original"}],
    "ID_DUPLICATE": lambda recs: [*recs, recs[2]],
}
FILE_MUTATION_ID = {"ID_MISSING": "ex-2", "ID_EXTRA": "not-in-original", "ID_DUPLICATE": "ex-2"}


def test_every_code_has_a_mutation_case():
    covered = set(MUTATIONS) | set(FILE_MUTATIONS)
    assert covered == set(CODES), f"codes without a case: {sorted(set(CODES) - covered)}"


def _row_violations(rows: list[dict], case: Mutation) -> tuple[dict, Any, list]:
    original = copy.deepcopy(rows[case.row])
    if case.original_edit is not None:
        original = case.original_edit(original)
    aligned = case.edit(copy.deepcopy(original))
    frozen = copy.deepcopy(original)
    violations = check_row(original, aligned, case.mode, max_user_change=case.max_user_change)
    assert original == frozen, "check_row must not change the original"
    return original, aligned, violations


def _file_violations(rows: list[dict], tmp_path: Path, code: str) -> list[dict]:
    originals = [Example(f"ex-{i}", "cfg", "train", i, row).to_record() for i, row in enumerate(rows)]
    write_jsonl_atomic(tmp_path / "original.jsonl", originals)
    aligned = FILE_MUTATIONS[code](copy.deepcopy(originals))
    write_jsonl_atomic(tmp_path / "aligned.jsonl", aligned)
    summary = validate_files(tmp_path / "original.jsonl", tmp_path / "aligned.jsonl", "A")
    return summary.report


@pytest.mark.parametrize("code", sorted(CODES))
def test_each_code_is_produced_by_a_one_field_mutation(real_rows, tmp_path, code):
    if code in FILE_MUTATIONS:
        report = _file_violations(real_rows, tmp_path, code)
        flagged = [line for line in report if line["outcome"] == "rejected"]
        assert [(line["id"], line["codes"]) for line in flagged] == [
            (FILE_MUTATION_ID[code], [code])]
        return
    cases = MUTATIONS.get(code)
    assert cases, f"no mutation case for {code}"
    for case in cases:
        original, aligned, violations = _row_violations(real_rows, case)
        found = [(v.code, v.message_index) for v in violations]
        assert found == [(code, case.index)], f"{code} / {case.name}: {found}"
        verdict = gate(original, aligned, case.mode, max_user_change=case.max_user_change)
        assert (verdict.outcome, verdict.codes) == (Outcome.REJECTED, [code]), case.name


def test_a_null_aligned_row_is_malformed_for_check_row_and_failed_for_the_gate(real_rows):
    assert [v.code for v in check_row(real_rows[1], None, "A")] == ["MALFORMED"]
    assert gate(real_rows[1], None, "A") == Verdict(Outcome.FAILED)


# --- Mode B's policy: the original, then at most one clarification -------------------------

@pytest.mark.parametrize("n_chars", [1, BOUND - 1, BOUND, BOUND + 1])
def test_mode_b_bound_is_inclusive(real_rows, n_chars):
    original = real_rows[3]
    aligned = append_user(n_chars)(copy.deepcopy(original))
    before, after = original["messages"][1]["content"], aligned["messages"][1]["content"]
    assert appended_clarification(before, after) == clarification(n_chars)
    codes = [v.code for v in check_row(original, aligned, "B")]
    assert codes == ([] if n_chars <= BOUND else ["USER_CHANGE_EXCEEDS_BOUND"])
    # Mode A has no bound on the instruction: only the source text is pinned.
    assert check_row(original, aligned, "A") == []


@pytest.mark.parametrize("bound", [5, 50])
def test_mode_b_bound_is_configurable(real_rows, bound):
    original = real_rows[1]
    at_bound = append_user(bound)(copy.deepcopy(original))
    past_bound = append_user(bound + 1)(copy.deepcopy(original))
    assert check_row(original, at_bound, "B", max_user_change=bound) == []
    assert [v.code for v in check_row(original, past_bound, "B", max_user_change=bound)] == [
        "USER_CHANGE_EXCEEDS_BOUND"]


@pytest.mark.parametrize(("before", "after", "expected"), [
    ("abc", "abc", ""),
    ("abc", "abc\n\nBe brief.", "Be brief."),
    ("", "\n\nx", "x"),
    ("abc", "abcd", "CLARIFICATION_MALFORMED"),
    ("abc", "abc\n\n", "CLARIFICATION_MALFORMED"),
    ("abc", "abc\n\n\nx", "CLARIFICATION_MALFORMED"),
    ("abc", "abc\n\nx\r", "CLARIFICATION_MALFORMED"),
    ("abc", "ab", "USER_CONTENT_EDITED"),
    ("abc", "axc\n\nBe brief.", "USER_CONTENT_EDITED"),
    ("abc", "", "USER_CONTENT_EDITED"),
])
def test_appended_clarification(before, after, expected):
    if expected.isupper():
        with pytest.raises(ValueError) as info:
            appended_clarification(before, after)
        assert info.value.args[0] == expected
    else:
        assert appended_clarification(before, after) == expected


def test_mode_b_check_is_linear_in_the_message_length(real_rows):
    """A 60 KB user message took 50 s with the character diff; the policy check is linear."""
    import time

    original = copy.deepcopy(real_rows[3])
    user = original["messages"][1]
    user["content"] = user["content"] + "\n\n" + " ".join(f"word{k % 997}" for k in range(9000))
    assert len(user["content"]) > 60_000
    edits = [append_user(150), cut_user_head(1000), set_field(1, "content", lambda c: c[::-1]),
             set_field(1, "content", lambda c: c.replace("word1", "w1"))]
    started = time.perf_counter()
    for edit in edits:
        for _ in range(5):
            check_row(original, edit(copy.deepcopy(original)), "B")
    assert time.perf_counter() - started < 2.0


# --- what is allowed ----------------------------------------------------------------------

def _rethink(row: dict) -> dict:
    for message in row["messages"]:
        if message["role"] == "assistant" and message["thinking"] is not None:
            message["thinking"] = "I re-read the request first. " + message["thinking"][::-1]
    return row


@pytest.mark.parametrize("row_index", range(6))
def test_a_legitimate_mode_a_rewrite_has_no_violations(real_rows, row_index):
    original = real_rows[row_index]
    aligned = _rethink(copy.deepcopy(original))
    user = aligned["messages"][1]
    _, source, _ = split_source(user["content"])
    user["content"] = ("Reconstruct the argument in the following text as an argument map in "
                       f"Argdown:\n{source}\n\nAnswer with the map only.")
    assert check_row(original, aligned, "A") == []
    assert gate(original, aligned, "A", quality=False) == Verdict(Outcome.ALIGNED)
    assert not is_unchanged(original, aligned)
    # Within the invariants, and still worse than the original: the reversed thinking lost its
    # plan, and the new request no longer asks for what the answer does (or, on the sample rows
    # a clone without ../shared uses, asks for a map the answer does not give) nor for the
    # methods the plan carries out. The gate's quality checks reject it.
    verdict = gate(original, aligned, "A")
    assert verdict.outcome is Outcome.REJECTED
    assert set(verdict.codes) <= {"PLAN_DROPPED", "DELIVERABLE_DROPPED", "REQUEST_SKIPS_TASK",
                                 "REQUEST_ASKS_UNDELIVERED", "FRAME_HAS_MARKUP",
                                 "METHOD_UNEXPECTED", "CLOSING_DROPS_VERDICT",
                                 "OPENING_SKIPS_METHOD", "OPENING_REPEATS_ITSELF"}


@pytest.mark.parametrize("row_index", range(6))
def test_a_legitimate_mode_b_rewrite_has_no_violations(real_rows, row_index):
    original = real_rows[row_index]
    aligned = _rethink(append_user(120)(copy.deepcopy(original)))
    assert check_row(original, aligned, "B") == []
    assert gate(original, aligned, "B", quality=False) == Verdict(Outcome.ALIGNED)


def test_a_thinking_only_change_is_aligned_not_unchanged(real_rows):
    original = real_rows[1]
    aligned = set_field(2, "thinking", _flip)(copy.deepcopy(original))
    assert gate(original, aligned, "B", quality=False) == Verdict(Outcome.ALIGNED)


@pytest.mark.parametrize("mode", ["A", "B"])
@pytest.mark.parametrize("row_index", range(6))
def test_an_identical_row_is_unchanged_never_ok(real_rows, row_index, mode):
    original = real_rows[row_index]
    aligned = copy.deepcopy(original)
    assert is_unchanged(original, aligned)
    assert check_row(original, aligned, mode) == []
    assert gate(original, aligned, mode) == Verdict(Outcome.UNCHANGED)


def test_validate_reports_unchanged_for_identical_files(real_rows, tmp_path):
    records = [Example(f"ex-{i}", "cfg", "train", i, row).to_record()
               for i, row in enumerate(real_rows)]
    write_jsonl_atomic(tmp_path / "o.jsonl", records)
    write_jsonl_atomic(tmp_path / "a.jsonl", records)
    summary = validate_files(tmp_path / "o.jsonl", tmp_path / "a.jsonl", "A",
                             out=tmp_path / "report.jsonl")
    assert dict(summary.outcomes) == {"unchanged": 6}
    assert [r["outcome"] for _, r in iter_jsonl(tmp_path / "report.jsonl")] == ["unchanged"] * 6


# --- typed comparison and what counts as unchanged (#12 items 5 and 8) ---------------------

def _rethought_sample(row: dict, edit: Callable[[str], str]) -> dict:
    row = copy.deepcopy(row)
    for message in row["messages"]:
        if message["role"] == "assistant" and message["thinking"]:
            message["thinking"] = edit(message["thinking"])
    return row


INVISIBLE_EDITS = {
    "trailing space": lambda t: t + " ",
    "line breaks": lambda t: t.replace(" ", "\n", 3),
    "double spaces": lambda t: t.replace(" ", "  "),
    "non-breaking spaces": lambda t: t.replace(" ", "\u00a0", 5),
    "tabs": lambda t: "\t" + t.replace(" ", "\t", 2),
    "zero-width space": lambda t: t[:10] + "\u200b" + t[10:],
    "decomposed accents": lambda t: t + " café",
    "compatibility forms": lambda t: t.replace("fi", "\ufb01"),
}


@pytest.mark.parametrize("mode", ["A", "B"])
@pytest.mark.parametrize("edit", INVISIBLE_EDITS, ids=list(INVISIBLE_EDITS))
def test_a_whitespace_or_normalization_only_rewrite_is_unchanged(sample_rows, edit, mode):
    original = sample_rows[0]
    if edit == "decomposed accents":
        original = _rethought_sample(original, lambda t: t + " cafe\u0301")
        aligned = _rethought_sample(sample_rows[0], INVISIBLE_EDITS[edit])
    else:
        aligned = _rethought_sample(original, INVISIBLE_EDITS[edit])
    assert aligned != original
    assert gate(original, aligned, mode) == Verdict(Outcome.UNCHANGED)


def test_a_visible_one_character_rewrite_is_trivial(sample_rows):
    # One character of the closing changed is one word swapped: changed, but no alignment.
    original = sample_rows[0]
    aligned = _rethought_sample(original, lambda t: t[:-1] + ("x" if t[-1] != "x" else "y"))
    assert not is_unchanged(original, aligned)
    verdict = gate(original, aligned, "B")
    assert verdict.outcome is Outcome.UNCHANGED and "trivial" in verdict.reason()


@pytest.mark.parametrize("before, after", [(1, 1.0), (1, True), (0, False), (1.0, True),
                                           ("1", 1), (None, 0), (0.0, -0.0), ([1], [1.0]),
                                           ({"a": 1}, {"a": 1.0})])
def test_values_of_another_json_type_are_changes(sample_rows, before, after):
    original = copy.deepcopy(sample_rows[0])
    original["score"] = before
    original["messages"][1]["extra"] = before
    aligned = copy.deepcopy(original)
    aligned["score"] = after
    aligned["messages"][1]["extra"] = after
    codes = [(v.code, v.message_index) for v in check_row(original, aligned, "A")]
    assert codes == [("OTHER_FIELD_CHANGED", None), ("OTHER_FIELD_CHANGED", 1)]


def test_nan_equals_itself_and_key_order_does_not_matter(sample_rows):
    original = json.loads(json.dumps({**sample_rows[0], "score": float("nan"),
                                       "meta": {"a": 1, "b": [2, None]}}))
    aligned = json.loads(json.dumps({**original, "meta": {"b": [2, None], "a": 1}}))
    assert check_row(original, aligned, "A") == []
    assert is_unchanged(original, aligned)


def test_assistant_content_is_compared_by_type_too(sample_rows):
    original = copy.deepcopy(sample_rows[0])
    original["messages"][-1]["name"] = None
    aligned = copy.deepcopy(original)
    aligned["messages"][-1]["name"] = ""
    assert [v.code for v in check_row(original, aligned, "A")] == ["NAME_CHANGED"]


@pytest.mark.parametrize("mode", [None, "", "C", "b"])
def test_an_unknown_mode_is_a_violation_not_a_pass(sample_rows, mode):
    original = sample_rows[0]
    aligned = copy.deepcopy(original)
    aligned["messages"][1]["content"] = "Something else entirely. " * 40 + original["messages"][1]["content"]
    assert [v.code for v in check_row(original, aligned, str(mode))] == ["UNKNOWN_MODE"]
