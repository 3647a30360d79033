"""Mutual predictability: the judge's readings from scripted logprobs, the three comparisons,
the gate, the GEPA metric interface, and the lexical baseline."""

from __future__ import annotations

import copy
import importlib.resources
import inspect
import json
import re
from pathlib import Path

import dspy
import pytest

from argalign.core.deliverables import TASKS, asked, method_words
from argalign.core.records import Outcome, Rejection
from argalign.core.schema import split_source
from argalign.core.thinking import split_thinking
from argalign.scoring.checks import content_words, own_sentences
from argalign.scoring.comparison import (
    SOURCE_PLACEHOLDER,
    instructions_of,
    turn_views,
    visible_request,
)
from argalign.scoring.comparison_lexical import lexical_match
from argalign.scoring.judge import (
    EMPTY_TEXT,
    LETTERS,
    METHOD_OPTIONS,
    Judge,
    JudgeError,
    letter_distribution,
)
from argalign.scoring.metrics import (
    COMPARISONS,
    MutualPredictability,
    PredictabilityMetric,
    make_metric,
    score_aligned,
)
from support import LABELS, ScriptedJudgeLM, logprobs_output, peaked

SAMPLE = Path(str(importlib.resources.files("argalign") / "data" / "sample"))


def sample_rows() -> list[dict]:
    return [json.loads(line) for path in sorted(SAMPLE.glob("*/*.jsonl"))
            for line in path.read_text(encoding="utf-8").splitlines()]


def by_id(source_id: str) -> dict:
    return next(r for r in sample_rows() if r["source_id"] == source_id)


SMT_ROW = "sample/deepa2-aaac01-thinking/test/04"       # asks for SMT-LIB code, gets it
VERDICT_ROW = "sample/deepa2-aaac01-thinking/test/09"   # a yes/no question, answered "No."


UNIFORM = {k: 1 / len(LABELS) for k in LABELS}


# --- the judge's readings ---------------------------------------------------------------------

def test_letter_probabilities_are_read_and_renormalised():
    probs, mass = letter_distribution(logprobs_output({"smt": 0.6, "verdict": 0.2}, junk=0.2), 9)
    assert mass == pytest.approx(0.8)
    assert probs[LABELS.index("smt")] == pytest.approx(0.75)
    assert probs[LABELS.index("verdict")] == pytest.approx(0.25)
    assert sum(probs) == pytest.approx(1.0)


def test_an_endpoint_without_logprobs_is_a_clear_error():
    with pytest.raises(JudgeError, match="no logprobs.*--comparison structural"):
        letter_distribution({"text": "A", "logprobs": None}, 9)


def test_a_judge_that_does_not_answer_with_a_letter_is_an_error():
    judge = Judge(lambda prompt, **kw: [logprobs_output({"smt": 0.1}, junk=0.9)], calibrate=False)
    with pytest.raises(JudgeError, match="does not follow the format"):
        judge.read("request", "Write SMT code.")


def test_a_reading_is_one_token_at_temperature_zero_with_top_logprobs():
    lm = ScriptedJudgeLM(lambda kind, text: peaked("smt"))
    Judge(lm, calibrate=False).read("request", "Write SMT code.")
    assert lm.kwargs == [{"max_tokens": 1, "temperature": 0.0, "logprobs": True,
                          "top_logprobs": 20}]
    prompt = lm.prompts[0]
    assert "Write SMT code." in prompt
    for i, description in enumerate(TASKS.values()):
        assert f"{LETTERS[i]}) {description}" in prompt


def test_calibration_divides_by_the_reading_of_an_empty_text():
    # The judge likes "A" whatever it reads; on this request it likes "smt" more than usual.
    prior = {**{k: 0.05 for k in LABELS}, "annotation": 0.6}
    seen = {**{k: 0.04 for k in LABELS}, "annotation": 0.5, "smt": 0.22}

    def answer(kind, text):
        return prior if text == EMPTY_TEXT else seen

    raw = Judge(ScriptedJudgeLM(answer), calibrate=False).read("request", "Write SMT code.")
    calibrated = Judge(ScriptedJudgeLM(answer), calibrate=True).read("request", "Write SMT code.")
    assert max(raw, key=raw.get) == "annotation"
    assert max(calibrated, key=calibrated.get) == "smt"
    assert sum(calibrated.values()) == pytest.approx(1.0)


