"""Rows, messages and conversations: lossless reading, turn structure, and every parse error."""

from __future__ import annotations

import copy
import json

import pytest

from argalign.core.errors import RowError
from argalign.core.jsonl import iter_jsonl, write_jsonl_atomic
from argalign.core.records import Reject
from argalign.core.schema import (
    MESSAGE_KEYS,
    MIN_SOURCE_CHARS,
    Example,
    Message,
    PlainRowIds,
    Turn,
    content_key,
    example_id,
    parse_conversation,
    source_text,
    split_source,
)

ROW_COUNT = 6


def test_there_are_six_real_rows(real_data):
    assert len(real_data) == ROW_COUNT


def _with_unknowns(row: dict) -> dict:
    """A real row plus an unknown row column and an unknown key on every message."""
    row = copy.deepcopy(row)
    row["x_origin"] = {"corpus": "aaac01", "weights": [1, 0.5, None]}
    for i, message in enumerate(row["messages"]):
        message["x_weight"] = None if i % 2 else i
    return row


# --- lossless reading ---------------------------------------------------------------------

def test_real_rows_have_exactly_the_six_message_keys(real_rows):
    for row in real_rows:
        for message in row["messages"]:
            assert sorted(message) == sorted(MESSAGE_KEYS)


@pytest.mark.parametrize("row_index", range(ROW_COUNT))
def test_message_model_keeps_every_value_and_unknown_keys(real_rows, row_index):
    row = _with_unknowns(real_rows[row_index])
    for raw in row["messages"]:
        assert Message.model_validate(raw).model_dump() == raw


@pytest.mark.parametrize("row_index", range(ROW_COUNT))
def test_round_trip_through_envelope_and_jsonl_is_lossless(real_rows, tmp_path, row_index):
    original = _with_unknowns(real_rows[row_index])
    snapshot = copy.deepcopy(original)
    conversation = parse_conversation(original, "r")
    example = Example("r", "cfg", "train", row_index, original)
    path = tmp_path / "rows.jsonl"
    write_jsonl_atomic(path, [example.to_record()])

    [(lineno, record)] = list(iter_jsonl(path))
    back = Example.from_record(record, where=f"rows.jsonl:{lineno}")
    assert (back.id, back.config, back.split, back.index) == ("r", "cfg", "train", row_index)
    assert original == snapshot, "parsing must not touch the row"
    assert back.row.keys() == snapshot.keys()
    for column in snapshot:
        assert back.row[column] == snapshot[column], column
    assert len(back.row["messages"]) == len(snapshot["messages"])
    for i, (got, want) in enumerate(zip(back.row["messages"], snapshot["messages"])):
        assert got.keys() == want.keys(), i
        for key in want:
            assert got[key] == want[key], (i, key)
    # The typed view holds the same values, unknown keys included.
    assert [m.model_dump() for m in conversation.messages] == snapshot["messages"]


# --- turn structure -----------------------------------------------------------------------

def test_real_row_0_is_one_turn_with_a_tool_round_trip(real_rows):
    conversation = parse_conversation(real_rows[0], "row0")
    assert conversation.turns == (Turn(1, (2, 3, 4, 5), (2, 3, 5)),)
    assert conversation.system is conversation.messages[0]
    assert [m.role for m in conversation.messages] == [
        "system", "user", "assistant", "assistant", "tool", "assistant"]


@pytest.mark.parametrize("row_index", range(1, ROW_COUNT))
def test_other_real_rows_are_one_plain_turn(real_rows, row_index):
    assert parse_conversation(real_rows[row_index], "r").turns == (Turn(1, (2,), (2,)),)


def test_multi_turn_row(real_rows):
    base = real_rows[0]["messages"]
    system, user, thinking_only, calls, tool, final = base
    second_user = {**user, "content": "And now in one sentence?"}
    answer = {**final, "thinking": None, "content": "In short: yes."}
    row = {"messages": [system, user, final, second_user, thinking_only, calls, tool, answer]}
    conversation = parse_conversation(row, "multi")
    assert conversation.turns == (
        Turn(1, (2,), (2,)),
        Turn(3, (4, 5, 6, 7), (4, 5, 7)),
    )


def test_conversation_without_system_message(real_rows):
    row = {"messages": real_rows[1]["messages"][1:]}
    conversation = parse_conversation(row, "nosys")
    assert conversation.system is None
    assert conversation.turns == (Turn(0, (1,), (1,)),)


def test_user_message_without_replies_is_a_turn(real_rows):
    row = {"messages": real_rows[1]["messages"][:2]}
    assert parse_conversation(row, "r").turns == (Turn(1, (), ()),)


# --- every way a row can be malformed -----------------------------------------------------

def _msgs(row: dict) -> list[dict]:
    return row["messages"]


