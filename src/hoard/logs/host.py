"""The hosting side of logs: verify + commit appends in groups, run subscriptions, fan out.

`LogHost` is what a node that *hosts* logs runs; `LogBackend` is the interface the client
side (`Log`, `LogService`) talks to. `LogHost` implements it in-process; a remote backend
(the node's `/hoard/logs/1` protocol) implements the same calls over the network, and the
host end of that protocol calls a `LogHost` with a `RecordSink` that sends messages.

Threads (daemon threads, owned by the host, stopped by `close`):

* `hoard-logs-verify`: takes queued appends — up to `max_batch` at a time, however many are
  waiting — and verifies their signatures (libsodium releases the GIL, so this overlaps with
  the writer signing the next records and with the previous batch's fsync). Records a local
  `Log` signed in this process and handed over directly (`trusted`) are not verified again;
  records from anywhere else (the network) always are;
* `hoard-logs-commit`: checks the verified records' sequence and chain, commits them in
  **one durable BlockStore commit** (group commit), then reports each result through its
  `done` callback and wakes the subscriptions;
* `hoard-logs-deliver`: moves every ready subscription's cursor forward, reading records
  (from a small cache of just-committed ones, else from the store) and handing them to the
  request's sink, `chunk` records per request per turn so a long replay does not starve live
  subscribers.

Neither thread ever runs user code: sinks and `done` callbacks must be quick and non-blocking
(the client side hands results to its own dispatcher thread).
"""

from __future__ import annotations

import collections
import logging
import queue
import threading
import time
from collections.abc import Callable
from typing import Protocol

from hoard.content.ingest import Ingest
from hoard.errors import LogError
from hoard.logs.events import EVENT_EOS, EVENT_SHUTDOWN, STAT_EOS, STAT_SHUTDOWN
from hoard.logs.metadata import Metadata
from hoard.logs.names import LogName
from hoard.logs.records import Datum
from hoard.logs.store import DEFAULT_MAX_SKEW_NS, LogInfo, LogStore, Tail
from hoard.logs.subscriptions import (
    MULTIREAD,
    SUBSCRIBE,
    Subscription,
    SubscriptionTable,
    check_numrecs,
    plan_multiread,
    plan_multiread_at,
    plan_subscribe,
    plan_subscribe_at,
)
from hoard.store.base import BlockStore
from hoard.store.catalog import Catalog

__all__ = ["AppendDone", "LogBackend", "LogHost", "RecordSink"]

_log = logging.getLogger(__name__)

AppendDone = Callable[[Datum | None, LogError | None, Tail | None], None]
"""`done(committed, error, tail)`: exactly one of the first two is set; on error, `tail` is
the log's chain head after the refusal (None if the log is unknown), so a writer can resync."""
_Append = tuple[LogName, Datum, AppendDone, bool]  # a queued append: name, record, its callback, trusted


class RecordSink(Protocol):
    """Where a subscription's results go. Called on the host's delivery thread, in order."""

    def data(self, datum: Datum, trusted: bool) -> None:
        """A record. `trusted`: it comes from memory, just committed, and was either verified at
        append or signed in this process (not read back from disk)."""

    def failure(self, recno: int, error: LogError) -> None:
        """Record `recno` could not be read (status 430: missing)."""

    def end(self, event_type: int, stat: int) -> None:
        """The request ended: EVENT_EOS (202) or EVENT_SHUTDOWN (515). Nothing follows."""

    # Optional flow control: a sink that can fall behind (one that sends records over the
    # network) may also define `hold() -> bool`. The delivery thread asks it before each
    # record; True stops delivery to that request until the sink calls `LogHost.resume(rid)`.


class LogBackend(Protocol):
    """The calls the client side makes of a log host (local or, later, remote)."""

    def create(self, name: LogName, metadata: Metadata) -> LogInfo: ...
    def open(self, name: LogName) -> LogInfo: ...
    def nrecs(self, name: LogName) -> int: ...
    def append(self, name: LogName, datum: Datum, done: AppendDone) -> None:
        """Queue a signed record; must not block (the writer holds its lock); `done` is called
        exactly once, from any thread, and must be quick."""
    def read(self, name: LogName, recno: int) -> Datum: ...
    def read_by_ts(self, name: LogName, ts: int) -> Datum: ...
    def subscribe(self, name: LogName, kind: str, start: int, numrecs: int, sink: RecordSink, *,
                  by_ts: bool = False) -> int: ...
    def unsubscribe(self, rid: int) -> bool: ...
    def close(self) -> None: ...


class _RecentRecords:
    """Just-committed (and so already verified) records, bounded in bytes, oldest out first."""

    def __init__(self, max_bytes: int) -> None:
        self._max_bytes = max_bytes
        self._bytes = 0
        self._records: collections.OrderedDict[tuple[LogName, int], Datum] = collections.OrderedDict()
        self._lock = threading.Lock()

    def put(self, name: LogName, datum: Datum) -> None:
        size = len(datum.data) + 128
        if size > self._max_bytes // 8:
            return
        with self._lock:
            self._records[(name, datum.recno)] = datum
            self._bytes += size
            while self._bytes > self._max_bytes:
                _, old = self._records.popitem(last=False)
                self._bytes -= len(old.data) + 128

    def get(self, name: LogName, recno: int) -> Datum | None:
        return self._records.get((name, recno))


