"""Quality checks: each one on a realistic row from the bundled sample, degraded the way a small
model degrades it, and a clean rewrite of the same row that passes them all."""

from __future__ import annotations

import copy
import importlib.resources
import json
from pathlib import Path

import pytest

from argalign.core.deliverables import METHODS, delivered, requested
from argalign.core.records import Outcome
from argalign.core.schema import parse_conversation, split_source
from argalign.core.thinking import ThinkingParts, split_thinking
from argalign.programs.gold import training_row
from argalign.scoring.checks import (
    CODES,
    check_clarification,
    check_closing,
    check_method_named,
    check_opening,
    check_opening_prose,
    check_quality,
    check_request,
    content_words,
    copied_span,
    echoes,
    instructions,
    is_request,
    leaked,
    missing_references,
    questions,
    refers_back,
    repeated_sentences,
    replans,
    states_verdict,
    third_person,
    tool_calls_as_text,
    trivial_change,
    trivial_request,
    what_follows,
)
from argalign.scoring.gate import gate

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


def quality(original: dict, aligned: dict, mode: str = "A") -> list:
    """The gate's findings, less OPENING_SKIPS_METHOD: the openings these tests write are about
    other defects and name no method (that check has its own tests below)."""
    return [f for f in check_quality(original, aligned, mode) if f.code != "OPENING_SKIPS_METHOD"]


def codes(original: dict, aligned: dict, mode: str = "A") -> list[str]:
    return sorted({f.code for f in quality(original, aligned, mode)})


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
                          "REQUEST_ASKS_UNDELIVERED", "REQUEST_SKIPS_TASK", "REQUEST_QUOTES_ANSWER",
                          "REQUEST_COPIES_SYSTEM", "REQUEST_QUOTES_THINKING",
                          "REQUEST_IN_ASSISTANT_VOICE",
                          "CLARIFICATION_REPEATS", "CLARIFICATION_CONTRADICTS",
                          "CLOSING_REPLANS", "CLARIFICATION_NOT_A_REQUEST", "FRAME_HAS_MARKUP",
                          "TEXT_HAS_CONTROL_CHARS", "THINKING_ECHOES_REQUEST",
                          "THINKING_THIRD_PERSON", "FAKE_TOOL_CALL", "CLOSING_COPIES_INPUT",
                          "CLOSING_REFERS_TO_MISSING", "CLOSING_DROPS_VERDICT",
                          "REQUEST_REFERS_TO_NOTHING", "METHOD_UNEXPECTED",
                          "OPENING_SKIPS_METHOD", "OPENING_RESTATES_PLAN",
                          "OPENING_NON_SEQUITUR", "OPENING_CLAIMS_DONE",
                          "OPENING_PREJUDGES_ANSWER", "OPENING_REPEATS_ITSELF"}


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


@pytest.mark.parametrize("opening", [
    # The source text's length, read off the placeholder the model saw instead of the text.
    "I annotate the text first. The text contains 2949 characters, divided into paragraphs.",
    "I need the reconstruction first. The text I have in mind is 527 characters long.",
])
def test_the_length_of_the_placeholder_in_a_thinking_is_a_leak(opening):
    row = sample(ANNOTATION)
    assert codes(row, with_preamble(row, opening)) == ["PLACEHOLDER_LEAKED"]


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
    found = quality(row, bad, "A")
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
    found = quality(row, bad, "B")
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
    found = quality(row, bad, "A")
    assert [f.code for f in found] == ["REQUEST_ASKS_UNDELIVERED"]
    assert "formalization" in found[0].detail


