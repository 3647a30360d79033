"""``argalign optimize``: compile a mode against the metric, save it by fingerprint, log it.

Input: an :class:`~argalign.programs.spec.OptimizeSpec` (re-exported here): a mode, an
optimizer (:data:`argalign.programs.optimizers.OPTIMIZERS`: ``bootstrap``, ``mipro``, ``gepa``), task,
judge and reflection models, train/val sizes drawn from the train and validation splits, a seed
and a budget of LM calls. Output:
``programs/<mode>-<optimizer>-<fingerprint>.json`` (DSPy state) with ``.meta.json`` beside it,
and an MLflow run in ``argalign-optimize`` with the zero-shot (baseline) and compiled scores
on the same valset per component.

The fingerprint hashes everything that determines the program; a second call with the same
fingerprint loads the saved program and makes no LM call. The budget caps the LM calls of
the compile step (task, judge and reflection); the zero-shot program's valset evaluation is
outside it. The program saved is the best candidate on the valset, or the zero-shot program
when none scored above it; when the budget runs out the optimizer is stopped, and the best
candidate found by then is saved and marked ``partial``. The compiled valset score is the
score the winner was selected on, so it is optimistic: ``bench/optimize.py`` measures on a
held-out test set.
"""

from __future__ import annotations

import hashlib
import json
import logging
import random
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import dspy
from dspy.utils.callback import BaseCallback

from argalign import __version__
from argalign.core.errors import ConfigError
from argalign.core.jsonl import write_json_atomic
from argalign.core.records import Outcome
from argalign.programs.evaluation import evaluate, summarize
from argalign.programs.gold import demo_ids
from argalign.programs.optimizer import Candidate, CompileReport, Optimizer, StopCompile
from argalign.programs.optimizers import OPTIMIZERS
from argalign.programs.spec import OptimizeResult, OptimizeSpec
from argalign.programs.store import fingerprint, load_program, meta_path, programs_dir
from argalign.scoring.metrics import make_metric

if TYPE_CHECKING:
    from argalign.models.config import Settings

log = logging.getLogger(__name__)


class BudgetExhausted(StopCompile):
    """The compile used up its LM calls: the optimizer stops and returns the best program found
    so far (a :class:`~argalign.programs.optimizer.StopCompile`, so no ``except Exception`` in DSPy or
    argalign mistakes it for one failed sample and carries on)."""


class CallBudget(BaseCallback):
    """A DSPy callback that counts LM calls and tokens against an optional cap.

    Attached to LM copies (:func:`budgeted`); :meth:`on_lm_start` raises
    :class:`BudgetExhausted` before the call that would go over the cap. DSPy's callback runner
    logs and swallows an ``Exception`` from a callback, so the stop must be a BaseException.
    """

    def __init__(self, limit: int | None):
        self.limit, self.used = limit, 0
        self.input_tokens = self.output_tokens = 0
        self.exhausted = False
        self._lock = threading.Lock()
        self._calls: dict[str, dspy.BaseLM] = {}

    def on_lm_start(self, call_id: str, instance: Any, inputs: dict[str, Any]) -> None:
        with self._lock:
            if self.limit is not None and self.used >= self.limit:
                self.exhausted = True
                raise BudgetExhausted(f"LM call budget of {self.limit} used up")
            self.used += 1
            self._calls[call_id] = instance

    def on_lm_end(self, call_id: str, outputs: Any, exception: Exception | None = None) -> None:
        from argalign.models.lm import call_entry

        with self._lock:
            lm = self._calls.pop(call_id, None)
            entry = None if lm is None or exception is not None else call_entry(lm, outputs)
            if entry is None:
                return
            usage = entry.get("usage") or {}
            self.input_tokens += int(usage.get("prompt_tokens") or 0)
            self.output_tokens += int(usage.get("completion_tokens") or 0)


def budgeted(lm: dspy.BaseLM, budget: CallBudget) -> dspy.BaseLM:
    """A copy of ``lm`` whose calls count against ``budget``."""
    copy = lm.copy()
    copy.callbacks = [*getattr(lm, "callbacks", []), budget]
    return copy


# --- data --------------------------------------------------------------------------------