def test_readings_are_cached_and_a_rescore_is_identical():
    lm = ScriptedJudgeLM(lambda kind, text: peaked("smt", 0.5))
    scorer = MutualPredictability("judge", Judge(lm))
    row = by_id(SMT_ROW)
    first = scorer.score(row)
    calls = len(lm.prompts)
    assert calls == 8  # request, method, response and thinking readings, and their empty-text priors
    again = scorer.score(copy.deepcopy(row))
    assert len(lm.prompts) == calls and again.score == first.score


# --- the three comparisons ------------------------------------------------------------------

def test_the_judge_comparison_follows_its_formula():
    p_request, p_response, p_thinking = peaked("smt", 0.7), peaked("smt", 0.9), peaked("smt", 0.6)
    p_method = {"none": 0.3, "gist": 0.1, "argument_map": 0.1, "reconstruction": 0.2,
                "formalization": 0.2, "annotation": 0.05, "smt": 0.05}
    readings = {"request": p_request, "response": p_response, "thinking": p_thinking}
    lm = ScriptedJudgeLM(lambda kind, text: readings[kind], method=lambda text: p_method)
    row = by_id(SMT_ROW)
    what = turn_views(row)[0].delivered
    assert what.task == "smt" and what.major_methods  # the plan goes beyond the SMT code
    result = MutualPredictability("judge", Judge(lm, calibrate=False)).score(row)
    expected = {"smt"} | (what.expectable & set(LABELS))
    delivered = sum(p_request[k] for k in expected)
    method = sum(p_method[k] for k in what.major_methods)
    inner = sum(p_response[k] * p_request[k] for k in LABELS)
    agree = sum(p_thinking[k] * p_request[k] for k in LABELS)
    leads = sum(p_thinking[k] for k in expected)
    forward = 0.5 * delivered + 0.5 * method
    assert result.forward == pytest.approx(forward)
    assert result.backward == pytest.approx(inner)
    assert result.coherence == pytest.approx(0.5 * (leads + agree))  # the plan covers the middle
    assert result.score == pytest.approx((forward + inner + 0.5 * (leads + agree)) / 3)
    assert "smt" in result.feedback and f"forward {forward:.2f}" in result.feedback


def with_instructions(row: dict, text: str) -> dict:
    new = copy.deepcopy(row)
    user = next(m for m in new["messages"] if m["role"] == "user")
    _, source, _ = split_source(user["content"])
    user["content"] = f"{text}\n\nThe text:\n{source}"
    return new


@pytest.mark.parametrize("comparison", ["structural", "lexical"])
def test_an_explicit_request_beats_a_vague_and_a_mismatched_one(comparison):
    row = by_id(SMT_ROW)
    explicit = with_instructions(row, "Write an SMT-LIB program that checks every inference "
                                      "step of the argument for validity.")
    vague = with_instructions(row, "What do you make of this?")
    mismatched = with_instructions(row, "Annotate the reasons and conjectures in the text.")
    scorer = MutualPredictability(comparison)
    assert scorer.score(explicit).score > scorer.score(vague).score
    assert scorer.score(explicit).score > scorer.score(mismatched).score


def test_a_foreign_opening_lowers_coherence():
    row = by_id(SMT_ROW)
    donor = by_id("sample/deepa2-aaac01-thinking/test/00")  # an annotation task
    foreign = copy.deepcopy(row)
    parts = split_thinking(row["messages"][2]["thinking"])
    foreign["messages"][2]["thinking"] = parts.join(
        opening=split_thinking(donor["messages"][2]["thinking"]).opening)
    view = turn_views(foreign)[0].thinkings[0]
    assert turn_views(row)[0].thinkings[0].plan_coverage == 1.0
    assert view.plan_coverage < 1.0
    scorer = MutualPredictability("structural")
    assert scorer.score(row).coherence > scorer.score(foreign).coherence


