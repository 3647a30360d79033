"""How a mode's program is compiled against the metric, and how the best candidate is kept.

Four optimizers, each a subclass of :class:`Optimizer` and one line in :data:`OPTIMIZERS`:

- ``gold``: DSPy's ``LabeledFewShot`` over the hand-written gold demos (:mod:`argalign.programs.gold`);
- ``bootstrap``: few-shot demos taken from the best-scoring rewrites of the training examples;
- ``mipro``: MIPROv2's instruction proposals (instructions only: a demo of this task is a
  whole conversation, too long for a small model's prompt next to the proposer's own);
- ``gepa``: GEPA, whose reflection model reads the metric's feedback (the quality-check codes
  and the judge's readings) and rewrites the instructions.

With ``spec.gold`` (the default) the others start from the gold demos too: bootstrap's
teacher holds them and every candidate keeps them ahead of its own demos, and MIPROv2 and GEPA
rewrite the instructions of a program that holds them. Every demo carries a ``demo_id``
(``gold/<id>`` or ``train/<example id>``), so a saved program says which demos it holds.

Each optimizer is shaped like a DSPy ``Teleprompter``: configured with the metric and the spec,
``compile(student, trainset=..., valset=...)`` returns the compiled program. Every candidate that
an optimizer scores on the whole valset goes through ``dspy.Evaluate``; :class:`CandidateTracker`,
a DSPy callback, sees each such evaluation as it ends and keeps the best as a :class:`Candidate`.
So when a callback stops the compile midway (:class:`StopCompile`: the call budget), the best
candidate found so far is returned, never simply the zero-shot program; and a candidate is kept
only if it scores strictly above the starting program on the same valset. What the last compile
found (the best candidate, whether it was stopped, every candidate's score, the optimizer's
notes) is its :class:`CompileReport`.
"""

from __future__ import annotations

import importlib.util
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
from argalign.core.records import Outcome
from argalign.programs.evaluation import evaluate, metric_row, summarize
from argalign.programs.gold import as_demo, demo_ids, gold_demos, load_gold

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
    A new optimizer is a subclass and a line in :data:`OPTIMIZERS`.
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


class Bootstrap(Optimizer):
    """Few-shot demos from the best-scoring rewrites of the training examples.

    The zero-shot program aligns each training example once; every rewrite that passes the
    gate is scored, and so is its original, and the rewrite's accepted LM calls (the last call
    of each predictor) make one demo set. Rewrites rank by how much they raised the score over
    the original (then by score): a vague request made explicit teaches more than a rewrite
    of a request that was clear already. Candidate k takes the k-th best ``max_demos`` demo
    sets; each candidate is scored on the valset.
    """

    def search(self, student: dspy.Module, trainset: list[dspy.Example],
               valset: list[dspy.Example]) -> None:
        spec = self.spec
        # Seeded with gold, the teacher that aligns the training rows holds the gold demos, and
        # every candidate keeps them ahead of its rewrites: gold first, then the best by gain.
        teacher = self.starting_program(student)
        ranked = self.rewrites(trainset, teacher)
        self.notes["train_rewrites"] = [{"id": i, "gain": round(g, 4), "score": round(s, 4)}
                                        for (g, s), i, _ in ranked]
        for k in range(spec.candidates):
            chosen = ranked[k * spec.max_demos:(k + 1) * spec.max_demos]
            if not chosen:
                log.info("bootstrap: %d scored rewrites, no demos left for candidate %d",
                         len(ranked), k + 1)
                break
            candidate = teacher.deepcopy()
            for name, predictor in candidate.named_predictors():
                predictor.demos = [*predictor.demos,
                                   *(demos[name] for _, _, demos in chosen if name in demos)]
            log.info("bootstrap: candidate %d with demos from %s", k + 1,
                     ", ".join(i for _, i, _ in chosen))
            self.score_on_valset(candidate, valset)

    def rewrites(self, trainset: list[dspy.Example], teacher: dspy.Module
                 ) -> list[tuple[tuple[float, float], str, dict[str, dspy.Example]]]:
        """((gain, score), id, {predictor name: demo}) of each passing training rewrite by the
        teacher, best first; the gain is the score over the original's (0 when the metric has
        no ``scorer`` to score an original with). A training row that a gold demo rewrites is
        left out: its demo is there already."""
        names = {id(p): name for name, p in teacher.named_predictors()}
        scorer = getattr(self.metric, "scorer", None)
        gold_rows = {entry.row_id for entry in load_gold(self.spec.mode)}
        out = []
        for example in trainset:
            if example.row.get("source_id") in gold_rows:
                continue
            with dspy.context(trace=[]):
                try:
                    prediction = teacher(row=example.row)
                except Exception as e:  # noqa: BLE001 - a failed rewrite is no demo
                    log.info("bootstrap: %s gave no rewrite (%s)", example.id, e)
                    continue
                trace = list(dspy.settings.trace)
            result = self.metric(example, prediction)
            if result.outcome is not Outcome.ALIGNED:
                continue
            before = 0.0
            if scorer is not None:
                with dspy.context(trace=None):
                    before = scorer.score(example.row).score
            demos: dict[str, dspy.Example] = {}
            for predictor, inputs, outputs in trace:  # the last call of each is the accepted one
                name = names.get(id(predictor))
                if name is not None:
                    demos[name] = as_demo(inputs, outputs.toDict(), f"train/{example.id}")
            score = float(result.score)
            out.append(((score - before, score), example.id, demos))
        out.sort(key=lambda item: (-item[0][0], -item[0][1]))
        return out


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


