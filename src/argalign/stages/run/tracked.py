"""The MLflow side of a batch: one run with params, metrics and the summary, and what the
MLflow UI's GenAI pages show (nothing of it with ``--no-track``).

Input: the plan and, from the workers, each finished example. Output, in the run:

- metrics (counts, tokens, the before/after table with intervals:
  :func:`~argalign.stages.run.summary.metrics_of`),
  ``summary.json``, ``manifest.json`` and ``failures.jsonl``;
- ``tables/rows.json``: one row per example (outcome, codes, scores before and after, cost),
  an MLflow table (``mlflow.log_table``), and the plots of :mod:`argalign.scoring.plots`
  under ``plots/`` (``mlflow.log_figure``);
- the raw subsets as the run's input dataset (source folder, one line per subset with its row
  count and SHA-256, so the digest changes when any file does);
- a trace per sampled example (``--trace-sample N``: N ids drawn by a hash of the seed and the
  id, so a resumed run traces the same ones), those examples as an evaluation dataset, and, when
  the run scored, ``mlflow.genai.evaluate`` over the traces with the metric as a scorer.

Each batch is one MLflow run; its id is kept in ``runs/<run>/mlflow.json``. The next batch of
the same run (a resume) is tagged ``argalign.resumed_from`` with it, and if a process killed
with ``kill -9`` left that run ``RUNNING``, it is marked ``KILLED`` first. Ctrl-C and SIGTERM
end the run ``KILLED`` (:func:`argalign.tracking.start_run`).
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from argalign.core.jsonl import write_json_atomic
from argalign.core.records import Outcome, ResultRecord
from argalign.scoring.scoreboard import PARTS, pair
from argalign.stages.run.plan import Plan, WorkItem
from argalign.stages.run.store import iter_results
from argalign.stages.run.summary import RunSummary, metrics_of

log = logging.getLogger(__name__)

def traced_ids(ids: dict[str, set[str]], n: int, seed: int) -> set[str]:
    """The ``n`` ids (of all subsets) with the smallest hash of seed and id."""
    if n <= 0:
        return set()
    every = sorted({i for found in ids.values() for i in found},
                   key=lambda i: hashlib.sha256(f"{seed}/{i}".encode()).hexdigest())
    return set(every[:n])


def first_user_text(row: Any) -> str | None:
    messages = row.get("messages") if isinstance(row, dict) else None
    for message in messages or []:
        if isinstance(message, dict) and message.get("role") == "user":
            return message.get("content")
    return None


class Tracer:
    """Traces the sampled examples as the workers finish them (thread-safe)."""

    def __init__(self, plan: Plan, experiment_id: str, run_id: str):
        self.plan, self.experiment_id, self.run_id = plan, experiment_id, run_id
        self.ids = traced_ids(plan.ids, plan.options.trace_sample, plan.options.seed)
        self.sample: list[dict[str, Any]] = []  # the traced examples, for the evaluation dataset
        self.traces = 0
        self._lock = threading.Lock()

    def observe(self, item: WorkItem, original: dict[str, Any] | None, record: ResultRecord,
                lm: Any, judge_lm: Any) -> None:
        """Trace one finished example if it is in the sample (from its LMs' histories)."""
        if record.id in self.ids:
            self.log(item, trace_payload(original, record, lm, judge_lm))

    def log(self, item: WorkItem, payload: dict[str, Any]) -> None:
        """Log a :func:`trace_payload` (made where the LMs are: a thread or a worker process)."""
        from argalign.tracking.genai import log_alignment_trace

        trace_id = log_alignment_trace(experiment_id=self.experiment_id, run_id=self.run_id,
                                       inputs=payload["inputs"], outputs=payload["outputs"],
                                       seconds=payload["seconds"], calls=payload["calls"])
        original = payload["original"]
        with self._lock:
            self.traces += trace_id is not None
            if original is not None:
                self.sample.append({"inputs": {"id": payload["inputs"]["id"],
                                               "config": item.subset.config,
                                               "split": item.subset.split, "row": original}})


# What a trace span reads of a DSPy history entry (the entry itself holds unpicklable objects).
_SPAN_KEYS = ("messages", "prompt", "outputs", "usage", "model")


def trace_payload(original: dict[str, Any] | None, record: ResultRecord, lm: Any,
                  judge_lm: Any) -> dict[str, Any]:
    """Everything a trace of one example needs, as plain data (it may cross processes)."""
    calls = [(f"lm call {k + 1}", entry) for k, entry in enumerate(getattr(lm, "history", None) or [])]
    if judge_lm is not None and judge_lm is not lm:
        calls += [(f"judge reading {k + 1}", entry)
                  for k, entry in enumerate(getattr(judge_lm, "history", None) or [])]
    inputs = {"id": record.id, "config": record.config, "split": record.split,
              "mode": record.mode, "model": record.model, "program": record.program,
              "request": first_user_text(original)}
    outputs = {"outcome": record.outcome.value, "codes": record.codes, "reason": record.reason,
               "request": first_user_text(record.row), "scores": record.scores}
    seconds = record.latency_s + float(((record.scores or {}).get("usage") or {}).get("seconds") or 0)
    return {"inputs": inputs, "outputs": outputs, "seconds": seconds, "original": original,
            "calls": [(name, {key: entry.get(key) for key in _SPAN_KEYS}) for name, entry in calls]}


def table_rows(plan: Plan) -> list[dict[str, Any]]:
    """One flat row per result of the run's raw ids (for ``mlflow.log_table`` and the plots)."""
    rows = []
    for subset in plan.subsets:
        for path in plan.store.result_files(subset):
            for _, _, line in iter_results(path):
                record = ResultRecord.from_dict(line)
                if record.id not in plan.ids.get(subset.key, ()):
                    continue
                row: dict[str, Any] = {
                    "id": record.id, "config": subset.config, "split": subset.split,
                    "mode": record.mode, "model": record.model, "program": record.program,
                    "outcome": record.outcome.value, "codes": " ".join(record.codes or []),
                    "calls": record.calls, "input_tokens": record.input_tokens,
                    "output_tokens": record.output_tokens, "latency_s": record.latency_s}
                for part in PARTS:
                    found = pair(record.scores, part)
                    row[f"{part}_before"], row[f"{part}_after"] = found if found else (None, None)
                usage = (record.scores or {}).get("usage") if isinstance(record.scores, dict) else None
                row["judge_calls"] = (usage or {}).get("calls")
                row["reason"] = (record.reason or "")[:300]
                rows.append(row)
    return rows


def _plot_scores(rows: list[dict[str, Any]]) -> dict[tuple[str, str], tuple[list[float], list[float]]]:
    scores: dict[tuple[str, str], tuple[list[float], list[float]]] = {}
    for row in rows:
        if row["outcome"] != Outcome.ALIGNED or row["score_before"] is None:
            continue
        for kind in ("mode", "model"):
            before, after = scores.setdefault((kind, str(row[kind])), ([], []))
            before.append(row["score_before"])
            after.append(row["score_after"])
    return scores


def _log_outputs(plan: Plan, tracer: Tracer | None) -> None:
    """The table, the plots, the input dataset, the sample and its evaluation."""
    from argalign import tracking
    from argalign.scoring import plots

    rows = table_rows(plan)
    tracking.log_table(rows, "tables/rows.json")
    figures = plots.score_figures(_plot_scores(rows))
    try:
        for name, figure in figures.items():
            tracking.log_figure(figure, f"plots/{name}")
    finally:
        plots.close(figures)
    tracking.log_dataset(
        [{"config": s.config, "split": s.split, "rows": len(plan.ids.get(s.key, ())),
          "sha256": plan.params["raw"][s.key]} for s in plan.subsets],
        name=f"{plan.store.data.root.name}/raw", source=str(plan.store.data.stage("raw").resolve()),
        context="input")
    if tracer is None or not tracer.traces:
        return
    from argalign.tracking import genai

    genai.flush_traces()  # traces are exported asynchronously: all of them are in the run now
    if tracer.sample:
        genai.log_sample(f"{plan.store.name} sample", tracer.sample,
                         {"argalign.run": plan.store.name})
    if plan.options.score:
        means = genai.evaluate_traces(tracer.run_id, genai.scorer())
        log.info("mlflow.genai.evaluate over %d traces: %s", tracer.traces, means)


class Tracking:
    """What the batch reports to MLflow; ``tracer`` is None when nothing is traced."""

    def __init__(self, plan: Plan, manifest: dict[str, Any], tracer: Tracer | None = None):
        self.plan, self.manifest, self.tracer = plan, manifest, tracer

    def finish(self, summary: RunSummary) -> None:
        from argalign import tracking

        tracking.log_metrics(metrics_of(summary))
        tracking.set_tags({"argalign.complete": str(summary.done == summary.total).lower()})
        tracking.log_dict(summary.as_dict(), "summary.json")
        tracking.log_dict(self.manifest, "manifest.json")
        if self.plan.store.failures_path.is_file():
            tracking.log_file(self.plan.store.failures_path)
        try:
            _log_outputs(self.plan, self.tracer)
        except Exception as e:  # noqa: BLE001 - the results are on disk; MLflow extras may fail
            log.warning("MLflow: the table, plots, dataset or evaluation could not be logged: %s", e)


class _Untracked(Tracking):
    def finish(self, summary: RunSummary) -> None:
        pass


def _previous_run(plan: Plan) -> str | None:
    """The MLflow run id the last batch of this run wrote (``runs/<run>/mlflow.json``)."""
    path = plan.store.mlflow_path
    try:
        found = json.loads(path.read_text("utf-8")) if path.is_file() else {}
    except (OSError, ValueError) as e:
        log.warning("%s cannot be read (%s): the new MLflow run is not linked to the last one",
                    path, e)
        return None
    run_id = found.get("run_id") if isinstance(found, dict) else None
    return run_id if isinstance(run_id, str) and run_id else None


@contextmanager
def tracked(plan: Plan, manifest: dict[str, Any]) -> Iterator[Tracking]:
    """An MLflow run around the batch (nothing with ``track=False``)."""
    if not plan.options.track:
        yield _Untracked(plan, manifest)
        return
    from argalign import tracking

    options = plan.options
    params = {
        "run_name": plan.store.name, "data": str(options.data),
        "configs": plan.params["configs"], "splits": plan.params["splits"],
        "n": plan.total, "seed": options.seed, "modes": plan.params["modes"],
        "models": [f"{name}={cfg['model']}" for name, cfg in plan.params["models"].items()],
        **{f"program_{mode}": fp for mode, fp in plan.params["programs"].items()},
        "thinking": options.thinking, "score": options.score,
        "judge": plan.judge or "", "comparison": options.comparison if options.score else "",
        "accept_if_better": options.gate,
        "accept_margin": options.accept_margin if options.gate else "",
        "accept_retries": options.accept_retries if options.gate else "",
        "max_errors": options.max_errors if options.max_errors is not None else "",
        "resumed_done": len(plan.done), "trace_sample": options.trace_sample,
    }
    tags = {"argalign.command": "run", "argalign.fingerprint": manifest["fingerprint"]}
    previous = _previous_run(plan)
    if previous is not None:
        # The data folder is locked (argalign.core.lock): a run of it still RUNNING has no process.
        ended = tracking.end_stale_run(previous)
        if ended:
            log.warning("MLflow run %s of %s was left running by a process that is gone: marked "
                        "killed", previous, plan.store.name)
        if ended is not None:
            tags["argalign.resumed_from"] = previous
    with tracking.start_run(tracking.EXPERIMENT_RUN, plan.store.name, params, tags) as run:
        write_json_atomic(plan.store.mlflow_path, {"run_id": run.info.run_id,
                                                   "experiment_id": run.info.experiment_id})
        tracer = (Tracer(plan, run.info.experiment_id, run.info.run_id)
                  if options.trace_sample > 0 else None)
        yield Tracking(plan, manifest, tracer)