def load_examples(source: str | None, configs: list[str], split: str, n: int, seed: int,
                  mode: str) -> list[dspy.Example]:
    """A seeded sample of ``n`` examples of one split across configs, streamed."""
    from argalign.core.errors import RowError
    from argalign.core.schema import example_id, parse_conversation
    from argalign.stages.prepare import count_rows, iter_rows, resolve_source

    resolved = resolve_source(source)
    sizes = {config: count_rows(resolved, config, split) for config in configs}
    pool = [(config, i) for config in configs for i in range(sizes[config])]
    rng = random.Random(f"optimize/{seed}/{split}")
    chosen = set(rng.sample(pool, min(n, len(pool))))
    examples: list[dspy.Example] = []
    for config in configs:
        for index, row in iter_rows(resolved, config, split):
            if (config, index) not in chosen or isinstance(row, RowError):
                continue
            row_id = example_id(row, config, split, index)
            try:
                parse_conversation(row, row_id)
            except RowError as e:
                log.error("skipping a malformed %s example: %s", split, e)
                continue
            examples.append(dspy.Example(id=row_id, row=row, mode=mode).with_inputs("row"))
    if len(examples) < min(n, len(pool)):
        log.warning("%s: %d usable examples of %d drawn", split, len(examples), len(chosen))
    return examples


# --- the command, in stages ----------------------------------------------------------------

@dataclass
class _Plan:
    """Loaded and checked: models, examples, the zero-shot student and the fingerprint."""

    spec: OptimizeSpec
    settings: Settings
    optimizer: type[Optimizer]
    model: str
    judge: str | None  # None for a comparison that asks no LM: no judge is opened
    reflection: str | None  # opened only when the optimizer reflects
    trainset: list[dspy.Example]
    valset: list[dspy.Example]
    student: dspy.Module
    determined_by: dict[str, Any]
    fingerprint: str
    path: Path

    @property
    def model_names(self) -> list[str]:
        reflection = self.reflection if self.optimizer.uses_reflection else None
        return [name for name in (self.model, self.judge, reflection) if name is not None]


def _load(spec: OptimizeSpec, settings_path: str | None) -> _Plan:
    """Check the spec, load the settings and the examples, fingerprint what determines the program."""
    from argalign.models.config import load_settings, model_fingerprint
    from argalign.modes import MODES
    from argalign.scoring.metrics import COMPARISONS
    from argalign.stages.prepare import CONFIGS

    if spec.mode not in MODES:
        raise ConfigError(f"--mode must be one of {', '.join(MODES)}, not {spec.mode!r}")
    if spec.comparison not in COMPARISONS:
        raise ConfigError(f"unknown comparison {spec.comparison!r}; choose from "
                          f"{', '.join(COMPARISONS)}")
    if spec.optimizer not in OPTIMIZERS:
        raise ConfigError(f"unknown optimizer {spec.optimizer!r}; choose from {', '.join(OPTIMIZERS)}")
    optimizer = OPTIMIZERS[spec.optimizer]
    optimizer.check()
    settings = load_settings(settings_path)
    model = spec.model or settings.default_model
    judge = settings.judge(spec.judge) if COMPARISONS[spec.comparison].uses_lm else None
    reflection = spec.reflection_model or spec.judge or settings.default_judge
    if optimizer.uses_reflection and reflection is None:
        raise ConfigError(f"{spec.optimizer} reflects with a model and none is named: pass "
                          "--reflection-model or set `default_judge` in the settings")
    configs = spec.configs or list(CONFIGS)
    trainset = load_examples(spec.source, configs, "train", spec.train, spec.seed, spec.mode)
    valset = load_examples(spec.source, configs, "validation", spec.val, spec.seed, spec.mode)
    if not trainset or not valset:
        raise ConfigError("no usable train or validation examples")
    student, zero_id = load_program(spec.mode, thinking=spec.thinking)

    def describe(name: str) -> dict[str, Any]:
        return {"name": name, **model_fingerprint(settings.get(name))}

    determined_by = {
        "mode": spec.mode, "task_model": describe(model),
        "judge_model": describe(judge) if judge is not None else None,
        "reflection_model": describe(reflection) if optimizer.uses_reflection else None,
        "optimizer": spec.optimizer, "optimizer_settings": {
            "candidates": spec.candidates, "max_demos": spec.max_demos,
            "budget_calls": spec.budget_calls, "seed": spec.seed},
        "comparison": spec.comparison, "thinking": spec.thinking, "zero_shot": zero_id,
        # The gold demos as the program would see them: a changed gold file or module is a
        # new fingerprint.
        "gold": _gold_fingerprint(spec) if spec.gold or spec.optimizer == "gold" else None,
        "train_ids": [e.id for e in trainset], "val_ids": [e.id for e in valset],
        "argalign_version": __version__,
    }
    fp = fingerprint(determined_by)
    return _Plan(spec, settings, optimizer, model, judge, reflection, trainset, valset, student,
                 determined_by, fp, programs_dir() / f"{spec.mode}-{spec.optimizer}-{fp}.json")


