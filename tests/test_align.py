"""One example in, one record out: aligned, unchanged, failed or rejected, with provenance."""

from __future__ import annotations

import copy
import importlib.resources
import json
from pathlib import Path
from typing import Any

import dspy
import pytest
from dspy.utils import DummyLM

from argalign.core.records import OUTCOMES
from argalign.core.schema import Example
from argalign.modes import ModeA, make_mode
from argalign.programs.align import align_example
from argalign.scoring.invariants import check_row
from argalign.scoring.metrics import MutualPredictability
from argalign.testing.argalign_responder import ArgalignResponder
from argalign.testing.fake_openai import FakeOpenAIServer
from support import ScriptedJudgeLM, peaked

SAMPLE = Path(str(importlib.resources.files("argalign") / "data" / "sample"))
PROVENANCE = ("id", "source_id", "config", "split", "index", "mode", "model", "program", "outcome",
              "reason", "codes", "attempts", "retries", "calls", "input_tokens", "output_tokens",
              "latency_s", "row")

ASKS_REQUEST = "fields: `request`."
ASKS_THINKING_A = "fields: `opening`."
ASKS_THINKING_B = "fields: `opening`."
# The sample row asks whether proposition (4) is explicit: a rewrite must keep the question.
NEW_REQUEST = ("Reconstruct the argument in Argdown standard form and annotate its reasons and "
               "conjectures in the text, then answer in one word: is proposition (4) explicitly "
               "mentioned in the text?")

NEW_OPENING = "Here is a new opening: whether (4) is explicit takes a reconstruction."

INSTRUCTION = "Reconstruct the argument in Argdown."
SOURCE = ("Every member of the chess club plays in the Sunday league. Anna is a member of the "
          "chess club. So Anna plays in the Sunday league, as everybody at the club knows.")
OPENING = "I will reconstruct the argument in standard form."
ARGDOWN = ("```argdown\n(1) Every member of the chess club plays in the Sunday league.\n"
           "(2) Anna is a member of the chess club.\n-----\n(3) Anna plays in the Sunday league.\n```")
CLOSING = "That reconstruction is my answer."


def message(role: str, content: str | None, thinking: str | None = None, **other: Any) -> dict:
    return {"content": content, "name": None, "role": role, "thinking": thinking,
            "tool_calls": None, "tools": None, **other}


def fixed_point_row() -> dict:
    """A row that a rewrite returning its own opening, closing and request reproduces exactly."""
    return {"source_id": "test/fixed-point", "messages": [
        message("system", "You analyse arguments.", tools="[]"),
        message("user", f"{INSTRUCTION}\n\nSource text:\n{SOURCE}"),
        message("assistant", ARGDOWN, thinking=f"{OPENING}\n\n{ARGDOWN}\n\n{CLOSING}"),
    ]}


def sample_example(index: int = 2) -> Example:
    path = SAMPLE / "deepa2-aaac01-thinking" / "train.jsonl"
    row = json.loads(path.read_text(encoding="utf-8").splitlines()[index])
    return Example(id=row["source_id"], config="deepa2-aaac01-thinking", split="train",
                   index=index, row=row)


def example(row: Any, id: str = "ex") -> Example:
    return Example(id=id, config="c", split="s", index=0, row=row)


def rewriting_lm() -> DummyLM:
    return DummyLM({
        ASKS_THINKING_B: {"opening": NEW_OPENING, "clarification": ""},
        ASKS_THINKING_A: {"opening": NEW_OPENING},
        ASKS_REQUEST: {"request": NEW_REQUEST},
    }, adapter=dspy.JSONAdapter())


def align(ex: Example, mode: str, lm: dspy.BaseLM | None, **options: Any) -> dict:
    return align_example(ex, make_mode(mode), model="dummy", lm=lm,
                         adapter=dspy.JSONAdapter(), program_id="zs-test", **options)


