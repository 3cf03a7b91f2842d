"""The subscribe/multiread engine: which records a request gets, and when it ends. No I/O.

A request becomes a `Plan` — the first record to deliver and the last one (inclusive), or no
last one for a subscription that runs forever — computed once, from the log's record count
when the request arrives, exactly as gdplogd's `cmd_subscribe`/`cmd_multiread` do:

* numrecs < 0 is LogError 402 ("bad option", `NAK_BADOPT`), for both;
* start ≤ 0 counts back from the end: start += nrecs + 1, and at least 1 (so 0 means "after the
  last record", -10 the last ten, -30 of 20 records the first one);
* subscribe: numrecs records from start (numrecs 0: forever). Records that exist are sent at
  once; the rest as they are appended. A start past the end waits for that record (GDP's doc
  calls start 30 on 20 records "currently undefined; should probably wait until 10 more records
  are added": hoard does that and sends 30..39);
* multiread: a snapshot of existing records only: numrecs clamped to what exists from start,
  0 meaning all of them. A start past the end (including 0) is LogError 404, as in the code
  (the doc's table says 4.02 for start 0).

A `Subscription` is then a cursor over its plan: the driver asks `due(nrecs)` for the records
deliverable now, delivers them in order and `advance`s. Because one cursor is the only state —
no separate "historic" and "live" phases — records appended while existing ones are being sent
are neither skipped nor sent twice (GDP 0.8 documents that race in cmd_subscribe; here it
cannot happen). `SubscriptionTable` holds the active cursors and which of them have work.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from hoard.errors import LogError
from hoard.logs.names import LogName

__all__ = [
    "MULTIREAD", "Plan", "SUBSCRIBE", "Subscription", "SubscriptionTable", "check_numrecs", "plan_multiread",
    "plan_multiread_at", "plan_subscribe", "plan_subscribe_at", "start_point"
]

SUBSCRIBE = "subscribe"
MULTIREAD = "multiread"


@dataclass(frozen=True, slots=True)
class Plan:
    """Records `first`..`last` (inclusive); `last` None: no end."""

    first: int
    last: int | None


def check_numrecs(numrecs: int) -> int:
    if isinstance(numrecs, bool) or not isinstance(numrecs, int):
        raise LogError(f"numrecs is an int, not {type(numrecs).__name__}", status=400)
    if numrecs < 0:
        raise LogError(f"numrecs {numrecs} < 0: 402 bad option", status=402, gdp_stat="NAK_BADOPT")
    return numrecs


def _check_start(start: int) -> int:
    if isinstance(start, bool) or not isinstance(start, int):
        raise LogError(f"a record number is an int, not {type(start).__name__}", status=400)
    return start


def start_point(start: int, nrecs: int) -> int:
    """GDP's starting point: start ≤ 0 becomes start + nrecs + 1, at least 1."""
    start = _check_start(start)
    if start <= 0:
        start = max(start + nrecs + 1, 1)
    return start


def plan_subscribe_at(first: int, numrecs: int) -> Plan:
    """A subscription from record `first` (already resolved), numrecs of them (0: forever)."""
    check_numrecs(numrecs)
    return Plan(first, None if numrecs == 0 else first + numrecs - 1)


def plan_subscribe(start: int, numrecs: int, nrecs: int) -> Plan:
    """subscribe_by_recno(start, numrecs) on a log of nrecs records."""
    check_numrecs(numrecs)
    return plan_subscribe_at(start_point(start, nrecs), numrecs)


def plan_multiread_at(first: int | None, numrecs: int, nrecs: int) -> Plan:
    """A multiread snapshot from record `first` (None or past the end: 404)."""
    check_numrecs(numrecs)
    if first is None or first > nrecs:
        raise LogError(f"multiread start {first} is past the last record ({nrecs})", status=404,
                       gdp_stat="NAK_NOTFOUND")
    available = nrecs - first + 1
    count = available if numrecs == 0 or numrecs > available else numrecs
    return Plan(first, first + count - 1)