@pytest.mark.parametrize("comparison", list(COMPARISONS))
def test_a_score_does_not_depend_on_a_yes_or_no_verdict(comparison):
    row = by_id(VERDICT_ROW)
    assert row["messages"][2]["content"] == "No."
    flipped = copy.deepcopy(row)
    flipped["messages"][2]["content"] = "Yes."
    lm = ScriptedJudgeLM(lambda kind, text: peaked("smt" if "Yes" in text else "verdict"))
    scorer = MutualPredictability(comparison, Judge(lm))
    assert scorer.score(row).score == scorer.score(flipped).score
    assert not any("No." in p or "Yes." in p for p in lm.prompts if "Its answer" in p)


def test_the_judge_sees_the_source_text_only_as_a_placeholder():
    row = by_id(SMT_ROW)
    source = split_source(row["messages"][1]["content"])[1]
    view = turn_views(row)[0]
    assert SOURCE_PLACEHOLDER in view.request and source[:60] not in view.request
    assert visible_request("Just a question?") == "Just a question?"


def test_unknown_comparison():
    with pytest.raises(ValueError, match="judge, hybrid, structural, lexical"):
        MutualPredictability("rating")


# --- the gate -------------------------------------------------------------------------------

def _structural() -> MutualPredictability:
    return MutualPredictability("structural")


def test_a_violation_scores_zero_with_its_code():
    row = by_id(SMT_ROW)
    bad = copy.deepcopy(row)
    bad["messages"][2]["content"] += " "
    result = score_aligned(row, bad, "A", _structural())
    assert (result.score, result.outcome, result.rejection, result.codes) == (
        0.0, Outcome.REJECTED, Rejection.INVARIANT, ["ASSISTANT_CONTENT_CHANGED"])
    assert result.components()["gate"] == "violation"  # the word result files have always held


def test_an_unchanged_row_and_no_row_score_zero():
    row = by_id(SMT_ROW)
    unchanged = score_aligned(row, copy.deepcopy(row), "A", _structural())
    assert (unchanged.outcome, unchanged.components()["gate"]) == (Outcome.UNCHANGED, "unchanged")
    failed = score_aligned(row, None, "A", _structural())
    assert (failed.outcome, failed.codes, failed.components()["gate"]) == (
        Outcome.FAILED, ["FAILED"], "violation")


def test_a_failed_quality_check_scores_zero_with_its_code():
    row = by_id(SMT_ROW)
    leaky = with_instructions(row, "Write an SMT-LIB program [SOURCE TEXT: 400 characters].")
    result = score_aligned(row, leaky, "A", _structural())
    assert (result.score, result.outcome, result.rejection) == (0.0, Outcome.REJECTED,
                                                                Rejection.CHECK)
    assert result.components()["gate"] == "check"
    assert "PLACEHOLDER_LEAKED" in result.codes and "PLACEHOLDER_LEAKED" in result.feedback


def test_a_passing_rewrite_is_scored():
    row = by_id(SMT_ROW)
    better = with_instructions(row, "Write an SMT-LIB program that checks every inference step "
                                    "of the argument for validity, after reconstructing and "
                                    "formalizing it.")
    result = score_aligned(row, better, "A", _structural())
    assert result.outcome is Outcome.ALIGNED and result.score > 0
    assert result.components()["gate"] == "pass"
    baseline = _structural().score(row)
    assert baseline.outcome is None and baseline.components()["gate"] == "baseline"


