"""What a run will do: options checked, programs loaded, the parameter fingerprint, the work left.

Input: :class:`RunOptions` and the raw subsets. Output: a :class:`Plan` (no LM is called and
nothing is written) and, with :func:`check_manifest`, the ``runs/<run>/manifest.json`` to write. The
fingerprint holds what shapes the results: configs, splits, modes, models (model string,
temperature, max_tokens, structured output), program fingerprints, thinking scope, seed, a
SHA-256 of each raw file, the scoring settings and the acceptance gate's (retries and margin;
none when it is off). Endpoints, keys and throughput settings are left out, so moving to
another server or changing ``concurrency`` resumes the same run.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from argalign import __version__
from argalign.core.datadir import DataDir, RunStore, Subset
from argalign.core.defaults import (
    DEFAULT_ACCEPT_MARGIN,
    DEFAULT_ACCEPT_RETRIES,
    DEFAULT_COMPARISON,
    DEFAULT_DATA,
    DEFAULT_MODES,
    DEFAULT_THINKING,
    DEFAULT_TRACE_SAMPLE,
)
from argalign.core.errors import ConfigError, RunError
from argalign.core.files import file_sha256
from argalign.core.records import Outcome
from argalign.models.config import Settings, load_settings, model_fingerprint
from argalign.stages.run.assign import Group, assign, groups_for, safe_name
from argalign.stages.run.store import (
    RawEntry,
    differences,
    index_raw,
    iter_results,
    raw_subsets,
    read_manifest,
)

log = logging.getLogger(__name__)

NO_PROGRAM = "none"  # --programs none (every mode) or --programs A=none: zero-shot
ALL_MODES = "*"  # the mode key of a bare --programs none

# What --retry-failed aligns again; every other outcome is kept.
RETRYABLE = frozenset({Outcome.FAILED.value, Outcome.NOT_IMPROVED.value})


@dataclass(frozen=True)
class RunOptions:
    """Everything ``argalign run`` takes; ``models=()`` means the settings' default model."""

    data: Path = Path(DEFAULT_DATA)
    modes: tuple[str, ...] = ()  # DEFAULT_MODES
    models: tuple[str, ...] = ()
    settings: str | None = None
    programs: Mapping[str, str] = field(default_factory=dict)  # mode -> path or MLflow URI
    thinking: str = DEFAULT_THINKING
    score: bool = True
    judge: str | None = None
    comparison: str = DEFAULT_COMPARISON
    # The acceptance gate (on by default; --no-accept): keep a rewrite only if it scores at
    # least accept_margin above the original, after up to accept_retries fresh samples. It
    # needs the scores, so score=False turns it off (see :attr:`gate`).
    accept_if_better: bool = True
    accept_retries: int = DEFAULT_ACCEPT_RETRIES
    accept_margin: float = DEFAULT_ACCEPT_MARGIN
    # --retry-failed: realign the failed and not_improved examples, keep every other result.
    retry_failed: bool = False
    max_errors: int | None = None
    seed: int = 0
    run_name: str | None = None
    force: bool = False
    configs: tuple[str, ...] = ()
    splits: tuple[str, ...] = ()
    track: bool = True
    progress: bool = True
    trace_sample: int = DEFAULT_TRACE_SAMPLE  # examples traced in MLflow; 0 traces none
    # Worker processes (--workers): 1 runs every LM thread in this process; more spread the
    # runner's CPU over cores, with the limits and --max-errors still global.
    workers: int = 1

    @property
    def gate(self) -> bool:
        """Whether the acceptance gate runs: asked for, and the run scores."""
        return self.accept_if_better and self.score


def stop_reason(failed: int, limit: int) -> str:
    """Why a run stopped early: more failed examples than ``--max-errors`` allows."""
    return f"stopped after {failed} failed examples (--max-errors {limit})"


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
    judge: str | None  # None when the run asks no judge: --no-score, or a rule-based comparison
    groups: list[Group]
    subsets: list[Subset]
    programs: dict[str, tuple[Any, str]]
    params: dict[str, Any]
    ids: dict[str, set[str]] = field(default_factory=dict)  # subset key -> raw ids
    done: dict[str, str] = field(default_factory=dict)  # id -> outcome, before this batch
    # --retry-failed: subset key -> ids whose failed or not_improved result is to be redone
    retry: dict[str, set[str]] = field(default_factory=dict)
    work: dict[str, deque[WorkItem]] = field(default_factory=dict)  # model -> items

    @property
    def total(self) -> int:
        return sum(len(ids) for ids in self.ids.values())


