"""The ``hybrid`` comparison (the default): each part the mean of its ``judge`` and
``structural`` values."""

from __future__ import annotations

from argalign.scoring.comparison import Parts, TurnView, mean_present
from argalign.scoring.comparison_judge import JudgeComparison
from argalign.scoring.comparison_structural import StructuralComparison
from argalign.scoring.judge import Judge


class HybridComparison(JudgeComparison):
    """The judge's readings and the rules, each part the mean of the two.

    The rules are exact where the dataset's templates leave marks (a step heading, an SMT-LIB
    block) and blind to a request phrased in other words; the judge reads any phrasing but a
    small judge's readings are spread and noisy. Where one of them cannot measure a part, the
    other's value stands.
    """

    name = "hybrid"

    def __init__(self, judge: Judge | None = None):
        super().__init__(judge)
        self.rules = StructuralComparison()

    def parts(self, view: TurnView) -> Parts:
        read, ruled = super().parts(view), self.rules.parts(view)
        return Parts(mean_present([read.forward, ruled.forward]),
                     mean_present([read.backward, ruled.backward]),
                     mean_present([read.coherence, ruled.coherence]),
                     f"judge: {read.notes}; rules: {ruled.notes}")
