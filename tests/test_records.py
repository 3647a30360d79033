"""Result records and rejects: the shapes every writer and reader of them shares."""

from __future__ import annotations

import json
import re

import pytest

from argalign.core.errors import RowError, RunError
from argalign.core.records import OUTCOMES, Outcome, Reject, Rejection, ResultRecord, gate_word


def test_a_failure_has_its_code_reason_and_no_row():
    record = ResultRecord.failure(code="RAW_UNREADABLE", reason="gone", id="x", config="c",
                                  split="train", index=3, mode="A", model="m", program="p")
    assert (record.outcome, record.codes, record.reason, record.row) == (
        Outcome.FAILED, ["RAW_UNREADABLE"], "gone", None)
    rejected = ResultRecord.failure(code="NOT_A_ROW", reason="?", outcome=Outcome.REJECTED, id="y")
    assert rejected.outcome is Outcome.REJECTED and rejected.outcome in OUTCOMES


def test_an_outcome_is_its_word_in_files_and_text():
    assert OUTCOMES == ("aligned", "unchanged", "failed", "rejected", "not_improved")
    assert [str(o) for o in Outcome] == [f"{o}" for o in Outcome] == list(OUTCOMES)
    assert json.dumps({Outcome.NOT_IMPROVED: [Outcome.ALIGNED]}) == '{"not_improved": ["aligned"]}'
    assert Outcome.parse("unchanged") is Outcome.UNCHANGED
    with pytest.raises(ValueError, match="'outcome' must be one of aligned, .*, got 'skipped'"):
        Outcome.parse("skipped")


@pytest.mark.parametrize("outcome, rejection, word", [
    (None, None, "baseline"),
    (Outcome.ALIGNED, None, "pass"),
    (Outcome.UNCHANGED, None, "unchanged"),
    (Outcome.REJECTED, Rejection.CHECK, "check"),
    (Outcome.REJECTED, Rejection.INVARIANT, "violation"),
    (Outcome.FAILED, None, "violation"),
])
def test_score_components_keep_the_gate_words_result_files_have_always_held(outcome, rejection,
                                                                             word):
    assert gate_word(outcome, rejection) == word


def test_a_record_holds_an_outcome_and_writes_its_word():
    record = ResultRecord(id="x", outcome="unchanged", row={"messages": []})
    assert record.outcome is Outcome.UNCHANGED  # a word given or read back becomes the enum
    for view in (record.to_dict(), record.failure_view(), record.provenance()):
        assert type(view["outcome"]) is str and view["outcome"] == "unchanged"
    with pytest.raises(ValueError, match="got 'done'"):
        ResultRecord(id="x", outcome="done")
    with pytest.raises(RunError, match="result 'x': 'outcome' must be one of .*got 'done'"):
        ResultRecord.from_dict({"id": "x", "outcome": "done"})


def test_a_record_round_trips_through_its_json_line_and_optional_keys_appear_when_set():
    record = ResultRecord(id="x", config="c", split="s", index=0, mode="B", model="m",
                          program="p", outcome=Outcome.ALIGNED, row={"messages": []})
    line = json.loads(json.dumps(record.to_dict()))
    assert "scores" not in line and "run" not in line and "model_string" not in line
    assert ResultRecord.from_dict(line) == record
    record.scores, record.run = {"baseline": {"score": 0.1}, "aligned": {"score": 0.4}}, "r"
    line = record.to_dict()
    assert line["scores"]["aligned"]["score"] == 0.4 and line["run"] == "r"
    assert ResultRecord.from_dict({**line, "someday": 1}) == record  # unknown keys left out


def test_views_of_a_record():
    record = ResultRecord(id="x", mode="A", model="m", program="p", outcome=Outcome.FAILED,
                          codes=["TIMEOUT"], reason="slow", row=None, latency_s=1.5)
    assert set(record.failure_view()) == set(ResultRecord.FAILURE_FIELDS)
    assert "row" not in record.failure_view()
    assert set(record.provenance()) == set(ResultRecord.PROVENANCE_FIELDS)
    record.scores = {"aligned": {"score": 1.0}}
    assert record.provenance()["scores"] == {"aligned": {"score": 1.0}}


def test_every_reject_has_the_same_keys():
    error = RowError("cfg/train/7", "MISSING_KEY", "message lacks key(s) thinking", 2)
    prepared = Reject.from_error(error, stage="prepare", config="cfg", split="train", index=7,
                                 row={"messages": []}).to_dict()
    cleaned = Reject(stage="clean", id="z", codes=["ID_MISSING"], reason="no result",
                     outcome="missing").to_dict()
    assert prepared.keys() == cleaned.keys()
    assert (prepared["codes"], prepared["message_index"], prepared["reason"], prepared["outcome"]) \
        == (["MISSING_KEY"], 2, "message lacks key(s) thinking", "rejected")


@pytest.mark.parametrize("line, problem", [
    (42, "a number, not a result record"),
    ([1, 2], "a list, not a result record"),
    ("str", "a string, not a result record"),
    (None, "null, not a result record"),
    ({}, "'id' must be a string"),
    ({"id": 3, "outcome": "failed"}, "'id' must be a string"),
    ({"id": "x"}, "'outcome' must be one of"),
    ({"id": "x", "outcome": "weird"}, "'outcome' must be one of aligned, unchanged"),
    ({"id": "x", "outcome": "aligned", "row": None}, "an 'aligned' record needs its row"),
    ({"id": "x", "outcome": "unchanged"}, "an 'unchanged' record needs its row"),
    ({"id": "x", "outcome": "failed", "row": [1]}, "'row' must be an object or null, got a list"),
    ({"id": "x", "outcome": "failed", "codes": "LM_ERROR"}, "'codes' must be a list of strings"),
    ({"id": "x", "outcome": "failed", "codes": [1]}, "'codes' must be a list of strings"),
    ({"id": "x", "outcome": "failed", "reason": 3}, "'reason' must be a string, got a number"),
])
def test_a_corrupt_record_is_named_with_its_file_and_line(line, problem):
    with pytest.raises(RunError, match=re.escape(f"f.jsonl:4: {problem}")):
        ResultRecord.read(line, where="f.jsonl:4")


def test_a_good_record_reads_back():
    line = {"id": "x", "outcome": "aligned", "row": {"messages": []}, "mode": None, "codes": [],
            "someday": 1}
    record = ResultRecord.read(line, where="f.jsonl:1")
    assert record == ResultRecord(id="x", outcome=Outcome.ALIGNED, row={"messages": []}, mode=None)
    assert record.outcome is Outcome.ALIGNED
    failed = {"id": "y", "outcome": "failed", "row": None, "codes": ["LM_ERROR"], "reason": "x"}
    assert ResultRecord.read(failed, where="f.jsonl:2").codes == ["LM_ERROR"]
