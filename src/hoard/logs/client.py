"""The client end of `/hoard/logs/1`: `RemoteLogBackend`, the `LogBackend` of one peer's logs.

Everything client-side stays here, on this node — numbering, append filters, signing with
the writer key, verifying every record received (records from the network are never
trusted), read filters, events — done by the `Log`/`LogService` above; `ClientConn` carries
one stream's calls, appends and subscriptions (the stream is a `Conn`: conn.py).

Trust: the client checks that the metadata the host serves names the log (`check_binding`:
SHA-256 of the metadata is the name, or for a log created under a name, XID is that name),
so the host cannot swap the writer key; the log's sink verifies the signature and chain of
every record.

Endings: when the stream ends, every pending call fails with 503, every unanswered append
gets `EVENT_FAILURE` 503 (it may or may not have been committed: the writer resynchronises
on its next refused append), and every subscription ends with `EVENT_SHUTDOWN`. The backend
opens a new stream for the next call.
"""

from __future__ import annotations

import itertools
import logging
import threading
from collections.abc import Callable

import trio

from hoard.errors import LogError
from hoard.limits import LOG_MAX_OUTSTANDING_CALLS
from hoard.logs import wire
from hoard.logs.conn import Conn
from hoard.logs.events import EVENT_SHUTDOWN, STAT_SHUTDOWN
from hoard.logs.host import AppendDone, RecordSink
from hoard.logs.metadata import PUB, XID, Metadata, decode_pub, metadata_name
from hoard.logs.names import LogName, parse_name
from hoard.logs.records import Datum
from hoard.logs.store import LogInfo, Tail
from hoard.logs.wire import ProtocolError

__all__ = ["CALL_TIMEOUT", "ClientConn", "RemoteLogBackend", "check_binding"]

_log = logging.getLogger(__name__)

CALL_TIMEOUT = 60.0  # seconds a call waits for its answer
_CLIENT_MAX_PENDING = 256 << 20  # replies to many threads' reads, plus one credit window
_CLIENT_MAX_PENDING_FRAMES = 1 << 16  # a credit window of the smallest DATA frames, plus replies


def _copy(error: LogError) -> LogError:
    """A fresh LogError like `error`, to raise on another thread."""
    fields = {k: v for k, v in error.fields.items() if k != "status"}
    return LogError(error.message, status=int(error.code), **fields)


def check_binding(name: LogName, metadata: Metadata) -> None:
    """LogError 502 unless `metadata` names log `name` (hash of the metadata, or its XID)."""
    xid = metadata.get(XID)
    if xid is not None:
        try:
            expected = parse_name(xid.decode("utf-8"))
        except (UnicodeDecodeError, LogError):
            expected = None
    else:
        expected = metadata_name(metadata)
    if expected != name:
        raise LogError(f"the log host served metadata that does not name log {name}", status=502,
                       gdp_stat="BAD_METADATA", log=str(name))


# -- the stream ----------------------------------------------------------------------------

class _Waiter:
    __slots__ = ("body", "error", "event", "sub")

    def __init__(self, sub: tuple[int, RecordSink] | None = None) -> None:
        self.event = threading.Event()
        self.body: bytes | None = None
        self.error: LogError | None = None
        self.sub = sub


class _Append:
    __slots__ = ("datum", "done", "size")

    def __init__(self, done: AppendDone, datum: Datum, size: int) -> None:
        self.done = done
        self.datum = datum
        self.size = size