@pytest.mark.parametrize("request_text, skips", [
    # Rewrites of a vague request ("Your turn.") that the local model wrote: an unrelated
    # question about the text's topic, and a request for a by-product of the analysis only.
    # Neither asks for the reconstruction the answer is.
    ("How can the worry about Monday's meeting be reconciled with the rest of the text? What "
     "else could Lena do?", True),
    ("Please give the argument's title and gist in a single line.", True),
    ("Reconstruct the argument in Argdown standard form with a title and a gist.", False),
])
def test_a_request_that_does_not_ask_for_what_the_answer_mainly_is_is_caught(request_text, skips):
    row = training_row("sample/deepa2-aaac03-thinking/train/07")  # "Your turn." + the text
    found = [f.code for f in quality(row, with_request(row, request_text), "A")]
    assert ("REQUEST_SKIPS_TASK" in found) is skips, found


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
    # It also lost the verdict the original closing stated.
    assert codes(row, bad) == ["CLOSING_DROPS_VERDICT", "CLOSING_REPLANS"]
    assert gate(row, bad, "B").codes == ["CLOSING_DROPS_VERDICT", "CLOSING_REPLANS"]
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
    assert codes(row, planned) == ["CLOSING_DROPS_VERDICT", "CLOSING_REPLANS"]


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
    assert codes(row, with_request(row, SMT_ASKS)) == []
    assert codes(row, with_request(row, f"{SMT_ASKS} {planning}")) == ["REQUEST_IN_ASSISTANT_VOICE"]


# An explicit request for the SMT row: its task and the methods its plan carries out.
SMT_ASKS = ("Write an SMT-LIB program that checks every inference step of the argument, after "
            "reconstructing it and formalizing its premises.")


@pytest.mark.parametrize("users_words", [
    "I will paste the text below.", "Let me know which inference fails.",
    "I'd like you to check every inference step."])
def test_a_user_speaking_in_the_first_person_is_no_finding(users_words):
    row = sample(SMT_FOLLY)
    assert codes(row, with_request(row, f"{SMT_ASKS} {users_words}")) == []


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
    found = quality(row, bad, "A")
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


@pytest.mark.parametrize("echo, found", [
    ("I will respond with a JSON object in the following order of fields: `opening`, then "
     "`closing`, then `clarification`.", ["PLACEHOLDER_LEAKED"]),
    ("The assistant's private reasoning explains that the tone is aligned with the request.",
     ["PLACEHOLDER_LEAKED", "THINKING_THIRD_PERSON"])])
def test_the_prompts_own_words_echoed_into_a_thinking_are_a_leak(echo, found):
    # Both seen in closings written by Qwen2.5-1.5B in a pipeline run on the sample.
    row = sample(VERDICT)
    assert codes(row, with_closing(row, f"So the answer is no. {echo}")) == found


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
    assert "FRAME_HAS_MARKUP" in codes(row, bad)  # (its step line also repeats its aim)
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


# --- a thinking's frame speaking with the user's words, or of things that are not there ------

# A rhetoric task with a tool round trip; its request asks to "Assess the rhetorical style ...".
RHETORIC = "sample/deepa2-aaac01-thinking/test/06"
# A yes/no question of six content words, quoted in the request.
JONAS = "sample/deepa2-aaac01-thinking/train/06"


@pytest.mark.parametrize("row_id, preamble", [
    # Written by the model in real runs as the assistant's opening.
    (VERDICT, "Please provide a detailed explanation of your reasoning."),
    (RHETORIC, "I need to assess the rhetorical style of all propositions. Consider tone, "
               "persuasion, and complexity. Use tools as appropriate."),
    # A thinking replaced by the user's request, in the user's voice.
    (RHETORIC, "I want you to assess the rhetorical style of all propositions."),
    (RHETORIC, "You should assess the rhetorical style of the premises first."),
    (RHETORIC, "Your task is to assess the rhetorical style of the premises."),
    # The user's question verbatim, and nothing else.
    (JONAS, "Does the text state explicitly that Jonas is not a former player of Millbrook FC?"),
])
def test_a_thinking_that_speaks_with_the_users_words_is_caught(row_id, preamble):
    row = sample(row_id)
    assert codes(row, with_preamble(row, preamble)) == ["THINKING_ECHOES_REQUEST"]


@pytest.mark.parametrize("preamble", [
    "Let me draw up a plan.", "Better to set up a plan before I start.",
    "I need to assess the rhetorical style of the premises. Let me draw up a plan.",
    "The aim is to assess the rhetorical style of the premises, with a tool."])
def test_the_assistant_restating_its_task_is_no_echo(preamble):
    row = sample(RHETORIC)
    assert codes(row, with_preamble(row, preamble)) == []


