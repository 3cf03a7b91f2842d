"""`Log`: the client-side handle of an open log (GDP `gdp_gcl_t`).

The client side signs appends, runs the append and read filters, verifies what it reads, and
turns results into events for callbacks or the event queue. Everything it asks of the host
goes through a `LogBackend` (host.py), so the same handle works over a local `LogHost` or,
later, a remote one.

Writing: a handle opened "ao" or "ra" shares its service's `_Writer` for that log — the
signing key and the client's view of the chain head (next recno, previous record hash, last
timestamp). An append takes the writer's lock, numbers the record nrecs + 1, runs the append
filter, stamps it (max(clock, previous ts): timestamps never go backwards), signs it, advances
the head optimistically (as GDP's client increments nrecs) and queues it at the host — so
appends from several threads are numbered in the order they are queued, and `append_async`
can pipeline thousands of records into each group commit. If the host refuses a record, the
records queued after it (built on it) are refused too; the writer then resynchronises with the
chain head the host reports and later appends go on from there.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Self

from hoard.errors import LogError, StateError
from hoard.logs.events import (
    EVENT_CREATED,
    EVENT_DATA,
    EVENT_FAILURE,
    EVENT_MISSING,
    STAT_CREATED,
    STAT_DATA,
    STAT_MISSING,
    Event,
)
from hoard.logs.host import LogBackend, LogHost
from hoard.logs.metadata import Metadata
from hoard.logs.names import LogName
from hoard.logs.records import Datum, Signer, Verifier, to_ns
from hoard.logs.store import LogInfo, Tail
from hoard.logs.subscriptions import MULTIREAD, SUBSCRIBE

if TYPE_CHECKING:
    from hoard.logs.service import LogService

__all__ = ["Callback", "Filter", "Log", "MODE_AO", "MODE_RA", "MODE_RO", "parse_mode"]

MODE_RO = 1
MODE_AO = 2
MODE_RA = 3
_MODES = {"ro": MODE_RO, "ao": MODE_AO, "ra": MODE_RA, MODE_RO: MODE_RO, MODE_AO: MODE_AO, MODE_RA: MODE_RA}
_MODE_TEXT = {MODE_RO: "ro", MODE_AO: "ao", MODE_RA: "ra"}

Callback = Callable[[Event], Any]
Filter = Callable[[Datum], Any]


def parse_mode(mode: str | int) -> int:
    """"ro"/"ao"/"ra" (or GDP's 1/2/3) → the GDP mode bits; LogError 400 (`BAD_IOMODE`) otherwise."""
    key = mode.lower() if isinstance(mode, str) else mode
    if isinstance(key, bool) or key not in _MODES:
        raise LogError(f"bad open mode {mode!r} (ro, ao or ra)", status=400, gdp_stat="BAD_IOMODE")
    return _MODES[key]


def _as_bytes(data: Any) -> bytes:
    if isinstance(data, bytes):
        return data
    if isinstance(data, (bytearray, memoryview)):
        return bytes(data)
    raise LogError(f"record data is bytes, not {type(data).__name__}", status=400)


def _same(a: Any, b: Any) -> bool:
    if a is b:
        return True
    try:
        return bool(a == b)
    except Exception:  # noqa: BLE001 - values that cannot be compared are not equal
        return False


class _Writer:
    """One log's signing key and the client's chain head, shared by its writable handles.

    `lock` is held while a record is numbered, filtered, signed and queued; completions take
    it only to resynchronise after a refusal, so the commit thread rarely waits for a writer.
    """

    def __init__(self, signer: Signer, tail: Tail) -> None:
        self.signer = signer
        self.lock = threading.RLock()
        self.nrecs = tail.nrecs
        self.last_hash = tail.last_hash
        self.last_ts = tail.last_ts
        self.epoch = 0
        self.inflight = 0
        self._idle = threading.Condition(threading.Lock())

    def started(self) -> None:
        with self._idle:
            self.inflight += 1

    def finished(self, epoch: int, error: LogError | None, tail: Tail | None) -> None:
        if error is not None:
            with self.lock:
                if epoch == self.epoch:  # the first refusal of this epoch: later records were built on it
                    self.epoch += 1
                    if tail is not None:
                        self.nrecs, self.last_hash, self.last_ts = tail.nrecs, tail.last_hash, tail.last_ts
        with self._idle:
            self.inflight -= 1
            if self.inflight == 0:
                self._idle.notify_all()

    def wait_idle(self, timeout: float | None) -> bool:
        with self._idle:
            return self._idle.wait_for(lambda: self.inflight == 0, timeout)


class _Request:
    """A subscribe/multiread of one handle: the host's sink, verifying before it dispatches."""

    __slots__ = ("_last_hash", "_last_recno", "callback", "cancelled", "kind", "log", "rid", "udata")

    def __init__(self, log: Log, kind: str, callback: Callback | None, udata: Any) -> None:
        self.log = log
        self.kind = kind
        self.callback = callback
        self.udata = udata
        self.rid = 0
        self.cancelled = False
        self._last_recno = 0
        self._last_hash: bytes | None = None

    # RecordSink, called on the host's delivery thread
    def data(self, datum: Datum, trusted: bool) -> None:
        if self.cancelled:
            return
        error = None
        if not trusted:
            try:
                self.log._verifier.verify(self.log.name, datum)
                if (self._last_hash is not None and datum.recno == self._last_recno + 1
                        and datum.prevhash != self._last_hash):
                    error = LogError(f"record {datum.recno} of log {self.log.name} does not follow record "
                                     f"{self._last_recno} (prevhash mismatch: a fork)", status=409,
                                     gdp_stat="CHAIN_MISMATCH", recno=datum.recno)
            except LogError as exc:
                error = exc
        if error is None:
            self._last_recno, self._last_hash = datum.recno, (None if trusted else datum.hash)
            self.log._post(self, EVENT_DATA, datum, STAT_DATA)
        else:
            self._last_recno, self._last_hash = datum.recno, None
            self.log._post(self, EVENT_FAILURE, None, error.status, error)

    def failure(self, recno: int, error: LogError) -> None:
        if not self.cancelled:
            self._last_hash = None
            kind = EVENT_MISSING if error.status == STAT_MISSING else EVENT_FAILURE
            self.log._post(self, kind, None, error.status, error)

    def end(self, event_type: int, stat: int) -> None:
        self.log._forget(self)
        if not self.cancelled:
            self.log._post(self, event_type, None, stat)


class Log:
    """An open log. Obtain one from `LogService.log_create` / `log_open`. Thread-safe.

    Synchronous calls raise `LogError` (`.code` is the GDP status). Asynchronous calls report
    through `callback(event)` if one is given, else through `LogService.event_next`; callbacks
    run on the service's callback thread.
    """

    def __init__(self, service: LogService, backend: LogBackend, info: LogInfo, mode: int,
                 writer: _Writer | None) -> None:
        self._service = service
        self._backend = backend
        self.name: LogName = info.name
        self.metadata: Metadata = info.metadata
        self.public_key: bytes = info.public_key
        self._mode = mode
        self._verifier = Verifier(info.public_key, info.metadata)
        self._writer = writer
        self._append_filter: Filter | None = None
        self._read_filter: Filter | None = None
        self._requests: list[_Request] = []
        self._lock = threading.RLock()
        self._closed = False

    def __repr__(self) -> str:
        return f"Log({str(self.name)!r}, mode={self.mode!r})"

    @property
    def mode(self) -> str:
        return _MODE_TEXT[self._mode]

    @property
    def backend(self) -> LogBackend:
        """Where the records are: this process's `LogHost`, or the `RemoteLogBackend` of a log
        that another node hosts."""
        return self._backend

    @property
    def nrecs(self) -> int:
        """The number of committed records (asked of the host: for a remote log it may lag)."""
        self._check_open()
        return self._backend.nrecs(self.name)

    # -- checks -------------------------------------------------------------------
    def _check_open(self) -> None:
        if self._closed:
            raise StateError(f"log handle {self.name} is closed")
        self._service._check_open()

    def _check_readable(self) -> None:
        self._check_open()
        if not self._mode & MODE_RO:
            raise LogError(f"log {self.name} is open append-only", status=403, gdp_stat="BAD_IOMODE")

    def _check_writable(self) -> _Writer:
        self._check_open()
        if not self._mode & MODE_AO or self._writer is None:
            raise LogError(f"log {self.name} is open read-only", status=403, gdp_stat="READONLY")
        return self._writer

    # -- filters ------------------------------------------------------------------
    def set_append_filter(self, fn: Filter | None) -> None:
        """Run `fn(datum)` on each record before it is signed (recno assigned, ts not yet). It
        returns the datum to use (only its data counts), new data as bytes, or None (unchanged)."""
        self._append_filter = fn

    def set_read_filter(self, fn: Filter | None) -> None:
        """Run `fn(datum)` on each verified record read or delivered (reads: caller's thread;
        events: callback thread). It returns a Datum, new data as bytes, or None (unchanged)."""
        self._read_filter = fn

    @staticmethod
    def _apply(fn: Filter | None, datum: Datum) -> Datum:
        if fn is None:
            return datum
        out = fn(datum)
        if out is None:
            return datum
        if isinstance(out, Datum):
            return out
        return Datum(datum.recno, datum.ts, _as_bytes(out), datum.sig, datum.prevhash)

    # -- appends ------------------------------------------------------------------
    def _submit(self, data: Any, on_done: Callable[[Datum, Datum | None, LogError | None], None]) -> None:
        writer = self._check_writable()
        data = _as_bytes(data)
        clock = self._service.clock
        with writer.lock:
            recno = writer.nrecs + 1
            if self._append_filter is not None:
                data = _as_bytes(self._apply(self._append_filter, Datum(recno, 0, data, b"", writer.last_hash)).data)
            ts = max(clock(), writer.last_ts)
            datum = writer.signer.sign(self.name, recno, ts, data, writer.last_hash)
            epoch = writer.epoch
            writer.nrecs, writer.last_hash, writer.last_ts = recno, datum.hash, ts
            writer.started()

            def done(committed: Datum | None, error: LogError | None, tail: Tail | None) -> None:
                writer.finished(epoch, error, tail)
                on_done(datum, committed, error)

            backend = self._backend
            if isinstance(backend, LogHost):  # in-process: signed here with the key checked at open
                backend.append(self.name, datum, done, trusted=True)
            else:
                backend.append(self.name, datum, done)

    def append(self, data: bytes) -> Datum:
        """Append a record and wait until it is durably committed; return it as committed."""
        finished = threading.Event()
        box: list[tuple[Datum | None, LogError | None]] = []

        def on_done(_: Datum, committed: Datum | None, error: LogError | None) -> None:
            box.append((committed, error))
            finished.set()

        self._submit(data, on_done)
        finished.wait()
        committed, error = box[0]
        if error is not None:
            raise LogError(error.message, status=error.status, **{k: v for k, v in error.fields.items() if k != "status"})
        assert committed is not None
        return committed

    def append_async(self, data: bytes, callback: Callback | None = None, udata: Any = None) -> None:
        """Queue an append; its result is one event: EVENT_CREATED (datum = the committed
        record) once it is durable, or EVENT_FAILURE. Errors found before queueing (mode,
        data type) are raised here."""
        def on_done(attempted: Datum, committed: Datum | None, error: LogError | None) -> None:
            if error is None:
                event = Event(EVENT_CREATED, self, committed, udata, STAT_CREATED)
            else:
                event = Event(EVENT_FAILURE, self, attempted, udata, error.status, error)
            self._service._dispatch(callback, event)

        self._submit(data, on_done)

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every queued append of this log (from any handle) is settled."""
        return True if self._writer is None else self._writer.wait_idle(timeout)

    # -- reads --------------------------------------------------------------------
    def _read(self, fetch: Callable[[], Datum]) -> Datum:
        datum = fetch()
        self._verifier.verify(self.name, datum)
        return self._apply(self._read_filter, datum)

    def read_by_recno(self, recno: int) -> Datum:
        """Record `recno`; ≤ 0 counts back from the end (-1 is the last). 404 for 0 and past
        the end; 403 if the record's signature does not verify."""
        self._check_readable()
        if isinstance(recno, bool) or not isinstance(recno, int):
            raise LogError(f"a record number is an int, not {type(recno).__name__}", status=400)
        return self._read(lambda: self._backend.read(self.name, recno))

    def read_by_ts(self, ts: Any) -> Datum:
        """The first record stamped at or after `ts` (int ns, float s, or datetime); 404 if none."""
        self._check_readable()
        ts_ns = to_ns(ts)
        return self._read(lambda: self._backend.read_by_ts(self.name, ts_ns))

    def read_async(self, recno: int, callback: Callback | None = None, udata: Any = None) -> None:
        """Read on the callback thread; exactly one event: EVENT_DATA or EVENT_FAILURE."""
        self._check_readable()

        def job() -> None:
            try:
                event = Event(EVENT_DATA, self, self.read_by_recno(recno), udata, STAT_DATA)
            except LogError as exc:
                event = Event(EVENT_FAILURE, self, None, udata, exc.status, exc)
            except Exception as exc:  # noqa: BLE001 - a caller's read filter failed: reported as the event
                error = LogError(f"read filter failed: {exc!r}", status=500)
                event = Event(EVENT_FAILURE, self, None, udata, error.status, error)
            self._service._deliver(callback, event)

        self._service._dispatcher.post(job)

    # -- subscriptions --------------------------------------------------------------
    def _request(self, kind: str, start: int, numrecs: int, callback: Callback | None, udata: Any,
                 by_ts: bool) -> None:
        self._check_readable()
        request = _Request(self, kind, callback, udata)
        # Recorded before it is made, so that a request ending at once is forgotten after it was
        # recorded, and no lock is held while the backend answers (a remote one answers on the
        # thread that also delivers this handle's other requests' results).
        with self._lock:
            self._requests.append(request)
        try:
            rid = self._backend.subscribe(self.name, kind, start, numrecs, request, by_ts=by_ts)
        except BaseException:
            self._forget(request)
            raise
        with self._lock:
            request.rid = rid
            cancelled = request.cancelled
        if cancelled:  # unsubscribed (or the handle closed) while it was being made
            self._backend.unsubscribe(rid)

    def subscribe_by_recno(self, start: int, numrecs: int, callback: Callback | None = None,
                           udata: Any = None) -> None:
        """Existing records from `start` (≤ 0 counts back), then new ones as they are
        committed; `numrecs` in all (0: forever), then EVENT_EOS. 402 if numrecs < 0."""
        self._request(SUBSCRIBE, start, numrecs, callback, udata, False)

    def subscribe_by_ts(self, start_ts: Any, numrecs: int, callback: Callback | None = None,
                        udata: Any = None) -> None:
        """As subscribe_by_recno, from the first record at or after `start_ts` (none: new ones)."""
        self._request(SUBSCRIBE, to_ns(start_ts), numrecs, callback, udata, True)

    def multiread(self, start: int, numrecs: int, callback: Callback | None = None, udata: Any = None) -> None:
        """Existing records only, from `start` (≤ 0 counts back), at most `numrecs` (0: all),
        then EVENT_EOS. 402 if numrecs < 0; 404 if start is past the end (or 0)."""
        self._request(MULTIREAD, start, numrecs, callback, udata, False)

    def multiread_by_ts(self, start_ts: Any, numrecs: int, callback: Callback | None = None,
                        udata: Any = None) -> None:
        """As multiread, from the first record at or after `start_ts` (none: 404)."""
        self._request(MULTIREAD, to_ns(start_ts), numrecs, callback, udata, True)

    def unsubscribe(self, callback: Callback | None = None, udata: Any = None) -> int:
        """End this handle's subscriptions and multireads matching (callback, udata), None
        matching anything; they get no further events (no EOS). Returns how many ended."""
        self._check_open()
        with self._lock:
            ended = [r for r in self._requests
                     if (callback is None or _same(r.callback, callback)) and (udata is None or _same(r.udata, udata))]
            for request in ended:
                self._requests.remove(request)
            rids = self._cancel(ended)
        for rid in rids:
            self._backend.unsubscribe(rid)
        return len(ended)

    @staticmethod
    def _cancel(requests: list[_Request]) -> list[int]:
        """Mark requests cancelled (under the handle's lock); the ids to unsubscribe now (a
        request still being made has none yet: `_request` unsubscribes it when it gets one)."""
        for request in requests:
            request.cancelled = True
        return [r.rid for r in requests if r.rid]

    def _forget(self, request: _Request) -> None:
        with self._lock:
            if request in self._requests:
                self._requests.remove(request)

    def _post(self, request: _Request, event_type: int, datum: Datum | None, stat: int,
              error: LogError | None = None) -> None:
        """Hand a result to the callback thread (read filter, then callback or queue)."""
        def job() -> None:
            if request.cancelled:
                return
            event = Event(event_type, self, datum, request.udata, stat, error)
            if event_type == EVENT_DATA and self._read_filter is not None and datum is not None:
                try:
                    event = Event(EVENT_DATA, self, self._apply(self._read_filter, datum), request.udata, stat)
                except Exception as exc:  # noqa: BLE001 - a caller's read filter failed: reported as the event
                    failure = LogError(f"read filter failed on record {datum.recno}: {exc!r}", status=500)
                    event = Event(EVENT_FAILURE, self, None, request.udata, failure.status, failure)
            self._service._deliver(request.callback, event)

        self._service._dispatcher.post(job)

    # -- close --------------------------------------------------------------------
    def close(self, timeout: float | None = 30.0) -> None:
        """Wait for queued appends to settle, end this handle's requests (no events), and
        release the handle. Idempotent."""
        if self._closed:
            return
        self.flush(timeout)
        with self._lock:
            self._closed = True
            requests, self._requests = self._requests, []
            rids = self._cancel(requests)
        for rid in rids:
            self._backend.unsubscribe(rid)
        self._service._closed_log(self)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
