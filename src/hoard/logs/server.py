"""The host end of `/hoard/logs/1`: `LogServer` serves a `LogHost`'s logs to other nodes.

`LogServer.handle` serves one stream per client (a `Conn`: conn.py) with a `_HostSession`:
requests become `LogHost` calls — the same hosting checks as for local clients (every
append's signature is verified: nothing from the network is trusted), group commit,
subscriptions with the same plans and cursors — and their results become messages. Each
remote subscription gets a `_HostSink`, the `RecordSink` that sends its records as DATA
messages, within the client's credit (wire.py's flow control).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any, TypeVar

import trio

from hoard.errors import LogError
from hoard.limits import (
    LOG_MAX_OUTSTANDING_CALLS,
    LOG_MAX_STREAMS,
    LOG_MAX_STREAMS_PER_PEER,
    LOG_MAX_UNSENT_REPLY_BYTES,
    LOG_REPLY_STALL_SECONDS,
)
from hoard.logs import wire
from hoard.logs.conn import Conn
from hoard.logs.host import LogHost
from hoard.logs.records import Datum
from hoard.logs.wire import ProtocolError
from hoard.ratelog import violation

_T = TypeVar("_T")

__all__ = ["LogServer"]

_log = logging.getLogger(__name__)

_HOST_MAX_PENDING = 2 * wire.MAX_INFLIGHT_BYTES + (16 << 20)
_MAX_CREDIT = 4 * wire.INITIAL_CREDIT
_CALLS = frozenset((wire.OPEN, wire.NRECS, wire.READ, wire.READ_TS, wire.SUBSCRIBE))


# -- sessions ------------------------------------------------------------------------------

class _HostSink:
    """A remote subscription's `RecordSink` on the host: its results become messages."""

    __slots__ = ("active", "buffered", "ended", "rid", "session", "sid")

    def __init__(self, session: _HostSession, sid: int) -> None:
        self.session = session
        self.sid = sid
        self.rid = 0
        self.active = False  # the OK answering SUBSCRIBE is queued; before that, nothing is sent
        self.ended = False
        self.buffered: list[bytes] = []

    def hold(self) -> bool:
        return self.session.hold(self)

    def data(self, datum: Datum, trusted: bool) -> None:
        try:
            message = wire.data_msg(self.sid, datum)
        except LogError as exc:
            message = wire.failure_msg(self.sid, LogError(exc.message, status=int(exc.code), recno=datum.recno))
        self.session.send(self, message)

    def failure(self, recno: int, error: LogError) -> None:
        fields = {k: v for k, v in error.fields.items() if k not in ("status", "recno")}
        self.session.send(self, wire.failure_msg(self.sid, LogError(error.message, status=int(error.code), recno=recno,
                                                                    **fields)))

    def end(self, event_type: int, stat: int) -> None:
        self.session.finish(self, wire.end_msg(self.sid, event_type, stat))


