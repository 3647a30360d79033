"""validate_files: an aligned file checked against its original, id by id."""

from __future__ import annotations

import copy
import json

import pytest

from argalign.core.errors import RowError
from argalign.core.jsonl import JsonlError, iter_jsonl, write_jsonl_atomic
from argalign.core.schema import Example
from argalign.stages.validate import index_offsets, read_at, validate_files
from support import OWN_METHOD_SENTENCE


def _examples(rows: list[dict]) -> list[dict]:
    return [Example(f"cfg/train/{i}", "cfg", "train", i, row).to_record()
            for i, row in enumerate(rows)]


REWORDED = OWN_METHOD_SENTENCE


def _rethought(row: dict) -> dict:
    row = copy.deepcopy(row)
    for message in row["messages"]:
        if message["role"] == "assistant" and message["thinking"]:
            # A real new sentence: "Checked again." alone would be a trivial edit (unchanged).
            message["thinking"] = f"{REWORDED} {message['thinking']}"
    return row


def test_offsets_are_byte_offsets_of_each_line(real_rows, tmp_path):
    path = tmp_path / "o.jsonl"
    records = _examples(real_rows)
    write_jsonl_atomic(path, records)
    offsets = index_offsets(path)
    assert list(offsets) == [r["id"] for r in records]
    # The real rows hold non-ASCII text, so character and byte offsets differ.
    for record in records:
        assert read_at(path, offsets[record["id"]]) == record


def test_every_outcome_is_reported_per_id(real_rows, tmp_path):
    originals = _examples(real_rows)
    aligned = [
        {**originals[0], "row": _rethought(real_rows[0])},                       # aligned
        originals[1],                                                             # unchanged
        {"id": "cfg/train/2", "row": None, "reason": "LM timed out"},             # failed
        {**originals[3], "row": {**real_rows[3], "example_id": -1}},              # rejected
        {**originals[4], "row": _rethought(real_rows[4])},                        # aligned
        # cfg/train/5 is missing
    ]
    write_jsonl_atomic(tmp_path / "o.jsonl", originals)
    write_jsonl_atomic(tmp_path / "a.jsonl", aligned)
    summary = validate_files(tmp_path / "o.jsonl", tmp_path / "a.jsonl", "A",
                             out=tmp_path / "report.jsonl")

    report = [r for _, r in iter_jsonl(tmp_path / "report.jsonl")]
    assert report == summary.report
    assert [(r["id"], r["outcome"], r["codes"]) for r in report] == [
        ("cfg/train/0", "aligned", []),
        ("cfg/train/1", "unchanged", []),
        ("cfg/train/2", "failed", []),
        ("cfg/train/3", "rejected", ["OTHER_FIELD_CHANGED"]),
        ("cfg/train/4", "aligned", []),
        ("cfg/train/5", "rejected", ["ID_MISSING"]),
    ]
    assert report[2]["reason"] == "LM timed out"
    assert report[3]["violations"] == [{"code": "OTHER_FIELD_CHANGED", "message_index": None,
                                        "detail": "row column 'example_id' changed"}]
    assert summary.rejected == 2
    assert summary.as_dict() == {
        "rows": 6,
        "outcomes": {"aligned": 2, "unchanged": 1, "failed": 1, "rejected": 2},
        "codes": {"OTHER_FIELD_CHANGED": 1, "ID_MISSING": 1},
    }


def test_violations_name_the_message(real_rows, tmp_path):
    originals = _examples(real_rows)
    broken = copy.deepcopy(real_rows[0])
    broken["messages"][5]["content"] += "."
    broken["messages"][3]["thinking"] = "Let me call the tool."
    write_jsonl_atomic(tmp_path / "o.jsonl", originals[:1])
    write_jsonl_atomic(tmp_path / "a.jsonl", [{**originals[0], "row": broken}])
    [line] = validate_files(tmp_path / "o.jsonl", tmp_path / "a.jsonl", "A").report
    assert line["codes"] == ["ASSISTANT_CONTENT_CHANGED", "THINKING_ADDED"]
    assert sorted((v["code"], v["message_index"]) for v in line["violations"]) == [
        ("ASSISTANT_CONTENT_CHANGED", 5), ("THINKING_ADDED", 3)]


def test_plain_row_files_match_line_by_line(real_rows_path, tmp_path):
    # The real rows are plain rows without source_id: ids come from line numbers.
    aligned = tmp_path / "aligned.jsonl"
    aligned.write_bytes(real_rows_path.read_bytes())
    summary = validate_files(real_rows_path, aligned, "B")
    assert dict(summary.outcomes) == {"unchanged": 6}


