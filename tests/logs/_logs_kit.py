"""Helpers shared by the log tests (fixtures are in conftest.py)."""

from __future__ import annotations

import threading
import time

from hoard.logs import Event, Log, LogService

WAIT = 10.0  # seconds: the bound on any wait for an event that must come


class TickClock:
    """Real time at start, then 1 µs later at every call: distinct, increasing timestamps."""

    def __init__(self) -> None:
        self.now = time.time_ns()
        self._lock = threading.Lock()

    def __call__(self) -> int:
        with self._lock:
            self.now += 1000
            return self.now


def next_event(service: LogService, log: Log | None = None) -> Event:
    event = service.event_next(log, timeout=WAIT)
    assert event is not None, "timed out waiting for an event"
    return event


class Collector:
    """A callback that records events and lets a test wait for a number of them."""

    def __init__(self) -> None:
        self.events: list[Event] = []
        self.threads: set[str] = set()
        self._cond = threading.Condition()

    def __call__(self, event: Event) -> None:
        with self._cond:
            self.events.append(event)
            self.threads.add(threading.current_thread().name)
            self._cond.notify_all()

    def wait_for(self, count: int) -> list[Event]:
        with self._cond:
            assert self._cond.wait_for(lambda: len(self.events) >= count, WAIT), (
                f"timed out: {len(self.events)} of {count} events")
            return list(self.events)
