"""Per-model request limits and per-thread LM copies for the runner's worker threads.

A :class:`Throttle` is shared by every thread of a run; with worker processes
(``--workers N``) its counters live in shared memory, so the limits hold for the whole run,
not per process.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import dspy
from dspy.utils.callback import BaseCallback


class Throttle(BaseCallback):
    """Per-model limits, shared by the model's LM copies: requests in flight and per minute.

    A DSPy callback: ``on_lm_start`` runs before each LM call, ``on_lm_end`` after it (also on
    error). DSPy's own retries of one call happen inside it and are not counted again.

    With ``context`` (a :mod:`multiprocessing` context) the slots and the next free send time
    are process-shared; the throttle is then handed to worker processes when they start (as a
    ``Process`` argument) and holds across all of them.
    """

    def __init__(self, concurrency: int, rpm: int | None = None, context: Any = None):
        self._interval = 60.0 / rpm if rpm else 0.0
        if context is None:
            self._slots: Any = threading.Semaphore(concurrency)
            self._next: Any = _Slot()
            self._shared_lock: Any = threading.Lock()
        else:  # time.monotonic is one clock for every process of the machine (CLOCK_MONOTONIC)
            self._slots = context.BoundedSemaphore(concurrency)
            self._next = context.RawValue("d", 0.0)
            self._shared_lock = context.Lock()
        self._lock = threading.Lock()
        self._held: set[str] = set()

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        del state["_lock"], state["_held"]  # this process's own calls
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()
        self._held = set()

    def on_lm_start(self, call_id: str, instance: Any, inputs: dict[str, Any]) -> None:
        self._slots.acquire()
        with self._lock:
            self._held.add(call_id)
        wait = 0.0
        if self._interval:
            with self._shared_lock:
                now = time.monotonic()
                wait = max(0.0, self._next.value - now)
                self._next.value = max(now, self._next.value) + self._interval
        if wait:
            time.sleep(wait)

    def on_lm_end(self, call_id: str, outputs: Any, exception: Exception | None = None) -> None:
        with self._lock:
            if call_id not in self._held:
                return
            self._held.discard(call_id)
        self._slots.release()


class _Slot:
    """A float in a box, the in-process twin of ``multiprocessing.RawValue("d")``."""

    def __init__(self) -> None:
        self.value = 0.0


def thread_lm(lm: dspy.BaseLM, throttle: Throttle) -> dspy.BaseLM:
    copy = lm.copy()  # its own history and callbacks list
    copy.callbacks.append(throttle)
    return copy


def history_owners(*objects: Any) -> list[Any]:
    """``objects`` and, for DSPy modules, their sub-modules: whatever may keep a history.

    Walking a program's sub-modules costs more than clearing them, so a worker does it once.
    """
    owners: list[Any] = []
    for obj in objects:
        if obj is None:
            continue
        owners.append(obj)
        if isinstance(obj, dspy.Module):
            owners.extend(m for _, m in obj.named_sub_modules())
    return owners


def clear_histories(owners: list[Any]) -> None:
    # DSPy keeps the last 10,000 calls per LM and per module; align_example counts tokens from
    # the length of lm.history, which stops growing at that cap. One example at a time is enough.
    for owner in owners:
        history = getattr(owner, "history", None)
        if isinstance(history, list):
            history.clear()