def test_a_closing_that_quotes_the_request_cites_it():
    # The real data's own closing: "Now I can address the query: 'I want you to ... code.'"
    request = ("Analyse the given text so that you can address the following query: 'I want you "
               "to assess the rhetorical style of all propositions. Consider tone, persuasion and "
               "complexity.'")
    assert echoes("Now I can address the query: 'I want you to assess the rhetorical style of "
                  "all propositions. Consider tone, persuasion and complexity.'", request) == []
    assert echoes("Yes, Jasmine Donovan's position is deductively closed.",
                  "Jasmine Donovan holds that 6 are all true. Is that position deductively "
                  "closed?") == []


@pytest.mark.parametrize("closing", [
    "The assistant reads the request and concludes that the premises are mostly logos.",
    "Next the assistant will attach the profiles to the premises."])
def test_a_thinking_about_the_assistant_in_the_third_person_is_caught(closing):
    row = sample(RHETORIC)
    assert codes(row, with_closing(row, closing)) == ["THINKING_THIRD_PERSON"]


@pytest.mark.parametrize("closing", [
    'Tool call: rhetorical_analysis({"sentences": ["Tomasz has never had a FIDE rating."]})',
    'I pass the premises on. rhetorical_analysis({"sentences": ["(1)", "(2)"]})',
    '<tool_call>{"name": "rhetorical_analysis"}</tool_call>'])
def test_a_tool_call_written_into_the_thinking_is_caught(closing):
    row = sample(RHETORIC)
    assert tool_calls_as_text(split_thinking(row["messages"][2]["thinking"]).closing) == []
    assert codes(row, with_closing(row, closing)) == ["FAKE_TOOL_CALL"]


def test_a_closing_that_copies_the_request_or_the_source_is_caught():
    row = sample(FULL_TREATMENT)
    request = instructions(row["messages"][1]["content"])
    source = split_source(row["messages"][1]["content"])[1]
    copying = "I now have what was asked: Argdown standard form, inference rules, and a LaTeX " \
              "formalization of each premise and conclusion."
    assert copied_span(copying, request)
    assert codes(row, with_closing(row, copying)) == ["CLOSING_COPIES_INPUT"]
    quoting = f"Putting it together: {' '.join(source.split()[20:32])}"
    assert codes(row, with_closing(row, quoting)) == ["CLOSING_COPIES_INPUT"]
    assert codes(row, with_closing(row, "Putting it together: the reconstruction, its rules "
                                        "and the formulas.")) == []


def test_a_closing_that_points_at_code_the_thinking_lacks_is_caught():
    row = sample(VERDICT)
    thinking = row["messages"][first(row, "assistant")]["thinking"]
    assert "(declare-" not in thinking
    # What the model wrote in a real run, over a thinking without any code.
    bad = with_closing(row, "The SMT-LIB code snippet above implements the check, so the "
                            "answer is no.")
    assert codes(row, bad) == ["CLOSING_REFERS_TO_MISSING"]
    assert codes(row, with_closing(row, "The reconstruction above settles it: no.")) == []


def test_a_closing_may_point_at_what_its_thinking_or_answer_has():
    middle = "```argdown\n(1) A.\n(2) B.\n```"
    assert missing_references("The Argdown reconstruction above shows it.", middle) == []
    assert missing_references("The table above shows it.", middle)
    # What lies below a thinking is its answer: SMT-LIB code there may be announced.
    assert missing_references("The SMT-LIB code below checks each step.", middle,
                              "```\n(declare-fun p () Bool)\n```") == []
    assert missing_references("The SMT-LIB code above checks each step.", middle,
                              "```\n(declare-fun p () Bool)\n```")
    assert missing_references("Now I present the code.", "", "no code here")


def test_a_closing_that_drops_the_verdict_is_caught():
    row = sample(VERDICT)
    # What the model wrote in place of "No." in a real run.
    bad = with_closing(row, "Now that I have the argument in standard form, I can answer the "
                            "question.")
    assert codes(row, bad) == ["CLOSING_DROPS_VERDICT"]
    assert codes(row, with_closing(row, "Proposition (1) is nowhere in the text, so the answer "
                                        "is no.")) == []
    # A closing that was no verdict may become any other closing.
    row = sample(FULL_TREATMENT)
    assert codes(row, with_closing(row, "Now I write out the final reconstruction.")) == []


