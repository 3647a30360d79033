"""``argalign run``: align every raw example exactly once, concurrently and resumably.

Input: the raw subsets ``<data>/raw/<config>/<split>.jsonl`` that ``prepare`` wrote.
Output: one result record per example (see :func:`argalign.align.align_example`, plus
``run`` and ``model_string``) appended to
``<data>/runs/<run>/results/<config>/<split>/<mode>-<model>.jsonl``; ``manifest.json``,
``summary.json`` and ``failures.jsonl`` beside them; one MLflow run per batch, with traces of
a sample of the examples (:mod:`argalign.run.tracked`).

Each example goes to one (mode, model) group (:mod:`argalign.run.assign`). Each model gets
``concurrency`` worker threads, each with its own ``lm.copy()`` (so ``lm.history``, which the
token count and the truncation check read, is per thread) and its own program copy; one
:class:`~argalign.run.throttle.Throttle` per model caps requests in flight and per minute.
Transient HTTP errors are retried by DSPy itself (``num_retries``, honouring ``Retry-After``);
what still fails becomes a ``failed`` record. Failed examples count towards ``max_errors``;
past it, workers take no new example, those in flight are finished and written, and the run
ends with :class:`~argalign.errors.RunError`. A restart skips every id with a complete line.
"""

from __future__ import annotations

import logging
import queue
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from argalign.errors import RunError
from argalign.records import Outcome, ResultRecord
from argalign.run.plan import Plan, RunOptions, WorkItem, check_manifest, plan_run
from argalign.run.report import summarize, write_reports
from argalign.run.store import ResultWriter, read_example, take_out_results
from argalign.run.throttle import Throttle, clear_histories, history_owners, thread_lm
from argalign.run.tracked import Tracer, tracked
from argalign.schema import Example

__all__ = ["RunOptions", "run_batch"]

log = logging.getLogger(__name__)


@dataclass
class Session:
    """What this batch did."""

    outcomes: Counter = field(default_factory=Counter)
    elapsed_s: float = 0.0
    stopped: str | None = None

    @property
    def conversations(self) -> int:
        return sum(self.outcomes.values())


class _Batch:
    """Shared state of the worker threads."""

    def __init__(self, plan: Plan, handles: dict[str, Any], writer: ResultWriter,
                 tracer: Tracer | None = None):
        self.plan, self.handles, self.writer, self.tracer = plan, handles, writer, tracer
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.results: queue.Queue = queue.Queue()
        self.failed = 0
        self.stopped: str | None = None
        self.throttles = {name: Throttle(plan.settings.get(name).concurrency,
                                         plan.settings.get(name).rpm) for name in handles}

    def worker(self, model: str) -> None:
        try:
            self._work(model)
        except BaseException as e:  # noqa: BLE001 - handed to the main thread, which stops the run
            self.stop.set()
            self.results.put(e)

    def _work(self, model: str) -> None:
        from argalign.metrics import MutualPredictability
        from argalign.redact import scrub

        plan, items = self.plan, self.plan.work[model]
        handle = self.handles[model]
        lm = thread_lm(handle.lm, self.throttles[model])
        programs = {mode: module.deepcopy() for mode, (module, _) in plan.programs.items()}
        judge = judge_lm = judge_adapter = None
        if plan.judge is not None:
            judge = MutualPredictability(plan.options.comparison)
            judge_lm = thread_lm(self.handles[plan.judge].lm, self.throttles[plan.judge])
            judge_adapter = self.handles[plan.judge].adapter
        model_string = plan.settings.get(model).model
        owners = history_owners(lm, judge_lm, *programs.values(), judge)
        while not self.stop.is_set():
            with self.lock:
                if not items:
                    return
                item = items.popleft()
            program = programs[item.group.mode]
            program_id = plan.programs[item.group.mode][1]
            clear_histories(owners)
            example = None
            try:
                example = read_example(item.raw, item.entry.offset)
            except (OSError, ValueError) as e:  # the raw file changed under the run
                record = _unreadable(item, model, program_id, e)
            else:
                record = self._align(example, program, program_id, model, lm, judge, judge_lm,
                                     judge_adapter)
            record.run, record.model_string = plan.store.name, model_string
            # An error message may quote a request; keys from the environment never go to disk.
            record.reason, record.retries = scrub(record.reason), scrub(record.retries)
            self.writer.write(plan.store.result_path(item.subset, item.group.name), record.to_dict())
            if self.tracer is not None:
                self.tracer.observe(item, example.row if example is not None else None, record,
                                    lm, judge_lm)
            with self.lock:  # counted here, so no worker takes another item past the limit
                if record.outcome == Outcome.FAILED:
                    self.failed += 1
                    limit = plan.options.max_errors
                    if limit is not None and self.failed > limit and not self.stopped:
                        self.stopped = (f"stopped after {self.failed} failed examples "
                                        f"(--max-errors {limit})")
                        log.error("%s; finishing the conversations in flight", self.stopped)
                        self.stop.set()
            self.results.put(record)

    def _align(self, example: Example, program: Any, program_id: str, model: str,
               lm: Any, judge: Any, judge_lm: Any, judge_adapter: Any) -> ResultRecord:
        """One example through align_example, or through the acceptance gate when it is on."""
        from argalign.accept import Acceptance, align_accepted
        from argalign.align import align_example

        handle, options = self.handles[model], self.plan.options
        if options.accept_if_better:
            return align_accepted(example, program, acceptance=Acceptance(options.accept_retries),
                                  scorer=judge, model=model, lm=lm, adapter=handle.adapter,
                                  program_id=program_id, judge_lm=judge_lm,
                                  judge_adapter=judge_adapter)
        return align_example(example, program, model=model, lm=lm, adapter=handle.adapter,
                             program_id=program_id, judge=judge, judge_lm=judge_lm,
                             judge_adapter=judge_adapter)