def test_the_metric_takes_gepas_five_arguments_and_its_own_judge_lm():
    row = by_id(SMT_ROW)
    better = with_instructions(row, "Write an SMT-LIB program that checks every inference step "
                                    "of the argument for validity, after reconstructing and "
                                    "formalizing it.")
    lm = ScriptedJudgeLM(lambda kind, text: peaked("smt"))
    metric = make_metric(lm, "judge")
    gold = dspy.Example(row=row, mode="A")
    result = metric(gold, dspy.Prediction(row=better), None, "rewrite_request", None)
    assert isinstance(result, dspy.Prediction) and 0 < result.score <= 1
    assert (result.outcome, result.gate) == (Outcome.ALIGNED, "pass")
    assert "forward" in result.feedback
    assert lm.prompts  # the judge read with the LM it was given, not dspy.settings.lm
    assert metric.calls_per_turn == 4
    assert metric(gold, dspy.Prediction(row=None)).score == 0.0
    # What GEPA checks before it starts, and what the optimizers read off the metric.
    inspect.signature(metric).bind(None, None, None, None, None)
    assert isinstance(metric, PredictabilityMetric) and metric.scorer.comparison == "judge"
    assert metric.__name__ == "mutual_predictability_judge"


# --- lexical ------------------------------------------------------------------------------------

@pytest.mark.parametrize("text", ["Reconstruct the argument in Argdown.", "formalize premises"])
def test_identical_texts_match_fully(text):
    assert lexical_match(text, text) == 1.0
    assert lexical_match(text, text.upper() + " the and for") == 1.0  # case and stop words


@pytest.mark.parametrize(("a", "b"), [("", "premise"), ("premise", ""), ("apple", "argument")])
def test_disjoint_or_empty_texts_do_not_match(a, b):
    assert lexical_match(a, b) == 0.0


def test_content_words():
    assert content_words("The user asks: reconstruct Argdown, 2 premises; x-ray!") == {
        "asks", "reconstruct", "argdown", "premises", "x-ray"}
    assert re.fullmatch(r"[a-z-]+", " ".join(sorted(content_words("Hello, World!"))).replace(
        " ", "-"))


# --- the method and the level of detail -----------------------------------------------------------

def _planned_rows(rows: list[dict]) -> list[dict]:
    """Rows whose first turn's plan carries out a major method beyond what the answer is."""
    return [r for r in rows if split_source(next(m for m in r["messages"]
                                                 if m["role"] == "user")["content"] or "")
            and turn_views(r)[0].delivered.major_methods]


def _naming_methods(row: dict) -> dict:
    """The row with a first sentence asking, in words, for the analysis its plan carries out."""
    new = copy.deepcopy(row)
    user = next(m for m in new["messages"] if m["role"] == "user")
    words = method_words(turn_views(row)[0].delivered)
    user["content"] = f"First {', then '.join(words)}.\n{user['content']}"
    return new


def _method_reader(text: str) -> dict[str, float]:
    """A scripted method reading: a request that asks to reconstruct expects a reconstruction;
    one that does not, a direct answer."""
    peak = "reconstruction" if "reconstruct" in text.lower() else "none"
    return {k: 0.7 if k == peak else 0.3 / 6 for k in METHOD_OPTIONS}


def test_naming_the_plans_method_raises_forward_never_lowers_it(real_rows):
    rows = _planned_rows(real_rows + sample_rows())
    assert len(rows) >= 10
    judge = Judge(ScriptedJudgeLM(lambda kind, text: UNIFORM, method=_method_reader))
    for comparison in (MutualPredictability("structural"),
                       MutualPredictability("judge", judge), MutualPredictability("hybrid", judge)):
        for row in rows:
            bare, named = comparison.score(row), comparison.score(_naming_methods(row))
            assert named.forward >= bare.forward, (comparison.comparison, row.get("source_id"))
    # The rules see every method named: where the request left one unexpected, forward rises.
    scorer = MutualPredictability("structural")
    under = [r for r in rows if _unexpected(r)]
    assert under
    assert all(scorer.score(_naming_methods(r)).forward > scorer.score(r).forward for r in under)


def _unexpected(row: dict) -> frozenset[str]:
    view = turn_views(row)[0]
    return view.delivered.major_methods - asked(instructions_of(view.request))


def test_a_bare_question_over_a_long_plan_leaves_the_plan_unexpected(real_rows):
    row = by_id(VERDICT_ROW)
    what = turn_views(row)[0].delivered
    assert what.task == "verdict" and what.major_methods
    result = MutualPredictability("structural").score(row)
    named = MutualPredictability("structural").score(_naming_methods(row))
    assert result.forward == pytest.approx(1 / len(what.expectable))
    assert named.forward == pytest.approx(1.0)
    assert "cannot expect" in result.feedback and "cannot expect" not in named.feedback