class ClientConn:
    """The client end of one stream to a log host: calls, appends and subscriptions."""

    def __init__(self, peer: str, stream: object, token: trio.lowlevel.TrioToken, trio_thread: int) -> None:
        self.peer = peer
        self.conn = Conn(stream, token, trio_thread, self._handle, self._closed, name=f"hoard-logs-remote {peer[-8:]}",
                         max_pending=_CLIENT_MAX_PENDING, max_pending_frames=_CLIENT_MAX_PENDING_FRAMES,
                         max_inflight=wire.MAX_INFLIGHT_APPENDS,
                         max_inflight_bytes=wire.MAX_INFLIGHT_BYTES)
        self._lock = threading.Lock()
        self._calls: dict[int, _Waiter | _Append] = {}
        self._subs: dict[int, RecordSink] = {}
        self._ids = itertools.count(1)
        self._unreturned = 0  # credit consumed and not yet returned (conn thread only)
        self._received = 0  # DATA/FAILURE bytes received, and credit returned (conn thread only)
        self._returned = 0
        self._ended = False
        self._call_room = threading.BoundedSemaphore(LOG_MAX_OUTSTANDING_CALLS)  # the host's bound on calls

    async def run(self) -> None:
        await self.conn.run()

    @property
    def closed(self) -> bool:
        return self._ended or self.conn.closed

    def _lost(self) -> LogError:
        return LogError(f"lost the connection to log host {self.peer}", status=503, peer=self.peer)

    # -- calls (any thread but the trio one) ------------------------------------------
    def call(self, make: Callable[[int], bytes], sub: tuple[int, RecordSink] | None = None,
             expect: tuple[int, ...] = ()) -> bytes:
        """Send a request and wait for its answer (the frame body); raise its LogError.

        At most LOG_MAX_OUTSTANDING_CALLS calls are unanswered at once (a host resets a stream
        that exceeds it); further callers wait for room.
        """
        if not self._call_room.acquire(timeout=CALL_TIMEOUT):
            raise LogError(f"too many calls waiting for log host {self.peer}", status=503, peer=self.peer)
        try:
            return self._call(make, sub, expect)
        finally:
            self._call_room.release()

    def _call(self, make: Callable[[int], bytes], sub: tuple[int, RecordSink] | None,
              expect: tuple[int, ...]) -> bytes:
        call = next(self._ids)
        message = make(call)
        waiter = _Waiter(sub)
        with self._lock:
            registered = not self._ended
            if registered:
                self._calls[call] = waiter
        if not registered or not self.conn.outbox.put(message):
            with self._lock:
                self._calls.pop(call, None)
            raise self._lost()
        if not waiter.event.wait(CALL_TIMEOUT):
            with self._lock:
                self._calls.pop(call, None)
            if sub is not None:  # in case the host did start it: requests are handled in order
                self.conn.outbox.put(wire.unsubscribe_msg(sub[0]))
            raise LogError(f"log host {self.peer} did not answer within {CALL_TIMEOUT:g} s", status=504,
                           peer=self.peer)
        if waiter.error is not None:
            raise _copy(waiter.error)
        assert waiter.body is not None
        if expect and waiter.body[0] not in expect:
            self.conn.abort()
            raise LogError(f"log host {self.peer} answered with an unexpected message", status=502, peer=self.peer)
        return waiter.body

    def append(self, name: LogName, datum: Datum, done: AppendDone) -> None:
        """Queue an append (never blocks); `done` is called once, on the conn thread (or here)."""
        call = next(self._ids)
        try:
            message = wire.append_msg(call, name, datum)
        except LogError as exc:  # refused before sending: the host's chain is where this record began
            done(None, exc, Tail(datum.recno - 1, datum.prevhash, datum.ts))
            return
        entry = _Append(done, datum, len(message))
        with self._lock:
            registered = not self._ended
            if registered:
                self._calls[call] = entry
        if registered and self.conn.outbox.put(message, append=True):
            return
        with self._lock:
            mine = self._calls.pop(call, None) is entry or not registered
        if mine:
            done(None, self._lost(), None)

    def unsubscribe(self, sid: int) -> bool:
        with self._lock:
            active = self._subs.pop(sid, None) is not None
        if active:
            self.conn.outbox.put(wire.unsubscribe_msg(sid))
        return active

    def close(self) -> None:
        self.conn.abort()

    # -- the conn thread --------------------------------------------------------------
    def _handle(self, body: bytes) -> None:
        kind = body[0]
        if kind == wire.DATA:
            sid, datum = wire.decode_record(body)
            sink = self._subs.get(sid)
            if sink is not None:
                sink.data(datum, False)  # never trusted: the sink verifies it
            self._consumed(len(body) + 4)
        elif kind == wire.FAILURE:
            sid, error = wire.decode_failure(body)
            sink = self._subs.get(sid)
            if sink is not None:
                recno = error.fields.get("recno")
                sink.failure(recno if isinstance(recno, int) else 0, error)
            self._consumed(len(body) + 4)
        elif kind == wire.END:
            sid, event_type, stat = wire.decode_end(body)
            with self._lock:
                sink = self._subs.pop(sid, None)
            if sink is not None:
                sink.end(event_type, stat)
        elif kind in (wire.INFO, wire.COUNT, wire.OK, wire.RECORD, wire.ERROR):
            self._answer(kind, body)
        else:
            raise ProtocolError(f"unknown message type 0x{kind:02x}")

    def _answer(self, kind: int, body: bytes) -> None:
        call = wire.decode_call(body)
        with self._lock:
            entry = self._calls.pop(call, None)
        if entry is None:
            return  # the caller gave up waiting
        if isinstance(entry, _Append):
            self.conn.outbox.answered(entry.size)
            if kind == wire.OK:
                entry.done(entry.datum, None, None)
            elif kind == wire.ERROR:
                _, error, tail = wire.decode_error(body)
                entry.done(None, error, tail)
            else:
                entry.done(None, LogError(f"log host {self.peer} answered an append oddly", status=502), None)
                raise ProtocolError(f"answer 0x{kind:02x} to an append")
            return
        if kind == wire.ERROR:
            entry.error = wire.decode_error(body)[1]
        else:
            entry.body = body
            if entry.sub is not None and kind == wire.OK:
                sid, sink = entry.sub
                with self._lock:
                    self._subs[sid] = sink  # before any DATA for it is handled
        entry.event.set()

    def _consumed(self, nbytes: int) -> None:
        self._received += nbytes
        if self._received - self._returned > wire.INITIAL_CREDIT + 8 * (wire.MAX_FRAME + 4):  # slack: frames in flight
            raise ProtocolError("the host sent subscription data beyond its credit")
        self._unreturned += nbytes
        if self._unreturned >= wire.CREDIT_BATCH:
            self.conn.outbox.put(wire.credit_msg(self._unreturned))
            self._returned += self._unreturned
            self._unreturned = 0

    def _closed(self) -> None:
        with self._lock:
            self._ended = True
            calls, self._calls = self._calls, {}
            subs, self._subs = self._subs, {}
        for call in sorted(calls):
            entry = calls[call]
            if isinstance(entry, _Append):
                try:
                    entry.done(None, self._lost(), None)
                except Exception:  # noqa: BLE001 - a caller's callback; logged
                    _log.exception("log append completion failed")
            else:
                entry.error = self._lost()
                entry.event.set()
        for sink in subs.values():
            try:
                sink.end(EVENT_SHUTDOWN, STAT_SHUTDOWN)
            except Exception:  # noqa: BLE001 - a caller's sink; logged
                _log.exception("log subscription shutdown failed")


