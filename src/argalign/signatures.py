"""DSPy signatures. Each docstring is the instruction the optimizers start from and rewrite.

The LM never sees a field it does not need and never returns text that stays the same:
the source text is shown as an excerpt and carried over by the module, fenced blocks of the
thinking stay verbatim, and only the opening and closing prose of a thinking is rewritten.
"""

from __future__ import annotations

import dspy


class RewriteRequest(dspy.Signature):
    """Mode A. You edit a training conversation in which a user's request is vaguer than the
    assistant's answer. Write a new request, in the user's voice, that asks for exactly what
    the fixed answer delivers: the task, the method (for example an Argdown reconstruction,
    a formalization, an annotation, SMT-LIB code, a yes/no verdict), the output format, the
    level of detail and any tool the assistant calls. A reader of the new request alone should
    be able to predict the answer's approach, and a reader of the answer alone should be able
    to reconstruct the request. Do not solve the task, do not quote the answer, and do not
    restate the source text: it is appended after your request unchanged. Write one or two
    short paragraphs of plain instructions."""

    system_prompt: str = dspy.InputField(desc="The system message of the conversation, if any.")
    history: str = dspy.InputField(desc="Earlier turns, shortened; empty for a first turn.")
    original_request: str = dspy.InputField(
        desc="The current request with its source text replaced by a placeholder."
    )
    source_excerpt: str = dspy.InputField(desc="The beginning of the source text, for context.")
    answer: str = dspy.InputField(desc="The assistant's final answer in this turn, shortened.")
    tool_calls: str = dspy.InputField(desc="Tools the assistant calls in this turn, or 'none'.")
    plan: str = dspy.InputField(desc="How the assistant's reasoning is organised: its steps.")
    request: str = dspy.OutputField(
        desc="The new request: instructions only, without the source text."
    )


class _RewriteThinking(dspy.Signature):
    """Rewrite the opening and the closing of an assistant's private reasoning."""

    request: str = dspy.InputField(desc="The user's request (source text omitted).")
    position: str = dspy.InputField(
        desc="Where this reasoning sits: 'first reply' or 'after tool results'."
    )
    original_opening: str = dspy.InputField(desc="The current opening of the reasoning.")
    middle_outline: str = dspy.InputField(desc="The headings and blocks of the kept middle part.")
    original_closing: str = dspy.InputField(desc="The current closing of the reasoning.")
    answer: str = dspy.InputField(desc="What the assistant answers or calls next, shortened.")
    opening: str = dspy.OutputField(desc="The new opening: the request restated and a plan.")
    closing: str = dspy.OutputField(desc="The new closing, one to three sentences.")


class RewriteThinkingForRequest(_RewriteThinking):
    """Mode A. The user's request was rewritten to match the assistant's answer; now make the
    assistant's private reasoning follow from that request. You write only the opening and
    the closing of the reasoning; its middle part (steps, Argdown and code blocks) stays as
    it is. The opening, in the first person, restates what the request asks for and sets out
    a plan that leads to the steps in the middle. The closing connects the last step to the
    final answer or tool call. Be concrete and brief; never contradict the middle part or
    the answer."""


class RewriteThinkingForAnswer(_RewriteThinking):
    """Mode B. The user's request stays as it is, although the assistant's answer goes well
    beyond what it literally asks. Make the assistant's private reasoning explain, in the
    first person, why this rich answer is the right response to this request: how the
    assistant reads the request, which method it chooses and why, and a plan that leads to
    the steps in the middle part. You write only the opening and the closing; the middle
    part (steps, Argdown and code blocks) stays as it is. If a single short sentence added to
    the request would remove a real ambiguity, give it as the clarification; otherwise leave
    the clarification empty. Never contradict the middle part or the answer."""

    clarification: str = dspy.OutputField(
        desc="At most one short sentence to append to the request, or an empty string."
    )


class RewriteWholeThinking(dspy.Signature):
    """Rewrite the assistant's private reasoning in full so that it starts from the user's
    request, restates it in the first person, plans, and works its way to the given answer
    and tool calls. Keep every Argdown and code block that the answer relies on."""

    request: str = dspy.InputField(desc="The user's request (source text omitted).")
    position: str = dspy.InputField(desc="'first reply' or 'after tool results'.")
    thinking: str = dspy.InputField(desc="The current reasoning.")
    answer: str = dspy.InputField(desc="What the assistant answers or calls next, shortened.")
    new_thinking: str = dspy.OutputField(desc="The full new reasoning.")


class PredictAnswer(dspy.Signature):
    """Judge, forward direction. Read a user's request to an assistant that analyses
    arguments. Predict what a good answer does: the task it performs, the method (for
    example Argdown reconstruction, formalization, annotation, code, a short verdict), the
    format and the level of detail, and the tools it calls. Describe the answer; do not
    write it."""

    request: str = dspy.InputField(desc="The user's request, shortened.")
    predicted_answer: str = dspy.OutputField(desc="Two to four sentences describing the answer.")


class ReconstructRequest(dspy.Signature):
    """Judge, backward direction. Read an assistant's answer (and the tools it called).
    Reconstruct the request the user most likely made: the task, the method, the format and
    level of detail they asked for. Write it as the user's request in two to four
    sentences."""

    answer: str = dspy.InputField(desc="The assistant's answer, shortened.")
    tool_calls: str = dspy.InputField(desc="Tools the assistant called, or 'none'.")
    reconstructed_request: str = dspy.OutputField(desc="The request as the user would write it.")


class RateMatch(dspy.Signature):
    """Judge. Compare a prediction with what actually happened in a conversation about
    argument analysis. Rate how well the prediction matches the actual text on task, method,
    format and level of detail, from 0 (unrelated) to 10 (the same on all four). Judge
    substance, not wording."""

    prediction: str = dspy.InputField(desc="What a reader predicted.")
    actual: str = dspy.InputField(desc="The actual text, shortened.")
    rating: int = dspy.OutputField(desc="An integer from 0 to 10.")
    reason: str = dspy.OutputField(desc="One sentence: what matches and what does not.")


# --- the judge's readings: fixed prompts, never optimized --------------------------------------
# Each reading asks one multiple-choice question about one text; the judge reads the answer's
# probabilities over the option letters (token logprobs), not a sampled letter. The options are
# the task labels of argalign.deliverables.TASKS.


class ReadRequest(dspy.Signature):
    """A user sent the request below to an assistant that analyses arguments. The text the
    user wants analysed is replaced by a placeholder. From the request alone, predict what the
    assistant's answer will mainly consist of."""

    request: str = dspy.InputField(desc="The user's request")
    choice: str = dspy.OutputField(desc="The letter of the most likely option")


class ReadResponse(dspy.Signature):
    """Below is what an assistant that analyses arguments did in reply to a user: the steps of
    its reasoning, the tools it called and its final answer (shortened). From this alone,
    infer what the user asked the assistant to produce."""

    response: str = dspy.InputField(desc="What the assistant did")
    choice: str = dspy.OutputField(desc="The letter of the most likely option")


class ReadThinking(dspy.Signature):
    """Below are the opening and the closing of an assistant's private reasoning about an
    argument; its middle part is left out. From them alone, predict what the assistant is
    going to give the user as its answer."""

    thinking: str = dspy.InputField(desc="The reasoning's opening and closing")
    choice: str = dspy.OutputField(desc="The letter of the most likely option")