def default_run_name(modes: list[str], models: list[str], seed: int) -> str:
    return f"run-{''.join(modes)}-{'+'.join(safe_name(m) for m in models)}-s{seed}"


def plan_run(options: RunOptions) -> Plan:
    """Check options, settings, programs and data; fingerprint the run; list what is left."""
    from argalign.modes import MODES, THINKING_SCOPES
    from argalign.scoring.metrics import COMPARISONS

    modes = list(dict.fromkeys(options.modes)) or list(DEFAULT_MODES)
    if any(m not in MODES for m in modes):
        raise ConfigError(f"--modes must be some of {', '.join(MODES)}, got {options.modes}")
    if options.thinking not in THINKING_SCOPES:
        raise ConfigError(f"--thinking must be one of {', '.join(THINKING_SCOPES)}")
    if options.comparison not in COMPARISONS:
        raise ConfigError(f"--comparison must be one of {', '.join(COMPARISONS)}")
    unknown = sorted(set(options.programs) - set(MODES) - {ALL_MODES})
    if unknown:
        raise ConfigError(f"--programs names unknown modes {unknown}; modes: {', '.join(MODES)}")
    if options.max_errors is not None and options.max_errors < 0:
        raise ConfigError("--max-errors must be >= 0")
    if options.accept_retries < 0:
        raise ConfigError("--accept-retries must be >= 0")
    if not options.accept_margin >= 0:
        raise ConfigError(f"--accept-margin must be >= 0, got {options.accept_margin}")
    if options.workers < 1:
        raise ConfigError(f"--workers must be >= 1 (0 on the command line: one per core), got "
                          f"{options.workers}")
    settings = load_settings(options.settings)
    models = list(dict.fromkeys(options.models)) or [settings.default_model]
    for name in models:
        settings.get(name)
    _refuse_shared_file_names(modes, models)
    if options.accept_if_better and not options.score:
        log.info("--no-score: the acceptance gate is off (it needs the scores); every rewrite "
                 "that passes the checks is kept")
    judge = settings.judge(options.judge) if _asks_judge(options) else None
    if options.track:
        from argalign.tracking import tracking_uri

        tracking_uri()  # a bad MLFLOW_TRACKING_URI is refused before anything is written
    data = DataDir(options.data)
    subsets = raw_subsets(data, options.configs or None, options.splits or None)
    programs = {mode: _program(mode, options, settings, models) for mode in modes}
    store = data.run(options.run_name or default_run_name(modes, models, options.seed))
    plan = Plan(options=options, settings=settings, store=store, models=models, judge=judge,
                groups=groups_for(modes, models), subsets=subsets, programs=programs, params={})
    plan.params = run_params(plan)
    _list_work(plan)
    return plan


def _asks_judge(options: RunOptions) -> bool:
    """Whether the run needs a judge model: it scores, with a comparison that asks an LM."""
    from argalign.scoring.metrics import COMPARISONS

    return options.score and COMPARISONS[options.comparison].uses_lm


def _program(mode: str, options: RunOptions, settings: Settings, models: list[str]
             ) -> tuple[Any, str]:
    """A mode's program: the one named by ``--programs``, zero-shot for ``none``, else the best
    compiled program for the run's task model when there is one (:func:`default_program`)."""
    from argalign.programs.store import default_program, load_program

    chosen = options.programs.get(mode, options.programs.get(ALL_MODES))
    if chosen == NO_PROGRAM:
        return load_program(mode, None, thinking=options.thinking)
    if chosen is None and len(models) == 1:
        task_model = {"name": models[0], **model_fingerprint(settings.get(models[0]))}
        found = default_program(mode, task_model=task_model, thinking=options.thinking)
        if found is not None:
            path, meta = found
            log.info("Mode %s: taking the compiled program %s (%s, valset score %.3f over "
                     "zero-shot %.3f); --programs none runs zero-shot", mode, path,
                     meta["determined_by"].get("optimizer"), meta["compiled"]["score"],
                     meta["baseline"]["score"])
            chosen = str(path)
    elif chosen is None:
        log.info("Mode %s: zero-shot (a compiled program fits one task model; this run has %d)",
                 mode, len(models))
    return load_program(mode, chosen, thinking=options.thinking)


def _refuse_shared_file_names(modes: list[str], models: list[str]) -> None:
    """ConfigError for two models whose results would share a file (``x/y`` and ``x_y``).

    Names are compared case-folded too: on a case-insensitive file system ``M`` and ``m`` meet.
    """
    seen: dict[str, str] = {}
    for model in models:
        key = safe_name(model).casefold()
        if key in seen:
            name = Group(modes[0], model).name
            raise ConfigError(f"models {seen[key]!r} and {model!r} would write the same result "
                              f"files ({name}.jsonl ...): run them under other names, or in "
                              "separate runs (--run-name)")
        seen[key] = model


