"""Delivering channel events to subscribers, on a thread of their own.

The manager runs on the node's trio loop and must never wait for a subscriber. Each event
(with the channel state it produced) is queued to one `EventDispatcher` thread, which calls
every subscriber in turn, in the order the events happened. A subscriber may block or call
the node's blocking API (it is not on the node's worker thread); an exception it raises is
logged and does not stop the others.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from datetime import UTC, datetime

import trio

from hoard.transfer.types import ChannelState, Event, EventCode

__all__ = ["EventDispatcher", "Subscriber", "Unsubscribe"]

log = logging.getLogger("hoard.transfer")

Subscriber = Callable[[Event, ChannelState], None]
Unsubscribe = Callable[[], None]

_Item = tuple[EventCode, ChannelState, float]  # an event as published: code, state, time.time()


class EventDispatcher:
    """A thread calling subscribers `fn(event, state)` for each event, in order."""

    def __init__(self, name: str = "hoard-transfer-events", batch_window: float = 0.005) -> None:
        self._name = name
        self._batch_window = batch_window
        self._subscribers: tuple[Subscriber, ...] = ()
        self._lock = threading.Lock()
        self._queue: deque[_Item | None] = deque()  # None: stop
        self._wake = threading.Event()  # set when the queue became non-empty: one wake-up per burst
        self._batch: list[_Item] = []  # published in this scheduler pass
        self._flush_scheduled = False
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

    def publish(self, code: EventCode, state: ChannelState) -> None:
        """Queue the event `code` that left the channel in `state` (never blocks).

        The `Event` (message, timestamp) is built on the events thread, from the time taken
        here. Called on a trio loop (the manager's), the events of one scheduler pass are
        handed over together: one wake-up of the events thread per pass, not one per block
        event (the GIL hand-overs cost more than the events).
        """
        if not self._subscribers or self._closed:
            return
        self._batch.append((code, state, time.time()))
        if not self._flush_scheduled:
            try:
                token = trio.lowlevel.current_trio_token()
            except RuntimeError:  # not on a trio loop: hand over at once
                self._flush()
                return
            self._flush_scheduled = True
            token.run_sync_soon(self._flush)

    def _flush(self) -> None:
        self._flush_scheduled = False
        batch, self._batch = self._batch, []
        if batch:
            self._queue.extend(batch)
            self._wake.set()

    def _put(self, item: _Item | None) -> None:
        self._queue.append(item)
        self._wake.set()

    def _run(self) -> None:
        while True:
            self._wake.wait()
            self._wake.clear()
            if self._batch_window:
                # Let a burst gather: waking this thread (and handing it the GIL) per block costs
                # the transfer more than the events do. Events wait at most this long.
                time.sleep(self._batch_window)
            while self._queue:
                item = self._queue.popleft()
                if item is None:
                    return
                code, state, when = item
                event = Event(code, state.message, datetime.fromtimestamp(when, UTC))
                for fn in self._subscribers:
                    try:
                        fn(event, state)
                    except Exception:  # a subscriber's failure is its own
                        log.exception("transfer event subscriber %r failed", fn)

    def close(self, timeout: float = 5.0) -> None:
        """Deliver what is queued, then stop the thread. Idempotent."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            thread = self._thread
        self._flush()
        self._put(None)
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)
