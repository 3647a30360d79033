"""What ``argalign optimize`` is asked to compile (one mode, one optimizer, the data and
budget), and what it returns.

:class:`OptimizeSpec` is read by :func:`argalign.stages.optimize.run_optimize` (which fingerprints it)
and by the optimizers of :mod:`argalign.programs.optimizers` (which read their sizes and seeds from it),
so it sits below both. ``argalign.stages.optimize`` re-exports it and :class:`OptimizeResult`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from argalign.core.defaults import DEFAULT_COMPARISON, DEFAULT_OPTIMIZER, DEFAULT_THINKING
from argalign.core.results import StageResult


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
    gold: bool = True  # seed bootstrap, MIPROv2 and GEPA with the gold demos (argalign.programs.gold)


@dataclass(frozen=True)
class OptimizeResult(StageResult):
    """A compiled (or reused) program: where it is saved, its fingerprint, whether the budget
    cut the compile short, the baseline's and the compiled program's valset means, and the cost.

    ``meta`` is everything saved beside the program (``<program>.meta.json``); the fields are
    read from it, so a program saved by an older version reads as None where a key is missing.
    """

    program_path: str
    reused: bool
    fingerprint: str | None
    partial: bool | None
    baseline: dict[str, Any] | None
    compiled: dict[str, Any] | None
    compile_calls: int | None
    report_calls: int | None
    output_tokens: int | None
    wall_s: float | None
    zero_shot_kept: bool | None
    meta: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def of(cls, meta: dict[str, Any], program_path: str, *, reused: bool) -> OptimizeResult:
        """The result of a compile whose metadata is ``meta``, saved at ``program_path``."""
        return cls(program_path=program_path, reused=reused, fingerprint=meta.get("fingerprint"),
                   partial=meta.get("partial"), baseline=meta.get("baseline"),
                   compiled=meta.get("compiled"), compile_calls=meta.get("compile_calls"),
                   report_calls=meta.get("report_calls"), output_tokens=meta.get("output_tokens"),
                   wall_s=meta.get("wall_s"), zero_shot_kept=meta.get("zero_shot_kept"),
                   meta=meta)

    def as_dict(self) -> dict[str, Any]:
        """What ``argalign optimize`` prints."""
        return {"program_path": self.program_path, "fingerprint": self.fingerprint,
                "reused": self.reused, "partial": self.partial, "baseline": self.baseline,
                "compiled": self.compiled, "compile_calls": self.compile_calls,
                "report_calls": self.report_calls, "output_tokens": self.output_tokens,
                "wall_s": self.wall_s}