def _gold_fingerprint(spec: OptimizeSpec) -> str:
    from argalign.programs.gold import gold_demos

    return fingerprint({name: [dict(d) for d in demos]
                        for name, demos in gold_demos(spec.mode, spec.thinking).items()})


def _saved(plan: _Plan) -> dict[str, Any] | None:
    """The meta of a program saved under the same fingerprint, unless ``recompile``."""
    path = plan.path
    if plan.spec.recompile or not (path.is_file() and meta_path(path).is_file()):
        return None
    log.info("reusing %s (same fingerprint %s): no LM call made", path, plan.fingerprint)
    return json.loads(meta_path(path).read_text(encoding="utf-8"))


def _metric(plan: _Plan, handles: dict[str, Any], budget: CallBudget):
    """The metric, its judge's calls counted against ``budget``; no judge for a rule-based
    comparison."""
    if plan.judge is None:
        return make_metric(None, plan.spec.comparison)
    judge = handles[plan.judge]
    return make_metric(budgeted(judge.lm, budget), plan.spec.comparison, judge.adapter)


def _report(plan: _Plan, handles: dict[str, Any], budget: CallBudget, metric,
            program: dspy.Module) -> list[dict[str, Any]]:
    """A program's valset rows, with LM calls counted outside the compile budget."""
    task = handles[plan.model]
    with dspy.context(lm=budgeted(task.lm, budget), adapter=task.adapter):
        return evaluate(program, plan.valset, metric, desc=f"{plan.spec.mode} valset")


def _compile_within(plan: _Plan, handles: dict[str, Any], budget: CallBudget,
                    baseline: Candidate) -> tuple[dspy.Module, CompileReport]:
    """Compile with every LM call counted against ``budget``; ``(program, report)``.

    The optimizer starts from ``baseline`` (the zero-shot program with its valset score and
    rows) and returns the best candidate scored above it, or the zero-shot program; when the
    budget stops it midway, the best found by then (the report says ``stopped``).
    """
    metric = _metric(plan, handles, budget)
    task_lm = budgeted(handles[plan.model].lm, budget)
    student = plan.student.deepcopy()
    student.failures_as_predictions = True  # GEPA reflects on the codes of rows given up on
    reflection_lm = (budgeted(handles[plan.reflection].lm, budget)
                     if plan.optimizer.uses_reflection else None)
    optimizer = plan.optimizer(metric, plan.spec, reflection_lm=reflection_lm,
                               lm_calls=lambda: budget.used)
    with dspy.context(lm=task_lm, adapter=handles[plan.model].adapter):
        program = optimizer.compile(student, trainset=plan.trainset, valset=plan.valset,
                                    baseline=baseline)
    report = optimizer.report
    if report.stopped:
        log.warning("budget of %s LM calls reached: saving the best program found so far "
                    "(marked partial)", plan.spec.budget_calls)
    return program, report


def _save_and_log(plan: _Plan, compiled: dspy.Module, meta: dict[str, Any],
                  rows: dict[str, list[dict[str, Any]]]) -> None:
    from argalign import tracking

    path = plan.path
    path.parent.mkdir(parents=True, exist_ok=True)
    compiled.save(str(path))
    write_json_atomic(meta_path(path), meta)
    baseline, after = meta["baseline"], meta["compiled"]
    tracking.log_metrics({
        **{f"baseline_{k}": v for k, v in baseline.items()},
        **{f"compiled_{k}": v for k, v in after.items()},
        "delta_score": after["score"] - baseline["score"],
        **_intervals(rows["baseline"], rows["compiled"]),
        "lm_calls": meta["compile_calls"] + meta["report_calls"],
        "compile_lm_calls": meta["compile_calls"],
        "input_tokens": meta["input_tokens"], "output_tokens": meta["output_tokens"],
        "wall_time_s": meta["wall_s"], "partial": int(meta["partial"])})
    tracking.log_file(path, "program")
    tracking.log_file(meta_path(path), "program")
    tracking.log_dict(rows, "valset_scores.json")
    _log_evaluations(rows)
    tracking.log_dict({"train": plan.determined_by["train_ids"],
                       "val": plan.determined_by["val_ids"]}, "dataset_ids.json")
    _log_inputs(plan)
    tracking.set_tags({"partial": str(meta["partial"]), "program_path": str(path)})


