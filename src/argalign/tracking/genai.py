"""MLflow's GenAI side: traces of alignments, the metric as a scorer, evaluations, and the
sample as an evaluation dataset, so that the UI's Traces, Evaluation and Datasets pages show
argalign's work.

- :func:`log_alignment_trace` writes one trace per aligned example (``run --trace-sample``
  decides which): a root span with the example's request before and after, its outcome, codes
  and scores, and one child span per LM call (the aligning model's and the judge's), built
  from the LMs' histories. Every field is scrubbed of secrets and capped in length.
- :func:`scorer` is the metric as an ``mlflow.genai`` scorer: three feedbacks per example
  that ended ``aligned`` (the aligned row's score, the original's, and the gain). It reports
  the scores argalign's metric computed for the example (in the trace's outputs, or a row's
  ``outputs``), and computes them with the ``compute`` callable when they are missing. An
  example scored before and after that did not end ``aligned`` gets one feedback without a
  value (its scores in the rationale), so the means ``mlflow.genai.evaluate`` logs
  (``mutual_predictability_gain/mean``, ``_before/mean``, ``/mean``) are over the aligned rows,
  as every before/after mean is (:func:`argalign.scoring.scoreboard.counted`). An example with no
  original's score (``optimize``'s valset rows) has a program's score only, reported as it is
  (a row the gate turned away scores 0: what the optimizer maximises,
  :func:`argalign.programs.evaluation.summarize`).
- :func:`evaluate_traces` and :func:`evaluate_rows` run ``mlflow.genai.evaluate`` with that
  scorer over a run's traces or over rows, attaching the feedbacks to each trace.
- :func:`log_sample` stores examples as an MLflow evaluation dataset and records it as an
  input of the active run.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

from argalign.core.records import Outcome, gate_word
from argalign.core.redact import scrub
from argalign.tracking import _mlflow

log = logging.getLogger(__name__)

SCORER = "mutual_predictability"
TEXT_LIMIT = 8000  # characters of one field in a trace
EVAL_WORKERS = "2"  # MLflow's default of 10 threads exhausts a SQLite store's connection pool
SOURCE_RUN = "mlflow.sourceRun"


def _cap(value: Any, limit: int = TEXT_LIMIT) -> Any:
    """Scrubbed, and every string cut to ``limit`` characters (a trace is for reading)."""
    value = scrub(value)
    if isinstance(value, str):
        return value if len(value) <= limit else value[:limit] + f" [... {len(value) - limit} more]"
    if isinstance(value, Mapping):
        return {str(k): _cap(v, limit) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_cap(v, limit) for v in value]
    return value


# --- traces ----------------------------------------------------------------------------------

def _call_span(mlflow: Any, parent: Any, name: str, entry: Mapping[str, Any], start_ns: int,
               end_ns: int) -> None:
    from mlflow.entities import SpanType

    messages = entry.get("messages") or ([{"role": "user", "content": entry["prompt"]}]
                                         if entry.get("prompt") else [])
    outputs = [o.get("text", o) if isinstance(o, Mapping) else o for o in entry.get("outputs") or []]
    usage = entry.get("usage") or {}
    span = mlflow.start_span_no_context(
        name, span_type=SpanType.CHAT_MODEL, parent_span=parent, start_time_ns=start_ns,
        inputs=_cap({"messages": messages}, 4000),
        attributes={"model": str(entry.get("model") or ""),
                    "prompt_tokens": int(usage.get("prompt_tokens") or 0),
                    "completion_tokens": int(usage.get("completion_tokens") or 0)})
    span.end(outputs=_cap({"outputs": outputs}, 4000), end_time_ns=end_ns)


def log_alignment_trace(*, experiment_id: str, run_id: str, inputs: Mapping[str, Any],
                        outputs: Mapping[str, Any], seconds: float,
                        calls: Sequence[tuple[str, Mapping[str, Any]]]) -> str | None:
    """One trace for one example; ``calls`` are ``(span name, LM history entry)`` in order.

    The trace is linked to ``run_id``. The child spans share the example's wall time evenly
    (a history entry keeps no start time). Returns the trace id (None if tracing failed: a
    trace is never worth a lost example).
    """
    from mlflow.entities import SpanType

    mlflow = _mlflow()
    end_ns = time.time_ns()
    start_ns = end_ns - int(max(seconds, 0.001) * 1e9)
    try:
        root = mlflow.start_span_no_context(
            f"align {inputs.get('id')}", span_type=SpanType.CHAIN, inputs=_cap(dict(inputs)),
            experiment_id=experiment_id, start_time_ns=start_ns,
            metadata={SOURCE_RUN: run_id},
            tags={"argalign.outcome": str(outputs.get("outcome")),
                  "argalign.mode": str(inputs.get("mode"))})
        step = (end_ns - start_ns) // max(1, len(calls))
        for k, (name, entry) in enumerate(calls):
            _call_span(mlflow, root, name, entry, start_ns + k * step, start_ns + (k + 1) * step)
        root.end(outputs=_cap(dict(outputs)), end_time_ns=end_ns)
        return root.trace_id
    except Exception as e:  # noqa: BLE001 - tracing is a record of the work, never a blocker
        log.warning("could not trace %s: %s", inputs.get("id"), scrub(str(e)))
        return None


def flush_traces() -> None:
    with contextlib.suppress(Exception):
        _mlflow().flush_trace_async_logging()


# --- the metric as a scorer ------------------------------------------------------------------

def _outcome(outputs: Any, scores: Mapping[str, Any]) -> str:
    """The example's outcome; for a row scored here, what the runner would record (the gate's
    ``pass`` is ``aligned``, as in :func:`argalign.programs.evaluation.metric_row`)."""
    outcome = outputs.get("outcome") if isinstance(outputs, Mapping) else None
    if outcome is None:
        gate = (scores.get(Outcome.ALIGNED) or {}).get("gate")
        outcome = Outcome.ALIGNED.value if gate == gate_word(Outcome.ALIGNED) else gate
    return str(outcome)


def _feedbacks(scores: Mapping[str, Any], outcome: str = Outcome.ALIGNED.value) -> list[Any]:
    from mlflow.entities import Feedback

    from argalign.scoring.scoreboard import counted

    before, after = scores.get("baseline") or {}, scores.get(Outcome.ALIGNED) or {}
    parts = ", ".join(f"{part} {before.get(part, 0):.2f} -> {after.get(part, 0):.2f}"
                      for part in ("forward", "backward", "coherence") if part in after)
    gate = after.get("gate", "?")
    codes = ", ".join(after.get("codes") or [])
    rationale = after.get("feedback") or f"gate {gate}{f' ({codes})' if codes else ''}; {parts}"
    if "score" in before and not counted(outcome):  # out of the means, as in the before/after table
        seen = ", ".join(f"{side} {found['score']:.3f}" for side, found in
                         (("before", before), ("after", after)) if "score" in found)
        return [Feedback(name=SCORER, value=None, rationale=(
            f"{outcome}: not in the means, which are over the rows that ended aligned"
            f"{f' ({seen})' if seen else ''}; {rationale}"))]
    out = [Feedback(name=SCORER, value=float(after.get("score", 0.0)), rationale=str(rationale))]
    if "score" in before:
        out += [Feedback(name=f"{SCORER}_before", value=float(before["score"]),
                         rationale="the original row"),
                Feedback(name=f"{SCORER}_gain", value=round(float(after.get("score", 0.0))
                                                            - float(before["score"]), 4),
                         rationale="aligned minus original")]
    return out


def scorer(compute: Callable[[Mapping[str, Any], Mapping[str, Any]], Mapping[str, Any]] | None = None
           ) -> Any:
    """Mutual predictability as an MLflow scorer.

    ``outputs["scores"]`` (``{"baseline": components, "aligned": components}``, as a result
    record holds them) is reported as it is; without it, ``compute(inputs, outputs)`` must
    return that mapping (``None`` means the example cannot be scored).
    """
    from mlflow.genai.scorers import scorer as make

    def mutual_predictability(inputs: Any = None, outputs: Any = None) -> Any:
        scores = outputs.get("scores") if isinstance(outputs, Mapping) else None
        if not scores and compute is not None:
            scores = compute(inputs or {}, outputs or {})
        if not isinstance(scores, Mapping) or Outcome.ALIGNED not in scores:
            return None
        return _feedbacks(scores, _outcome(outputs, scores))

    return make(name=SCORER)(mutual_predictability)


# --- evaluations -----------------------------------------------------------------------------

@contextlib.contextmanager
def _quiet_evaluation() -> Iterator[None]:
    """``mlflow.genai.evaluate`` with few threads, and its banner kept off stdout (argalign's
    stdout is its JSON summary)."""
    previous = os.environ.get("MLFLOW_GENAI_EVAL_MAX_WORKERS")
    os.environ["MLFLOW_GENAI_EVAL_MAX_WORKERS"] = EVAL_WORKERS
    banner = io.StringIO()
    try:
        with contextlib.redirect_stdout(banner):
            yield
    finally:
        if previous is None:
            os.environ.pop("MLFLOW_GENAI_EVAL_MAX_WORKERS", None)
        else:
            os.environ["MLFLOW_GENAI_EVAL_MAX_WORKERS"] = previous
        log.debug("mlflow.genai.evaluate: %s", banner.getvalue().strip())
        sys.stdout.flush()


def _metrics(result: Any) -> dict[str, float]:
    return {k: float(v) for k, v in (getattr(result, "metrics", None) or {}).items()
            if isinstance(v, (int, float))}


def evaluate_traces(run_id: str, trace_scorer: Any) -> dict[str, float]:
    """Evaluate the traces linked to ``run_id`` with ``trace_scorer``; their feedbacks are
    attached to each trace and the evaluation belongs to the (active) run. Returns the means."""
    mlflow = _mlflow()
    flush_traces()
    traces = mlflow.search_traces(run_id=run_id)
    if traces is None or len(traces) == 0:
        return {}
    with _quiet_evaluation():
        result = mlflow.genai.evaluate(data=traces, scorers=[trace_scorer])
    return _metrics(result)


def evaluate_rows(rows: Sequence[Mapping[str, Any]], row_scorer: Any) -> dict[str, float]:
    """Evaluate rows ``{"inputs": {...}, "outputs": {...}}`` (one trace is made per row)."""
    if not rows:
        return {}
    with _quiet_evaluation():
        result = _mlflow().genai.evaluate(data=[_cap(dict(r)) for r in rows], scorers=[row_scorer])
    return _metrics(result)


# --- the sample as an evaluation dataset -----------------------------------------------------

def log_sample(name: str, records: Sequence[Mapping[str, Any]], tags: Mapping[str, str]) -> str:
    """Store ``records`` (``{"inputs": {...}}``) as the evaluation dataset ``name`` in the
    active run's experiment (created once, then updated: records merge by their inputs) and
    record it as an input of the run. Returns the dataset id."""
    from mlflow.genai.datasets import create_dataset, search_datasets

    mlflow = _mlflow()
    run = mlflow.active_run()
    experiment_id = run.info.experiment_id
    found = [d for d in search_datasets(experiment_ids=[experiment_id], filter_string=f"name = '{name}'")
             if d.name == name]
    dataset = found[0] if found else create_dataset(name=name, experiment_id=[experiment_id],
                                                    tags=dict(tags))
    dataset.merge_records([scrub(dict(r)) for r in records])
    mlflow.log_input(dataset, context="evaluation")
    return dataset.dataset_id
