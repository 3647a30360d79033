"""What the runner asks of a batch executor: threads here, or worker processes.

:class:`~argalign.stages.run.runner._Batch` (threads in this process) and
:class:`~argalign.stages.run.processes.ProcessBatch` (``--workers``) both satisfy :class:`Executor`;
the runner's loop is written against it and knows neither.
"""

from __future__ import annotations

import queue
from typing import Any, Protocol, runtime_checkable


class _Flag(Protocol):
    """A stop flag: a ``threading.Event`` or a ``multiprocessing`` one."""

    def set(self) -> None: ...

    def is_set(self) -> bool: ...


@runtime_checkable
class Executor(Protocol):
    """A batch that aligns the plan's work and hands each outcome to the runner.

    ``results`` yields one ``ResultRecord`` per example written, or the exception that stopped
    a worker; ``stop`` set means no worker takes a new example; ``stopped`` says why the
    executor stopped itself (``--max-errors``), None if it did not; ``startup_s`` is how long
    worker processes took to be ready (None for threads).
    """

    results: queue.Queue[Any]
    stop: _Flag

    @property
    def stopped(self) -> str | None: ...

    @property
    def startup_s(self) -> float | None: ...

    def start(self) -> None:
        """Start the workers; returns at once."""

    def running(self) -> bool:
        """Whether a worker may still put a result."""

    def interrupt(self) -> None:
        """Stop at once (Ctrl-C): the examples in flight are dropped and redone on resume."""
