"""Delivering channel events to subscribers, on a thread of their own.

The manager runs on the node's trio loop and must never wait for a subscriber. Each event
(with the channel state it produced) is queued to one `EventDispatcher` thread, which calls
every subscriber in turn, in the order the events happened. A subscriber may block or call
the node's blocking API (it is not on the node's worker thread); an exception it raises is
logged and does not stop the others.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable

from hoard.transfer.types import ChannelState, Event

__all__ = ["EventDispatcher", "Subscriber", "Unsubscribe"]

log = logging.getLogger("hoard.transfer")

Subscriber = Callable[[Event, ChannelState], None]
Unsubscribe = Callable[[], None]

_STOP = object()


class EventDispatcher:
    """A thread calling subscribers `fn(event, state)` for each event, in order."""

    def __init__(self, name: str = "hoard-transfer-events") -> None:
        self._name = name
        self._subscribers: tuple[Subscriber, ...] = ()
        self._lock = threading.Lock()
        self._queue: queue.SimpleQueue[object] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._closed = False

    @property
    def active(self) -> bool:
        """Whether anyone listens (events are not even built otherwise)."""
        return bool(self._subscribers)

    def subscribe(self, fn: Subscriber) -> Unsubscribe:
        """Call `fn(event, state)` for every event from now on; returns the unsubscribe function."""
        if not callable(fn):
            raise TypeError(f"subscriber must be callable: {fn!r}")
        with self._lock:
            self._subscribers = (*self._subscribers, fn)
            if self._thread is None and not self._closed:
                self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
                self._thread.start()
        done = False

        def unsubscribe() -> None:
            nonlocal done
            with self._lock:
                if not done:
                    done = True
                    subs = list(self._subscribers)
                    subs.remove(fn)
                    self._subscribers = tuple(subs)

        return unsubscribe

    def publish(self, event: Event, state: ChannelState) -> None:
        """Queue an event for the subscribers (never blocks)."""
        if self._subscribers and not self._closed:
            self._queue.put((event, state))

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is _STOP:
                return
            event, state = item  # type: ignore[misc]
            for fn in self._subscribers:
                try:
                    fn(event, state)
                except Exception:  # noqa: BLE001 - a subscriber's failure is its own
                    log.exception("transfer event subscriber %r failed", fn)

    def close(self, timeout: float = 5.0) -> None:
        """Deliver what is queued, then stop the thread. Idempotent."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            thread = self._thread
        self._queue.put(_STOP)
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)