def _unreadable(item: WorkItem, model: str, program_id: str, error: Exception) -> ResultRecord:
    return ResultRecord.failure(
        code="RAW_UNREADABLE", reason=f"cannot read the raw example: {type(error).__name__}: {error}",
        id=item.entry.id, config=item.subset.config, split=item.subset.split,
        index=item.entry.index, mode=item.group.mode, model=model, program=program_id)


def _execute(plan: Plan, handles: dict[str, Any], tracer: Tracer | None = None) -> Session:
    from tqdm import tqdm

    session = Session()
    pending = sum(len(items) for items in plan.work.values())
    started = time.monotonic()
    previous = Counter(plan.done.values())
    bar = tqdm(total=plan.total, initial=plan.total - pending, desc=plan.store.name,
               unit="conv", file=sys.stderr, disable=not plan.options.progress,
               mininterval=0.5, dynamic_ncols=True)
    with ResultWriter() as writer:
        batch = _Batch(plan, handles, writer, tracer)
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
                session.outcomes[message.outcome] += 1
                bar.update(1)
                counts = previous + session.outcomes
                bar.set_postfix(aligned=counts["aligned"], failed=counts["failed"],
                                rejected=counts["rejected"], **(
                                    {"not_improved": counts["not_improved"]}
                                    if plan.options.accept_if_better else {}), refresh=False)
        except KeyboardInterrupt:
            batch.stop.set()
            log.error("interrupted: conversations in flight are dropped and redone on resume")
            raise
        finally:
            bar.close()
            session.elapsed_s = time.monotonic() - started
            session.stopped = batch.stopped
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
    if plan.retry:
        retried = sum(take_out_results(plan.store.result_files(subset), plan.retry[subset.key],
                                       plan.store.retried_path)
                      for subset in plan.subsets if subset.key in plan.retry)
        log.info("--retry-failed: %d failed or not_improved results moved to %s, aligned again",
                 retried, plan.store.retried_path)
    pending = sum(len(items) for items in plan.work.values())
    log.info("run %s: %d examples in %d subsets, %d already done, %d to align",
             plan.store.name, plan.total, len(plan.subsets), len(plan.done), pending)
    with tracked(plan, manifest) as tracking:
        session = Session()
        if pending:
            names = [m for m in plan.models if plan.work[m]]
            if plan.judge is not None:
                names.append(plan.judge)
            with open_models(plan.settings, names) as handles:
                session = _execute(plan, handles, tracking.tracer)
        summary, failures = summarize(plan.store, plan.subsets, plan.ids)
        summary.update(session={"conversations": session.conversations,
                                "outcomes": dict(session.outcomes),
                                "elapsed_s": round(session.elapsed_s, 3),
                                "conversations_per_minute": round(
                                    60 * session.conversations / session.elapsed_s, 3)
                                if session.elapsed_s else 0.0},
                       stopped=session.stopped)
        write_reports(plan.store, summary, failures)
        tracking.finish(summary)
        if session.stopped:
            raise RunError(f"{session.stopped}: {summary['done']} of {summary['total']} results are "
                           f"kept in {plan.store.dir}/results; fix the cause and rerun the same "
                           f"command to resume")
    log.info("run %s: %s", plan.store.name, ", ".join(f"{k} {v}" for k, v in
                                                     summary["outcomes"].items()))
    return summary
