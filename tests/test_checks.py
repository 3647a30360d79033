"""Quality checks: each one on a realistic row from the bundled sample, degraded the way a small
model degrades it, and a clean rewrite of the same row that passes them all."""

from __future__ import annotations

import copy
import importlib.resources
import json
from pathlib import Path

import pytest

from argalign.checks import (
    CODES,
    check_clarification,
    check_quality,
    copied_span,
    instructions,
    is_request,
    leaked,
    questions,
    replans,
)
from argalign.deliverables import delivered
from argalign.invariants import Outcome, gate
from argalign.schema import split_source
from argalign.thinking import split_thinking

SAMPLE = Path(str(importlib.resources.files("argalign") / "data" / "sample"))


def sample(source_id: str) -> dict:
    config, split, _ = source_id.split("/")[1:]
    for line in (SAMPLE / config / f"{split}.jsonl").read_text("utf-8").splitlines():
        row = json.loads(line)
        if row["source_id"] == source_id:
            return row
    raise LookupError(source_id)


def first(row: dict, role: str) -> int:
    return next(i for i, m in enumerate(row["messages"]) if m["role"] == role and
                (role != "assistant" or m["thinking"]))


def with_request(row: dict, instructions_text: str) -> dict:
    """A Mode A rewrite: new instructions, the intro line and source text kept."""
    new = copy.deepcopy(row)
    i = first(row, "user")
    before, source, _ = split_source(row["messages"][i]["content"])
    intro = before.rstrip("\n").rsplit("\n", 1)[-1]
    new["messages"][i]["content"] = f"{instructions_text}\n\n{intro}\n{source}"
    return new


def with_thinking(row: dict, **parts: str) -> dict:
    """The first thinking with a new preamble or closing (``ThinkingParts.join``'s keywords)."""
    new = copy.deepcopy(row)
    i = first(row, "assistant")
    new["messages"][i]["thinking"] = split_thinking(row["messages"][i]["thinking"]).join(**parts)
    return new


def with_preamble(row: dict, preamble: str) -> dict:
    return with_thinking(row, preamble=preamble)


def codes(original: dict, aligned: dict, mode: str = "A") -> list[str]:
    return sorted({f.code for f in check_quality(original, aligned, mode)})


# An annotation task whose request also asks for the reconstruction the spans refer to.
ANNOTATION = "sample/deepa2-aaac01-thinking/test/00"
# A reconstruction with inference rules and LaTeX formalizations.
FORMALIZATION = "sample/deepa2-aaac01-thinking/test/07"


def formalization_row() -> dict:
    row = sample(FORMALIZATION)
    assert {"formalization", "inference_rules"} <= set(
        delivered(row["messages"][2]["content"]).deliverables)
    return row


def test_a_clean_rewrite_passes_every_check():
    row = sample(ANNOTATION)
    good = with_preamble(with_request(
        row, "Mark up the text: wrap every reason and every conjecture in a span and give each "
             "span the number of its proposition in your standard-form reconstruction."),
        "The user wants the text annotated with reasons and conjectures, linked to a "
        "reconstruction, so I reconstruct first and annotate second.")
    assert codes(row, good) == []
    assert gate(row, good, "A").outcome is Outcome.ALIGNED


def test_every_check_has_a_catalogued_code():
    assert set(CODES) == {"PLACEHOLDER_LEAKED", "PLAN_DROPPED", "DELIVERABLE_DROPPED",
                          "REQUEST_ASKS_UNDELIVERED", "REQUEST_QUOTES_ANSWER",
                          "REQUEST_COPIES_SYSTEM", "REQUEST_QUOTES_THINKING",
                          "REQUEST_IN_ASSISTANT_VOICE",
                          "CLARIFICATION_REPEATS", "CLARIFICATION_CONTRADICTS",
                          "CLOSING_REPLANS", "CLARIFICATION_NOT_A_REQUEST", "FRAME_HAS_MARKUP",
                          "TEXT_HAS_CONTROL_CHARS"}


@pytest.mark.parametrize("marker", [
    "[SOURCE TEXT: 587 characters]", "[source text, 587 characters]",
    "[... 1200 characters omitted ...]", "[[ ## request ## ]]", "{request}",
    "the original_request asks"])
def test_a_leaked_placeholder_in_the_request_is_caught(marker):
    row = sample(ANNOTATION)
    bad = with_request(row, "Annotate the reasons and conjectures of the text and relate each "
                            f"to the reconstruction. {marker}")
    assert codes(row, bad) == ["PLACEHOLDER_LEAKED"]
    verdict = gate(row, bad, "A")
    assert verdict.outcome is Outcome.REJECTED and verdict.codes == ["PLACEHOLDER_LEAKED"]


