"""What an optimizer is: the base :class:`Optimizer` that owns the compile loop, the
:class:`CandidateTracker` that keeps the best candidate, and what every optimizer shares
(:func:`with_gold`, :func:`program_key`).

Each optimizer is shaped like a DSPy ``Teleprompter``: configured with the metric and the spec,
``compile(student, trainset=..., valset=...)`` returns the compiled program. Every candidate that
an optimizer scores on the whole valset goes through ``dspy.Evaluate``; :class:`CandidateTracker`,
a DSPy callback, sees each such evaluation as it ends and keeps the best as a :class:`Candidate`.
So when a callback stops the compile midway (:class:`StopCompile`: the call budget), the best
candidate found so far is returned, never simply the zero-shot program; and a candidate is kept
only if it scores strictly above the starting program on the same valset. What the last compile
found (the best candidate, whether it was stopped, every candidate's score, the optimizer's
notes) is its :class:`CompileReport`.

A new optimizer is one module that subclasses :class:`Optimizer` (``optimizer_<name>.py``
beside this one) and one line in :data:`argalign.programs.optimizers.OPTIMIZERS` (its import and
its entry). It imports this module, never the registry: the registry imports it.
"""

from __future__ import annotations

import json
import logging
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import dspy
from dspy.teleprompt import Teleprompter
from dspy.utils.callback import BaseCallback

from argalign.core.errors import ConfigError
from argalign.programs.evaluation import evaluate, metric_row, summarize
from argalign.programs.gold import gold_demos

if TYPE_CHECKING:
    from argalign.programs.spec import OptimizeSpec

log = logging.getLogger(__name__)


def program_key(program: dspy.Module) -> str:
    """What an optimizer can change in a program: each predictor's instructions and demos."""
    return json.dumps({name: {"instructions": p.signature.instructions,
                              "demos": [dict(d) for d in p.demos]}
                       for name, p in program.named_predictors()}, sort_keys=True, default=str)


Metric = Callable[..., dspy.Prediction]
"""A DSPy metric ``(example, prediction, trace=None, pred_name=None, pred_trace=None)``."""


class StopCompile(BaseException):  # noqa: N818 - a signal, not an error
    """Raised by a callback to end a compile early (the call budget); the optimizer then
    returns the best candidate found so far. A BaseException so that no ``except Exception``
    in DSPy or argalign takes it for one failed example and carries on."""


@dataclass(frozen=True)
class Candidate:
    """A program with its valset score and rows; ``found_at`` (its score and the LM calls used
    by then) is None for the program a compile started from."""

    program: dspy.Module
    score: float
    rows: list[dict[str, Any]]
    found_at: dict[str, Any] | None = None


@dataclass(frozen=True)
class CompileReport:
    """What one compile found: the best candidate, whether a :class:`StopCompile` ended it
    (``stopped``), each candidate's valset score with the LM calls used by then, in order, and
    what the optimizer noted for the meta."""

    best: Candidate
    stopped: bool
    candidates: list[dict[str, Any]]
    notes: dict[str, Any]


class CandidateTracker(BaseCallback):
    """Keeps the best program scored on the whole valset, as each evaluation ends.

    ``best`` starts as ``start`` (the program the compile started from) and is replaced by a
    new :class:`Candidate` whenever one scores higher. Evaluations of other example sets
    (GEPA's training minibatches), evaluations cut short (by the budget) and the starting
    program evaluated again are not candidates. ``history`` lists every candidate's valset
    score with the LM calls used by then.
    """

    def __init__(self, valset: list[dspy.Example], start: Candidate,
                 calls: Callable[[], int] = lambda: 0):
        self.val_ids = [e.id for e in valset]
        self.best = start
        self.zero_shot = program_key(start.program)
        self.history: list[dict[str, Any]] = []
        self._calls = calls
        self._open: dict[str, dspy.Module] = {}

    def on_evaluate_start(self, call_id: str, instance: Any, inputs: dict[str, Any]) -> None:
        devset = inputs.get("devset") or getattr(instance, "devset", None) or []
        if sorted(getattr(e, "id", None) for e in devset) == sorted(self.val_ids):
            self._open[call_id] = inputs.get("program")

    def on_evaluate_end(self, call_id: str, outputs: Any, exception: Exception | None = None
                        ) -> None:
        program = self._open.pop(call_id, None)
        if program is None or exception is not None or outputs is None:
            return
        by_id = {example.id: metric_row(example, prediction, result)
                 for example, prediction, result in getattr(outputs, "results", [])}
        if sorted(by_id) != sorted(self.val_ids):
            return
        if program_key(program) == self.zero_shot:
            return
        self.consider(program, [by_id[i] for i in self.val_ids])

    def consider(self, program: dspy.Module, rows: list[dict[str, Any]]) -> None:
        score = summarize(rows)["score"]
        found = {"score": round(score, 4), "lm_calls": self._calls()}
        self.history.append(found)
        log.info("candidate %d: valset score %.3f (best so far %.3f)", len(self.history), score,
                 self.best.score)
        if score > self.best.score:
            self.best = Candidate(program.deepcopy(), score, rows, found)