class LogHost:
    """Hosts the logs of one BlockStore: implements `LogBackend` in-process. Thread-safe."""

    def __init__(self, store: Catalog | BlockStore | LogStore, *, clock: Callable[[], int] = time.time_ns,
                 max_skew_ns: int = DEFAULT_MAX_SKEW_NS, max_batch: int = 4096, chunk: int = 256,
                 cache_bytes: int = 32 << 20, quota: Ingest | None = None) -> None:
        self.logs = store if isinstance(store, LogStore) else LogStore(store, clock=clock, max_skew_ns=max_skew_ns,
                                                                       quota=quota)
        self._max_batch = max_batch
        self._chunk = chunk
        self._recent = _RecentRecords(cache_bytes)
        self._table = SubscriptionTable()
        self._appends: queue.SimpleQueue[tuple[LogName, Datum, AppendDone, bool] | None] = queue.SimpleQueue()
        self._verified: queue.SimpleQueue[tuple[list[_Append], list[LogError | None]] | None] = queue.SimpleQueue()
        self._closing = False
        self._close_lock = threading.Lock()
        self._verifier = threading.Thread(target=self._verify_loop, name="hoard-logs-verify", daemon=True)
        self._committer = threading.Thread(target=self._commit_loop, name="hoard-logs-commit", daemon=True)
        self._deliverer = threading.Thread(target=self._deliver_loop, name="hoard-logs-deliver", daemon=True)
        self._verifier.start()
        self._committer.start()
        self._deliverer.start()

    # -- LogBackend -----------------------------------------------------------------
    def create(self, name: LogName, metadata: Metadata) -> LogInfo:
        self._check_open()
        return self.logs.create(name, metadata)

    def open(self, name: LogName) -> LogInfo:
        self._check_open()
        return self.logs.info(name)

    def nrecs(self, name: LogName) -> int:
        return self.logs.nrecs(name)

    def append(self, name: LogName, datum: Datum, done: AppendDone, *, trusted: bool = False) -> None:
        """Queue a signed record for the next group commit; `done` is called on the commit
        thread (at once, with 503, if the host is shut down). Never blocks.

        `trusted`: the record was signed in this process, by a `Log` handle whose key was
        checked against the log's PUB when it was opened, and handed over directly (it crossed
        no trust boundary), so its signature is not verified again. Everything else — above
        all, records received from the network — is verified before it is committed.
        """
        with self._close_lock:  # nothing is queued behind close()'s sentinel
            if not self._closing:
                self._appends.put((name, datum, done, trusted))
                return
        done(None, LogError("the log host is shut down", status=503), None)

    def read(self, name: LogName, recno: int) -> Datum:
        """Record `recno` (≤ 0 counts back), unverified: the reader verifies."""
        return self.logs.read(name, recno, verify=False)

    def read_by_ts(self, name: LogName, ts: int) -> Datum:
        return self.logs.read_by_ts(name, ts, verify=False)

    def subscribe(self, name: LogName, kind: str, start: int, numrecs: int, sink: RecordSink, *,
                  by_ts: bool = False) -> int:
        """Start a subscribe or multiread (`kind`); return its request id.

        Errors are raised here, before anything is delivered: 402 for numrecs < 0, 404 for an
        unknown log or (multiread) a start past the end. `start` is a record number, or with
        `by_ts` a timestamp in ns (the first record at or after it; none: after the last).
        """
        check_numrecs(numrecs)
        self._check_open()
        nrecs = self.logs.nrecs(name)
        if kind == SUBSCRIBE:
            if by_ts:
                first = self.logs.first_at_or_after(name, start)
                plan = plan_subscribe_at(nrecs + 1 if first is None else first, numrecs)
            else:
                plan = plan_subscribe(start, numrecs, nrecs)
        elif kind == MULTIREAD:
            if by_ts:
                plan = plan_multiread_at(self.logs.first_at_or_after(name, start), numrecs, nrecs)
            else:
                plan = plan_multiread(start, numrecs, nrecs)
        else:
            raise LogError(f"unknown request kind {kind!r}", status=400)
        return self._table.add(name, kind, plan, sink).rid

    def unsubscribe(self, rid: int) -> bool:
        """End a request without EOS; True if it was active."""
        return self._table.remove(rid) is not None

    def resume(self, rid: int) -> None:
        """A sink whose `hold()` stopped delivery can take records again."""
        sub = self._table.get(rid)
        if sub is not None:
            self._table.mark_ready(sub)

    def active(self, name: LogName | None = None) -> list[Subscription]:
        """The active subscribe/multiread requests (of one log)."""
        return self._table.active(name)

    def close(self, timeout: float = 30.0) -> None:
        """Commit what is queued (acknowledging it), end every request with EVENT_SHUTDOWN,
        stop the threads. Idempotent. Does not close the BlockStore."""
        with self._close_lock:
            if self._closing:
                return
            self._closing = True
            self._appends.put(None)
        self._verifier.join(timeout)
        self._committer.join(timeout)
        self._table.close()
        self._deliverer.join(timeout)

    def _check_open(self) -> None:
        if self._closing:
            raise LogError("the log host is shut down", status=503)

    # -- verify and commit threads ----------------------------------------------------
    def _take_batch(self) -> tuple[list[tuple[LogName, Datum, AppendDone, bool]], bool]:
        """Block for one queued append, then take whatever else is waiting (≤ max_batch).
        Returns the batch and whether the close sentinel was seen."""
        item = self._appends.get()
        if item is None:
            return [], True
        batch = [item]
        while len(batch) < self._max_batch:
            try:
                item = self._appends.get_nowait()
            except queue.Empty:
                break
            if item is None:
                return batch, True
            batch.append(item)
        return batch, False

    def _verify_loop(self) -> None:
        stop = False
        while not stop:
            batch, stop = self._take_batch()
            if batch:
                try:
                    untrusted = [i for i, item in enumerate(batch) if not item[3]]
                    sig_errors: list[LogError | None] = [None] * len(batch)
                    if untrusted:
                        checked = self.logs.verify_many((batch[i][0], batch[i][1]) for i in untrusted)
                        for i, error in zip(untrusted, checked):
                            sig_errors[i] = error
                except Exception as exc:  # noqa: BLE001 - a bug or a dead store: refuse the batch, keep serving
                    _log.exception("log signature verification failed")
                    sig_errors = [LogError(f"append failed: {exc}", status=500)] * len(batch)
                self._verified.put((batch, sig_errors))
        self._verified.put(None)

    def _commit_loop(self) -> None:
        stop = False
        while not stop:
            item = self._verified.get()
            if item is None:
                break
            batch, sig_errors = item
            while len(batch) < self._max_batch:  # merge batches verified while we committed
                try:
                    item = self._verified.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    stop = True
                    break
                batch, sig_errors = batch + item[0], sig_errors + item[1]
            self._commit(batch, sig_errors)

    def _commit(self, batch: list[tuple[LogName, Datum, AppendDone, bool]], sig_errors: list[LogError | None]) -> None:
        try:
            results = self.logs.append_many([(name, datum) for name, datum, _, _ in batch], sig_errors)
        except Exception as exc:  # noqa: BLE001 - a bug or a dead store: refuse the batch, keep serving
            _log.exception("log append batch failed")
            results = [LogError(f"append failed: {exc}", status=500)] * len(batch)
        changed: set[LogName] = set()
        for (name, _, _, _), result in zip(batch, results):
            if isinstance(result, Datum):
                self._recent.put(name, result)
                changed.add(name)
        for name in changed:
            self._table.notify(name)
        for (name, _, done, _), result in zip(batch, results):
            try:
                if isinstance(result, Datum):
                    done(result, None, None)
                else:
                    try:
                        tail = self.logs.tail(name)
                    except LogError:
                        tail = None
                    done(None, result, tail)
            except Exception:  # noqa: BLE001 - a caller's callback; logged
                _log.exception("log append completion callback failed")

    # -- delivery thread ----------------------------------------------------------------
    def _deliver_loop(self) -> None:
        while True:
            ready = self._table.wait_ready()
            if self._table.closed:
                break
            for sub in ready:
                try:
                    self._pump(sub)
                except Exception:  # noqa: BLE001 - one subscription's failure ends it alone; logged
                    _log.exception("log subscription %r failed; ending it", sub)
                    self._table.remove(sub.rid)
        for sub in self._table.remove_where(lambda _: True):
            try:
                sub.sink.end(EVENT_SHUTDOWN, STAT_SHUTDOWN)
            except Exception:  # noqa: BLE001 - shutting down anyway; logged
                _log.exception("log subscription shutdown failed")

    def _pump(self, sub: Subscription) -> None:
        nrecs = self.logs.nrecs(sub.name)
        upto = sub.due(nrecs)
        sent = 0
        hold = getattr(sub.sink, "hold", None)
        while sub.next <= upto and sent < self._chunk:
            if sub.cancelled:
                return
            if hold is not None and hold():
                return  # flow control: the sink calls resume(rid) when it can take more
            recno = sub.next
            datum = self._recent.get(sub.name, recno)
            trusted = datum is not None
            if datum is None:
                try:
                    datum = self.logs.get(sub.name, recno)
                except LogError as exc:  # undecodable: report it, go on
                    sub.sink.failure(recno, exc)
                    sub.advance()
                    sent += 1
                    continue
            if datum is None or datum.recno != recno:
                sub.sink.failure(recno, LogError(f"record {recno} of log {sub.name} is missing", status=430,
                                                 gdp_stat="RECORD_MISSING", recno=recno))
            else:
                sub.sink.data(datum, trusted)
            sub.advance()
            sent += 1
        if sub.finished:
            if self._table.remove(sub.rid) is not None:
                sub.sink.end(EVENT_EOS, STAT_EOS)
        elif sub.next <= sub.due(self.logs.nrecs(sub.name)):
            self._table.mark_ready(sub)
