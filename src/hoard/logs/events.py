"""Events (GDP `gdp_event_t`): what asynchronous operations report, by callback or queue.

Types and the status each carries in `stat` (the GDP ack/nak code it maps from, gdp_event.c):

    EVENT_DATA 1      a record (subscribe, multiread, read_async)       205 (ACK_CONTENT)
    EVENT_EOS 2       a subscription or multiread ended                  202 (ACK_DELETED)
    EVENT_SHUTDOWN 3  ended because the hosting service shut down        515 (NAK_S_LOSTSUB)
    EVENT_CREATED 4   append_async committed the record (datum is it)    201 (ACK_CREATED)
    EVENT_SUCCESS 5   generic success                                    200
    EVENT_FAILURE 6   an asynchronous operation failed                   the error's status
    EVENT_MISSING 7   a record that should exist is not there            430

A FAILURE or MISSING event also carries the `LogError` in `error`.

A request made with a callback delivers every event to it; one made without delivers to the
service's event queue, read with `event_next`. Both happen in order per request. Callbacks
run on one thread per service (the `Dispatcher`), never on the caller's thread.
"""

from __future__ import annotations

import collections
import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from hoard.errors import LogError
from hoard.logs.records import Datum

__all__ = [
    "Dispatcher", "EVENT_CREATED", "EVENT_DATA", "EVENT_EOS", "EVENT_FAILURE", "EVENT_MISSING",
    "EVENT_SHUTDOWN", "EVENT_SUCCESS", "Event", "EventQueue", "STAT_CREATED", "STAT_DATA", "STAT_EOS",
    "STAT_MISSING", "STAT_SHUTDOWN", "STAT_SUCCESS"
]

EVENT_DATA = 1
EVENT_EOS = 2
EVENT_SHUTDOWN = 3
EVENT_CREATED = 4
EVENT_SUCCESS = 5
EVENT_FAILURE = 6
EVENT_MISSING = 7

STAT_SUCCESS = 200
STAT_CREATED = 201
STAT_EOS = 202
STAT_DATA = 205
STAT_MISSING = 430
STAT_SHUTDOWN = 515

_log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Event:
    """One asynchronous result: its type, the Log handle, the record (if any), the caller's
    udata, the GDP status code, and for failures the error."""

    type: int
    log: Any
    datum: Datum | None
    udata: Any
    stat: int
    error: LogError | None = None


class EventQueue:
    """The events of requests made without a callback. Thread-safe."""

    def __init__(self) -> None:
        self._events: collections.deque[Event] = collections.deque()
        self._cond = threading.Condition()
        self._closed = False

    def put(self, event: Event) -> None:
        with self._cond:
            self._events.append(event)
            self._cond.notify_all()

    def _take(self, log: Any) -> Event | None:
        if log is None:
            return self._events.popleft() if self._events else None
        for i, event in enumerate(self._events):
            if event.log is log:
                del self._events[i]
                return event
        return None

    def next(self, log: Any = None, timeout: float | None = None) -> Event | None:
        """The oldest event (of `log`'s requests if given). Waits up to `timeout` seconds
        (None: forever); None on timeout, or at once when the queue is closed and empty."""
        deadline = None if timeout is None else time.monotonic() + max(timeout, 0.0)
        with self._cond:
            while True:
                event = self._take(log)
                if event is not None or self._closed:
                    return event
                if deadline is None:
                    self._cond.wait()
                else:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        return None
                    self._cond.wait(remaining)

    def close(self) -> None:
        """Wake every waiter; `next` then drains what is left and returns None."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def __len__(self) -> int:
        return len(self._events)


class Dispatcher:
    """One thread that runs posted jobs in order: user callbacks and read filters run here."""

    def __init__(self, name: str = "hoard-logs-callbacks") -> None:
        self._jobs: queue.SimpleQueue[Callable[[], None] | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._closed = False
        self._thread.start()

    def post(self, job: Callable[[], None]) -> None:
        self._jobs.put(job)

    def _run(self) -> None:
        while True:
            job = self._jobs.get()
            if job is None:
                return
            try:
                job()
            except Exception:  # noqa: BLE001 - a user callback's exception must not stop delivery to others
                _log.exception("exception in a log callback")

    def on_thread(self) -> bool:
        return threading.current_thread() is self._thread

    def close(self, timeout: float | None = 10.0) -> None:
        """Run what is queued, then stop. Idempotent; safe from a callback (does not join itself)."""
        if self._closed:
            return
        self._closed = True
        self._jobs.put(None)
        if not self.on_thread():
            self._thread.join(timeout)
