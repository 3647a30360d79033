"""The ``mipro`` optimizer: MIPROv2's instruction proposals (instructions only: a demo of this
task is a whole conversation, too long for a small model's prompt next to the proposer's own)."""

from __future__ import annotations

import importlib.util
from typing import Any

import dspy

from argalign.core.errors import ConfigError
from argalign.programs.optimizer import Optimizer


class _InstructionProposals(dspy.MIPROv2):
    """MIPROv2 without its first step: it would align the training examples to show demos to
    the proposer, which here sees only the current instruction and a tip.

    Overrides MIPROv2's private hook ``_bootstrap_fewshot_examples`` (DSPy 3.4, pinned < 3.5):
    ``tests/test_optimizers.py`` pins that ``MIPROv2.compile`` still calls it and that DSPy's
    own version still aligns training examples when no demos are wanted.
    """

    def _bootstrap_fewshot_examples(self, *args: Any, **kwargs: Any) -> None:
        return None


class Mipro(Optimizer):
    """MIPROv2's instruction proposals, each candidate scored on the whole valset."""

    @classmethod
    def check(cls) -> None:
        if importlib.util.find_spec("optuna") is None:
            # Found out before any LM call or MLflow run, not deep inside MIPROv2.compile.
            raise ConfigError("--optimizer mipro needs optuna: pip install 'dspy[optuna]'")

    def search(self, student: dspy.Module, trainset: list[dspy.Example],
               valset: list[dspy.Example]) -> None:
        spec = self.spec
        # The task LM proposes the instructions too: the one in dspy.settings.
        optimizer = _InstructionProposals(metric=self.metric, prompt_model=dspy.settings.lm,
                                          task_model=dspy.settings.lm, auto=None,
                                          num_candidates=spec.candidates,
                                          max_bootstrapped_demos=0, max_labeled_demos=0,
                                          num_threads=1,
                                          max_errors=len(valset) + len(trainset) + 1,
                                          seed=spec.seed, verbose=False, track_stats=False)
        # The proposer sees the current instruction and a prompting tip: a summary of the data or
        # of the program's source would not fit a small model's context beside it.
        optimizer.compile(self.starting_program(student), trainset=trainset, valset=valset,
                          num_trials=spec.candidates * 2, minibatch=False,
                          program_aware_proposer=False, data_aware_proposer=False,
                          fewshot_aware_proposer=False, tip_aware_proposer=True)