@pytest.mark.parametrize("mode", ["A", "B"])
def test_aligned_with_provenance(mode):
    ex = sample_example()
    lm = rewriting_lm()
    record = align(ex, mode, lm)
    assert set(record.to_dict()) == set(PROVENANCE)  # the line written: no scores, run or model
    assert record.outcome == "aligned"
    assert (record.id, record.source_id, record.config, record.split, record.index) == (
        ex.id, ex.id, "deepa2-aaac01-thinking", "train", 2)
    assert (record.mode, record.model, record.program) == (mode, "dummy", "zs-test")
    assert record.codes == [] and record.reason == "" and record.retries == []
    # One call, the thinking's: the sample row's request already asks for the verdict, so Mode A
    # keeps it after a sentence of its own asking for the plan's methods.
    assert record.attempts == record.calls == len(lm.history) == 1
    user, old = record.row["messages"][1]["content"], ex.row["messages"][1]["content"]
    # Mode A puts its sentence before the kept request, Mode B appends its own after it.
    assert user.startswith(old + "\n\nPlease ") if mode == "B" else user.endswith(
        old[old.index("\n"):])
    assert record.latency_s >= 0
    assert check_row(ex.row, record.row, mode) == []
    assert record.row != ex.row
    json.dumps(record.to_dict())  # a record is written as a JSON line


def test_tokens_are_counted_from_the_endpoint():
    def answers(fields: dict[str, str], messages: list[dict]) -> dict[str, Any]:
        values = {"clarification": "", "request": NEW_REQUEST, "opening": NEW_OPENING}
        return {name: values.get(name, f"A new {name}: yes.") for name in fields}

    with FakeOpenAIServer(responder=ArgalignResponder(answers)) as server:
        lm = dspy.LM("openai/fake", api_base=server.url, api_key="x", cache=False)
        record = align(sample_example(), "A", lm)
        assert record.outcome == "aligned"
        assert record.calls == server.stats.total == 1
    assert record.input_tokens > 500 and 0 < record.output_tokens < 200


@pytest.mark.parametrize("mode", ["A", "B"])
def test_a_rewrite_identical_to_the_original_is_unchanged(mode):
    row = fixed_point_row()
    lm = DummyLM({
        ASKS_THINKING_B: {"opening": OPENING, "clarification": ""},
        ASKS_THINKING_A: {"opening": OPENING},
        ASKS_REQUEST: {"request": INSTRUCTION},
    }, adapter=dspy.JSONAdapter())
    record = align(example(row), mode, lm)
    assert record.outcome == "unchanged"
    assert "identical" in record.reason
    assert record.row == row
    # The request asks for the reconstruction its answer is: Mode A keeps it and asks only for
    # the opening.
    assert record.calls == 1


def test_an_opening_given_back_with_a_word_dropped_is_unchanged():
    # "... in standard form." -> "... in form.": nothing new to put before the opening.
    lm = DummyLM({ASKS_THINKING_B: {"opening": OPENING.replace("standard ", ""),
                                    "clarification": ""}}, adapter=dspy.JSONAdapter())
    record = align(example(fixed_point_row()), "B", lm)
    assert record.outcome == "unchanged" and record.row == fixed_point_row()


def test_a_new_opening_is_aligned_and_the_closing_kept():
    opening = ("Whether Anna plays on Sundays turns on two premises, so I will reconstruct the "
               "argument in standard form before I answer.")
    lm = DummyLM({ASKS_THINKING_B: {"opening": opening, "clarification": ""}},
                 adapter=dspy.JSONAdapter())
    record = align(example(fixed_point_row()), "B", lm)
    assert record.outcome == "aligned"
    assert record.row["messages"][2]["thinking"] == \
        f"{opening} {OPENING}\n\n{ARGDOWN}\n\n{CLOSING}"


@pytest.mark.parametrize("attempts", [1, 3])
def test_garbage_fails_with_reason_and_code(attempts):
    lm = DummyLM([{"nonsense": "x"}] * 5, adapter=dspy.JSONAdapter())
    program = make_mode("A", attempts=attempts)
    record = align_example(sample_example(), program, model="dummy", lm=lm,
                           adapter=dspy.JSONAdapter())
    assert record.outcome == "failed"
    assert record.codes == ["PARSE_ERROR"]
    assert record.reason.startswith("PARSE_ERROR: ")
    assert record.attempts == record.calls == attempts
    assert record.row is None


def test_an_unexpected_error_is_a_failed_record():
    class Broken(ModeA):
        def forward(self, row: dict) -> dspy.Prediction:
            raise KeyError("boom")

    record = align_example(sample_example(), Broken(), model="dummy")
    assert record.outcome == "failed" and record.codes == ["INTERNAL_ERROR"]
    assert "KeyError" in record.reason and record.row is None


def _without_key(row: dict) -> dict:
    row = copy.deepcopy(row)
    del row["messages"][1]["thinking"]
    return row


