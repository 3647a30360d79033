"""How a mode's program is compiled against the metric, and how the best candidate is kept.

Four optimizers, each a subclass of :class:`Optimizer` and one line in :data:`OPTIMIZERS`:

- ``gold``: DSPy's ``LabeledFewShot`` over the hand-written gold demos (:mod:`argalign.gold`);
- ``bootstrap``: few-shot demos taken from the best-scoring rewrites of the training examples;
- ``mipro``: MIPROv2's instruction proposals (instructions only: a demo of this task is a
  whole conversation, too long for a small model's prompt next to the proposer's own);
- ``gepa``: GEPA, whose reflection model reads the metric's feedback (the quality-check codes
  and the judge's readings) and rewrites the instructions.

With ``spec.gold`` (the default) the others start from the gold demos too: bootstrap's
teacher holds them and every candidate keeps them ahead of its own demos, and MIPROv2 and GEPA
rewrite the instructions of a program that holds them. Every demo carries a ``demo_id``
(``gold/<id>`` or ``train/<example id>``), so a saved program says which demos it holds.

Every candidate that an optimizer scores on the whole valset goes through ``dspy.Evaluate``;
:class:`CandidateTracker`, a DSPy callback, sees each such evaluation as it ends and keeps the
best program in ``job.best``. So when the call budget stops an optimizer midway, the best
candidate found so far is what is saved, never simply the zero-shot program; and a candidate
is kept only if it scores strictly above the zero-shot program on the same valset.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import random
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import dspy
from dspy.utils.callback import BaseCallback

from argalign.errors import ConfigError
from argalign.evaluation import metric_row, summarize
from argalign.gold import as_demo, demo_ids, gold_demos, load_gold
from argalign.records import Outcome

if TYPE_CHECKING:
    from argalign.optimize_spec import OptimizeSpec

log = logging.getLogger(__name__)


def program_key(program: dspy.Module) -> str:
    """What an optimizer can change in a program: each predictor's instructions and demos."""
    return json.dumps({name: {"instructions": p.signature.instructions,
                              "demos": [dict(d) for d in p.demos]}
                       for name, p in program.named_predictors()}, sort_keys=True, default=str)


class CandidateTracker(BaseCallback):
    """Keeps the best program scored on the whole valset, as each evaluation ends.

    ``best`` starts as ``{"program": zero-shot, "score": its valset mean, "rows": its rows}``
    and is updated in place. Evaluations of other example sets (GEPA's training minibatches),
    evaluations cut short (by the budget) and the zero-shot program evaluated again are not
    candidates. ``history`` lists every candidate's valset score with the LM calls used by then.
    """

    def __init__(self, valset: list[dspy.Example], best: dict[str, Any], calls=lambda: 0):
        self.val_ids = [e.id for e in valset]
        self.best = best
        self.zero_shot = program_key(best["program"])
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
        self.history.append({"score": round(score, 4), "lm_calls": self._calls()})
        log.info("candidate %d: valset score %.3f (best so far %.3f)", len(self.history), score,
                 self.best["score"])
        if score > self.best["score"]:
            self.best.update(program=program.deepcopy(), score=score, rows=rows,
                             found_at=self.history[-1])


@dataclass
class CompileJob:
    """What an optimizer works with; ``best`` is kept up to date by the tracker."""

    spec: OptimizeSpec
    student: dspy.Module
    trainset: list[dspy.Example]
    valset: list[dspy.Example]
    metric: Any
    task_lm: dspy.BaseLM
    reflection_lm: dspy.BaseLM
    best: dict[str, Any]
    notes: dict[str, Any] = field(default_factory=dict)  # what the optimizer wants in the meta


class Optimizer:
    """One way to compile a program; a new optimizer is a subclass and a line in OPTIMIZERS.

    :meth:`compile` runs inside ``dspy.context(lm=task LM, callbacks=[tracker])`` and may
    return anything: the program saved is ``job.best["program"]``.
    """

    uses_reflection = False  # whether it needs a reflection model

    def check(self) -> None:
        """ConfigError before any LM call when the optimizer cannot run here."""

    def compile(self, job: CompileJob) -> None:
        raise NotImplementedError


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


def starting_program(job: CompileJob) -> dspy.Module:
    """What an optimizer starts from: the student holding the gold demos (``spec.gold``), or
    the zero-shot student."""
    return with_gold(job.student, job.spec) if job.spec.gold else job.student


def _evaluate_on_valset(program: dspy.Module, job: CompileJob) -> None:
    """A candidate's valset score, through ``dspy.Evaluate`` so that the tracker sees it."""
    evaluator = dspy.Evaluate(devset=job.valset, metric=job.metric, num_threads=1,
                              display_progress=True, failure_score=0.0,
                              max_errors=len(job.valset) + 1, provide_traceback=False)
    evaluator(program)


class Gold(Optimizer):
    """DSPy's ``LabeledFewShot`` over the gold demos: candidate k holds ``max_demos`` gold
    demos per predictor, in the k-th seeded order; each candidate is scored on the valset."""

    def check(self) -> None:
        if not load_gold():
            raise ConfigError("--optimizer gold needs gold demos, and none are packaged")

    def compile(self, job: CompileJob) -> None:
        for k in range(job.spec.candidates):
            candidate = with_gold(job.student, job.spec, seed=k)
            log.info("gold: candidate %d with demos %s", k + 1, demo_ids(candidate))
            _evaluate_on_valset(candidate, job)


