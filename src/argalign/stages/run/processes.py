"""The batch in worker processes (``run --workers N``): the runner's CPU on every core.

One LM call costs the runner a few milliseconds of Python (DSPy's formatting and parsing, the
checks), all under one GIL; against an endpoint that serves hundreds of requests at once, one
process is the bottleneck. Here N worker processes (started with ``spawn``: no lock or thread
of this process is copied) each run the model's threads with an
:class:`~argalign.stages.run.aligner.Aligner`, and this process keeps everything a run promises:

- **one outcome per example**: a feeder thread per model hands each work item to exactly one
  worker thread through a bounded queue;
- **append and fsync**: workers send their records here; only this process writes result
  files, through the same :class:`~argalign.stages.run.store.ResultWriter` (one line, fsynced, before
  the record counts), so a kill at any moment leaves complete lines and the resume redoes the
  rest;
- **global limits**: the :class:`~argalign.stages.run.throttle.Throttle` of each model is
  process-shared (requests in flight and the per-minute spacing hold for the whole run), and
  the failure count is one shared counter, so ``--max-errors`` stops every worker;
- **one progress bar and one MLflow run**, in this process: workers never touch MLflow; the
  traces of sampled examples are sent here as plain data and logged in the run;
- **nothing outlives the run**: a worker exits when this process dies (even by SIGKILL), and a
  worker that dies stops the run with an error (its examples in flight are redone on resume).
"""

from __future__ import annotations

import contextlib
import logging
import math
import multiprocessing
import os
import queue
import signal
import threading
import time
from dataclasses import dataclass
from typing import Any

from argalign.core.errors import RunError
from argalign.core.records import Outcome, ResultRecord
from argalign.stages.run.plan import Plan, RunOptions, WorkItem, stop_reason
from argalign.stages.run.store import ResultWriter
from argalign.stages.run.throttle import Throttle
from argalign.stages.run.tracked import Tracer

log = logging.getLogger(__name__)

POLL_S = 0.2  # how often a waiting thread looks at the stop flag and its peers


@dataclass(frozen=True)
class WorkerSetup:
    """What a worker process needs to build its own LMs and programs (plain, picklable data)."""

    options: RunOptions
    run_name: str
    models: dict[str, tuple[Any, str | None]]  # name -> (ModelConfig, api_base of a local server)
    judge: str | None
    programs: dict[str, tuple[dict[str, Any], str]]  # mode -> (DSPy state, program id)
    threads: dict[str, int]  # model -> threads in each worker
    traced: frozenset[str]  # ids whose trace is sent back
    log_level: int