@pytest.mark.parametrize("back", [
    "Use the same format as the previous request.", "Do it as before.",
    "Keep the layout as in my last message.", "Reconstruct it again, please.",
    "Build on the previous answer."])
def test_a_request_that_refers_back_to_nothing_is_caught(back):
    row = sample(SMT_FOLLY)
    assert codes(row, with_request(row, f"{SMT_ASKS} {back}")) == ["REQUEST_REFERS_TO_NOTHING"]


def _check_later_turn(request: str, original: str) -> list[str]:
    row = sample(SMT_FOLLY)
    response = delivered(row["messages"][2]["content"], [], [row["messages"][2]["thinking"]])
    return [f.code for f in check_request(
        request, original=original, answer="", system="", source="", response=response,
        first_turn=False)]


def test_a_later_turn_may_refer_back_where_the_original_did():
    asks = "Reconstruct the argument, formalize it and write SMT-LIB code for it"
    assert _check_later_turn(f"{asks}, as before.", "Same again, please.") == []
    assert _check_later_turn(f"{asks}, as before.", "Your turn.") == ["REQUEST_REFERS_TO_NOTHING"]
    assert _check_later_turn(f"{asks}.", "Your turn.") == []


def test_a_request_that_leaves_a_major_method_unexpected_is_caught():
    row = sample(VERDICT)  # a yes/no answer reached through a reconstruction and an annotation
    bad = with_request(row, "Answer this question: is proposition (1) explicitly mentioned in "
                            "the text? Answer yes or no.")
    found = quality(row, bad, "A")
    assert [f.code for f in found] == ["METHOD_UNEXPECTED"]
    assert METHODS["reconstruction"] in found[0].detail and METHODS["annotation"] in found[0].detail
    good = with_request(row, "Reconstruct the argument in standard form, annotate the reasons and "
                             "conjectures in the text, then answer this question: is proposition "
                             "(1) explicitly mentioned in the text? Answer yes or no.")
    assert codes(row, good) == []


def _all_rows(real_rows: list[dict]) -> list[dict]:
    return [json.loads(line) for path in sorted(SAMPLE.glob("*/*.jsonl"))
            for line in path.read_text("utf-8").splitlines() if line.strip()] + real_rows


def test_no_original_trips_the_frame_and_request_checks(real_rows):
    """The new checks on every sample and real row's original, as if it were a rewrite of itself
    and of nothing: the data's own habits (a quoted request in a closing, "Let me draw up a
    plan", "Yes, ... is deductively closed") are no defect. METHOD_UNEXPECTED is left out: the
    originals under-ask by design, that is what Mode A repairs."""
    found = []
    for row in _all_rows(real_rows):
        conversation = parse_conversation(row, "row")
        for number, turn in enumerate(conversation.turns):
            user = conversation.messages[turn.user_index].content or ""
            request, source = instructions(user), (split_source(user) or ("", "", ""))[1]
            if number == 0 and refers_back(request):
                found.append(("REQUEST_REFERS_TO_NOTHING", request))
            for j in turn.assistant_indices:
                thinking = conversation.messages[j].thinking
                if not thinking:
                    continue
                parts = split_thinking(thinking)
                frame = f"{parts.preamble}\n{parts.closing}"
                answer = what_follows(conversation, turn, j)
                found += [(code, thinking) for code, hit in (
                    ("THINKING_ECHOES_REQUEST", echoes(parts.preamble, request)
                     + echoes(parts.closing, request)),
                    ("THINKING_THIRD_PERSON", third_person(frame)),
                    ("FAKE_TOOL_CALL", tool_calls_as_text(frame)),
                    ("CLOSING_REFERS_TO_MISSING",
                     missing_references(parts.closing, parts.middle, answer))) if hit]
                # Checked against the thinking itself (the real data's closing quotes its request).
                found += [(f.code, thinking) for f in
                          check_opening(parts.opening, original_thinking=thinking, request=request)
                          + check_closing(parts.closing, original_thinking=thinking,
                                          request=request, source=source, answer=answer)]
    assert found == []


# --- a rewrite that changed nothing that matters ends unchanged ---------------------------