class Bootstrap(Optimizer):
    """Few-shot demos from the best-scoring rewrites of the training examples.

    The zero-shot program aligns each training example once; every rewrite that passes the
    gate is scored, and so is its original, and the rewrite's accepted LM calls (the last call
    of each predictor) make one demo set. Rewrites rank by how much they raised the score over
    the original (then by score): a vague request made explicit teaches more than a rewrite
    of a request that was clear already. Candidate k takes the k-th best ``max_demos`` demo
    sets; each candidate is scored on the valset.
    """

    def compile(self, job: CompileJob) -> None:
        spec = job.spec
        # Seeded with gold, the teacher that aligns the training rows holds the gold demos, and
        # every candidate keeps them ahead of its rewrites: gold first, then the best by gain.
        teacher = starting_program(job)
        ranked = self.rewrites(job, teacher)
        job.notes["train_rewrites"] = [{"id": i, "gain": round(g, 4), "score": round(s, 4)}
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
            _evaluate_on_valset(candidate, job)

    @staticmethod
    def rewrites(job: CompileJob, teacher: dspy.Module | None = None
                 ) -> list[tuple[tuple[float, float], str, dict[str, dspy.Example]]]:
        """((gain, score), id, {predictor name: demo}) of each passing training rewrite by the
        teacher (the student by default), best first; the gain is the score over the
        original's (0 when the metric cannot score an original). A training row that a gold
        demo rewrites is left out: its demo is there already."""
        teacher = teacher or job.student
        names = {id(p): name for name, p in teacher.named_predictors()}
        scorer = getattr(job.metric, "scorer", None)
        gold_rows = {entry.row_id for entry in load_gold(job.spec.mode)}
        out = []
        for example in job.trainset:
            if example.row.get("source_id") in gold_rows:
                continue
            with dspy.context(trace=[]):
                try:
                    prediction = teacher(row=example.row)
                except Exception as e:  # noqa: BLE001 - a failed rewrite is no demo
                    log.info("bootstrap: %s gave no rewrite (%s)", example.id, e)
                    continue
                trace = list(dspy.settings.trace)
            result = job.metric(example, prediction)
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
    the proposer, which here sees only the current instruction and a tip."""

    def _bootstrap_fewshot_examples(self, *args: Any, **kwargs: Any) -> None:
        return None


class Mipro(Optimizer):
    """MIPROv2's instruction proposals, each candidate scored on the whole valset."""

    def check(self) -> None:
        if importlib.util.find_spec("optuna") is None:
            # Found out before any LM call or MLflow run, not deep inside MIPROv2.compile.
            raise ConfigError("--optimizer mipro needs optuna: pip install 'dspy[optuna]'")

    def compile(self, job: CompileJob) -> None:
        spec = job.spec
        optimizer = _InstructionProposals(metric=job.metric, prompt_model=job.task_lm,
                                          task_model=job.task_lm, auto=None,
                                          num_candidates=spec.candidates,
                                          max_bootstrapped_demos=0, max_labeled_demos=0,
                                          num_threads=1,
                                          max_errors=len(job.valset) + len(job.trainset) + 1,
                                          seed=spec.seed, verbose=False, track_stats=False)
        # The proposer sees the current instruction and a prompting tip: a summary of the data or
        # of the program's source would not fit a small model's context beside it.
        student = starting_program(job)
        optimizer.compile(student, trainset=job.trainset, valset=job.valset,
                          num_trials=spec.candidates * 2, minibatch=False,
                          program_aware_proposer=False, data_aware_proposer=False,
                          fewshot_aware_proposer=False, tip_aware_proposer=True)


class Gepa(Optimizer):
    """GEPA: the reflection model rewrites instructions from the metric's feedback."""

    uses_reflection = True
    reflection_minibatch_size = 2  # examples per reflection: each shows a whole turn

    def compile(self, job: CompileJob) -> None:
        spec, metric, valset = job.spec, job.metric, job.valset
        # Per metric call: the alignment (one LM call for most rows, the first thinking of a
        # turn; a vague request adds one) and the judge's readings of the row. The call budget
        # itself is enforced per call; this only sizes GEPA's own cap.
        calls_per_eval = 1 + getattr(metric, "calls_per_turn", 0)
        max_metric_calls = max(len(valset) + 1, (spec.budget_calls or 400) // calls_per_eval)
        optimizer = dspy.GEPA(metric=metric, reflection_lm=job.reflection_lm,
                              max_metric_calls=max_metric_calls, num_threads=1,
                              reflection_minibatch_size=self.reflection_minibatch_size,
                              seed=spec.seed, track_stats=False)
        student = starting_program(job)
        try:
            optimizer.compile(student, trainset=job.trainset, valset=valset)
        finally:  # also when the budget stops GEPA: what its reflection read and proposed
            job.notes["reflections"] = reflections(job.reflection_lm)


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


OPTIMIZERS: dict[str, Optimizer] = {"gold": Gold(), "bootstrap": Bootstrap(), "mipro": Mipro(),
                                     "gepa": Gepa()}
