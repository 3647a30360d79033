"""``argalign run``: align every raw example exactly once, concurrently and resumably.

Input: the raw subsets ``<data>/raw/<config>/<split>.jsonl`` that ``prepare`` wrote.
Output: one result record per example (see :func:`argalign.programs.align.align_example`, plus
``run`` and ``model_string``) appended to
``<data>/runs/<run>/results/<config>/<split>/<mode>-<model>.jsonl``; ``manifest.json``,
``summary.json`` and ``failures.jsonl`` beside them; one MLflow run per batch, with traces of
a sample of the examples (:mod:`argalign.stages.run.tracked`).

Each example goes to one (mode, model) group (:mod:`argalign.stages.run.assign`). Each model gets
``concurrency`` worker threads, each with its own ``lm.copy()`` (so ``lm.history``, which the
token count and the truncation check read, is per thread) and its own program copy; one
:class:`~argalign.stages.run.throttle.Throttle` per model caps requests in flight and per minute.
Transient HTTP errors are retried by DSPy itself (``num_retries``, honouring ``Retry-After``);
what still fails becomes a ``failed`` record. Failed examples count towards ``max_errors``;
past it, workers take no new example, those in flight are finished and written, and the run
ends with :class:`~argalign.core.errors.RunError`. A restart skips every id with a complete line.

With ``workers > 1`` (``--workers``) the threads run in worker processes
(:mod:`argalign.stages.run.processes`) and this process writes the results, draws the progress bar
and holds the MLflow run; the limits and ``max_errors`` stay global. A script that calls
:func:`run_batch` with workers needs the ``if __name__ == "__main__":`` guard (they start with
``spawn``).
"""

from __future__ import annotations

import logging
import queue
import sys
import threading
import time
from collections import Counter
from typing import Any

from argalign.core.errors import RunError
from argalign.core.files import WRITE_ERRNOS
from argalign.core.lock import locked
from argalign.core.records import Outcome, ResultRecord
from argalign.stages.run.aligner import Aligner
from argalign.stages.run.executor import Executor
from argalign.stages.run.plan import Plan, RunOptions, check_manifest, plan_run, stop_reason
from argalign.stages.run.store import ResultWriter, take_out_results, write_manifest
from argalign.stages.run.summary import RunSummary, Session, summarize, write_reports
from argalign.stages.run.throttle import Throttle
from argalign.stages.run.tracked import Tracer, tracked

__all__ = ["RunOptions", "run_batch"]

log = logging.getLogger(__name__)


class _Batch:
    """The batch in this process (an :class:`~argalign.stages.run.executor.Executor`): worker
    threads that take items, align, write and count."""

    def __init__(self, plan: Plan, handles: dict[str, Any], writer: ResultWriter,
                 tracer: Tracer | None = None):
        self.plan, self.handles, self.writer, self.tracer = plan, handles, writer, tracer
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.results: queue.Queue = queue.Queue()
        self.failed = 0
        self.stopped: str | None = None
        self.startup_s: float | None = None  # no process to start
        self.throttles = {name: Throttle(plan.settings.get(name).concurrency,
                                         plan.settings.get(name).rpm) for name in handles}
        self.threads = [threading.Thread(target=self.worker, args=(model,), daemon=True,
                                         name=f"align-{model}-{k}")
                        for model, items in plan.work.items()
                        for k in range(min(plan.settings.get(model).concurrency, len(items)))]

    def start(self) -> None:
        for thread in self.threads:
            thread.start()

    def running(self) -> bool:
        return any(t.is_alive() for t in self.threads)

    def interrupt(self) -> None:
        self.stop.set()

    def worker(self, model: str) -> None:
        try:
            self._work(model)
        except BaseException as e:  # noqa: BLE001 - handed to the main thread, which stops the run
            self.stop.set()
            self.results.put(e)

    def _work(self, model: str) -> None:
        plan, items = self.plan, self.plan.work[model]
        judge = plan.judge
        aligner = Aligner(options=plan.options, run_name=plan.store.name, model=model,
                          model_string=plan.settings.get(model).model, handle=self.handles[model],
                          throttle=self.throttles[model], programs=plan.programs,
                          judge_handle=self.handles[judge] if judge else None,
                          judge_throttle=self.throttles[judge] if judge else None)
        while not self.stop.is_set():
            with self.lock:
                if not items:
                    return
                item = items.popleft()
            original, record = aligner.align(item)
            self.writer.write(plan.store.result_path(item.subset, item.group.name), record.to_dict())
            if self.tracer is not None:
                self.tracer.observe(item, original, record, aligner.lm, aligner.judge_lm)
            with self.lock:  # counted here, so no worker takes another item past the limit
                if record.outcome is Outcome.FAILED:
                    self.failed += 1
                    limit = plan.options.max_errors
                    if limit is not None and self.failed > limit and not self.stopped:
                        self.stopped = stop_reason(self.failed, limit)
                        log.error("%s; finishing the conversations in flight", self.stopped)
                        self.stop.set()
            self.results.put(record)


# The first examples of a batch that, all failing the same way at the endpoint, stop it: the
# endpoint is down or refuses the key, and every further call would fail (and may cost) alike.
EARLY_STOP = 5
ENDPOINT_CODES = frozenset({"LM_ERROR", "TIMEOUT", "RATE_LIMITED"})


