"""One worker thread's share of a batch: its LM copies and programs; a work item in, a record out.

Used by the worker threads of :mod:`argalign.stages.run.runner` and, inside each worker process, by
:mod:`argalign.stages.run.processes`. Each :class:`Aligner` has its own ``lm.copy()`` (so
``lm.history``, which the token count and the truncation check read, is its own) and its own
program copies; the model's :class:`~argalign.stages.run.throttle.Throttle` is shared.
"""

from __future__ import annotations

from typing import Any

from argalign.core.records import ResultRecord
from argalign.stages.run.plan import RunOptions, WorkItem
from argalign.stages.run.store import read_example
from argalign.stages.run.throttle import Throttle, clear_histories, history_owners, thread_lm


class Aligner:
    """Aligns work items of one model, one at a time, never raising for a bad row or LM answer."""

    def __init__(self, *, options: RunOptions, run_name: str, model: str, model_string: str,
                 handle: Any, throttle: Throttle, programs: dict[str, tuple[Any, str]],
                 judge_handle: Any = None, judge_throttle: Throttle | None = None):
        from argalign.scoring.metrics import MutualPredictability

        self.options, self.run_name, self.model = options, run_name, model
        self.model_string, self.adapter = model_string, handle.adapter
        self.lm = thread_lm(handle.lm, throttle)
        self.programs = {mode: (module.deepcopy(), program_id)
                         for mode, (module, program_id) in programs.items()}
        # The scorer runs whenever the run scores; a judge LM only for a comparison that asks one.
        self.judge = MutualPredictability(options.comparison) if options.score else None
        self.judge_lm = self.judge_adapter = None
        if judge_handle is not None and judge_throttle is not None:
            self.judge_lm = thread_lm(judge_handle.lm, judge_throttle)
            self.judge_adapter = judge_handle.adapter
        self._owners = history_owners(self.lm, self.judge_lm,
                                      *(module for module, _ in self.programs.values()), self.judge)

    def align(self, item: WorkItem) -> tuple[dict[str, Any] | None, ResultRecord]:
        """``(original row or None, record)``; the record is scrubbed and carries run and model."""
        from argalign.core.redact import scrub

        program, program_id = self.programs[item.group.mode]
        clear_histories(self._owners)
        original = None
        try:
            example = read_example(item.raw, item.entry.offset)
        except (OSError, ValueError) as e:  # the raw file changed under the run
            record = _unreadable(item, self.model, program_id, e)
        else:
            original = example.row
            record = self._align(example, program, program_id)
        record.run, record.model_string = self.run_name, self.model_string
        # An error message may quote a request; keys from the environment never go to disk.
        record.reason, record.retries = scrub(record.reason), scrub(record.retries)
        return original, record

    def _align(self, example: Any, program: Any, program_id: str) -> ResultRecord:
        """One example through align_example, or through the acceptance gate when it is on."""
        from argalign.programs.accept import Acceptance, align_accepted
        from argalign.programs.align import align_example

        options = self.options
        if options.gate:
            acceptance = Acceptance(options.accept_retries, options.accept_margin)
            return align_accepted(example, program, acceptance=acceptance,
                                  scorer=self.judge, model=self.model, lm=self.lm,
                                  adapter=self.adapter, program_id=program_id,
                                  judge_lm=self.judge_lm, judge_adapter=self.judge_adapter)
        return align_example(example, program, model=self.model, lm=self.lm, adapter=self.adapter,
                             program_id=program_id, judge=self.judge, judge_lm=self.judge_lm,
                             judge_adapter=self.judge_adapter)


def _unreadable(item: WorkItem, model: str, program_id: str, error: Exception) -> ResultRecord:
    return ResultRecord.failure(
        code="RAW_UNREADABLE", reason=f"cannot read the raw example: {type(error).__name__}: {error}",
        id=item.entry.id, config=item.subset.config, split=item.subset.split,
        index=item.entry.index, mode=item.group.mode, model=model, program=program_id)
