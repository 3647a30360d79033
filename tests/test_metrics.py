"""Mutual predictability: the invariant gate, the judge's ratings, the GEPA metric interface,
and the lexical comparison."""

from __future__ import annotations

import copy
import importlib.resources
import json
import re
from pathlib import Path

import dspy
import pytest
from dspy.lm15 import Message, Response, TextPart, Usage
from dspy.utils import DummyLM

from argalign.metrics import (
    MutualPredictability,
    content_words,
    lexical_match,
    make_metric,
    score_aligned,
    score_row,
    visible_request,
)
from argalign.schema import split_source

SAMPLE = Path(str(importlib.resources.files("argalign") / "data" / "sample"))


def sample_rows() -> list[dict]:
    return [json.loads(line) for path in sorted(SAMPLE.glob("*/*.jsonl"))
            for line in path.read_text(encoding="utf-8").splitlines()]


def turns(row: dict) -> int:
    return sum(m["role"] == "user" for m in row["messages"])


def single_turn_rows() -> list[dict]:
    return [r for r in sample_rows() if turns(r) == 1 and all(m["role"] != "tool" for m in r["messages"])]


def rethought(row: dict) -> dict:
    """A valid aligned row: every thinking gets a new first line."""
    aligned = copy.deepcopy(row)
    for m in aligned["messages"]:
        if m["thinking"]:
            m["thinking"] = "I read the request and plan my answer.\n\n" + m["thinking"]
    return aligned


def ratings(*pairs: tuple[int, int]) -> DummyLM:
    """A judge LM rating each turn (forward, backward), in the order the judge calls it."""
    answers = []
    for forward, backward in pairs:
        answers += [{"predicted_answer": "An Argdown reconstruction."},
                    {"rating": forward, "reason": f"forward reason {forward}"},
                    {"reconstructed_request": "Please reconstruct the argument."},
                    {"rating": backward, "reason": f"backward reason {backward}"}]
    return DummyLM(answers, adapter=dspy.JSONAdapter())


# --- the gate ---------------------------------------------------------------------------------

def _change_answer(row: dict) -> dict:
    row["messages"][2]["content"] += " And one more thing."
    return row


def _append_to_request(row: dict) -> dict:
    row["messages"][1]["content"] += "\n\n" + ("Please be thorough. " * 20).strip()
    return row


def _drop_source(row: dict) -> dict:
    row["messages"][1]["content"] = "Reconstruct the argument."
    return row


@pytest.mark.parametrize(
    ("edit", "mode", "code"),
    [
        (_change_answer, "A", "ASSISTANT_CONTENT_CHANGED"),
        (_append_to_request, "B", "USER_CHANGE_EXCEEDS_BOUND"),
        (_drop_source, "A", "SOURCE_TEXT_NOT_VERBATIM"),
    ],
)
def test_a_violation_scores_zero_with_its_code(edit, mode, code):
    row = single_turn_rows()[0]
    aligned = edit(rethought(row))
    metric = make_metric(comparison="judge")  # no LM configured: the judge must not be asked
    result = metric(dspy.Example(row=row, mode=mode), dspy.Prediction(row=aligned))
    assert (result.score, result.forward, result.backward, result.gate) == (0.0, 0.0, 0.0, "violation")
    assert result.feedback.startswith("Hard invariants violated: ")
    assert code in result.feedback
    assert score_aligned(row, aligned, mode, MutualPredictability()).codes == [code]


def test_an_unchanged_row_scores_zero():
    row = single_turn_rows()[0]
    metric = make_metric()
    result = metric(dspy.Example(row=row, mode="B"), dspy.Prediction(row=copy.deepcopy(row)))
    assert (result.score, result.gate) == (0.0, "unchanged")
    assert "unchanged" in result.feedback


@pytest.mark.parametrize("pred", [dspy.Prediction(row=None), dspy.Prediction()])
def test_no_row_scores_zero(pred):
    row = single_turn_rows()[0]
    result = make_metric()(dspy.Example(row=row, mode="A"), pred)
    assert (result.score, result.gate) == (0.0, "violation")
    assert "No aligned row" in result.feedback


# --- the judge ----------------------------------------------------------------------------------

def test_a_valid_row_is_rated_by_the_judge_through_gepas_call():
    row = single_turn_rows()[0]
    metric = make_metric(comparison="judge")
    gold, pred = dspy.Example(row=row, mode="B"), dspy.Prediction(row=rethought(row))
    with dspy.context(lm=ratings((8, 6)), adapter=dspy.JSONAdapter(), trace=[]):
        result = metric(gold, pred, [], "rewrite_thinking", None)  # GEPA's five arguments
        assert dspy.settings.trace == []  # the judge's calls stay out of the program's trace
    assert isinstance(result, dspy.Prediction)
    assert result.score == pytest.approx(0.7)
    assert (result.forward, result.backward, result.gate) == (pytest.approx(0.8), pytest.approx(0.6),
                                                              "pass")
    assert "forward 0.80" in result.feedback and "backward 0.60" in result.feedback
    assert "forward reason 8 / backward reason 6" in result.feedback
    assert metric.__name__ == "mutual_predictability_judge"


