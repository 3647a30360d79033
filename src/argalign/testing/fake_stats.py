"""What a fake OpenAI server saw: requests per prompt, status and fault, timings, concurrency.

Contract: the server calls ``_saw``, ``_begin`` and ``_end`` around every chat request; readers
get copies through the properties, or plain JSON-ready data from ``snapshot()`` (what ``GET
/stats`` serves). A prompt is identified by :func:`content_key` of its messages. Standard
library only.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
import threading
from collections import Counter
from typing import Any


@dataclasses.dataclass(frozen=True)
class RequestEvent:
    """One chat-completion request: monotonic start/end times, status 0 if never answered."""

    key: str
    attempt: int
    start: float
    end: float
    status: int
    fault: str | None


class FakeStats:
    """Thread-safe counters of what the server saw; properties return copies."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        with self._lock:
            self._by_status: Counter[int] = Counter()
            self._by_fault: Counter[str] = Counter()
            self._attempts: Counter[str] = Counter()
            self._events: list[RequestEvent] = []
            self._in_flight = 0
            self._max_in_flight = 0
            self._authorizations: Counter[str] = Counter()

    def _begin(self, key: str) -> int:
        with self._lock:
            self._attempts[key] += 1
            self._in_flight += 1
            self._max_in_flight = max(self._max_in_flight, self._in_flight)
            return self._attempts[key]

    def _saw(self, authorization: str | None) -> None:
        with self._lock:
            self._authorizations[authorization or ""] += 1

    def _end(self, event: RequestEvent) -> None:
        with self._lock:
            self._in_flight -= 1
            self._by_status[event.status] += 1
            if event.fault:
                self._by_fault[event.fault] += 1
            self._events.append(event)

    @property
    def total(self) -> int:
        with self._lock:
            return len(self._events) + self._in_flight

    def _copy(self, name: str) -> Any:
        """A copy of a counter or list, taken under the lock."""
        with self._lock:
            return copy.copy(getattr(self, name))

    @property
    def by_status(self) -> dict[int, int]:
        return dict(self._copy("_by_status"))

    @property
    def by_fault(self) -> dict[str, int]:
        return dict(self._copy("_by_fault"))

    @property
    def attempts(self) -> dict[str, int]:
        """Attempts per prompt, keyed by ``content_key(messages)``."""
        return dict(self._copy("_attempts"))

    @property
    def authorizations(self) -> dict[str, int]:
        """Chat requests per ``Authorization`` header value ("" when absent).

        Kept in memory only: ``snapshot()`` and ``/stats`` leave it out, as they may be written
        to disk.
        """
        return dict(self._copy("_authorizations"))

    @property
    def events(self) -> list[RequestEvent]:
        """Finished requests in completion order."""
        return list(self._copy("_events"))

    @property
    def in_flight(self) -> int:
        with self._lock:
            return self._in_flight

    @property
    def max_in_flight(self) -> int:
        with self._lock:
            return self._max_in_flight

    def retry_gaps(self, status: int = 429) -> list[float]:
        """Seconds from each response with ``status`` to the next attempt at the same prompt."""
        events = sorted(self.events, key=lambda e: e.start)
        gaps = []
        for i, event in enumerate(events):
            if event.status == status:
                later = (e.start for e in events[i + 1 :] if e.key == event.key)
                nxt = next(later, None)
                if nxt is not None:
                    gaps.append(nxt - event.end)
        return gaps

    def snapshot(self) -> dict[str, Any]:
        """Everything as plain JSON-ready data."""
        with self._lock:
            return {
                "total": len(self._events) + self._in_flight,
                "by_status": {str(k): v for k, v in self._by_status.items()},
                "by_fault": dict(self._by_fault),
                "in_flight": self._in_flight,
                "max_in_flight": self._max_in_flight,
                "attempts": dict(self._attempts),
                "events": [dataclasses.asdict(e) for e in self._events],
            }


def content_key(messages: list[dict[str, Any]]) -> str:
    """Stable hash of a request's messages (the unit of ``fail_first_n`` and attempt counts)."""
    blob = json.dumps(messages, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]