class Optimizer(Teleprompter):
    """One way to compile a mode's program, shaped like a DSPy teleprompter.

    Configured with the metric and the spec (its sizes and seeds), :meth:`compile` takes the
    student and the train and validation examples and returns the best program: the best
    candidate scored on the whole valset, or the student when none scored above it. It runs
    under the LM in ``dspy.settings``. The base owns the loop; a subclass writes
    :meth:`search`, which scores its candidates through ``dspy.Evaluate`` (:meth:`score_on_valset`, or
    a DSPy optimizer that does), and may set ``uses_reflection``, :meth:`check` and ``notes``.
    A new optimizer is a subclass and a line in
    :data:`argalign.programs.optimizers.OPTIMIZERS`.
    """

    uses_reflection: ClassVar[bool] = False  # whether it needs a reflection model

    def __init__(self, metric: Metric, spec: OptimizeSpec, *,
                 reflection_lm: dspy.BaseLM | None = None,
                 lm_calls: Callable[[], int] = lambda: 0):
        super().__init__()
        self.metric, self.spec, self.reflection_lm = metric, spec, reflection_lm
        self.lm_calls = lm_calls  # LM calls used so far, recorded with each candidate
        self.notes: dict[str, Any] = {}  # what the optimizer wants in the meta
        self.report: CompileReport | None = None  # what the last compile found

    @classmethod
    def check(cls) -> None:
        """ConfigError before any LM call when the optimizer cannot run here."""

    def compile(self, student: dspy.Module, *, trainset: list[dspy.Example],
                teacher: dspy.Module | None = None, valset: list[dspy.Example] | None = None,
                baseline: Candidate | None = None) -> dspy.Module:
        """The best program found for ``student``; ``report`` says how it was found.

        ``valset`` defaults to ``trainset``. ``baseline`` is the student's valset score and rows
        when they are known already (else the student is scored first). A :class:`StopCompile`
        raised by a callback ends the search; the best candidate found by then is returned.
        """
        if not trainset:
            raise ConfigError(f"--optimizer {self.spec.optimizer} needs training examples")
        valset = valset or trainset
        if baseline is None:
            rows = evaluate(student, valset, self.metric)
            baseline = Candidate(student, summarize(rows)["score"], rows)
        tracker = CandidateTracker(valset, baseline, calls=self.lm_calls)
        self.notes, stopped = {}, False
        with dspy.context(callbacks=[*dspy.settings.get("callbacks", []), tracker]):
            try:
                self.search(student, trainset, valset)
            except StopCompile as e:
                stopped = True
                log.info("compile stopped (%s): returning the best program found so far", e)
        self.report = CompileReport(tracker.best, stopped, tracker.history, self.notes)
        return tracker.best.program

    def search(self, student: dspy.Module, trainset: list[dspy.Example],
               valset: list[dspy.Example]) -> None:
        """Score candidates on ``valset`` through ``dspy.Evaluate``; the tracker keeps the best."""
        raise NotImplementedError

    def starting_program(self, student: dspy.Module) -> dspy.Module:
        """What the search starts from: the student holding the gold demos (``spec.gold``), or
        the zero-shot student."""
        return with_gold(student, self.spec) if self.spec.gold else student

    def score_on_valset(self, program: dspy.Module, valset: list[dspy.Example]) -> None:
        """A candidate's valset score, through ``dspy.Evaluate`` so that the tracker sees it."""
        evaluator = dspy.Evaluate(devset=valset, metric=self.metric, num_threads=1,
                                  display_progress=True, failure_score=0.0,
                                  max_errors=len(valset) + 1, provide_traceback=False)
        evaluator(program)


def with_gold(program: dspy.Module, spec: OptimizeSpec, seed: int = 0) -> dspy.Module:
    """A copy of ``program`` whose predictors hold ``spec.max_demos`` gold demos each, drawn
    by DSPy's ``LabeledFewShot`` from the mode's gold demos in a seeded order (a predictor
    with no gold demo keeps none)."""
    demos = gold_demos(spec.mode, spec.thinking)
    out = program.deepcopy()
    for name, predictor in out.named_predictors():
        pool = demos.get(name, [])
        order = random.Random(f"gold/{spec.seed}/{seed}/{name}").sample(pool, len(pool))
        # LabeledFewShot draws k of the trainset for each predictor of the student it is given.
        predictor.demos = dspy.LabeledFewShot(k=spec.max_demos).compile(
            predictor, trainset=order, sample=False).demos
    return out