def _reply_first(row: dict) -> dict:
    row = copy.deepcopy(row)
    row["messages"][1], row["messages"][2] = row["messages"][2], row["messages"][1]
    return row


@pytest.mark.parametrize(
    ("make", "code"),
    [
        (lambda row: ["not", "a", "row"], "NOT_AN_OBJECT"),
        (lambda row: {"source_id": "x"}, "NO_MESSAGES"),
        (lambda row: {"messages": []}, "EMPTY_MESSAGES"),
        (_without_key, "MISSING_KEY"),
        (_reply_first, "NO_USER_BEFORE_REPLY"),
    ],
)
def test_a_malformed_row_is_rejected(make, code):
    lm = rewriting_lm()
    record = align(example(make(fixed_point_row())), "A", lm)
    assert record.outcome == "rejected"
    assert record.codes == [code]
    assert f"[{code}]" in record.reason
    assert record.row is None and record.calls == 0 and lm.history == []


def test_a_rewrite_that_breaks_an_invariant_is_rejected():
    class Tampering(ModeA):
        def forward(self, row: dict) -> dspy.Prediction:
            bad = copy.deepcopy(row)
            bad["messages"][2]["content"] += " (edited)"
            return dspy.Prediction(row=bad, edits=[], calls=1, retries=[])

    record = align_example(example(fixed_point_row()), Tampering(), model="dummy")
    assert record.outcome == "rejected"
    assert record.codes == ["ASSISTANT_CONTENT_CHANGED"]
    assert record.row is None


@pytest.mark.parametrize("separate_judge_lm", [False, True])
def test_a_judge_scores_baseline_and_aligned(separate_judge_lm):
    lm = rewriting_lm()
    judge_lm = ScriptedJudgeLM(lambda kind, text: peaked("verdict", 0.6))
    options = {"judge": MutualPredictability("judge")}
    if separate_judge_lm:
        options["judge_lm"] = judge_lm
    else:
        options = {"judge": MutualPredictability("lexical")}
    record = align(sample_example(), "A", lm, **options)
    assert record.outcome == "aligned"
    assert record.calls == 1  # the judge's calls are not the alignment's
    scores = record.scores
    # The judge's own cost is kept beside the scores when its LM keeps a history.
    assert set(scores) == {"baseline", "aligned"} | ({"usage"} if not separate_judge_lm else set())
    assert scores["baseline"]["gate"] == "baseline" and scores["aligned"]["gate"] == "pass"
    for part in (scores["baseline"], scores["aligned"]):
        assert set(part) == {"score", "forward", "backward", "coherence", "gate"}
        assert 0 < part["score"] <= 1
        assert part["score"] == pytest.approx(
            (part["forward"] + part["backward"] + part["coherence"]) / 3, abs=1e-4)
    if separate_judge_lm:
        # Readings of both rows: 2 requests and their 2 method readings, 1 shared response,
        # 2 thinkings, 4 empty priors.
        assert len(judge_lm.prompts) == 11
    again = align(sample_example(), "A", rewriting_lm(), **options)
    def readings(found: dict) -> dict:
        return {k: v for k, v in found.items() if k != "usage"}  # usage holds wall-clock seconds

    assert readings(again.scores) == readings(scores)  # temperature 0 (and rules): repeatable


def test_an_unchanged_row_scores_zero():
    lm = DummyLM({
        ASKS_THINKING_B: {"opening": OPENING, "clarification": ""},
    }, adapter=dspy.JSONAdapter())
    record = align(example(fixed_point_row()), "B", lm, judge=MutualPredictability("lexical"))
    assert record.outcome == "unchanged"
    assert record.scores["aligned"] == {"score": 0.0, "forward": 0.0, "backward": 0.0,
                                           "gate": "unchanged"}
    assert record.scores["baseline"]["score"] > 0


def test_no_scores_for_a_failed_row():
    lm = DummyLM([{"nonsense": "x"}] * 3, adapter=dspy.JSONAdapter())
    record = align(sample_example(), "B", lm, judge=MutualPredictability("lexical"))
    assert record.outcome == "failed" and record.scores is None


def test_outcomes_are_the_five_documented_ones():
    # not_improved comes only from the acceptance gate (argalign.programs.accept), never from align.
    assert OUTCOMES == ("aligned", "unchanged", "failed", "rejected", "not_improved")
