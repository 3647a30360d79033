"""DSPy signatures. Each docstring is the instruction the optimizers start from and rewrite.

The LM never sees a field it does not need and never returns text that stays the same:
the source text is shown as an excerpt and carried over by the module, and a thinking only
gets new first sentences, before its original opening: the opening, the plan, the steps and
blocks and the closing stay verbatim.
"""

from __future__ import annotations

import dspy


class RewriteRequest(dspy.Signature):
    """Mode A. You edit a training conversation in which the user's request is vaguer than the
    assistant's work: the assistant carries out an elaborate analysis before it answers. A
    sentence that asks for that analysis (listed under `methods`) is already placed before
    your text. Write the rest of the new request, in the user's voice: ask for what the answer
    delivers (see `delivers`), keeping word for word any question of the original request and
    every format or tool it names. Ask for nothing the assistant does not do. Do not repeat the
    analysis, do not solve the task, do not quote the answer or the reasoning, do not repeat
    the system prompt, do not refer to earlier requests that do not exist, and do not restate
    the source text: it is appended after the request unchanged."""

    system_prompt: str = dspy.InputField(desc="The system message of the conversation, if any.")
    history: str = dspy.InputField(desc="Earlier turns, shortened; empty for a first turn.")
    original_request: str = dspy.InputField(
        desc="The current request with its source text replaced by a placeholder."
    )
    source_excerpt: str = dspy.InputField(desc="The beginning of the source text, for context.")
    answer: str = dspy.InputField(desc="The assistant's final answer in this turn, shortened.")
    tool_calls: str = dspy.InputField(desc="Tools the assistant calls in this turn, or 'none'.")
    plan: str = dspy.InputField(desc="How the assistant's reasoning is organised: its steps.")
    delivers: str = dspy.InputField(desc="What the answer delivers (read from its markup).")
    methods: str = dspy.InputField(
        desc="The analysis the plan carries out, which the sentence before yours asks for."
    )
    request: str = dspy.OutputField(
        desc="One to three sentences asking for what the answer delivers, keeping the original "
             "request's question word for word. Instructions only, without the source text."
    )


class _RewriteThinking(dspy.Signature):
    """Write the first sentences of an assistant's private reasoning."""

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
    closing: str = dspy.InputField(desc="The closing of the reasoning; it is kept as it is.")
    answer: str = dspy.InputField(desc="What the assistant answers or calls next, shortened.")
    methods: str = dspy.InputField(
        desc="The analysis the plan carries out, one item a line, or 'none'."
    )
    opening: str = dspy.OutputField(
        desc="One or two sentences in my own first-person voice, put before the original "
             "opening, which stays: what about this request makes the analysis in `methods` "
             "the way to answer it. Never copy the request or list its instructions, never "
             "give orders, never restate the plan's steps, never speak of the request as "
             "rewritten or original."
    )


class RewriteThinkingForRequest(_RewriteThinking):
    """Mode A. The user's request now asks for the analysis the assistant carries out; make the
    assistant's private reasoning start from that request. You write only one or two sentences
    that go before the original opening, in the assistant's own first-person voice: what the
    request asks for and how the analysis in `methods` serves it. The original opening, the
    plan (the step list), the middle part (steps, Argdown and code blocks) and the closing
    stay as they are. Be concrete and brief; never contradict the plan, the middle part or
    the answer, never write a tool call, and never write placeholders or field names."""


class RewriteThinkingForAnswer(_RewriteThinking):
    """Mode B. The user's request stays as it is (at most a sentence asking for the analysis is
    appended), although the assistant's work goes well beyond what it literally asks. Write
    one or two sentences, in the assistant's own first-person voice, that go before the
    original opening and say why this request calls for this plan: what settling the request
    takes, and so which analysis (from `methods`) it carries out. For example, whether a
    proposition is explicit in a text can only be judged against a reconstruction of the
    argument. The original opening, the plan (the step list), the middle part (steps, Argdown
    and code blocks) and the closing stay as they are. Never copy the request, never repeat
    the original opening, never contradict the plan, the middle part or the answer, never
    write a tool call, and never write placeholders or field names."""


class RewriteWholeThinking(dspy.Signature):
    """Rewrite the assistant's private reasoning in full so that it starts from the user's
    request, restates it in the first person, plans, and works its way to the given answer
    and tool calls. Keep every Argdown and code block that the answer relies on."""

    request: str = dspy.InputField(desc="The user's request (source text omitted).")
    position: str = dspy.InputField(desc="'first reply' or 'after tool results'.")
    thinking: str = dspy.InputField(desc="The current reasoning.")
    answer: str = dspy.InputField(desc="What the assistant answers or calls next, shortened.")
    new_thinking: str = dspy.OutputField(desc="The full new reasoning.")