class Gepa(Optimizer):
    """GEPA: the reflection model rewrites instructions from the metric's feedback."""

    uses_reflection = True
    reflection_minibatch_size = 2  # examples per reflection: each shows a whole turn

    def search(self, student: dspy.Module, trainset: list[dspy.Example],
               valset: list[dspy.Example]) -> None:
        if self.reflection_lm is None:
            raise ConfigError("--optimizer gepa needs a reflection model")
        # Per metric call: the alignment (one LM call for most rows, the first thinking of a
        # turn; a vague request adds one) and the judge's readings of the row. The call budget
        # itself is enforced per call; this only sizes GEPA's own cap.
        calls_per_eval = 1 + getattr(self.metric, "calls_per_turn", 0)
        max_metric_calls = max(len(valset) + 1, (self.spec.budget_calls or 400) // calls_per_eval)
        optimizer = dspy.GEPA(metric=self.metric, reflection_lm=self.reflection_lm,
                              max_metric_calls=max_metric_calls, num_threads=1,
                              reflection_minibatch_size=self.reflection_minibatch_size,
                              seed=self.spec.seed, track_stats=False)
        try:
            optimizer.compile(self.starting_program(student), trainset=trainset, valset=valset)
        finally:  # also when the budget stops GEPA: what its reflection read and proposed
            self.notes["reflections"] = reflections(self.reflection_lm)


def reflections(lm: dspy.BaseLM, limit: int = 3, chars: int = 4000) -> list[dict[str, str]]:
    """The last reflections of an LM: the end of each prompt (where the examples' inputs,
    outputs and feedback are) and the reply, shortened."""
    out = []
    for entry in list(getattr(lm, "history", None) or [])[-limit:]:
        messages = entry.get("messages") or [{"content": entry.get("prompt") or ""}]
        prompt = "\n".join(str(m.get("content") or "") for m in messages)
        reply = (entry.get("outputs") or [""])[0]
        out.append({"prompt_tail": prompt[-chars:],
                    "reply": str(reply.get("text") if isinstance(reply, dict) else reply)[:chars]})
    return out


OPTIMIZERS: dict[str, type[Optimizer]] = {"gold": Gold, "bootstrap": Bootstrap, "mipro": Mipro,
                                           "gepa": Gepa}