def _drop_key(row):
    del _msgs(row)[2]["thinking"]


def _bad_tools(row):
    _msgs(row)[0]["tools"] = "[{"


def _tools_not_a_list(row):
    _msgs(row)[0]["tools"] = "{}"


def _bad_tool_calls(row):
    _msgs(row)[2]["tool_calls"] = "[{'name': 1}]"


def _unknown_role(row):
    _msgs(row)[2]["role"] = "bot"


def _content_not_text(row):
    _msgs(row)[1]["content"] = 42


def _message_not_object(row):
    _msgs(row)[2] = "assistant: hi"


def _empty_assistant(row):
    _msgs(row)[2].update(content=None, thinking=None, tool_calls=None)


def _empty_strings_assistant(row):
    _msgs(row)[2].update(content="", thinking="", tool_calls=None)


def _system_not_first(row):
    row["messages"] = [_msgs(row)[1], _msgs(row)[0], _msgs(row)[2]]


def _reply_before_user(row):
    row["messages"] = [_msgs(row)[0], _msgs(row)[2], _msgs(row)[1]]


def _only_system(row):
    row["messages"] = [_msgs(row)[0]]


def _empty_messages(row):
    row["messages"] = []


def _no_messages(row):
    del row["messages"]


def _messages_not_a_list(row):
    row["messages"] = "system, user, assistant"


PARSE_ERRORS = [
    (_drop_key, "MISSING_KEY", 2, "thinking"),
    (_bad_tools, "FIELD_NOT_JSON", 0, "tools"),
    (_tools_not_a_list, "FIELD_NOT_JSON", 0, "list"),
    (_bad_tool_calls, "FIELD_NOT_JSON", 2, "tool_calls"),
    (_unknown_role, "UNKNOWN_ROLE", 2, "bot"),
    (_content_not_text, "BAD_VALUE", 1, "content"),
    (_message_not_object, "NOT_AN_OBJECT", 2, "str"),
    (_empty_assistant, "EMPTY_ASSISTANT", 2, "no content"),
    (_empty_strings_assistant, "EMPTY_ASSISTANT", 2, "no content"),
    (_system_not_first, "MISPLACED_SYSTEM", 1, "system"),
    (_reply_before_user, "NO_USER_BEFORE_REPLY", 1, "before any user"),
    (_only_system, "NO_USER_MESSAGE", None, "no user message"),
    (_empty_messages, "EMPTY_MESSAGES", None, "empty"),
    (_no_messages, "NO_MESSAGES", None, "messages"),
    (_messages_not_a_list, "NO_MESSAGES", None, "messages"),
]


@pytest.mark.parametrize(("mutate", "code", "index", "words"), PARSE_ERRORS,
                         ids=[m.__name__.strip("_") for m, *_ in PARSE_ERRORS])
def test_malformed_rows_raise_row_error_with_code_and_index(real_rows, mutate, code, index, words):
    row = copy.deepcopy(real_rows[1])
    mutate(row)
    with pytest.raises(RowError) as info:
        parse_conversation(row, "cfg/train/7")
    error = info.value
    assert (error.code, error.message_index, error.row_id) == (code, index, "cfg/train/7")
    assert words in error.problem
    assert "cfg/train/7" in str(error)
    reject = Reject.from_error(error, stage="prepare", index=7).to_dict()
    assert {k: reject[k] for k in ("stage", "id", "codes", "message_index", "reason", "index")} \
        == {"stage": "prepare", "id": "cfg/train/7", "codes": [code], "message_index": index,
            "reason": error.problem, "index": 7}


@pytest.mark.parametrize("row", [None, [], "text", 3])
def test_a_row_that_is_not_an_object_is_rejected(row):
    with pytest.raises(RowError) as info:
        parse_conversation(row, "x")
    assert info.value.code == "NOT_AN_OBJECT"


# --- ids and envelopes --------------------------------------------------------------------

@pytest.mark.parametrize(("row", "expected"), [
    ({"source_id": "aaac01-17"}, "aaac01-17"),
    ({"source_id": 17}, "source_id=17"),
    ({"source_id": "17"}, "17"),
    ({"source_id": 0}, "source_id=0"),
    ({"source_id": True}, "source_id=true"),
    ({"source_id": ""}, "cfg/train/4"),
    ({"source_id": None}, "cfg/train/4"),
    ({}, "cfg/train/4"),
    ({"example_id": 99}, "example_id=99"),
    ({"example_id": "99"}, 'example_id="99"'),
    ({"example_id": 99, "source_id": "s"}, "s"),
    ({"example_id": None, "source_id": None}, "cfg/train/4"),
])
def test_example_id(row, expected):
    assert example_id(row, "cfg", "train", 4) == expected