def run_params(plan: Plan) -> dict[str, Any]:
    """The parameter fingerprint a resume must match."""
    options = plan.options
    scoring: dict[str, Any] = {"enabled": False}
    if options.score:
        scoring = {"enabled": True, "comparison": options.comparison}
    if plan.judge is not None:
        scoring.update(judge=plan.judge,
                       judge_model=model_fingerprint(plan.settings.get(plan.judge)))
    params = {
        "configs": sorted({s.config for s in plan.subsets}),
        "splits": sorted({s.split for s in plan.subsets}),
        "modes": list(dict.fromkeys(g.mode for g in plan.groups)),
        "models": {name: model_fingerprint(plan.settings.get(name)) for name in plan.models},
        "programs": {mode: fp for mode, (_, fp) in plan.programs.items()},
        "thinking": options.thinking,
        "seed": options.seed,
        "raw": {s.key: file_sha256(plan.store.data.file("raw", s)) for s in plan.subsets},
        "scoring": scoring,
    }
    if options.gate:  # only when on, so runs made without the gate still resume with --no-accept
        params["acceptance"] = {"retries": options.accept_retries, "margin": options.accept_margin}
    return params


def _as_today(params: dict[str, Any]) -> dict[str, Any]:
    """A manifest's params as this version writes them: a gate recorded before the margin
    existed kept a rewrite scoring no lower, i.e. margin 0; a comparison that asks no LM was
    recorded with the judge it never called."""
    from argalign.scoring.metrics import COMPARISONS

    gate = params.get("acceptance")
    if isinstance(gate, dict) and "margin" not in gate:
        params = {**params, "acceptance": {**gate, "margin": 0.0}}
    scoring = params.get("scoring")
    kind = COMPARISONS.get(scoring.get("comparison")) if isinstance(scoring, dict) else None
    if kind is not None and not kind.uses_lm:
        params = {**params, "scoring": {k: v for k, v in scoring.items()
                                        if k not in ("judge", "judge_model")}}
    return params


def _list_work(plan: Plan) -> None:
    plan.work = {model: deque() for model in plan.models}
    for subset in plan.subsets:
        path = plan.store.data.file("raw", subset)
        entries = index_raw(path)
        plan.ids[subset.key] = {e.id for e in entries}
        done = {record["id"]: record["outcome"] for result in plan.store.result_files(subset)
                for _, _, record in iter_results(result) if record["id"] in plan.ids[subset.key]}
        if plan.options.retry_failed:
            retry = {i for i, outcome in done.items() if outcome in RETRYABLE}
            if retry:
                plan.retry[subset.key] = retry
                done = {i: outcome for i, outcome in done.items() if i not in retry}
        plan.done.update(done)
        groups = assign((e.id for e in entries), plan.groups, plan.options.seed, subset.key)
        for entry in entries:
            if entry.id not in done:
                group = groups[entry.id]
                plan.work[group.model].append(WorkItem(subset, entry, group, path))


def check_manifest(plan: Plan) -> dict[str, Any]:
    """The manifest to write; refuse (RunError) to resume with other parameters unless forced.

    Nothing is written here: the runner writes it (:func:`~argalign.stages.run.store.write_manifest`)
    once everything else has been checked, so a run refused at start leaves no manifest.
    """
    from argalign.programs.store import fingerprint

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
        diffs = differences(_as_today(old.get("params", {})), params)
        if diffs and not plan.options.force:
            hint = ""
            if any(d.startswith("acceptance") for d in diffs):
                hint = ("\nThe acceptance gate is on by default (--accept-margin "
                        f"{DEFAULT_ACCEPT_MARGIN}): pass --no-accept to resume a run started "
                        "without it, or --accept-margin 0 for one started with the old gate.")
            raise RunError(
                f"run {store.name!r} in {store.dir} was started with other parameters:\n  "
                + "\n  ".join(diffs) + hint
                + "\nPass --force to resume it anyway (finished results are kept), or "
                  "--run-name NAME to start a new run.")
        manifest = {**old, "updated": now, "params": params, "fingerprint": fingerprint(params)}
        if diffs:
            log.warning("--force: resuming %s with changed parameters: %s", store.name,
                        "; ".join(diffs))
            manifest["forced"] = [*old.get("forced", []), {"at": now, "differences": diffs}]
    return manifest