def endpoint_down(first: list[ResultRecord]) -> str | None:
    """Why the batch stops early, when the first examples all failed alike at the endpoint."""
    from argalign.core.redact import scrub

    ways = {(tuple(r.codes or ()), r.reason) for r in first}
    if not first or any(r.outcome is not Outcome.FAILED for r in first) or len(ways) > 1:
        return None
    (codes, reason), = ways
    if not set(codes) <= ENDPOINT_CODES:
        return None
    return (f"stopped early: the first {len(first)} examples all failed the same way, so the "
            f"endpoint is down or refuses the key ({' '.join(scrub(reason or '').split())})")


def _execute(plan: Plan, handles: dict[str, Any], tracer: Tracer | None = None) -> Session:
    from tqdm import tqdm

    session = Session(workers=plan.options.workers)
    pending = sum(len(items) for items in plan.work.values())
    started = time.monotonic()
    previous = Counter(plan.done.values())
    first: list[ResultRecord] = []  # this batch's first EARLY_STOP results
    early: str | None = None
    with ResultWriter() as writer:
        if plan.options.workers > 1:
            from argalign.stages.run.processes import ProcessBatch

            batch: Executor = ProcessBatch(plan, handles, writer, tracer)
        else:
            batch = _Batch(plan, handles, writer, tracer)
        batch.start()  # before the bar: worker processes start without its monitor thread
        bar = tqdm(total=plan.total, initial=plan.total - pending, desc=plan.store.name,
                   unit="conv", file=sys.stderr, disable=not plan.options.progress,
                   mininterval=0.5, dynamic_ncols=True)
        error: BaseException | None = None
        try:
            while batch.running() or not batch.results.empty():
                try:
                    message = batch.results.get(timeout=0.2)
                except queue.Empty:
                    continue
                if isinstance(message, BaseException):
                    error = error or message
                    continue
                session.outcomes[message.outcome] += 1
                if len(first) < min(EARLY_STOP, pending):
                    first.append(message)
                    early = early or (endpoint_down(first)
                                      if len(first) == min(EARLY_STOP, pending) else None)
                    if early:
                        log.error("%s; finishing the conversations in flight", early)
                        batch.stop.set()  # the examples not tried stay to do
                bar.update(1)
                counts = previous + session.outcomes
                shown = [Outcome.ALIGNED, Outcome.FAILED, Outcome.REJECTED] + (
                    [Outcome.NOT_IMPROVED] if plan.options.gate else [])
                bar.set_postfix(**{o.value: counts[o] for o in shown}, refresh=False)
        except KeyboardInterrupt:
            batch.interrupt()
            log.error("interrupted: conversations in flight are dropped and redone on resume")
            raise
        finally:
            bar.close()
            session.elapsed_s = time.monotonic() - started
            session.stopped = early or batch.stopped
            session.startup_s = batch.startup_s
    if error is not None:
        if isinstance(error, RunError) or (isinstance(error, OSError)
                                           and error.errno in WRITE_ERRNOS):
            raise error  # a full disk names its file (the CLI: exit 1)
        raise RunError(f"the run stopped on an unexpected error: {type(error).__name__}: {error}") \
            from error
    return session


# --- the command ------------------------------------------------------------------------------

def run_batch(options: RunOptions) -> RunSummary:
    """Run (or resume) a batch; return its summary. RunError if it stopped on --max-errors.

    The data folder is locked for the whole batch (:mod:`argalign.core.lock`): a second run on it
    is refused, so no example is aligned twice.
    """
    with locked(options.data, "run"):
        return _run_batch(options)


def _run_batch(options: RunOptions) -> RunSummary:
    from argalign.models.lm import open_models

    plan = plan_run(options)
    manifest = check_manifest(plan)
    pending = sum(len(items) for items in plan.work.values())
    log.info("run %s: %d examples in %d subsets, %d already done, %d to align",
             plan.store.name, plan.total, len(plan.subsets), len(plan.done), pending)
    with tracked(plan, manifest) as tracking:
        # Everything is checked and the MLflow run is open: only now is anything written.
        write_manifest(plan.store.manifest_path, manifest)
        if plan.retry:
            retried = sum(take_out_results(plan.store.result_files(subset), plan.retry[subset.key],
                                           plan.store.retried_path)
                          for subset in plan.subsets if subset.key in plan.retry)
            log.info("--retry-failed: %d failed or not_improved results moved to %s, aligned "
                     "again", retried, plan.store.retried_path)
        session = Session(workers=options.workers)
        if pending:
            names = [m for m in plan.models if plan.work[m]]
            if plan.judge is not None:
                names.append(plan.judge)
            with open_models(plan.settings, names) as handles:
                session = _execute(plan, handles, tracking.tracer)
        summary, failures = summarize(plan.store, plan.subsets, plan.ids,
                                      acceptance=plan.params.get("acceptance"))
        summary = summary.with_session(session)
        write_reports(plan.store, summary, failures)
        tracking.finish(summary)
        if session.stopped:
            raise RunError(f"{session.stopped}: {summary.done} of {summary.total} results are "
                           f"kept in {plan.store.dir}/results; fix the cause and rerun the same "
                           f"command to resume")
        failed = session.outcomes.get(Outcome.FAILED.value, 0)
        if failed and failed == session.conversations:
            raise RunError(f"no example was aligned: all {failed} examples of this batch failed "
                           f"(reasons in {plan.store.failures_path}); fix the cause and rerun with "
                           "--retry-failed")
    log.info("run %s: %s", plan.store.name, ", ".join(f"{k} {v}" for k, v in
                                                     summary.outcomes.items()))
    return summary