def test_turns_are_averaged():
    row = next(r for r in sample_rows() if turns(r) == 2)
    with dspy.context(lm=ratings((8, 6), (4, 2)), adapter=dspy.JSONAdapter()):
        result = score_row(row, MutualPredictability())
    assert (result.forward, result.backward, result.score) == pytest.approx((0.6, 0.4, 0.5))
    assert result.gate == "baseline" and len(result.turns) == 2
    assert result.feedback.count("Turn ") == 2


@pytest.mark.parametrize(("rating", "expected"), [(0, 0.0), (10, 1.0), (15, 1.0), (-3, 0.0)])
def test_ratings_are_clamped(rating, expected):
    with dspy.context(lm=ratings((rating, rating)), adapter=dspy.JSONAdapter()):
        result = score_row(single_turn_rows()[0], MutualPredictability())
    assert result.score == pytest.approx(expected)


def test_the_metric_uses_its_own_judge_lm():
    row = single_turn_rows()[0]
    metric = make_metric(judge_lm=ratings((9, 7)), adapter=dspy.JSONAdapter())
    task_lm = DummyLM([{"rating": 0, "reason": "wrong LM"}] * 10, adapter=dspy.JSONAdapter())
    with dspy.context(lm=task_lm):
        result = metric(dspy.Example(row=row, mode="A"), dspy.Prediction(row=rethought(row)))
    assert result.score == pytest.approx(0.8)
    assert task_lm.history == []


def test_unknown_comparison():
    with pytest.raises(ValueError, match="comparison"):
        MutualPredictability("cosine")


# --- lexical comparison -------------------------------------------------------------------------

TEXTS = [
    "Reconstruct the argument in Argdown with inference rules.",
    "An Argdown reconstruction of the argument, premises and conclusion, with inference rules.",
    "Formalize premise four in first-order logic.",
    "Annotate the source text with reasons and conjectures.",
]


@pytest.mark.parametrize("text", TEXTS)
def test_identical_texts_match_fully(text):
    assert lexical_match(text, text) == 1.0
    assert lexical_match(text, text.upper() + " the and for") == 1.0  # case and stop words


@pytest.mark.parametrize(("a", "b"), [(a, b) for a in TEXTS for b in TEXTS if a < b])
def test_lexical_match_is_symmetric_and_bounded(a, b):
    assert lexical_match(a, b) == lexical_match(b, a)
    assert 0.0 <= lexical_match(a, b) < 1.0


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("Reconstruct the argument.", "Formalize premise four."),
        ("", "Reconstruct the argument."),
        ("the and for", "the and for"),  # stop words only
        ("a b c", "a b c"),  # too short to be words
    ],
)
def test_disjoint_or_empty_texts_do_not_match(a, b):
    assert lexical_match(a, b) == 0.0


def test_content_words():
    assert content_words("The user asks: reconstruct Argdown, 2 premises; x-ray!") == {
        "asks", "reconstruct", "argdown", "premises", "x-ray"}


def test_the_judge_sees_an_excerpt_of_the_source():
    row = single_turn_rows()[0]
    content = row["messages"][1]["content"]
    source = split_source(content)[1]
    visible = visible_request(content)
    assert source not in visible and f"[source text, {len(source)} characters]" in visible
    assert len(visible) < len(content)
    assert visible_request("Now formalize (4).") == "Now formalize (4)."
    assert visible_request(None) == ""


def _field(prompt: str, name: str) -> str:
    match = re.search(rf"\[\[ ## {name} ## \]\]\n(.*?)(?=\n\n\[\[ ## |\n\nRespond with|\Z)", prompt, re.S)
    assert match, name
    return match.group(1)


class EchoEngine:
    """A judge that predicts the request as the answer and the answer as the request, so that
    lexical comparison measures how much request and answer share."""

    def complete(self, request) -> Response:
        prompt = request.messages[-1].text
        if "`predicted_answer`" in prompt:
            values = {"predicted_answer": _field(prompt, "request")}
        else:
            values = {"reconstructed_request": _field(prompt, "answer")}
        return Response(id=None, model="echo", message=Message.assistant([TextPart(json.dumps(values))]),
                        finish_reason="stop", usage=Usage(input_tokens=0, output_tokens=0, total_tokens=0))


def test_matched_requests_score_higher_than_shuffled_ones():
    rows = single_turn_rows()
    assert len(rows) > 80
    # Half a turn of the list pairs each answer with a request from another config.
    shuffled = []
    for i, row in enumerate(rows):
        other = rows[(i + len(rows) // 2) % len(rows)]
        row = copy.deepcopy(row)
        row["messages"][1]["content"] = other["messages"][1]["content"]
        shuffled.append(row)
    judge = MutualPredictability("lexical")
    lm = dspy.LM("echo", engine=EchoEngine(), cache=False)
    with dspy.context(lm=lm, adapter=dspy.JSONAdapter()):
        matched = [score_row(row, judge) for row in rows]
        mismatched = [score_row(row, judge) for row in shuffled]
    assert len(lm.history) == 4 * len(rows)
    for result in matched:
        assert result.forward == pytest.approx(result.backward)  # both measure the same overlap
    mean = sum(r.score for r in matched) / len(rows)
    shuffled_mean = sum(r.score for r in mismatched) / len(rows)
    # The echo stand-in measures the overlap of the request's instructions (the judge sees no
    # source text) with the answer: a clear separation on average, not on every pair; the
    # pairwise figures with a real judge are in bench/metric_validity.py.
    assert mean > 2 * shuffled_mean
