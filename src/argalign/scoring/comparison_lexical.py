"""The ``lexical`` comparison: content-word overlap, no LM (a baseline).

F = B = content-word F1 of request and response view; C = plan(t) · content-word F1 of frame
and request.
"""

from __future__ import annotations

from argalign.scoring.checks import content_words
from argalign.scoring.comparison import Comparison, Parts, ThinkingView, TurnView, mean_coherence


def lexical_match(prediction: str, actual: str) -> float:
    """F1 of content words: how much of each text the other covers."""
    a, b = content_words(prediction), content_words(actual)
    if not a or not b:
        return 0.0
    common = len(a & b)
    if not common:
        return 0.0
    precision, recall = common / len(a), common / len(b)
    return 2 * precision * recall / (precision + recall)


class LexicalComparison(Comparison):
    """Content-word overlap: free, and blind to what the words mean (a baseline)."""

    name = "lexical"

    def parts(self, view: TurnView) -> Parts:
        both = lexical_match(view.request, view.response)

        def thinking(t: ThinkingView) -> tuple[float, float, str]:
            overlap = lexical_match(t.frame, view.request)
            return overlap, overlap, f"frame and request overlap {overlap:.2f}"

        coherence, _ = mean_coherence(view, thinking)
        return Parts(both, both, coherence, f"content-word F1 of request and response {both:.2f}")
