"""Per-model request limits and per-thread LM copies for the runner's worker threads."""

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
    """

    def __init__(self, concurrency: int, rpm: int | None = None):
        self._slots = threading.Semaphore(concurrency)
        self._interval = 60.0 / rpm if rpm else 0.0
        self._next = 0.0
        self._lock = threading.Lock()
        self._held: set[str] = set()

    def on_lm_start(self, call_id: str, instance: Any, inputs: dict[str, Any]) -> None:
        self._slots.acquire()
        with self._lock:
            self._held.add(call_id)
            now = time.monotonic()
            wait = max(0.0, self._next - now)
            self._next = max(now, self._next) + self._interval
        if wait:
            time.sleep(wait)

    def on_lm_end(self, call_id: str, outputs: Any, exception: Exception | None = None) -> None:
        with self._lock:
            if call_id not in self._held:
                return
            self._held.discard(call_id)
        self._slots.release()


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