def test_envelope_record_round_trip():
    example = Example("cfg/train/4", "cfg", "train", 4, {"messages": [], "x": 1})
    record = example.to_record()
    assert record == {"id": "cfg/train/4", "config": "cfg", "split": "train", "index": 4,
                      "row": {"messages": [], "x": 1}}
    assert Example.from_record(json.loads(json.dumps(record))) == example


@pytest.mark.parametrize(("row", "where", "expected_id", "expected_index"), [
    ({"messages": [], "source_id": "s-1"}, "a.jsonl:3", "s-1", 3),
    ({"messages": [], "example_id": 3}, "a.jsonl:3", "example_id=3", 3),
    ({"messages": []}, "a.jsonl:3", content_key({"messages": []}), 3),
    ({"messages": []}, "somewhere", content_key({"messages": []}), -1),
])
def test_plain_row_is_accepted_as_an_example(row, where, expected_id, expected_index):
    example = Example.from_record(row, where=where)
    assert (example.id, example.index, example.row) == (expected_id, expected_index, row)


def test_plain_row_ids_do_not_depend_on_the_file_name():
    row = {"messages": []}
    assert (Example.from_record(row, where="original.jsonl:5").id
            == Example.from_record(row, where="aligned.jsonl:5").id)


@pytest.mark.parametrize("record", [{"id": "x"}, {"row": {}}, {"text": "hello"}])
def test_a_record_that_is_neither_example_nor_row_is_rejected(record):
    with pytest.raises(RowError) as info:
        Example.from_record(record, where="f.jsonl:2")
    assert info.value.code == "NOT_A_ROW"
    assert info.value.row_id == "f.jsonl:2"


# --- the source text ----------------------------------------------------------------------

@pytest.mark.parametrize("row_index", range(ROW_COUNT))
def test_split_source_partitions_every_real_user_message(real_data, row_index):
    content = real_data[row_index]["messages"][1]["content"]
    parts = split_source(content)
    assert parts is not None
    before, source, after = parts
    assert before + source + after == content
    assert len(source) >= MIN_SOURCE_CHARS
    assert before.rstrip().endswith(":")
    assert source_text(content) == source
    assert source == source.rstrip()


def test_split_source_leaves_trailing_instructions_out():
    text = "A sentence of the argument that goes on for a while. " * 3
    content = (f"Consider the following text:\n{text}\n\nSecond paragraph of the text.\n\n"
               "Identify the premises.\n\nPlease use Argdown.")
    before, source, after = split_source(content)
    assert before == "Consider the following text:\n"
    assert source == f"{text}\n\nSecond paragraph of the text."
    assert after == "\n\nIdentify the premises.\n\nPlease use Argdown."


@pytest.mark.parametrize("content", [
    None,
    "",
    "No introduction line here at all, just a request without any colon.",
    "Look at the following text:\nToo short to be a source.",
])
def test_no_source_text(content):
    assert source_text(content) is None


# --- ids of plain rows (#12 item 7) -------------------------------------------------------

def test_a_content_key_ignores_what_may_change_and_nothing_else(sample_rows):
    row = sample_rows[3]
    rewritten = copy.deepcopy(row)
    for m in rewritten["messages"]:
        if m["role"] == "user":
            m["content"] = "A new request."
        if m["role"] == "assistant" and m["thinking"]:
            m["thinking"] = "A new thinking."
    assert content_key(rewritten) == content_key(row)
    answer = next(i for i, m in enumerate(row["messages"]) if m["role"] == "assistant" and m["content"])
    for change in (lambda r: r["messages"][answer].update(content=r["messages"][answer]["content"] + "!"),
                   lambda r: r["messages"][0].update(content="Another system prompt."),
                   lambda r: r.update(extra=1), lambda r: r.update(extra=1.0)):
        other = copy.deepcopy(row)
        change(other)
        assert content_key(other) != content_key(row)


def test_plain_row_ids_number_repeats_but_not_explicit_ids(sample_rows):
    plain = {k: v for k, v in sample_rows[0].items() if k != "source_id"}
    ids = PlainRowIds()
    got = [ids.example(r, f"f.jsonl:{i}").id
           for i, r in enumerate([plain, plain, {**plain, "source_id": "s"}, plain], start=1)]
    assert got == [content_key(plain), content_key(plain) + "#2", "s", content_key(plain) + "#3"]


@pytest.mark.parametrize("record", [42, [1, 2], "text", None, {"id": 3, "row": {}}])
def test_a_line_that_is_not_an_object_is_not_a_row(record):
    with pytest.raises(RowError) as info:
        Example.from_record(record, where="f.jsonl:2")
    assert info.value.code == "NOT_A_ROW" and info.value.row_id == "f.jsonl:2"
