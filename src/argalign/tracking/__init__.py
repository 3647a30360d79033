"""The only package that imports mlflow: runs, params, metrics, artifacts, tables, figures,
datasets (here) and traces, the metric as a scorer and evaluations (:mod:`.genai`).

Tracking defaults to MLflow 3's local SQLite store in the working directory
(``sqlite:///mlflow.db``); ``MLFLOW_TRACKING_URI`` overrides. Every param, tag, text artifact,
table cell and trace field passes through :func:`argalign.core.redact.scrub` first, so a secret from
the environment never reaches the store.
"""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
import warnings
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from argalign.core.errors import ConfigError
from argalign.core.redact import scrub

log = logging.getLogger(__name__)

EXPERIMENT_OPTIMIZE = "argalign-optimize"
EXPERIMENT_RUN = "argalign-run"
EXPERIMENT_SCORE = "argalign-score"
DEFAULT_TRACKING_URI = "sqlite:///mlflow.db"
def tracking_uri() -> str:
    """``MLFLOW_TRACKING_URI`` or the default; ConfigError unless a SQLite store or a server."""
    uri = os.environ.get("MLFLOW_TRACKING_URI") or DEFAULT_TRACKING_URI
    if not uri.startswith(("sqlite:///", "http://", "https://")):
        raise ConfigError(f"MLFLOW_TRACKING_URI={scrub(uri)!r}: argalign logs to MLflow's SQLite store "
                          "(sqlite:///path/mlflow.db, the default is sqlite:///mlflow.db) or to a "
                          "tracking server (http://host:port)")
    return uri


def sqlite_path(uri: str) -> Path | None:
    """The database file of a ``sqlite:///`` URI, or None for a server."""
    return Path(uri[len("sqlite:///"):]) if uri.startswith("sqlite:///") else None


def _mlflow():
    import mlflow

    mlflow.set_tracking_uri(tracking_uri())
    return mlflow


@contextlib.contextmanager
def start_run(experiment: str, run_name: str, params: Mapping[str, Any],
              tags: Mapping[str, str] | None = None) -> Iterator[Any]:
    """Open an MLflow run with scrubbed params and tags; yields the active run."""
    mlflow = _mlflow()
    mlflow.set_experiment(experiment)
    with mlflow.start_run(run_name=run_name) as run:
        _describe(mlflow, params, tags)
        try:
            yield run
        except KeyboardInterrupt:  # Ctrl-C or SIGTERM: stopped, not failed (else FAILED)
            from mlflow.entities import RunStatus

            mlflow.end_run(RunStatus.to_string(RunStatus.KILLED))
            raise


def end_stale_run(run_id: str) -> bool | None:
    """Mark a run that a dead process left running as killed; True if it did, False for a run
    that had ended, None when the store does not hold it (``MLFLOW_TRACKING_URI`` changed)."""
    from mlflow.entities import RunStatus

    client = _mlflow().tracking.MlflowClient()
    try:
        run = client.get_run(run_id)
    except Exception as e:  # noqa: BLE001 - MlflowException: not in this store
        log.debug("no MLflow run %s in this store: %s", run_id, e)
        return None
    if run.info.status != RunStatus.to_string(RunStatus.RUNNING):
        return False
    client.set_terminated(run_id, RunStatus.to_string(RunStatus.KILLED))
    return True


@contextlib.contextmanager
def child_run(run_name: str, params: Mapping[str, Any],
              tags: Mapping[str, str] | None = None) -> Iterator[Any]:
    """A run nested in the active one (one program of a benchmark); yields it."""
    mlflow = _mlflow()
    with mlflow.start_run(run_name=run_name, nested=True) as run:
        _describe(mlflow, params, tags)
        yield run


def _describe(mlflow: Any, params: Mapping[str, Any], tags: Mapping[str, str] | None) -> None:
    """The active run's params and tags, scrubbed."""
    flat = {k: _param_text(v) for k, v in scrub(dict(params)).items()}
    if flat:
        mlflow.log_params(flat)
    if tags:
        mlflow.set_tags(scrub(dict(tags)))


def _param_text(value: Any) -> str:
    text = ",".join(map(str, value)) if isinstance(value, (list, tuple)) else str(value)
    return text[:6000]


def log_metrics(metrics: Mapping[str, float | int | None], step: int | None = None) -> None:
    clean = {k: float(v) for k, v in metrics.items() if isinstance(v, (int, float))}
    if clean:
        _mlflow().log_metrics(clean, step=step)


def log_dict(obj: Any, artifact_file: str) -> None:
    _mlflow().log_dict(scrub(obj), artifact_file)


def log_text(text: str, artifact_file: str) -> None:
    _mlflow().log_text(scrub(text), artifact_file)


def log_file(path: str | Path, artifact_path: str | None = None) -> None:
    """Log a text file after scrubbing it (a copy is logged; the file is left as it is)."""
    path = Path(path)
    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / path.name
        copy.write_text(scrub(path.read_text(encoding="utf-8")), encoding="utf-8")
        _mlflow().log_artifact(str(copy), artifact_path)


