"""The ``gold`` optimizer: DSPy's ``LabeledFewShot`` over the hand-written gold demos
(:mod:`argalign.programs.gold`)."""

from __future__ import annotations

import logging

import dspy

from argalign.core.errors import ConfigError
from argalign.programs.gold import demo_ids, load_gold
from argalign.programs.optimizer import Optimizer, with_gold

log = logging.getLogger(__name__)


class Gold(Optimizer):
    """DSPy's ``LabeledFewShot`` over the gold demos: candidate k holds ``max_demos`` gold
    demos per predictor, in the k-th seeded order; each candidate is scored on the valset."""

    @classmethod
    def check(cls) -> None:
        if not load_gold():
            raise ConfigError("--optimizer gold needs gold demos, and none are packaged")

    def search(self, student: dspy.Module, trainset: list[dspy.Example],
               valset: list[dspy.Example]) -> None:
        for k in range(self.spec.candidates):
            candidate = with_gold(student, self.spec, seed=k)
            log.info("gold: candidate %d with demos %s", k + 1, demo_ids(candidate))
            self.score_on_valset(candidate, valset)