class RemoteLogBackend:
    """`LogBackend` for the logs one peer hosts, over `/hoard/logs/1`. Thread-safe.

    `connect()` opens a new stream to the peer and returns its started `ClientConn`
    (blocking; LogError 503 when the peer cannot be reached). It is called for the first
    call, and again for the next call after a stream ended. No method may be called on the
    node's trio thread (they wait for the network).
    """

    def __init__(self, peer: str, connect: Callable[[], ClientConn]) -> None:
        self.peer = peer
        self._connect = connect
        self._conn: ClientConn | None = None
        self._lock = threading.Lock()
        self._sids = itertools.count(1)
        self._probed: dict[LogName, LogInfo] = {}

    def __repr__(self) -> str:
        return f"RemoteLogBackend({self.peer!r})"

    def _live(self) -> ClientConn:
        conn = self._conn
        if conn is not None and not conn.closed:
            return conn
        with self._lock:
            conn = self._conn
            if conn is None or conn.closed:
                conn = self._conn = self._connect()
            return conn

    @property
    def connected(self) -> bool:
        conn = self._conn
        return conn is not None and not conn.closed

    # -- LogBackend -------------------------------------------------------------------
    def create(self, name: LogName, metadata: Metadata) -> LogInfo:
        raise LogError("logs are created on the node that hosts them, not over the network", status=405)

    def probe(self, name: LogName) -> LogInfo:
        """Open `name` on this peer and keep the answer for the `open` that follows."""
        info = self._fetch_info(name)
        self._probed[name] = info
        return info

    def open(self, name: LogName) -> LogInfo:
        info = self._probed.pop(name, None)
        return info if info is not None else self._fetch_info(name)

    def _fetch_info(self, name: LogName) -> LogInfo:
        body = self._live().call(lambda call: wire.open_msg(wire.OPEN, call, name), expect=(wire.INFO,))
        _, tail, raw = wire.decode_info(body)
        try:
            metadata = Metadata.parse(raw)
            public_key = decode_pub(metadata.get(PUB) or b"")
        except LogError as exc:
            raise LogError(f"the log host served bad metadata for log {name}: {exc.message}", status=502,
                           gdp_stat="BAD_METADATA") from exc
        check_binding(name, metadata)
        return LogInfo(name, metadata, public_key, tail)

    def nrecs(self, name: LogName) -> int:
        body = self._live().call(lambda call: wire.open_msg(wire.NRECS, call, name), expect=(wire.COUNT,))
        return wire.decode_count(body)[1]

    def append(self, name: LogName, datum: Datum, done: AppendDone) -> None:
        try:
            conn = self._live()
        except LogError as exc:
            done(None, exc, None)
            return
        conn.append(name, datum, done)

    def _read(self, kind: int, name: LogName, value: int) -> Datum:
        body = self._live().call(lambda call: wire.read_msg(kind, call, name, value), expect=(wire.RECORD,))
        return wire.decode_record(body)[1]

    def read(self, name: LogName, recno: int) -> Datum:
        return self._read(wire.READ, name, recno)

    def read_by_ts(self, name: LogName, ts: int) -> Datum:
        return self._read(wire.READ_TS, name, ts)

    def subscribe(self, name: LogName, kind: str, start: int, numrecs: int, sink: RecordSink, *,
                  by_ts: bool = False) -> int:
        sid = next(self._sids)
        self._live().call(
            lambda call: wire.subscribe_msg(wire.Subscribe(call, name, sid, kind, by_ts, start, numrecs)),
            sub=(sid, sink), expect=(wire.OK,))
        return sid

    def unsubscribe(self, rid: int) -> bool:
        conn = self._conn
        return conn is not None and conn.unsubscribe(rid)

    def close(self) -> None:
        conn = self._conn
        if conn is not None:
            conn.close()