def _row_sha256(row: dict[str, Any]) -> str:
    text = json.dumps(row, sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def _log_inputs(plan: _Plan) -> None:
    """The train and validation examples as the run's input datasets (contexts ``training``
    and ``validation``): one line per example, its id and the SHA-256 of its row, sourced from
    where they were drawn, so the digest changes when the draw or a row does."""
    from argalign import tracking
    from argalign.core.sources import resolve_source

    try:
        found = resolve_source(plan.spec.source)
        source = (f"https://huggingface.co/datasets/{found.location}" if found.kind == "hub"
                  else found.location)
        for context, split, examples in (("training", "train", plan.trainset),
                                         ("validation", "validation", plan.valset)):
            tracking.log_dataset([{"id": e.id, "sha256": _row_sha256(e.row)} for e in examples],
                                 name=f"{found.label}/{split}", source=source, context=context)
    except Exception as e:  # noqa: BLE001 - the program and its scores are saved already
        log.warning("MLflow: the train and validation inputs could not be logged: %s", e)


def _intervals(baseline: list[dict[str, Any]], compiled: list[dict[str, Any]]) -> dict[str, float]:
    """95% bootstrap intervals over the valset: each program's mean score, forward and backward,
    and the paired difference of the scores (compiled - baseline, matched by example id)."""
    from argalign.core.stats import difference_ci, mean_ci

    out: dict[str, float] = {}
    for name, rows in (("baseline", baseline), ("compiled", compiled)):
        for part in ("score", "forward", "backward") if rows else ():
            estimate = mean_ci([r[part] for r in rows])
            out.update({f"{name}_{part}_low": estimate.low, f"{name}_{part}_high": estimate.high})
    before = {r["id"]: r["score"] for r in baseline}
    pairs = [(before[r["id"]], r["score"]) for r in compiled if r["id"] in before]
    if pairs:
        estimate = difference_ci(pairs)
        out.update({"delta_score_low": estimate.low, "delta_score_high": estimate.high})
    return out


def _log_evaluations(rows: dict[str, list[dict[str, Any]]]) -> None:
    """Each program's valset rows as an MLflow table and as an evaluation (a child run per
    program, the metric as the scorer), so the UI's evaluation views show them per example."""
    from argalign import tracking
    from argalign.tracking import genai

    for name, program_rows in rows.items():
        tracking.log_table([{k: v for k, v in r.items() if k != "feedback"} for r in program_rows],
                           f"tables/valset_{name}.json")
    try:
        for name, program_rows in rows.items():
            with tracking.child_run(f"{name} on the valset", {"program": name}):
                genai.evaluate_rows([{"inputs": {"id": r["id"]},
                                      "outputs": {"outcome": r["outcome"],
                                                  "scores": {Outcome.ALIGNED.value: r}}}
                                     for r in program_rows], genai.scorer())
    except Exception as e:  # noqa: BLE001 - the program and its scores are saved already
        log.warning("MLflow: the valset evaluations could not be logged: %s", e)


def run_optimize(spec: OptimizeSpec, settings: str | None = None) -> OptimizeResult:
    """Load, reuse a saved program with the same fingerprint, or measure the zero-shot
    baseline, compile within the budget, measure the result, save and log it."""
    from argalign import tracking
    from argalign.models.lm import open_models

    plan = _load(spec, settings)
    saved = _saved(plan)
    if saved is not None:
        return OptimizeResult.of(saved, str(plan.path), reused=True)

    started = time.monotonic()
    params = {"mode": spec.mode, "optimizer": spec.optimizer, "task_model": plan.model,
              "judge_model": plan.judge or "", "reflection_model": plan.reflection or "",
              "train": len(plan.trainset), "val": len(plan.valset), "seed": spec.seed,
              "budget_calls": spec.budget_calls, "comparison": spec.comparison,
              "thinking": spec.thinking, "candidates": spec.candidates,
              "max_demos": spec.max_demos, "fingerprint": plan.fingerprint,
              "source": spec.source or "sample"}
    with open_models(plan.settings, plan.model_names) as handles, tracking.start_run(
            tracking.EXPERIMENT_OPTIMIZE, f"{spec.mode}-{spec.optimizer}-{plan.fingerprint}",
            params, {"argalign_version": __version__}), tracking.dspy_autolog():
        report_budget = CallBudget(None)
        report_metric = _metric(plan, handles, report_budget)
        baseline_rows = _report(plan, handles, report_budget, report_metric, plan.student)
        baseline = summarize(baseline_rows)
        log.info("baseline (zero-shot) on %d val examples: %s", len(plan.valset), baseline)

        budget = CallBudget(spec.budget_calls)
        # The program that wins keeps its valset rows: the same program on the same valset
        # with the same metric is not evaluated twice.
        compiled, report = _compile_within(
            plan, handles, budget, Candidate(plan.student, baseline["score"], baseline_rows))
        compiled_rows, partial = report.best.rows, report.stopped
        notes = {**report.notes, "candidates": report.candidates,
                 "best_found_at": report.best.found_at}
        after = summarize(compiled_rows)
        meta = {"fingerprint": plan.fingerprint, "mode": spec.mode, "partial": partial,
                "determined_by": plan.determined_by, "baseline": baseline, "compiled": after,
                "compile_calls": budget.used, "report_calls": report_budget.used,
                "input_tokens": budget.input_tokens + report_budget.input_tokens,
                "output_tokens": budget.output_tokens + report_budget.output_tokens,
                "wall_s": round(time.monotonic() - started, 1), "spec": asdict(spec),
                "zero_shot_kept": compiled is plan.student, "compile": notes,
                "demos": demo_ids(compiled)}
        _save_and_log(plan, compiled, meta, {"baseline": baseline_rows, "compiled": compiled_rows})
    return OptimizeResult.of(meta, str(plan.path), reused=False)


def _self_judged(params: dict[str, str]) -> bool:
    """Whether the judge is one of the task models (it then grades its own output)."""
    judge = params.get("judge_model") or params.get("judge")
    models = params.get("task_model") or ",".join(
        m.split("=", 1)[0] for m in (params.get("models") or "").split(",") if m)
    return bool(judge) and judge in models.split(",")


def compare_table(experiment: str) -> list[dict[str, Any]]:
    """Runs of an experiment as table rows (what one would open the MLflow UI for).

    Optimization runs show the baseline and compiled means and their difference; batch runs
    (``argalign-run``) the means before and after alignment and the difference. Each has its
    95% interval (``<column>_low``, ``<column>_high``; None for a run logged without one);
    ``self_judged`` marks a run whose judge is one of its task models. A SQLite store that
    does not exist yet is a ConfigError (nothing was logged there), and is not created.
    """
    from argalign import tracking

    database = tracking.sqlite_path(tracking.tracking_uri())
    if database is not None and not database.is_file():  # never create one just to read it
        raise ConfigError(f"no MLflow store at {database}: nothing to compare yet (optimize and "
                          "run log there; MLFLOW_TRACKING_URI names another store)")
    table = []
    for run in tracking.search_runs(experiment):
        p, m = run["params"], run["metrics"]
        before, after, delta = (("score_before", "score_after", "score_difference")
                                if "score_after" in m else
                                ("baseline_score", "compiled_score", "delta_score"))
        row = {"run": run["run_name"], "status": run["status"],
               "mode": p.get("mode") or p.get("modes"),
               "models": p.get("task_model") or p.get("models"),
               "judge": p.get("judge_model") or p.get("judge"), "optimizer": p.get("optimizer")}
        for column, metric in (("baseline", before), ("compiled", after), ("delta", delta)):
            row.update({column: m.get(metric), f"{column}_low": m.get(f"{metric}_low"),
                        f"{column}_high": m.get(f"{metric}_high")})
        row.update({"lm_calls": m.get("lm_calls"), "output_tokens": m.get("output_tokens"),
                    "wall_s": m.get("wall_time_s"), "partial": run["tags"].get("partial"),
                    "self_judged": _self_judged(p)})
        table.append(row)
    return table
