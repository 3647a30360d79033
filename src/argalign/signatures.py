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
    level of detail and any tool the assistant calls. Keep every method, format, question and
    tool that the original request names and the answer uses. A reader of the new request
    alone should be able to predict the answer's approach, and a reader of the answer alone
    should be able to reconstruct the request. Do not solve the task, do not quote the answer,
    do not repeat the system prompt, and do not restate the source text or write a placeholder
    for it: the source text is appended after your request unchanged. Write one or two short
    paragraphs of plain instructions."""

    system_prompt: str = dspy.InputField(desc="The system message of the conversation, if any.")
    history: str = dspy.InputField(desc="Earlier turns, shortened; empty for a first turn.")
    original_request: str = dspy.InputField(
        desc="The current request with its source text replaced by a placeholder."
    )
    source_excerpt: str = dspy.InputField(desc="The beginning of the source text, for context.")
    answer: str = dspy.InputField(desc="The assistant's final answer in this turn, shortened.")
    tool_calls: str = dspy.InputField(desc="Tools the assistant calls in this turn, or 'none'.")
    plan: str = dspy.InputField(desc="How the assistant's reasoning is organised: its steps.")
    delivers: str = dspy.InputField(
        desc="What the answer delivers (read from its markup) and what the reasoning produces "
             "on the way: the new request asks for what it mainly and also delivers, may name "
             "the rest as the method, and asks for nothing else."
    )
    request: str = dspy.OutputField(
        desc="The new request: instructions only, without the source text."
    )


class _RewriteThinking(dspy.Signature):
    """Rewrite the opening and the closing of an assistant's private reasoning."""

    request: str = dspy.InputField(desc="The user's request (source text omitted).")
    position: str = dspy.InputField(
        desc="Where this reasoning sits: 'first reply' or 'after tool results'."
    )
    original_opening: str = dspy.InputField(
        desc="The current opening prose of the reasoning, before its plan."
    )
    plan: str = dspy.InputField(
        desc="The step list that follows the opening; it is kept as it is. Empty if none."
    )
    middle_outline: str = dspy.InputField(desc="The headings and blocks of the kept middle part.")
    original_closing: str = dspy.InputField(desc="The current closing of the reasoning.")
    answer: str = dspy.InputField(desc="What the assistant answers or calls next, shortened.")
    opening: str = dspy.OutputField(
        desc="The new opening prose, one to four sentences in the first person: what the request "
             "asks for and how I will go about it. The plan follows it unchanged, so end where "
             "the plan can start, and do not list the steps yourself unless the plan is empty."
    )
    closing: str = dspy.OutputField(
        desc="The new closing, one to three sentences that lead from the last step to the "
             "answer or the tool call. The steps are done by then: draw the result from them, "
             "do not announce them again."
    )


class RewriteThinkingForRequest(_RewriteThinking):
    """Mode A. The user's request was rewritten to match the assistant's answer; now make the
    assistant's private reasoning follow from that request. You write only the opening prose
    and the closing of the reasoning; its plan (the step list) and its middle part (steps,
    Argdown and code blocks) stay as they are. The opening, in the first person, restates what
    the request asks for and says how the plan serves it. The closing connects the last step
    to the final answer or tool call. Be concrete and brief; never contradict the plan, the
    middle part or the answer, and never write placeholders or field names."""


class RewriteThinkingForAnswer(_RewriteThinking):
    """Mode B. The user's request stays as it is, although the assistant's answer goes well
    beyond what it literally asks. Make the assistant's private reasoning explain, in the
    first person, why this rich answer is the right response to this request: how the
    assistant reads the request and which method it chooses and why. You write only the
    opening prose and the closing; the plan (the step list) and the middle part (steps,
    Argdown and code blocks) stay as they are. If a single short sentence added to the
    request would remove a real ambiguity, give it as the clarification; it must add
    something the request does not already say and must not ask for anything the answer
    does not do. Otherwise leave the clarification empty. Never contradict the plan, the
    middle part or the answer, and never write placeholders or field names."""

    clarification: str = dspy.OutputField(
        desc="At most one short sentence that the user appends to the request, asking the "
             "assistant for something, or an empty string. Not a remark about the text."
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


class ReadMethod(dspy.Signature):
    """A user sent the request below to an assistant that analyses arguments. The text the
    user wants analysed is replaced by a placeholder. From the request alone, predict the most
    elaborate analysis the assistant will carry out on its way to the answer."""

    request: str = dspy.InputField(desc="The user's request")
    choice: str = dspy.OutputField(desc="The letter of the most likely option")


class ReadThinking(dspy.Signature):
    """Below are the opening and the closing of an assistant's private reasoning about an
    argument; its middle part is left out. From them alone, predict what the assistant is
    going to give the user as its answer."""

    thinking: str = dspy.InputField(desc="The reasoning's opening and closing")
    choice: str = dspy.OutputField(desc="The letter of the most likely option")
