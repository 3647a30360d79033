"""Mode B (thinking-focused): the request is kept, with at most one appended sentence of ours
asking for the plan's methods, and the thinking's first sentences say why this request calls for
this plan.
"""

from __future__ import annotations

import dspy

from argalign.core.defaults import DEFAULT_THINKING
from argalign.core.deliverables import ask_briefly, requested
from argalign.core.schema import Conversation, Turn
from argalign.modes.base import MAX_CLARIFICATION_CHARS, AlignConversation, Request, turn_delivers
from argalign.modes.signatures import RewriteThinkingForAnswer
from argalign.scoring.checks import check_clarification, instructions


class ModeB(AlignConversation):
    """Mode B: keep the request, appending at most our one-sentence clarification that asks for
    the plan's methods; give the thinking first sentences that say why this request calls for
    this plan."""

    mode = "B"

    def __init__(self, thinking: str = DEFAULT_THINKING, attempts: int = 3, retry_temperature: float = 0.9):
        super().__init__(thinking, attempts, retry_temperature)
        self.rewrite_thinking = dspy.Predict(RewriteThinkingForAnswer)

    def clarify(self, conversation: Conversation, turn: Turn, request: Request) -> str:
        response = turn_delivers(conversation, turn)
        asks = instructions(request.content)
        sentence = ask_briefly(response, besides=requested(asks))
        if not sentence or len(sentence) > MAX_CLARIFICATION_CHARS or check_clarification(
                sentence, request=asks, response=response):
            return ""
        return sentence
