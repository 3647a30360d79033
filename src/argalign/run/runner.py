"""``argalign run``: align every raw example exactly once, concurrently and resumably.

Input: the raw subsets ``<data>/raw/<config>/<split>.jsonl`` that ``prepare`` wrote.
Output: one result record per example (see :func:`argalign.align.align_example`, plus
``run`` and ``model_string``) appended to
``<data>/runs/<run>/results/<config>/<split>/<mode>-<model>.jsonl``; ``manifest.json``,
``summary.json`` and ``failures.jsonl`` beside them; one MLflow run per batch.

Each example goes to one (mode, model) group (:mod:`argalign.run.assign`). Each model gets
``concurrency`` worker threads, each with its own ``lm.copy()`` (so ``lm.history``, which the
token count and the truncation check read, is per thread) and its own program copy; a shared
:class:`Throttle` per model caps requests in flight and requests per minute. Transient HTTP
errors are retried by DSPy itself (``num_retries``, honouring ``Retry-After``); what still
fails becomes a ``failed`` record. A restart skips every id with a complete result line.
"""

from __future__ import annotations

import logging
import queue
import sys
import threading
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import dspy
from dspy.utils.callback import BaseCallback

from argalign import __version__
from argalign.config import Settings, load_settings
from argalign.errors import ConfigError, RunError
from argalign.run.assign import Group, assign, groups_for, safe_name
from argalign.run.report import summarize, write_reports
from argalign.run.store import (
    RawEntry,
    ResultWriter,
    RunStore,
    Subset,
    differences,
    file_sha256,
    index_raw,
    iter_results,
    raw_path,
    raw_subsets,
    read_example,
    read_manifest,
    write_manifest,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RunOptions:
    """Everything ``argalign run`` takes; ``models=()`` means the settings' default model."""

    data: Path = Path("data")
    modes: tuple[str, ...] = ("A", "B")
    models: tuple[str, ...] = ()
    config: str | None = None
    program_a: str | None = None
    program_b: str | None = None
    thinking: str = "blocks"
    score: bool = False
    judge: str | None = None
    comparison: str = "judge"
    max_errors: int | None = None
    seed: int = 0
    run_name: str | None = None
    force: bool = False
    configs: tuple[str, ...] = ()
    splits: tuple[str, ...] = ()
    track: bool = True
    progress: bool = True


@dataclass(frozen=True)
class WorkItem:
    subset: Subset
    entry: RawEntry
    group: Group
    raw: Path


@dataclass
class Plan:
    """A run resolved against settings and data, before any LM call."""

    options: RunOptions
    settings: Settings
    store: RunStore
    models: list[str]
    judge: str | None
    groups: list[Group]
    subsets: list[Subset]
    programs: dict[str, tuple[Any, str]]
    params: dict[str, Any]

    @property
    def total(self) -> int:
        return sum(self.sizes.values())
    sizes: dict[str, int] = field(default_factory=dict)  # subset key -> examples
    done: dict[str, str] = field(default_factory=dict)  # id -> outcome, before this batch
    work: dict[str, deque[WorkItem]] = field(default_factory=dict)  # model -> items


@dataclass
class Session:
    """What this batch did."""

    outcomes: Counter = field(default_factory=Counter)
    elapsed_s: float = 0.0
    stopped: str | None = None

    @property
    def conversations(self) -> int:
        return sum(self.outcomes.values())


def default_run_name(modes: list[str], models: list[str], seed: int) -> str:
    return f"run-{''.join(modes)}-{'+'.join(safe_name(m) for m in models)}-s{seed}"


def plan_run(options: RunOptions) -> Plan:
    """Check options, settings, programs and data; fingerprint the run; list what is left."""
    from argalign.modules import MODES, THINKING_SCOPES
    from argalign.programs import load_program

    modes = list(dict.fromkeys(options.modes))
    if not modes or any(m not in MODES for m in modes):
        raise ConfigError(f"--modes must be some of {', '.join(MODES)}, got {options.modes}")
    if options.thinking not in THINKING_SCOPES:
        raise ConfigError(f"--thinking must be one of {', '.join(THINKING_SCOPES)}")
    if options.comparison not in ("judge", "lexical"):
        raise ConfigError("--comparison must be judge or lexical")
    if options.max_errors is not None and options.max_errors < 0:
        raise ConfigError("--max-errors must be >= 0")
    settings = load_settings(options.config)
    models = list(dict.fromkeys(options.models)) or [settings.default_model]
    for name in models:
        settings.get(name)
    judge = (options.judge or settings.default_judge) if options.score else None
    if judge is not None:
        settings.get(judge)
    subsets = raw_subsets(options.data, options.configs or None, options.splits or None)
    program_paths = {"A": options.program_a, "B": options.program_b}
    programs = {mode: load_program(mode, program_paths[mode], thinking=options.thinking)
                for mode in modes}
    store = RunStore(options.data, options.run_name or default_run_name(modes, models, options.seed))
    plan = Plan(options=options, settings=settings, store=store, models=models, judge=judge,
                groups=groups_for(modes, models), subsets=subsets, programs=programs, params={})
    plan.params = run_params(plan)
    _list_work(plan)
    return plan


def _model_params(settings: Settings, name: str) -> dict[str, Any]:
    cfg = settings.get(name)
    # What shapes the output; endpoints, keys and throughput settings are left out on purpose.
    return {"model": cfg.model, "temperature": cfg.temperature, "max_tokens": cfg.max_tokens,
            "structured_output": cfg.structured_output,
            "local": cfg.local.gguf if cfg.local is not None else None}


def run_params(plan: Plan) -> dict[str, Any]:
    """The parameter fingerprint a resume must match."""
    options = plan.options
    scoring: dict[str, Any] = {"enabled": False}
    if plan.judge is not None:
        scoring = {"enabled": True, "judge": plan.judge, "comparison": options.comparison,
                   "judge_model": _model_params(plan.settings, plan.judge)}
    return {
        "configs": sorted({s.config for s in plan.subsets}),
        "splits": sorted({s.split for s in plan.subsets}),
        "modes": [g for g in dict.fromkeys(g.mode for g in plan.groups)],
        "models": {name: _model_params(plan.settings, name) for name in plan.models},
        "programs": {mode: fp for mode, (_, fp) in plan.programs.items()},
        "thinking": options.thinking,
        "seed": options.seed,
        "raw": {s.key: file_sha256(raw_path(options.data, s)) for s in plan.subsets},
        "scoring": scoring,
    }


def _list_work(plan: Plan) -> None:
    plan.work = {model: deque() for model in plan.models}
    for subset in plan.subsets:
        path = raw_path(plan.options.data, subset)
        entries = index_raw(path)
        plan.sizes[subset.key] = len(entries)
        done = {record["id"]: record["outcome"] for result in plan.store.result_files(subset)
                for _, _, record in iter_results(result)}
        plan.done.update(done)
        groups = assign((e.id for e in entries), plan.groups, plan.options.seed, subset.key)
        for entry in entries:
            if entry.id not in done:
                group = groups[entry.id]
                plan.work[group.model].append(WorkItem(subset, entry, group, path))


def check_manifest(plan: Plan) -> dict[str, Any]:
    """Write the manifest; refuse (RunError) to resume with other parameters unless forced."""
    from argalign.programs import fingerprint

    store, params = plan.store, plan.params
    now = datetime.now(timezone.utc).isoformat(timespec="seconds")
    old = read_manifest(store.manifest_path)
    if old is None:
        if plan.done:
            log.warning("%s has results but no manifest: resuming by id", store.dir)
        manifest = {"run_name": store.name, "created": now, "updated": now,
                    "argalign_version": __version__, "fingerprint": fingerprint(params),
                    "params": params, "forced": []}
    else:
        diffs = differences(old.get("params", {}), params)
        if diffs and not plan.options.force:
            raise RunError(
                f"run {store.name!r} in {store.dir} was started with other parameters:\n  "
                + "\n  ".join(diffs)
                + "\nPass --force to resume it anyway (finished results are kept), or "
                  "--run-name NAME to start a new run.")
        manifest = {**old, "updated": now, "params": params, "fingerprint": fingerprint(params)}
        if diffs:
            log.warning("--force: resuming %s with changed parameters: %s", store.name,
                        "; ".join(diffs))
            manifest["forced"] = [*old.get("forced", []), {"at": now, "differences": diffs}]
    write_manifest(store.manifest_path, manifest)
    return manifest


# --- throughput -------------------------------------------------------------------------------

class Throttle(BaseCallback):
    """Per-model limits, shared by the model's LM copies: requests in flight and per minute.

    A DSPy callback: ``on_lm_start`` runs before each LM call, ``on_lm_end`` after it (also on
    error). DSPy's own retries of one call happen inside it and are not counted again.
    """

    def __init__(self, concurrency: int, rpm: int | None = None):
        self._slots = threading.Semaphore(concurrency)
        self._interval = 60.0 / rpm if rpm else 0.0
        self._next = 0.0
        self._lock = threading.Lock()
        self._held: set[str] = set()

    def on_lm_start(self, call_id: str, instance: Any, inputs: dict[str, Any]) -> None:
        self._slots.acquire()
        with self._lock:
            self._held.add(call_id)
            now = time.monotonic()
            wait = max(0.0, self._next - now)
            self._next = max(now, self._next) + self._interval
        if wait:
            time.sleep(wait)

    def on_lm_end(self, call_id: str, outputs: Any, exception: Exception | None = None) -> None:
        with self._lock:
            if call_id not in self._held:
                return
            self._held.discard(call_id)
        self._slots.release()


def _thread_lm(lm: dspy.BaseLM, throttle: Throttle) -> dspy.BaseLM:
    copy = lm.copy()  # its own history and callbacks list
    copy.callbacks.append(throttle)
    return copy


def _clear_histories(*objects: Any) -> None:
    # DSPy keeps the last 10,000 calls per LM and per module; align_example counts tokens from
    # the length of lm.history, which stops growing at that cap. One example at a time is enough.
    for obj in objects:
        if obj is None:
            continue
        modules = [obj] + ([m for _, m in obj.named_sub_modules()]
                           if isinstance(obj, dspy.Module) else [])
        for module in modules:
            history = getattr(module, "history", None)
            if isinstance(history, list):
                history.clear()


class _Batch:
    """Shared state of the worker threads."""

    def __init__(self, plan: Plan, handles: dict[str, Any], writer: ResultWriter):
        self.plan, self.handles, self.writer = plan, handles, writer
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.results: queue.Queue = queue.Queue()
        self.throttles = {name: Throttle(plan.settings.get(name).concurrency,
                                         plan.settings.get(name).rpm) for name in handles}

    def worker(self, model: str) -> None:
        try:
            self._work(model)
        except BaseException as e:  # noqa: BLE001 - handed to the main thread, which stops the run
            self.stop.set()
            self.results.put(e)

    def _work(self, model: str) -> None:
        from argalign.align import align_example
        from argalign.metrics import MutualPredictability
        from argalign.tracking import scrub

        plan, items = self.plan, self.plan.work[model]
        handle = self.handles[model]
        lm = _thread_lm(handle.lm, self.throttles[model])
        programs = {mode: module.deepcopy() for mode, (module, _) in plan.programs.items()}
        judge = judge_lm = None
        if plan.judge is not None:
            judge = MutualPredictability(plan.options.comparison)
            judge_lm = _thread_lm(self.handles[plan.judge].lm, self.throttles[plan.judge])
        model_string = plan.settings.get(model).model
        while not self.stop.is_set():
            with self.lock:
                if not items:
                    return
                item = items.popleft()
            program = programs[item.group.mode]
            _clear_histories(lm, judge_lm, program, judge)
            example = read_example(item.raw, item.entry.offset)
            record = align_example(example, program, model=model, lm=lm, adapter=handle.adapter,
                                   program_id=plan.programs[item.group.mode][1], judge=judge,
                                   judge_lm=judge_lm)
            record["run"] = plan.store.name
            record["model_string"] = model_string
            # An error message may quote a request; keys from the environment never go to disk.
            record["reason"] = scrub(record.get("reason", ""))
            record["retries"] = scrub(record.get("retries", []))
            self.writer.write(plan.store.result_path(item.subset, item.group), record)
            self.results.put(record)


def _execute(plan: Plan, handles: dict[str, Any]) -> Session:
    from tqdm import tqdm

    session = Session()
    pending = sum(len(items) for items in plan.work.values())
    started = time.monotonic()
    previous = Counter(plan.done.values())
    bar = tqdm(total=plan.total, initial=plan.total - pending, desc=plan.store.name,
               unit="conv", file=sys.stderr, disable=not plan.options.progress,
               mininterval=0.5, dynamic_ncols=True)
    with ResultWriter() as writer:
        batch = _Batch(plan, handles, writer)
        threads = [threading.Thread(target=batch.worker, args=(model,), daemon=True,
                                    name=f"align-{model}-{k}")
                   for model, items in plan.work.items()
                   for k in range(min(plan.settings.get(model).concurrency, len(items)))]
        for thread in threads:
            thread.start()
        error: BaseException | None = None
        try:
            while any(t.is_alive() for t in threads) or not batch.results.empty():
                try:
                    message = batch.results.get(timeout=0.2)
                except queue.Empty:
                    continue
                if isinstance(message, BaseException):
                    error = error or message
                    continue
                session.outcomes[message["outcome"]] += 1
                bar.update(1)
                counts = previous + session.outcomes
                bar.set_postfix(done=sum(counts.values()) - counts["failed"],
                                failed=counts["failed"], refresh=False)
                limit = plan.options.max_errors
                if limit is not None and session.outcomes["failed"] > limit and not session.stopped:
                    session.stopped = (f"stopped after {session.outcomes['failed']} failed examples "
                                       f"(--max-errors {limit})")
                    log.error("%s; finishing the conversations in flight", session.stopped)
                    batch.stop.set()
        except KeyboardInterrupt:
            batch.stop.set()
            log.error("interrupted: conversations in flight are dropped and redone on resume")
            raise
        finally:
            bar.close()
            session.elapsed_s = time.monotonic() - started
    if error is not None:
        raise RunError(f"the run stopped on an unexpected error: {type(error).__name__}: {error}") \
            from error
    return session


# --- the command ------------------------------------------------------------------------------

def run_batch(options: RunOptions) -> dict[str, Any]:
    """Run (or resume) a batch; return its summary. RunError if it stopped on --max-errors."""
    from argalign.lm import open_models

    plan = plan_run(options)
    manifest = check_manifest(plan)
    pending = sum(len(items) for items in plan.work.values())
    log.info("run %s: %d examples in %d subsets, %d already done, %d to align",
             plan.store.name, plan.total, len(plan.subsets), len(plan.done), pending)
    with _tracked(plan, manifest) as tracker:
        session = Session()
        if pending:
            names = [m for m in plan.models if plan.work[m]]
            if plan.judge is not None:
                names.append(plan.judge)
            with open_models(plan.settings, names) as handles:
                session = _execute(plan, handles)
        summary, failures = summarize(plan.store, plan.subsets, plan.sizes)
        summary.update(session={"conversations": session.conversations,
                                "outcomes": dict(session.outcomes),
                                "elapsed_s": round(session.elapsed_s, 3),
                                "conversations_per_minute": round(
                                    60 * session.conversations / session.elapsed_s, 3)
                                if session.elapsed_s else 0.0},
                       stopped=session.stopped)
        write_reports(plan.store, summary, failures)
        tracker(summary)
        if session.stopped:
            raise RunError(f"{session.stopped}: {summary['done']} of {summary['total']} results are "
                           f"kept in {plan.store.dir}/results; fix the cause and rerun the same "
                           f"command to resume")
    log.info("run %s: %s", plan.store.name, ", ".join(f"{k} {v}" for k, v in
                                                     summary["outcomes"].items()))
    return summary


class _tracked:  # noqa: N801 - used as a context manager, reads like one
    """An MLflow parent run around the batch (or nothing with ``track=False``)."""

    def __init__(self, plan: Plan, manifest: dict[str, Any]):
        self.plan, self.manifest = plan, manifest
        self._context: Any = None

    def __enter__(self):
        if not self.plan.options.track:
            return lambda summary: None
        from argalign import tracking

        plan, options = self.plan, self.plan.options
        params = {
            "run_name": plan.store.name, "data": str(options.data),
            "configs": plan.params["configs"], "splits": plan.params["splits"],
            "n": plan.total, "seed": options.seed, "modes": plan.params["modes"],
            "models": [f"{name}={cfg['model']}" for name, cfg in plan.params["models"].items()],
            **{f"program_{mode}": fp for mode, fp in plan.params["programs"].items()},
            "thinking": options.thinking, "score": options.score,
            "judge": plan.judge or "", "comparison": options.comparison if options.score else "",
            "max_errors": options.max_errors if options.max_errors is not None else "",
            "resumed_done": len(plan.done),
        }
        tags = {"argalign.command": "run", "argalign.fingerprint": self.manifest["fingerprint"]}
        self._context = tracking.start_run(tracking.EXPERIMENT_RUN, plan.store.name, params, tags)
        self._context.__enter__()
        return self._log

    def _log(self, summary: dict[str, Any]) -> None:
        from argalign import tracking
        from argalign.run.report import metrics_of

        tracking.log_metrics(metrics_of(summary))
        tracking.set_tags({"argalign.complete": str(summary["done"] == summary["total"]).lower()})
        tracking.log_dict(summary, "summary.json")
        tracking.log_dict(self.manifest, "manifest.json")
        if self.plan.store.failures_path.is_file():
            tracking.log_file(self.plan.store.failures_path)

    def __exit__(self, *exc: Any) -> bool:
        if self._context is not None:
            return bool(self._context.__exit__(*exc))
        return False