class ProcessBatch:
    """Runs the plan's work in ``options.workers`` processes: an
    :class:`~argalign.stages.run.executor.Executor`, like runner's _Batch."""

    def __init__(self, plan: Plan, handles: dict[str, Any], writer: ResultWriter,
                 tracer: Tracer | None = None):
        self.plan, self.writer, self.tracer = plan, writer, tracer
        context = multiprocessing.get_context("spawn")
        workers = plan.options.workers
        self.results: queue.Queue = queue.Queue()  # records written, for the main loop
        self.stop = context.Event()
        self.failed = context.Value("i", 0)
        self.throttles = {name: Throttle(plan.settings.get(name).concurrency,
                                         plan.settings.get(name).rpm, context=context)
                          for name in handles}
        work = {model: items for model, items in plan.work.items() if items}
        threads = {model: min(len(items), math.ceil(plan.settings.get(model).concurrency / workers))
                   for model, items in work.items()}
        self.tasks = {model: context.Queue(maxsize=2 * n * workers) for model, n in threads.items()}
        self.inbox = context.Queue()
        setup = WorkerSetup(
            options=plan.options, run_name=plan.store.name,
            # A local model's server was started here: workers send to its address.
            models={name: (plan.settings.get(name), handle.lm.kwargs.get("api_base"))
                    for name, handle in handles.items()},
            judge=plan.judge,
            programs={mode: (module.dump_state(), program_id)
                      for mode, (module, program_id) in plan.programs.items()},
            threads=threads, traced=frozenset(tracer.ids) if tracer is not None else frozenset(),
            log_level=logging.getLogger().getEffectiveLevel())
        self.processes = [
            context.Process(target=worker_main, name=f"argalign-worker-{k}", daemon=True,
                            args=(setup, k, self.tasks, self.inbox, self.stop, self.failed,
                                  self.throttles, os.getpid()))
            for k in range(workers)]
        self._feeders = [threading.Thread(target=self._feed, args=(model, items, threads[model]),
                                          daemon=True, name=f"feed-{model}")
                         for model, items in work.items()]
        self._receiver = threading.Thread(target=self._receive, daemon=True, name="receive")
        self._finished: set[int] = set()
        self._ready: set[int] = set()
        self._started = 0.0
        self.startup_s: float | None = None  # until every worker has built its LMs and programs

    @property
    def stopped(self) -> str | None:
        limit = self.plan.options.max_errors
        if limit is not None and self.failed.value > limit:
            return stop_reason(limit + 1, limit)  # the count that crossed the limit
        return None

    def start(self) -> None:
        self._started = time.monotonic()
        for process in self.processes:
            process.start()
        for thread in (*self._feeders, self._receiver):
            thread.start()

    def running(self) -> bool:
        return self._receiver.is_alive()

    def interrupt(self) -> None:
        self.stop.set()
        for process in self.processes:
            if process.is_alive():
                process.terminate()
        self._receiver.join(timeout=10)  # before the writer closes

    # -- this process's threads ------------------------------------------------------------

    def _alive(self) -> bool:
        return any(p.is_alive() for p in self.processes)

    def _put(self, q: Any, item: WorkItem | None) -> bool:
        while not self.stop.is_set() and self._alive():
            try:
                q.put(item, timeout=POLL_S)
                return True
            except queue.Full:
                continue
        return False

    def _feed(self, model: str, items: Any, threads: int) -> None:
        """Each item once, then one end marker per worker thread of the model."""
        q = self.tasks[model]
        while items:
            if not self._put(q, items.popleft()):
                return
        for _ in range(threads * len(self.processes)):
            if not self._put(q, None):
                return

    def _receive(self) -> None:
        try:
            self._receive_all()
        except BaseException as e:  # noqa: BLE001 - handed to the main thread, which stops the run
            self.stop.set()
            self.results.put(e)
        finally:
            self._close()

    def _check_workers(self, quiet: bool) -> None:
        """RunError for a worker that died; ``quiet``: the inbox is empty, so a worker that
        exited normally has said so already (it flushes its messages before it ends)."""
        for k, process in enumerate(self.processes):
            if k in self._finished or process.exitcode is None:
                continue
            if process.exitcode == 0 and quiet:
                self._finished.add(k)
            elif process.exitcode != 0:
                self.stop.set()
                raise RunError(f"worker process {process.name} died (exit code {process.exitcode}); "
                               "finished results are kept: rerun the same command to resume")

    def _receive_all(self) -> None:
        store = self.plan.store
        checked = time.monotonic()
        while len(self._finished) < len(self.processes):
            if time.monotonic() - checked > POLL_S:
                self._check_workers(quiet=False)
                checked = time.monotonic()
            try:
                kind, number, body, trace = self.inbox.get(timeout=POLL_S)
            except queue.Empty:
                self._check_workers(quiet=True)
                continue
            if kind == "record":
                item, line = body
                self.writer.write(store.result_path(item.subset, item.group.name), line)
                if trace is not None and self.tracer is not None:
                    self.tracer.log(item, trace)
                self.results.put(ResultRecord.from_dict(line))
            elif kind == "ready":
                self._ready.add(number)
                if len(self._ready) == len(self.processes):
                    self.startup_s = round(time.monotonic() - self._started, 3)
                    log.info("%d worker processes ready in %.1f s", len(self.processes),
                             self.startup_s)
            elif kind == "exit":
                self._finished.add(number)
            else:  # "error": an unexpected error in a worker
                self._finished.add(number)
                self.stop.set()
                self.results.put(RunError(f"worker process {number}: {body}"))

    def _close(self) -> None:
        self.stop.set()
        for process in self.processes:
            process.join(timeout=10)
            if process.is_alive():
                process.kill()
                process.join()
        for thread in self._feeders:
            thread.join()
        for q in (*self.tasks.values(), self.inbox):
            q.close()
            q.cancel_join_thread()  # what a dead worker left in a queue is redone on resume


# --- a worker process ---------------------------------------------------------------------------