def test_plain_rows_with_source_ids_match_in_any_order(real_rows, tmp_path):
    rows = [{**row, "source_id": f"s{i}"} for i, row in enumerate(real_rows)]
    write_jsonl_atomic(tmp_path / "o.jsonl", rows)
    write_jsonl_atomic(tmp_path / "a.jsonl", [_rethought(r) for r in reversed(rows)])
    summary = validate_files(tmp_path / "o.jsonl", tmp_path / "a.jsonl", "A")
    assert [r["id"] for r in summary.report] == [f"s{i}" for i in reversed(range(6))]
    assert dict(summary.outcomes) == {"aligned": 6}


def test_max_user_change_is_passed_down(real_rows, tmp_path):
    originals = _examples(real_rows[1:2])
    aligned = copy.deepcopy(originals[0])
    aligned["row"]["messages"][1]["content"] += "\n\nBe brief."
    write_jsonl_atomic(tmp_path / "o.jsonl", originals)
    write_jsonl_atomic(tmp_path / "a.jsonl", [aligned])
    loose = validate_files(tmp_path / "o.jsonl", tmp_path / "a.jsonl", "B", max_user_change=9)
    tight = validate_files(tmp_path / "o.jsonl", tmp_path / "a.jsonl", "B", max_user_change=8)
    assert (loose.report[0]["outcome"], tight.report[0]["codes"]) == (
        "aligned", ["USER_CHANGE_EXCEEDS_BOUND"])


def test_a_bad_original_line_names_the_line(real_rows, tmp_path):
    original = tmp_path / "o.jsonl"
    write_jsonl_atomic(original, _examples(real_rows[:2]))
    with original.open("a", encoding="utf-8") as fh:
        fh.write('{"id": "cut\n')
    write_jsonl_atomic(tmp_path / "a.jsonl", _examples(real_rows[:2]))
    with pytest.raises(JsonlError) as info:
        validate_files(original, tmp_path / "a.jsonl", "A")
    assert info.value.lineno == 3


def test_an_aligned_line_that_is_not_a_row_is_rejected_by_its_line(real_rows, tmp_path):
    write_jsonl_atomic(tmp_path / "o.jsonl", _examples(real_rows[:1]))
    write_jsonl_atomic(tmp_path / "a.jsonl", [{"text": "no row here"}])
    summary = validate_files(tmp_path / "o.jsonl", tmp_path / "a.jsonl", "A")
    assert [(r["id"], r["codes"]) for r in summary.report] == [
        ("a.jsonl:1", ["NOT_A_ROW"]), ("cfg/train/0", ["ID_MISSING"])]


# --- a row whose 'messages' is no list; a malformed original (#21 items 7, 15) -------------

@pytest.mark.parametrize("side", ["original", "aligned"])
def test_a_row_whose_messages_is_no_list_is_rejected_and_the_others_are_checked(
        sample_rows, tmp_path, side):
    rows = _plain(sample_rows[:2])
    files = {"original": tmp_path / "o.jsonl", "aligned": tmp_path / "a.jsonl"}
    for name, path in files.items():
        bad = [{"messages": 5}] if name == side else []
        write_jsonl_atomic(path, [rows[0], *bad, _rethought(rows[1]) if name == "aligned" else rows[1]])

    summary = validate_files(files["original"], files["aligned"], "A")

    name = files[side].name
    assert (f"{name}:2", "rejected", ["NO_MESSAGES"]) in [
        (r["id"], r["outcome"], r["codes"]) for r in summary.report]
    assert summary.as_dict()["outcomes"] == {"unchanged": 1, "aligned": 1, "rejected": 1}


def _broken(row: dict, key: str, value: object) -> dict:
    row = copy.deepcopy(row)
    next(m for m in row["messages"] if m["role"] == "assistant")[key] = value
    return row


@pytest.mark.parametrize(("key", "value", "code"), [("thinking", 5, "BAD_VALUE"),
                                                    ("role", 5, "UNKNOWN_ROLE")])
def test_a_malformed_original_row_is_rejected_as_malformed(sample_rows, tmp_path, key, value, code):
    original = [sample_rows[0], _broken(sample_rows[1], key, value)]
    write_jsonl_atomic(tmp_path / "o.jsonl", original)
    for aligned in (original, [sample_rows[0], _broken(_rethought(sample_rows[1]), key, value)]):
        write_jsonl_atomic(tmp_path / "a.jsonl", aligned)
        summary = validate_files(tmp_path / "o.jsonl", tmp_path / "a.jsonl", "A")
        report = {r["id"]: r for r in summary.report}
        bad = report[sample_rows[1]["source_id"]]
        assert (bad["outcome"], bad["codes"]) == ("rejected", [code])
        assert "the original row is malformed" in bad["violations"][0]["detail"]
        assert report[sample_rows[0]["source_id"]]["outcome"] == "unchanged"