def test_a_leaked_placeholder_in_the_thinking_is_caught():
    row = sample(ANNOTATION)
    bad = with_preamble(row, "I annotate [SOURCE TEXT: 587 characters] as asked.")
    assert codes(row, bad) == ["PLACEHOLDER_LEAKED"]


def test_a_marker_already_in_the_original_is_not_a_leak():
    assert leaked("Fill in {request} here.", "Fill in {request} here, said the user.") == []
    assert leaked("Fill in {request} here.") == ["{request}"]


def test_a_dropped_plan_is_caught():
    row = sample(ANNOTATION)
    i = first(row, "assistant")
    parts = split_thinking(row["messages"][i]["thinking"])
    assert parts.plan.startswith("Step 1:")
    bad = copy.deepcopy(row)
    # What the small model did: "let me draw up a plan" and straight into the steps.
    bad["messages"][i]["thinking"] = parts.join(
        opening="I need to annotate the text. Let me draw up a plan.")
    assert codes(row, bad) == ["PLAN_DROPPED"]
    # The kept plan after a new preamble passes.
    assert codes(row, with_preamble(row, "I need to annotate the text. Here is my plan.")) == []


def test_a_dropped_method_is_caught_in_mode_a():
    row = formalization_row()
    bad = with_request(row, "Reconstruct the argument in Argdown standard form.")
    found = check_quality(row, bad, "A")
    assert [f.code for f in found] == ["DELIVERABLE_DROPPED"]
    assert "formalization" in found[0].detail and "inference_rules" in found[0].detail


def test_a_dropped_question_is_caught_in_mode_a(real_rows):
    row = real_rows[2]  # "Is the proposition (4) explicitly mentioned ...?" answered "No, it is not."
    bad = with_request(row, "Reconstruct the argument and evaluate it.")
    assert "DELIVERABLE_DROPPED" in codes(row, bad)


def test_a_request_that_quotes_the_answer_is_caught():
    row = formalization_row()
    answer = row["messages"][2]["content"]
    span = " ".join(answer.split("\n")[1].split()[1:13])  # words of the gist line
    asks = ("Reconstruct the argument in Argdown, name the inference rule of each step, and "
            "attach a LaTeX formalization to every proposition as inline YAML data.")
    honest = with_request(row, asks)
    quoting = with_request(row, f"{asks} Begin with: {span}")
    assert codes(row, honest) == []
    assert codes(row, quoting) == ["REQUEST_QUOTES_ANSWER"]


def test_a_span_shared_with_the_source_text_is_not_a_quote():
    source = "Everyone who plays in the club's Sunday league holds a FIDE rating and more words"
    answer = f"<span>{source}</span>"
    assert copied_span(f"Annotate: {source}", answer, allowed=[source]) is None
    assert copied_span(f"Annotate: {source}", answer) is not None


def test_a_request_that_repeats_the_system_prompt_is_caught():
    row = sample(ANNOTATION)
    system = row["messages"][0]["content"]
    bad = with_request(row, f"{system} Annotate the reasons and conjectures of the text and "
                            "relate each to the reconstruction.")
    # The copied system prompt also promises LaTeX formalizations, which this answer lacks.
    assert codes(row, bad) == ["REQUEST_ASKS_UNDELIVERED", "REQUEST_COPIES_SYSTEM"]


def _clarified(row: dict, clarification: str) -> dict:
    new = with_preamble(row, "The user asks me to look at a text; the answer they need is an "
                             "annotation, so I plan for it.")
    new["messages"][first(row, "user")]["content"] += "\n\n" + clarification
    return new


def test_a_clarification_that_repeats_the_request_is_caught():
    row = sample(ANNOTATION)
    bad = _clarified(row, "Annotate every reason and every conjecture with a span.")
    assert codes(row, bad, "B") == ["CLARIFICATION_REPEATS"]
    good = _clarified(row, "Number the spans in the order they appear.")
    assert codes(row, good, "B") == []


def test_a_clarification_that_asks_for_something_else_is_caught():
    row = sample(ANNOTATION)
    bad = _clarified(row, "Just give me SMT-LIB code, please.")
    found = check_quality(row, bad, "B")
    assert [f.code for f in found] == ["CLARIFICATION_CONTRADICTS"]
    assert "smt" in found[0].detail


def test_an_empty_clarification_is_no_finding():
    row = sample(ANNOTATION)
    response = delivered(row["messages"][2]["content"], [], [row["messages"][2]["thinking"]])
    assert check_clarification("  ", request=instructions(row["messages"][1]["content"]),
                               response=response) == []


def test_a_request_for_something_the_answer_does_not_do_is_caught():
    row = sample(ANNOTATION)
    bad = with_request(row, "Annotate the reasons and conjectures of the text, relate each to "
                            "the reconstruction, and formalize every premise in LaTeX.")
    found = check_quality(row, bad, "A")
    assert [f.code for f in found] == ["REQUEST_ASKS_UNDELIVERED"]
    assert "formalization" in found[0].detail