def test_a_one_word_swap_in_the_request_is_unchanged():
    row = sample(FULL_TREATMENT)
    old = instructions(row["messages"][1]["content"])
    swapped = with_request(row, old.split("\n\n")[0].replace("full treatment", "whole treatment"))
    assert trivial_request(old, instructions(swapped["messages"][1]["content"]))
    verdict = gate(row, swapped, "A")
    assert verdict.outcome is Outcome.UNCHANGED and "request" in verdict.reason()


def test_the_real_datas_query_called_a_question_is_unchanged():
    old = ("Analyse the given text so that you can and do answer the following query: 'Is the "
           "proposition (4) explicitly mentioned in the original presentation of the argument?'")
    assert trivial_request(old, old.replace("following query:", "following question:"))
    assert not trivial_request(old, "Reconstruct the argument in standard form and formalize it, "
                                    "then answer: " + old.split(": ", 1)[1])


def test_a_closing_sentence_deleted_is_unchanged():
    row = sample("sample/deepa2-aaac01-thinking/train/00")
    i = first(row, "assistant")
    closing = split_thinking(row["messages"][i]["thinking"]).closing
    assert closing.endswith("\n\nThat completes the reconstruction.")
    shorter = with_closing(row, closing.rsplit("\n\n", 1)[0])
    verdict = gate(row, shorter, "B")
    assert verdict.outcome is Outcome.UNCHANGED and "thinking" in verdict.reason()


def test_a_request_that_now_names_the_method_is_aligned():
    row = sample(SMT_FOLLY)  # "Your turn.", answered with a reconstruction, formulas and SMT-LIB
    real = with_request(row, "Reconstruct the argument in standard form, formalize its premises "
                             "and write SMT-LIB code that checks every inference step.")
    assert gate(row, real, "A").outcome is Outcome.ALIGNED


def test_a_clarification_is_never_trivial():
    row = sample(ANNOTATION)
    clarified = copy.deepcopy(row)
    clarified["messages"][1]["content"] += "\n\nNumber the spans in the order they appear."
    assert trivial_change(row, clarified, "B") is None
    assert gate(row, clarified, "B").outcome is Outcome.ALIGNED


# --- words that refer back, and answers that deliver more than one task ---------------------------

TONE_THEN_ARGDOWN = ("The premises are phrased in a scientific tone; their appeal is mostly to "
                     "logos.\n\n```argdown\n(1) Every member of the club plays in the league.\n"
                     "(2) Anna is a member of the club.\n-----\n(3) Anna plays in the league.\n```")


def test_an_answer_that_also_delivers_a_reconstruction_makes_it_askable():
    # A tone check answered with the tone result and then the reconstruction in Argdown: the
    # reconstruction is delivered too, so a request that asks for both asks for nothing more.
    response = delivered(TONE_THEN_ARGDOWN, [], ["I check the tone, then write the argument."])
    assert "reconstruction" in response.deliverables
    findings = check_request(
        "Reconstruct the argument in Argdown and check the tone of its premises.",
        original="Check the tone of the premises.", answer=TONE_THEN_ARGDOWN, system="",
        source="", response=response)
    assert "REQUEST_ASKS_UNDELIVERED" not in [f.code for f in findings]


def test_a_follow_up_that_refers_back_to_the_reconstruction_asks_no_new_task():
    response = delivered("Yes.", [], ["I look at the inference from (1) and (2) to (3)."])
    request = "Is the argument you reconstructed valid? Answer yes or no."
    assert "reconstruction" not in requested(request)
    findings = check_request(request, original="Is it valid?", answer="Yes.", system="",
                             source="", response=response, first_turn=False)
    assert "REQUEST_ASKS_UNDELIVERED" not in [f.code for f in findings]
    # A request that asks for the reconstruction anew still asks for it.
    assert "reconstruction" in requested("Reconstruct the argument, then say if it is valid.")


@pytest.mark.parametrize("text", ["your reconstruction", "the previously reconstructed argument",
                                  "the argument you have formalized", "the map above"])
def test_back_references_are_no_asks(text):
    assert not requested(f"Look at {text} once more.") & {"reconstruction", "formalization",
                                                          "argument_map"}


# --- an opening that says why the request calls for the plan ---------------------------------------

def _with_preamble(row: dict, preamble: str) -> dict:
    new = copy.deepcopy(row)
    message = next(m for m in new["messages"] if m.get("thinking"))
    message["thinking"] = split_thinking(message["thinking"]).join(preamble=preamble)
    return new