@pytest.mark.parametrize("target", ["original", "aligned"])
def test_validate_refuses_a_report_that_would_overwrite_an_input(sample_rows, tmp_path, target):
    from argalign.cli import EXIT_CONFIG, main

    paths = {"original": tmp_path / "o.jsonl", "aligned": tmp_path / "a.jsonl"}
    write_jsonl_atomic(paths["original"], _examples(sample_rows[:2]))
    write_jsonl_atomic(paths["aligned"], _examples([_rethought(r) for r in sample_rows[:2]]))
    before = {k: p.read_bytes() for k, p in paths.items()}
    assert main(["validate", "--original", str(paths["original"]), "--aligned", str(paths["aligned"]),
                 "--mode", "B", "--out", str(paths[target])]) == EXIT_CONFIG
    assert {k: p.read_bytes() for k, p in paths.items()} == before


# --- matching by id, not by line (#12 item 7) ---------------------------------------------

def _plain(rows: list[dict]) -> list[dict]:
    return [{k: v for k, v in row.items() if k != "source_id"} for row in rows]


def test_plain_rows_without_ids_match_by_content_despite_blank_and_reordered_lines(sample_rows, tmp_path):
    rows = _plain(sample_rows[:5])
    original, aligned = tmp_path / "o.jsonl", tmp_path / "a.jsonl"
    write_jsonl_atomic(original, rows)
    shuffled = [_rethought(rows[i]) for i in (3, 0, 4, 1, 2)]
    aligned.write_text("\n" + "\n\n".join(json.dumps(r) for r in shuffled) + "\n", "utf-8")
    summary = validate_files(original, aligned, "B")
    assert dict(summary.outcomes) == {"aligned": 5}


def test_rows_with_an_example_id_match_by_it(sample_rows, tmp_path):
    rows = [{**row, "example_id": i} for i, row in enumerate(_plain(sample_rows[:4]))]
    write_jsonl_atomic(tmp_path / "o.jsonl", rows)
    aligned = [_rethought(rows[2]), _rethought(rows[0]), rows[1]]
    write_jsonl_atomic(tmp_path / "a.jsonl", aligned)
    summary = validate_files(tmp_path / "o.jsonl", tmp_path / "a.jsonl", "B")
    outcome = {r["id"]: (r["outcome"], r["codes"]) for r in summary.report}
    assert outcome == {"example_id=2": ("aligned", []), "example_id=0": ("aligned", []),
                       "example_id=1": ("unchanged", []),
                       "example_id=3": ("rejected", ["ID_MISSING"])}


def test_duplicate_ids_in_the_original_are_an_error_naming_the_lines(sample_rows, tmp_path):
    from argalign.cli import EXIT_FAILED, main

    rows = [sample_rows[0], sample_rows[1], {**sample_rows[2], "source_id": sample_rows[0]["source_id"]}]
    write_jsonl_atomic(tmp_path / "o.jsonl", rows)
    write_jsonl_atomic(tmp_path / "a.jsonl", rows[:2])
    with pytest.raises(RowError, match="lines 1 and 3"):
        validate_files(tmp_path / "o.jsonl", tmp_path / "a.jsonl", "B")
    assert main(["validate", "--original", str(tmp_path / "o.jsonl"), "--aligned",
                 str(tmp_path / "a.jsonl"), "--mode", "B"]) == EXIT_FAILED


def test_a_number_and_a_string_are_different_ids(sample_rows, tmp_path):
    rows = _plain(sample_rows[:2])
    write_jsonl_atomic(tmp_path / "o.jsonl", [{**rows[0], "source_id": 12345},
                                             {**rows[1], "source_id": "12345"}])
    write_jsonl_atomic(tmp_path / "a.jsonl", [_rethought({**rows[1], "source_id": "12345"}),
                                             _rethought({**rows[0], "source_id": 12345})])
    summary = validate_files(tmp_path / "o.jsonl", tmp_path / "a.jsonl", "B")
    assert dict(summary.outcomes) == {"aligned": 2}
    assert {r["id"] for r in summary.report} == {"12345", "source_id=12345"}