def plan_multiread(start: int, numrecs: int, nrecs: int) -> Plan:
    """multiread(start, numrecs) on a log of nrecs records."""
    check_numrecs(numrecs)
    return plan_multiread_at(start_point(start, nrecs), numrecs, nrecs)


class Subscription:
    """One active subscribe or multiread: a cursor over its plan, and where results go."""

    __slots__ = ("cancelled", "kind", "name", "next", "plan", "rid", "sink")

    def __init__(self, rid: int, name: LogName, kind: str, plan: Plan, sink: Any) -> None:
        self.rid = rid
        self.name = name
        self.kind = kind
        self.plan = plan
        self.next = plan.first
        self.sink = sink
        self.cancelled = False

    def due(self, nrecs: int) -> int:
        """The last record deliverable now (< `next` if none)."""
        return nrecs if self.plan.last is None else min(nrecs, self.plan.last)

    def advance(self) -> None:
        self.next += 1

    @property
    def finished(self) -> bool:
        """Every planned record has been delivered (never, for a subscription without end)."""
        return self.plan.last is not None and self.next > self.plan.last

    def __repr__(self) -> str:
        return f"Subscription(rid={self.rid}, {self.kind} {self.name}, next={self.next}, plan={self.plan})"


class SubscriptionTable:
    """The active requests of a host, by log, and the set of those that may have work.

    Thread-safe. `add` and `notify` mark requests ready; a driver thread blocks in
    `wait_ready` and gets them. Requests leave through `remove`/`remove_where` only.
    """

    def __init__(self) -> None:
        self._by_rid: dict[int, Subscription] = {}
        self._by_log: dict[LogName, dict[int, Subscription]] = {}
        self._ready: dict[int, Subscription] = {}
        self._rids = itertools.count(1)
        self._cond = threading.Condition()
        self._closed = False

    def add(self, name: LogName, kind: str, plan: Plan, sink: Any) -> Subscription:
        with self._cond:
            if self._closed:
                raise LogError("the log host is shut down", status=503)
            sub = Subscription(next(self._rids), name, kind, plan, sink)
            self._by_rid[sub.rid] = sub
            self._by_log.setdefault(name, {})[sub.rid] = sub
            self._ready[sub.rid] = sub
            self._cond.notify()
            return sub

    def remove(self, rid: int) -> Subscription | None:
        """Forget a request (it gets no further records). None if it is not active."""
        with self._cond:
            sub = self._by_rid.pop(rid, None)
            if sub is None:
                return None
            sub.cancelled = True
            self._ready.pop(rid, None)
            subs = self._by_log.get(sub.name)
            if subs is not None:
                subs.pop(rid, None)
                if not subs:
                    del self._by_log[sub.name]
            return sub

    def remove_where(self, predicate: Callable[[Subscription], bool]) -> list[Subscription]:
        with self._cond:
            rids = [rid for rid, sub in self._by_rid.items() if predicate(sub)]
        return [sub for sub in map(self.remove, rids) if sub is not None]

    def notify(self, name: LogName) -> None:
        """Log `name` has new records: its requests may have work."""
        with self._cond:
            subs = self._by_log.get(name)
            if subs:
                self._ready.update(subs)
                self._cond.notify()

    def mark_ready(self, sub: Subscription) -> None:
        with self._cond:
            if sub.rid in self._by_rid:
                self._ready[sub.rid] = sub
                self._cond.notify()

    def wait_ready(self, timeout: float | None = None) -> list[Subscription]:
        """Block until some request may have work (or close/timeout); take them all."""
        with self._cond:
            if not self._ready and not self._closed:
                self._cond.wait(timeout)
            ready = list(self._ready.values())
            self._ready.clear()
            return ready

    def get(self, rid: int) -> Subscription | None:
        return self._by_rid.get(rid)

    def active(self, name: LogName | None = None) -> list[Subscription]:
        with self._cond:
            if name is None:
                return list(self._by_rid.values())
            return list(self._by_log.get(name, {}).values())

    def close(self) -> None:
        """Refuse new requests and wake the driver, which then ends the active ones."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    @property
    def closed(self) -> bool:
        return self._closed
