"""Mode A (prompt-focused): the request is rewritten freely so that the fixed answer is what it
asks for, and the thinking's first sentences lead from that request to the plan.

A vague request gets the LM's new instructions (:class:`~argalign.modes.signatures.RewriteRequest`)
after our sentence asking for the plan's methods; a request that already asks for what the answer
delivers keeps its own words after that sentence. The source text stays verbatim: a message whose
source cannot be told from its instructions is refused (``SOURCE_UNCLEAR``), and a rewrite that
retypes the source is retried.
"""

from __future__ import annotations

import dspy

from argalign.core.defaults import DEFAULT_THINKING
from argalign.core.deliverables import ask_for_methods, describe, requested
from argalign.core.errors import RowError
from argalign.core.schema import Conversation, Turn
from argalign.core.thinking import shorten
from argalign.modes.base import (
    MAX_REQUEST_CHARS,
    AlignConversation,
    CallLog,
    InvalidOutput,
    Request,
    check_prose,
    final_content,
    keeps_task,
    methods_of,
    plan_of,
    tool_summary,
    turn_delivers,
)
from argalign.modes.signatures import RewriteRequest, RewriteThinkingForRequest
from argalign.scoring.checks import check_request, instructions, turn_thinking


class ModeA(AlignConversation):
    """Mode A: rewrite the request freely so the fixed answer is what it asks for, and the
    thinking into a path from that request to the answer."""

    mode = "A"
    thinking_optional = True

    def __init__(self, thinking: str = DEFAULT_THINKING, attempts: int = 3, retry_temperature: float = 0.9):
        super().__init__(thinking, attempts, retry_temperature)
        self.rewrite_request = dspy.Predict(RewriteRequest)
        self.rewrite_thinking = dspy.Predict(RewriteThinkingForRequest)

    def treat_request(self, conversation: Conversation, turn: Turn, request: Request,
                      history: list[str], calls: CallLog) -> str | None:
        if request.unclear:  # fail closed: a free rewrite could drop the text with the request
            raise RowError(conversation.row_id, "SOURCE_UNCLEAR",
                           f"the {len(request.content)}-character user message has no source text "
                           "that can be told from its instructions; Mode A leaves it alone",
                           turn.user_index)
        system = conversation.system
        tool_calls = "; ".join(filter(None, (tool_summary(conversation.messages[i].tool_calls)
                                             for i in turn.assistant_indices))) or "none"

        answer = final_content(conversation, turn)
        response = turn_delivers(conversation, turn)
        thinking = turn_thinking(conversation, turn)

        # The plan's analysis is asked for by a sentence of ours. The rest is the original
        # instructions when they already ask for what the answer mainly delivers (the LM would
        # only copy them, and a 1.5B model garbles what it copies), else the LM's text.
        key = f"{conversation.row_id}/{turn.user_index}"
        ask = ask_for_methods(response, key)

        def checked(text: str) -> str:
            text = f"{ask}\n{text}".strip()
            if request.source is not None and request.source[:200] in text:
                raise InvalidOutput("SOURCE_RETYPED", "the request repeats the source text")
            # The intro line before the source text is kept, so it counts as asked.
            InvalidOutput.raise_for(check_request(
                f"{text}\n{request.intro}", original=instructions(request.content),
                answer=answer, system=system.content or "" if system else "",
                source=request.source or "", response=response, thinking=thinking,
                first_turn=not history))
            return text

        if keeps_task(request.rest, response):
            ask = ask_for_methods(response, key, besides=requested(request.rest))
            if not ask:
                return None  # the request already asks for the answer and the plan
            try:
                return checked(request.rest)
            except InvalidOutput as e:  # the user's own words fail a check: the LM writes them
                calls.failures.append(f"{e.code}: kept instructions: {e}")
                ask = ask_for_methods(response, key)

        def check(prediction: dspy.Prediction) -> str:
            return checked(check_prose(prediction.request, "request", required=True,
                                        limit=MAX_REQUEST_CHARS))

        return self._call(
            self.rewrite_request, check, calls,
            system_prompt=shorten(system.content if system else "", 600),
            history="\n\n".join(history)[-1500:],
            original_request=shorten(request.masked, 1500),
            source_excerpt=shorten(request.source, 500),
            answer=shorten(final_content(conversation, turn), 1500),
            tool_calls=tool_calls,
            plan=plan_of(conversation, turn),
            delivers=describe(response),
            methods=methods_of(response),
        )