@pytest.mark.parametrize("phrase", ["Write it in the user's voice.", "Match the fixed answer.",
                                    "Unlike the original request, be precise."])
def test_the_editors_instructions_leaking_into_a_request_are_caught(phrase):
    row = sample(ANNOTATION)
    bad = with_request(row, "Annotate the reasons and conjectures of the text and relate each "
                            f"to the reconstruction. {phrase}")
    assert codes(row, bad) == ["PLACEHOLDER_LEAKED"]


# A yes/no question about a reconstruction; its thinking ends with the verdict ("No.").
VERDICT = "sample/deepa2-aaac02-thinking/train/03"


def with_closing(row: dict, closing: str) -> dict:
    return with_thinking(row, closing=closing)


def test_a_closing_that_plans_again_is_caught():
    row = sample(VERDICT)
    i = first(row, "assistant")
    assert split_thinking(row["messages"][i]["thinking"]).closing == "No."
    # What Qwen2.5-1.5B wrote in place of the verdict in a pipeline run on the sample.
    bad = with_closing(row, "In my second step, I will identify reasons and conjectures in the "
                            "text. In my third step, I will answer the question.")
    assert codes(row, bad) == ["CLOSING_REPLANS"]
    assert gate(row, bad, "B").codes == ["CLOSING_REPLANS"]
    # Looking back on a step and leading to the verdict is what a closing should do.
    good = with_closing(row, "With Step 3 done, proposition (1) is nowhere in the text, so the "
                             "answer is no.")
    assert codes(row, good) == []


def test_a_step_announced_in_the_original_closing_is_not_a_new_defect():
    assert replans("Next step: I will check the text again.")
    assert not replans("After the second step the answer is clear.")
    row = sample(VERDICT)
    planned = with_closing(row, "Next, I will write the answer in the third step.")
    # The same closing is no finding against an original that already ended that way.
    assert codes(planned, with_closing(planned, "Next, I will write the answer in the third "
                                                "step. It is short.")) == []
    assert codes(row, planned) == ["CLOSING_REPLANS"]


def test_a_clarification_that_asks_nothing_is_caught():
    row = sample(ANNOTATION)
    # What Qwen2.5-1.5B appended to a user's request in a pipeline run on the sample: a remark
    # about the argument in nobody's voice, which the user would never have written.
    bad = _clarified(row, "The argument does not provide any information about the emotional "
                          "appeal of the premises.")
    assert codes(row, bad, "B") == ["CLARIFICATION_NOT_A_REQUEST"]
    assert gate(row, bad, "B").outcome is Outcome.REJECTED


@pytest.mark.parametrize("text", [
    "Number the spans in the order they appear.", "Please keep the labels short.",
    "I'd like the premises numbered.", "Also list the inference rules you use.",
    "The labels should be short.", "Spans must not overlap, make sure of that."])
def test_a_clarification_in_the_users_voice_is_a_request(text):
    assert is_request(text)


@pytest.mark.parametrize("text", [
    "The argument does not provide any information about Lena's emotional appeal.",
    "The conclusion is drawn based solely on the information provided.",
    "Codenames needs at least four players."])
def test_a_statement_about_the_text_is_not_a_request(text):
    assert not is_request(text)


# An explicit request for a reconstruction with inference rules and a LaTeX formalization.
FULL_TREATMENT = "sample/deepa2-aaac02-thinking/test/00"


def test_a_request_that_copies_the_reasoning_is_caught():
    row = sample(FULL_TREATMENT)
    # What Qwen2.5-1.5B wrote in a pipeline run: it ends with the thinking's first sentence.
    bad = with_request(row, "Reconstruct the argument in standard form with numbered premises "
                            "and conclusions, name the inference rule of each step, and "
                            "formalize every proposition in LaTeX. Let me plan this first; I "
                            "am going to reconstruct the argument in Argdown and formalize every "
                            "proposition.")
    assert codes(row, bad) == ["REQUEST_IN_ASSISTANT_VOICE", "REQUEST_QUOTES_THINKING"]
    # Naming the plan's steps is asking for the method, not copying the reasoning.
    good = with_request(row, "Identify the title and gist of the argument, reconstruct the "
                             "argument in standard form with the inference rule of each step, "
                             "and formalize premises and conclusions in LaTeX.")
    assert codes(row, good) == []


# A fallacy question whose original request is "Your turn." and whose answer is SMT-LIB code.
SMT_FOLLY = "sample/deepa2-folly-thinking/train/05"


@pytest.mark.parametrize("planning", [
    "Let me draw up a plan before I start.",  # seen in a pipeline run, after the instructions
    "I will start by reconstructing the argument.", "The user wants a formal check."])