class _HostSession:
    """One client's stream, on the host: requests → `LogHost` calls, results → messages."""

    def __init__(self, host: LogHost, peer: str) -> None:
        self.host = host
        self.peer = peer
        self.conn: Conn | None = None
        self._lock = threading.Lock()
        self._credit = wire.INITIAL_CREDIT
        self._subs: dict[int, _HostSink] = {}
        self._held: set[_HostSink] = set()
        self._inflight = 0
        self._inflight_bytes = 0
        self._calls = 0  # calls received and not answered yet
        self._closed = False

    def _put(self, message: bytes) -> None:
        assert self.conn is not None
        self.conn.outbox.put(message)

    def _answer(self, call: int, make: Callable[[], bytes]) -> None:
        try:
            self._await_room()
            try:
                message = make()
            except LogError as exc:
                message = wire.error_msg(call, exc)
            self._put(message)
        finally:
            self._answered()

    def _await_room(self) -> None:
        """Hold the next reply while the peer has not read LOG_MAX_UNSENT_REPLY_BYTES of earlier
        ones; a peer that reads nothing for LOG_REPLY_STALL_SECONDS is breaking flow control."""
        assert self.conn is not None
        if not self.conn.outbox.wait_room(LOG_MAX_UNSENT_REPLY_BYTES, LOG_REPLY_STALL_SECONDS):
            raise ProtocolError(f"the peer left {self.conn.outbox.queued_bytes} bytes of replies unread "
                                f"for {LOG_REPLY_STALL_SECONDS:g} s")

    def _answered(self) -> None:
        with self._lock:
            self._calls -= 1

    # -- requests -----------------------------------------------------------------------
    def inline(self, body: bytes) -> bool:
        """On the trio thread, as each frame arrives: appends go straight to the host's queue
        (it never blocks); calls are counted, so a peer cannot queue more than
        LOG_MAX_OUTSTANDING_CALLS of them without reading the answers."""
        kind = body[0]
        if kind in _CALLS:
            with self._lock:
                self._calls += 1
                over = self._calls > LOG_MAX_OUTSTANDING_CALLS
            if over:
                raise ProtocolError(f"more than {LOG_MAX_OUTSTANDING_CALLS} calls unanswered")
            return False
        if kind != wire.APPEND:
            return False
        self._append(body)
        return True

    def handle(self, body: bytes) -> None:
        """On the conn thread: everything else, in order."""
        kind = body[0]
        if kind == wire.APPEND:
            self._append(body)
        elif kind == wire.OPEN:
            call, name = self._decode_call(wire.decode_call_name, body)

            def info() -> bytes:
                found = self.host.open(name.check_valid())
                return wire.info_msg(call, found.tail, found.metadata.serialize())

            self._answer(call, info)
        elif kind == wire.NRECS:
            call, name = self._decode_call(wire.decode_call_name, body)
            self._answer(call, lambda: wire.count_msg(call, self.host.nrecs(name.check_valid())))
        elif kind in (wire.READ, wire.READ_TS):
            call, name, value = self._decode_call(wire.decode_read, body)
            read = self.host.read if kind == wire.READ else self.host.read_by_ts
            self._answer(call, lambda: wire.record_msg(call, read(name.check_valid(), value)))
        elif kind == wire.SUBSCRIBE:
            try:
                self._subscribe(wire.decode_subscribe(body))
            finally:
                self._answered()
        elif kind == wire.UNSUBSCRIBE:
            sid = wire.decode_sid(body)
            with self._lock:
                sink = self._subs.pop(sid, None)
                if sink is not None:
                    self._held.discard(sink)
            if sink is not None:
                self.host.unsubscribe(sink.rid)
        elif kind == wire.CREDIT:
            self._add_credit(wire.decode_sid(body))
        else:
            raise ProtocolError(f"unknown request type 0x{kind:02x}")

    def _decode_call(self, decode: Callable[[bytes], _T], body: bytes) -> _T:
        try:
            return decode(body)
        except ProtocolError:
            self._answered()
            raise

    def _append(self, body: bytes) -> None:
        call, name, datum = wire.decode_append(body)
        size = len(body) + 4
        with self._lock:
            self._inflight += 1
            self._inflight_bytes += size
            over = (self._inflight > 2 * wire.MAX_INFLIGHT_APPENDS
                    or self._inflight_bytes > 2 * wire.MAX_INFLIGHT_BYTES)
        if over:
            raise ProtocolError("too many appends in flight")

        def done(committed: Datum | None, error: LogError | None, tail: Any) -> None:
            with self._lock:
                self._inflight -= 1
                self._inflight_bytes -= size
            self._put(wire.ok_msg(call) if error is None else wire.error_msg(call, error, tail))

        self.host.append(name, datum, done)  # verified by the host: nothing from the network is trusted

    def _subscribe(self, request: wire.Subscribe) -> None:
        sink = _HostSink(self, request.sid)
        with self._lock:
            if request.sid in self._subs:
                raise ProtocolError(f"subscription id {request.sid} is in use")
        self._await_room()
        try:
            sink.rid = self.host.subscribe(request.name.check_valid(), request.kind, request.start, request.numrecs,
                                           sink, by_ts=request.by_ts)
        except LogError as exc:
            self._put(wire.error_msg(request.call, exc))
            return
        with self._lock:
            if not self._closed and not sink.ended:
                self._subs[request.sid] = sink
            self._put(wire.ok_msg(request.call))
            for message in sink.buffered:
                self._put(message)
            sink.buffered = []
            sink.active = True
            held = sink in self._held
            self._held.discard(sink)
            closed = self._closed
        if closed:
            self.host.unsubscribe(sink.rid)
        elif held:
            self.host.resume(sink.rid)

    def _add_credit(self, nbytes: int) -> None:
        with self._lock:
            self._credit = min(self._credit + nbytes, _MAX_CREDIT)
            if self._credit <= 0:
                return
            resume, self._held = self._held, set()
        for sink in resume:
            self.host.resume(sink.rid)

    # -- sinks (the host's delivery thread) --------------------------------------------
    def hold(self, sink: _HostSink) -> bool:
        with self._lock:
            if sink.active and self._credit > 0:
                return False
            self._held.add(sink)
            return True

    def send(self, sink: _HostSink, message: bytes) -> None:
        with self._lock:
            self._credit -= len(message)
            if not sink.active:
                sink.buffered.append(message)
                return
        self._put(message)

    def finish(self, sink: _HostSink, message: bytes) -> None:
        with self._lock:
            sink.ended = True
            if self._subs.get(sink.sid) is sink:
                del self._subs[sink.sid]
            self._held.discard(sink)
            if not sink.active:
                sink.buffered.append(message)
                return
        self._put(message)

    # -- end ----------------------------------------------------------------------------
    def closed(self) -> None:
        with self._lock:
            self._closed = True
            sinks = list(self._subs.values())
            self._subs.clear()
            self._held.clear()
        for sink in sinks:
            self.host.unsubscribe(sink.rid)


