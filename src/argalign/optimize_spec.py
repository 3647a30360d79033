"""What ``argalign optimize`` is asked to compile: one mode, one optimizer, the data and budget.

:class:`OptimizeSpec` is read by :func:`argalign.optimize.run_optimize` (which fingerprints it)
and by the optimizers of :mod:`argalign.optimizers` (which read their sizes and seeds from it),
so it sits below both. ``argalign.optimize`` re-exports it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from argalign.defaults import DEFAULT_COMPARISON, DEFAULT_OPTIMIZER, DEFAULT_THINKING


@dataclass
class OptimizeSpec:
    """One compile: the mode, the optimizer and its models, the train/val sizes, the budget."""

    mode: str
    optimizer: str = DEFAULT_OPTIMIZER
    model: str | None = None
    judge: str | None = None
    reflection_model: str | None = None
    train: int = 8
    val: int = 8
    seed: int = 0
    budget_calls: int | None = None
    comparison: str = DEFAULT_COMPARISON
    thinking: str = DEFAULT_THINKING
    source: str | None = "sample"
    configs: list[str] = field(default_factory=list)
    candidates: int = 3
    max_demos: int = 1
    recompile: bool = False  # compile again even if a program with the fingerprint is saved
    gold: bool = True  # seed bootstrap, MIPROv2 and GEPA with the gold demos (argalign.gold)