def test_a_request_asking_for_more_than_the_response_does_scores_lower_backward():
    row = by_id(VERDICT_ROW)
    more = with_instructions(row, "Answer whether proposition (4) is explicitly mentioned in the "
                                  "text? Also write SMT-LIB code and name the fallacy.")
    plain = with_instructions(row, "Answer whether proposition (4) is explicitly mentioned in "
                                   "the text?")
    scorer = MutualPredictability("structural")
    assert scorer.score(more).backward < scorer.score(plain).backward


def _with_preamble(row: dict, preamble: str, closing: str | None = None) -> dict:
    new = copy.deepcopy(row)
    message = next(m for m in new["messages"] if m.get("thinking"))
    message["thinking"] = split_thinking(message["thinking"]).join(preamble=preamble,
                                                                  closing=closing)
    return new


GENERIC = "This requires a complex analysis. Let me draw up a plan."


def _fitting(row: dict) -> str:
    words = method_words(turn_views(row)[0].delivered)
    return (f"Settling this takes more than a glance at the text, so I will {words[0]}"
            + (f" and {words[1]}" if len(words) > 1 else "") + " before I answer.")


def test_an_opening_that_ties_the_request_to_the_method_beats_a_generic_one(real_rows):
    scorer = MutualPredictability("structural")
    for row in _planned_rows(real_rows + sample_rows()):
        fitting = scorer.score(_with_preamble(row, _fitting(row)))
        generic = scorer.score(_with_preamble(row, GENERIC))
        assert fitting.coherence > generic.coherence, row.get("source_id")


@pytest.mark.parametrize("echo", [
    "request",  # the user's request copied into the thinking
    "imperative",  # the user's imperatives, label words and all
    "tool",  # a tool call written as text
])
def test_echoes_in_a_thinking_raise_no_part(echo, real_rows):
    judge = Judge(ScriptedJudgeLM(lambda kind, text: peaked("reconstruction")
                                  if "reconstruct" in text.lower() else UNIFORM,
                                  method=_method_reader))
    for row in _planned_rows(real_rows + sample_rows()):
        request = instructions_of(turn_views(row)[0].request)
        words = method_words(turn_views(row)[0].delivered)
        added = {"request": request,
                 "imperative": f"Please {words[0]}. Consider tone, persuasion and complexity. "
                               f"Reconstruct, formalize and map it.",
                 "tool": 'Tool call: reconstruct_argument({"formalize": true, "map": true})'}[echo]
        original = split_thinking(next(m["thinking"] for m in row["messages"]
                                       if m.get("thinking"))).preamble
        echoed = _with_preamble(row, f"{added}\n{original}")
        for name in ("structural", "hybrid"):
            scorer = MutualPredictability(name, judge)
            before, after = scorer.score(row), scorer.score(echoed)
            for part in ("forward", "backward", "coherence"):
                assert getattr(after, part) <= getattr(before, part) + 1e-9, (name, part, echo)


@pytest.mark.parametrize(("sentence", "own"), [
    ("Let me draw up a plan.", True),
    ("I need to reconstruct the argument before I can tell whether (4) is explicit.", True),
    ("Please provide a detailed explanation of the argument.", False),
    ("Consider tone, persuasion, and complexity.", False),
    ("I want you to assess the rhetorical style of all propositions.", False),
    ('Tool call: rhetorical_analysis({"propositions": [1, 2]})', False),
])
def test_own_sentences_keep_the_assistants_voice_only(sentence, own):
    assert (own_sentences(sentence, "Assess the tone of the premises.") == sentence) is own


def test_a_sentence_copied_from_the_request_is_not_the_assistants_own():
    request = "Is the proposition (4) explicitly mentioned in the original presentation?"
    assert own_sentences(request, request) == ""
    assert own_sentences("I will answer it after a reconstruction.", request)