def test_an_opening_that_names_none_of_the_plans_methods_is_caught(real_rows):
    rows = [r for r in real_rows if delivered_of(r).major_methods]
    assert rows
    for row in rows:
        generic = _with_preamble(row, "This requires a complex analysis. Let me draw up a plan.")
        assert "OPENING_SKIPS_METHOD" in [f.code for f in check_quality(row, generic, "B")]
        words = METHODS[sorted(delivered_of(row).major_methods)[0]]
        fitting = _with_preamble(row, f"Whether this holds turns on the argument's structure, so "
                                      f"I will {words} first.")
        assert "OPENING_SKIPS_METHOD" not in [f.code for f in check_quality(row, fitting, "B")]


def test_an_opening_that_copies_the_method_from_the_request_names_no_method():
    response = delivered("No.", [], ["Step 1: Reconstruct the argument in standard form\n"
                                     "## Step 1: Reconstruct the argument in standard form\n"])
    request = "Reconstruct the argument in standard form, then answer."
    assert check_method_named("Reconstruct the argument in standard form.", response=response,
                              request=request)
    assert not check_method_named("I will reconstruct the argument in standard form first.",
                                  response=response, request=request)


def delivered_of(row: dict):
    from argalign.scoring.comparison import turn_views

    return turn_views(row)[0].delivered


# --- openings: why this plan, not the plan again (issue 19) -----------------------------------

def test_an_opening_that_restates_the_plan_in_prose_is_caught():
    row = sample(VERDICT)  # plan: reconstruct; identify reasons and conjectures; answer
    # The shape Qwen2.5-1.5B wrote on a real row: the plan's step titles strung together in a
    # sentence right before the plan lists them.
    bad = with_preamble(row, "To answer the question I need to reconstruct the argument in "
                             "standard form, identify reasons and conjectures in the text, and "
                             "answer the question.")
    assert codes(row, bad) == ["OPENING_RESTATES_PLAN"]
    # The same in other word forms (Qwen on a real row: "We will proceed by identifying the
    # title, gist, and conclusion, extracting the source text, creating an inference graph").
    bad = with_preamble(row, "We will proceed by reconstructing the argument in standard form, "
                             "identifying the reasons and conjectures in the text, and answering "
                             "the question.")
    assert codes(row, bad) == ["OPENING_RESTATES_PLAN"]
    # Naming the method and why it is needed is what an opening should do.
    good = with_preamble(row, "Whether the proposition is explicit can only be judged against a "
                              "reconstruction, so I reconstruct the argument first.")
    assert codes(row, good) == []


@pytest.mark.parametrize("nod", ["I agree.", "Sure!", "Certainly,", "Of course.",
                                 "As an AI language model, I see the task."])
def test_an_opening_that_acknowledges_nobody_is_caught(nod):
    row = sample(VERDICT)
    # Qwen2.5-1.5B on a real row (Mode B): "I agree. Let's begin by analyzing the text ..."
    bad = with_preamble(row, f"{nod} Whether the proposition is explicit can only be judged "
                             "against a reconstruction, so I reconstruct the argument first.")
    assert codes(row, bad) == ["OPENING_NON_SEQUITUR"]


@pytest.mark.parametrize("claim", [
    # Qwen2.5-1.5B on a real row, before the steps that do the work: "I have integrated the
    # data into my argdown code, which is shown below."
    "I have reconstructed the argument and identified its reasons, so the answer follows from "
    "the steps below.",
    # Qwen2.5-1.5B in a fresh-clone pipeline run, before the plan: "I started by reconstructing
    # the argument in standard form. ... I then proceeded to create an informal argument map".
    "As the question needs it, I started by reconstructing the argument in standard form.",
    # Copied by the bootstrap-compiled Mode A program from its training demo into two test
    # rows, before the plan that does it: "I marked each passage in the text and linked each to
    # its proposition of my reconstruction."
    "I marked each passage in the text and linked each to its proposition of my reconstruction.",
    "I constructed the argument in standard form with inference rules first."])