class LogServer:
    """Serves a `LogHost`'s logs on `/hoard/logs/1`: register `handle` as the stream handler."""

    def __init__(self, host: LogHost) -> None:
        self.host = host
        self.sessions = 0  # streams being served now
        self._per_peer: dict[str, int] = {}

    async def handle(self, stream: Any) -> None:
        """Serve one client's stream until it ends (runs on the node's trio loop).

        A peer may hold LOG_MAX_STREAMS_PER_PEER streams at once, all peers LOG_MAX_STREAMS;
        a stream beyond either is reset at once.
        """
        try:
            peer = str(stream.muxed_conn.peer_id)
        except AttributeError:
            peer = "?"
        if self.sessions >= LOG_MAX_STREAMS or self._per_peer.get(peer, 0) >= LOG_MAX_STREAMS_PER_PEER:
            violation(_log, peer, "too many /hoard/logs/1 streams (%d from this peer, %d in all); stream reset",
                      self._per_peer.get(peer, 0), self.sessions)
            with trio.move_on_after(2):
                try:
                    await stream.reset()
                except Exception:  # noqa: BLE001, S110 - the stream is gone already
                    pass
            return
        self._per_peer[peer] = self._per_peer.get(peer, 0) + 1
        session = _HostSession(self.host, peer)
        conn = Conn(stream, trio.lowlevel.current_trio_token(), threading.get_ident(), session.handle,
                    session.closed, name=f"hoard-logs-serve {peer[-8:]}", max_pending=_HOST_MAX_PENDING,
                    inline=session.inline)
        session.conn = conn
        self.sessions += 1
        try:
            await conn.run()
        finally:
            self.sessions -= 1
            left = self._per_peer.pop(peer, 1) - 1
            if left > 0:
                self._per_peer[peer] = left