def worker_main(setup: WorkerSetup, number: int, tasks: dict[str, Any], inbox: Any, stop: Any,
                failed: Any, throttles: dict[str, Throttle], parent: int) -> None:
    """Entry point of worker process ``number`` of the run's process ``parent``: build LMs and
    programs, run the threads."""
    _exit_with_parent(parent)
    logging.basicConfig(level=setup.log_level,
                        format=f"%(asctime)s %(levelname)s %(name)s[worker {number}]: %(message)s")
    from argalign.core.redact import scrub_log_records

    scrub_log_records()  # as the CLI does
    if setup.log_level > logging.DEBUG:  # as the CLI does
        for noisy in ("httpx", "LiteLLM", "litellm", "urllib3", "mlflow"):
            logging.getLogger(noisy).setLevel(logging.WARNING)
    try:
        threads = _threads(setup, number, tasks, inbox, stop, failed, throttles)
        inbox.put(("ready", number, None, None))
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    except BaseException as e:  # noqa: BLE001 - reported to the parent, which stops the run
        from argalign.core.redact import scrub

        inbox.put(("error", number, scrub(f"{type(e).__name__}: {e}"), None))
    else:
        inbox.put(("exit", number, None, None))
    inbox.close()
    inbox.join_thread()  # every record sent is in the pipe before the process ends


def _threads(setup: WorkerSetup, number: int, tasks: dict[str, Any], inbox: Any, stop: Any,
             failed: Any, throttles: dict[str, Throttle]) -> list[threading.Thread]:
    from argalign.models.lm import Handle, adapter_for, build_lm
    from argalign.modes import make_mode
    from argalign.stages.run.aligner import Aligner

    handles = {name: Handle(build_lm(cfg, api_base), adapter_for(cfg))
               for name, (cfg, api_base) in setup.models.items()}
    programs = {}
    for mode, (state, program_id) in setup.programs.items():
        module = make_mode(mode, thinking=setup.options.thinking)
        module.load_state(state)
        programs[mode] = (module, program_id)
    errors: list[BaseException] = []

    def run(model: str) -> None:
        try:
            judge = setup.judge
            aligner = Aligner(options=setup.options, run_name=setup.run_name, model=model,
                              model_string=setup.models[model][0].model, handle=handles[model],
                              throttle=throttles[model], programs=programs,
                              judge_handle=handles[judge] if judge else None,
                              judge_throttle=throttles[judge] if judge else None)
            _work(setup, aligner, tasks[model], inbox, stop, failed)
        except BaseException as e:  # noqa: BLE001 - stops the whole run
            stop.set()
            errors.append(e)
            from argalign.core.redact import scrub

            inbox.put(("error", number, scrub(f"{type(e).__name__}: {e}"), None))

    return [threading.Thread(target=run, args=(model,), daemon=True,
                             name=f"align-{model}-w{number}-{k}")
            for model, n in setup.threads.items() for k in range(n)]


def _work(setup: WorkerSetup, aligner: Any, tasks: Any, inbox: Any, stop: Any, failed: Any) -> None:
    from argalign.stages.run.tracked import trace_payload

    limit = setup.options.max_errors
    while not stop.is_set():
        try:
            item = tasks.get(timeout=POLL_S)
        except queue.Empty:
            continue
        if item is None or stop.is_set():
            return
        original, record = aligner.align(item)
        if record.outcome is Outcome.FAILED:
            with failed.get_lock():  # counted before it is sent: no worker takes one past the limit
                failed.value += 1
                if limit is not None and failed.value > limit and not stop.is_set():
                    log.error("stopped after %d failed examples (--max-errors %d); finishing the "
                              "conversations in flight", failed.value, limit)
                    stop.set()
        trace = trace_payload(original, record, aligner.lm, aligner.judge_lm) \
            if record.id in setup.traced else None
        inbox.put(("record", -1, (item, record.to_dict()), trace))


def _exit_with_parent(parent: int) -> None:
    """End this worker when the run's process ``parent`` ends, however it ends (SIGKILL
    included). ``parent`` is the pid the run passed, not ``os.getppid()`` read here: a run
    killed while this worker was still starting has already left it to another parent."""
    with contextlib.suppress(Exception):  # Linux: the kernel sends SIGKILL when the parent dies
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    if os.getppid() != parent:  # it died before prctl took effect, or before this worker began
        os._exit(1)

    def watch() -> None:  # elsewhere: look for a new parent
        while os.getppid() == parent:
            time.sleep(POLL_S)
        os._exit(1)

    threading.Thread(target=watch, daemon=True, name="watch-parent").start()