def test_the_assistant_planning_inside_the_request_is_caught(planning):
    row = sample(SMT_FOLLY)
    asks = "Write an SMT-LIB program that checks every inference step of the argument."
    assert codes(row, with_request(row, asks)) == []
    assert codes(row, with_request(row, f"{asks} {planning}")) == ["REQUEST_IN_ASSISTANT_VOICE"]


@pytest.mark.parametrize("users_words", [
    "I will paste the text below.", "Let me know which inference fails.",
    "I'd like you to check every inference step."])
def test_a_user_speaking_in_the_first_person_is_no_finding(users_words):
    row = sample(SMT_FOLLY)
    asks = "Write an SMT-LIB program that checks every inference step of the argument."
    assert codes(row, with_request(row, f"{asks} {users_words}")) == []


def test_the_question_of_the_original_request_may_be_asked_in_other_framing():
    row = sample(VERDICT)
    original = first(row, "user")
    assert "answer this question: 'Is proposition (1) explicitly mentioned in the text?'" in \
        row["messages"][original]["content"]
    # A retry in a pipeline run: "the question: ..." differs from the original's "this question:"
    # by one word, and the thinking quotes the same question; that is asking, not copying.
    asks = with_request(row, "Reconstruct the argument in standard form with numbered "
                             "propositions, then answer the question: is proposition (1) "
                             "explicitly mentioned in the text? Answer yes or no.")
    assert "REQUEST_QUOTES_THINKING" not in codes(row, asks)


# A yes/no question in quotes after a vague instruction.
IMPLICIT_PREMISE = "sample/deepa2-aaac03-thinking/validation/02"


def test_a_question_the_new_request_no_longer_asks_is_caught():
    row = sample(IMPLICIT_PREMISE)
    # What Qwen2.5-1.5B wrote in a pipeline run: the question about the implicit premise is gone.
    bad = with_request(row, "Can you please explain why Grandma won't be coming to stay with us "
                            "this year? Please provide the reconstruction of the argument in "
                            "standard form.")
    found = check_quality(row, bad, "A")
    assert [f.code for f in found] == ["DELIVERABLE_DROPPED"]
    assert "Does the reconstruction need a premise the text leaves implicit?" in found[0].detail
    good = with_request(row, "Reconstruct the argument in standard form, then answer: does the "
                             "reconstruction need a premise that the text leaves implicit?")
    assert codes(row, good) == []


def test_a_vague_question_to_the_assistant_may_go():
    assert questions("Can you take care of this one?") == []
    assert questions("Thanks. So, can you take care of this one?") == []
    assert questions("Is (1) an intermediate conclusion? Answer briefly.") == [
        "Is (1) an intermediate conclusion?"]


@pytest.mark.parametrize("echo", [
    "I will respond with a JSON object in the following order of fields: `opening`, then "
    "`closing`, then `clarification`.",
    "The assistant's private reasoning explains that the tone is aligned with the request."])
def test_the_prompts_own_words_echoed_into_a_thinking_are_a_leak(echo):
    # Both seen in closings written by Qwen2.5-1.5B in a pipeline run on the sample.
    row = sample(VERDICT)
    assert codes(row, with_closing(row, f"So the answer is no. {echo}")) == ["PLACEHOLDER_LEAKED"]


# A reconstruction whose thinking opens with prose and a two-step plan.
TWO_STEPS = "sample/deepa2-aaac02-thinking/validation/05"


def test_a_frame_that_copies_the_middles_outline_is_caught():
    row = sample(TWO_STEPS)
    # What Qwen2.5-1.5B wrote as the opening's prose in a fresh-clone pipeline run: the outline
    # of the middle it was shown, with its fences left open, before the kept plan.
    bad = with_preamble(row, "A plan first. The aim is to reconstruct the argument in standard "
                             "form.\n\n## Step 1: Identify the title and gist of the argument\n"
                             "```argdown\n## Step 2: Reconstruct the argument in standard form\n"
                             "```argdown")
    assert codes(row, bad) == ["FRAME_HAS_MARKUP"]
    assert codes(row, with_preamble(row, "A plan first: title and gist, then the premises.")) == []


def test_a_latex_backslash_read_as_a_json_escape_is_caught():
    row = sample(FORMALIZATION)
    asks = ("Reconstruct the argument in Argdown, name the inference rule of each step, and "
            "attach a LaTeX formalization to every proposition as inline YAML data, with "
            "quantifiers such as \\forall.")
    assert codes(row, with_request(row, asks)) == []
    # json.loads('"\\forall"') is a backslash and "forall"; '"\forall"' is a form feed.
    broken = with_request(row, asks.replace("\\forall", "\forall"))
    assert "\x0c" in broken["messages"][1]["content"]
    assert codes(row, broken) == ["TEXT_HAS_CONTROL_CHARS"]