def test_an_opening_that_claims_the_work_as_done_is_caught(claim):
    row = sample(VERDICT)
    assert codes(row, with_preamble(row, claim)) == ["OPENING_CLAIMS_DONE"]
    # Without any plan or middle after it, there is nothing it pre-empts.
    assert check_opening_prose(claim, ThinkingParts("x", "", ""), None) == []


@pytest.mark.parametrize("leak", ["as stated in the original closing",
                                  "in the original question's style",
                                  "as I have rewritten the request to ask"])
def test_the_editors_view_of_the_row_is_a_leak(leak):
    # Qwen2.5-1.5B, Mode A on real rows: "... as stated in the original closing.", "I have
    # rewritten the request to ask for assistance in assessing the rhetorical style ..."
    row = sample(VERDICT)
    bad = with_preamble(row, f"I reconstruct the argument first, {leak}.")
    assert codes(row, bad) == ["PLACEHOLDER_LEAKED"]


def test_an_opening_that_says_the_verdict_before_the_steps_is_caught():
    row = sample(VERDICT)  # the thinking ends with "No."
    assert states_verdict(split_thinking(row["messages"][2]["thinking"]).closing)
    # Qwen2.5-1.5B on a real row, ahead of the verdict "Yes.": "The argument in standard form,
    # formalized, and mapped, with no explicit mention of proposition (9) ..."
    bad = with_preamble(row, "With no explicit mention of it in the text, I reconstruct the "
                             "argument to confirm it.")
    assert codes(row, bad) == ["OPENING_PREJUDGES_ANSWER"]
    # Asking whether is not answering.
    good = with_preamble(row, "Whether or not the proposition is explicit can only be judged "
                              "against a reconstruction, so I reconstruct the argument first.")
    assert codes(row, good) == []


def test_an_opening_that_says_the_original_opening_again_is_caught():
    row = sample(VERDICT)
    original = split_thinking(row["messages"][2]["thinking"]).preamble
    # Qwen2.5-1.5B on a real row (Mode B): its first sentences ended with the original opening,
    # one word added, and the original followed: "... This requires a complex analysis. Let me
    # draw up a plan. I need to augment ... This requires a complex analysis. Let me draw up a
    # plan."
    bad = with_preamble(row, "Whether the proposition is explicit can only be judged against a "
                             f"reconstruction, so I reconstruct first. {original} {original}")
    assert codes(row, bad) == ["OPENING_REPEATS_ITSELF"]
    assert codes(row, with_preamble(row, "Whether the proposition is explicit can only be "
                                         f"judged against a reconstruction. {original}")) == []


def test_an_opening_that_says_the_original_opening_again_in_other_words_is_caught():
    row = sample(VERDICT)
    original = split_thinking(row["messages"][2]["thinking"]).preamble
    assert "This takes a few steps" in original
    # Qwen2.5-1.5B in a pipeline run: the original opening again, "This takes" as "This will
    # take", before the original itself.
    again = original.replace("This takes", "This will take")
    bad = with_preamble(row, f"I reconstruct the argument first. {again} {original}")
    assert codes(row, bad) == ["OPENING_REPEATS_ITSELF"]
    # Two short sentences that differ in their one word of substance are two sentences.
    assert repeated_sentences("I map it first. I formalize it first.") == []


def test_a_formula_of_the_openings_own_is_caught():
    # Qwen2.5-1.5B in a pipeline run restated a premise's formula in a new opening, wrongly
    # ("->" for "or") and with "\\forall" turned into a form feed by the JSON.
    row = sample(VERDICT)
    bad = with_preamble(row, "To settle it I reconstruct first; the premise is "
                             "$\\forall x: (F(x) \\rightarrow (G(x) \\rightarrow H(x)))$.")
    assert codes(row, bad) == ["FRAME_HAS_MARKUP"]


def test_an_opening_that_says_the_closing_first_is_caught():
    row = sample(RHETORIC)
    closing = split_thinking(row["messages"][2]["thinking"]).closing
    assert len(content_words(closing)) >= 4
    # Qwen2.5-1.5B in a fresh-clone pipeline run: the closing's announcement of the tool call
    # copied in front of the plan.
    bad = with_preamble(row, f"{closing} I profile the premises' style, so I reconstruct first.")
    assert "OPENING_REPEATS_ITSELF" in codes(row, bad)