def set_tags(tags: Mapping[str, str]) -> None:
    _mlflow().set_tags(scrub(dict(tags)))


def log_table(rows: list[Mapping[str, Any]], artifact_file: str) -> None:
    """Rows (dicts with the same keys) as an MLflow table: the UI shows it in its table views."""
    if not rows:
        return
    columns = list(dict.fromkeys(key for row in rows for key in row))
    data = {column: [scrub(row.get(column)) for row in rows] for column in columns}
    _mlflow().log_table(data=data, artifact_file=artifact_file)


def log_figure(figure: Any, artifact_file: str) -> None:
    """A matplotlib figure as an image artifact of the active run."""
    _mlflow().log_figure(figure, artifact_file)


def log_dataset(rows: list[Mapping[str, Any]], *, name: str, source: str, context: str) -> str:
    """Record a dataset as an input of the active run (a pandas-backed MLflow dataset: its
    source, a digest of the rows and its schema); returns the digest."""
    import pandas as pd

    mlflow = _mlflow()
    with warnings.catch_warnings():  # a local path fits two equivalent source classes
        warnings.filterwarnings("ignore", message="The specified dataset source")
        warnings.filterwarnings("ignore", message="Hint: Inferred schema contains integer")
        dataset = mlflow.data.from_pandas(pd.DataFrame(list(rows)), source=source, name=name)
    mlflow.log_input(dataset, context=context)
    return dataset.digest


def active_run_id() -> str | None:
    run = _mlflow().active_run()
    return run.info.run_id if run is not None else None


def enable_dspy_autolog() -> bool:
    """Record DSPy traces in the active experiment; False if this MLflow cannot."""
    try:
        import mlflow.dspy

        mlflow.dspy.autolog(log_traces=True, silent=True)
    except Exception as e:  # noqa: BLE001 - tracing is a nice-to-have, never a blocker
        log.warning("DSPy autologging is unavailable: %s", e)
        return False
    return True


def disable_dspy_autolog() -> None:
    with contextlib.suppress(Exception):
        import mlflow.dspy

        mlflow.dspy.autolog(disable=True)
    # Traces are exported in the background: write them now, while the tracking URI they
    # belong to is still the current one.
    with contextlib.suppress(Exception):
        _mlflow().flush_trace_async_logging()


@contextlib.contextmanager
def dspy_autolog() -> Iterator[bool]:
    """DSPy autologging for the block (switched off again even if the block fails)."""
    import dspy

    track_usage = dspy.settings.track_usage  # autolog turns it on for good
    enabled = enable_dspy_autolog()
    try:
        if not enabled:
            yield False
            return
        from mlflow.dspy.callback import MlflowCallback

        # autolog sets the global callbacks, but inside a dspy.context the context's copy of
        # the settings shadows them: put the tracer into this block's settings as well.
        callbacks = list(dspy.settings.callbacks)
        if not any(isinstance(c, MlflowCallback) for c in callbacks):
            callbacks.append(MlflowCallback())
        with dspy.context(callbacks=callbacks, track_usage=True):
            yield True
    finally:
        if enabled:
            disable_dspy_autolog()
            with contextlib.suppress(Exception):  # only the configuring thread may
                dspy.configure(track_usage=track_usage)


def download_artifact(uri: str, dst: str | Path | None = None) -> Path:
    """Fetch an artifact (``runs:/<id>/path``, ``mlflow-artifacts:/...``) to a local path.

    ``dst`` is the directory to download into (a new temporary one when None).
    """
    mlflow = _mlflow()
    return Path(mlflow.artifacts.download_artifacts(
        artifact_uri=uri, dst_path=str(dst) if dst is not None else None))


def open_store() -> None:
    """Connect to the tracking store, creating a SQLite store's tables if they are not there."""
    _mlflow().tracking.MlflowClient().search_experiments(max_results=1)


def search_runs(experiment: str, *, nested: bool = False) -> list[dict[str, Any]]:
    """Runs of an experiment, newest first, as plain dicts (params, metrics, tags, info);
    runs nested in another (an evaluation of one program) only with ``nested``.

    Only reads: a SQLite store that does not exist yet is not created (no runs).
    """
    database = sqlite_path(tracking_uri())
    if database is not None and not database.is_file():
        log.info("no MLflow store at %s yet: no runs", database)
        return []
    mlflow = _mlflow()
    client = mlflow.tracking.MlflowClient()
    found = client.get_experiment_by_name(experiment)
    if found is None:
        return []
    runs = client.search_runs([found.experiment_id], order_by=["attributes.start_time DESC"],
                              max_results=1000)
    return [{
        "run_id": r.info.run_id,
        "run_name": r.info.run_name,
        "status": r.info.status,
        "start_time": r.info.start_time,
        "end_time": r.info.end_time,
        "params": dict(r.data.params),
        "metrics": dict(r.data.metrics),
        "tags": {k: v for k, v in r.data.tags.items() if not k.startswith("mlflow.")},
    } for r in runs if nested or "mlflow.parentRunId" not in r.data.tags]
