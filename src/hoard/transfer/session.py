"""One `/hoard/transfer/1` stream: frames in, in order; frames out, in order; bounded data in flight.

A `Session` owns a stream and two tasks: a reader that hands each frame to its `SessionHandler`
(the manager) and waits for it before reading the next, and a writer that sends queued frames,
joined into writes of up to `WRITE_BYTES`. Control frames are queued without waiting
(`send`); data frames wait for room (`send_data`, at most `max_in_flight` bytes queued) and are
reported written (`SessionHandler.data_written`) once the stream took them. The reader always
reads (it never waits on the writer), so a stream never sits full (yamux resets a stream whose
reader stalls 5 s).

Ending: `finish()` writes what is queued, then closes our side; the session ends when the peer
has closed its side too (or `linger` seconds later). `abort()` resets the stream at once. The
manager learns of the end through `SessionHandler.session_ended`.

The stream and transport are protocols, so the manager runs over libp2p (the node's adapter)
or any pair of byte streams (tests). The read loop, the queue and the coalescing writer are
hoard.framing's framed-stream helper (`read_frames`, `Outbox`, `write_frames`), shared with
`/hoard/logs/1`.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

import trio

from hoard.errors import HoardError, PeerError
from hoard.framing import WRITE_BYTES, Outbox, read_frames, write_frames
from hoard.ids.cid import CID
from hoard.transfer.wire import MAX_FRAME, encode_message_frame

__all__ = ["WRITE_BYTES", "Session", "SessionHandler", "Stream", "Transport"]

log = logging.getLogger("hoard.transfer")

LINGER = 10.0


class Stream(Protocol):
    """A bidirectional byte stream to one peer."""

    async def read(self, n: int) -> bytes:
        """Up to `n` bytes; b"" (or EOFError) once the peer closed its side."""

    async def write(self, data: bytes) -> None: ...

    async def close(self) -> None:
        """Close our side (the peer reads EOF); reading goes on."""

    async def reset(self) -> None:
        """Abort both sides at once."""


class Transport(Protocol):
    """Opens `/hoard/transfer/1` streams. `open_stream` raises PeerError when it cannot."""

    async def open_stream(self, peer: str) -> Stream: ...


class SessionHandler(Protocol):
    async def frame_received(self, session: Session, kind: int, body: bytes) -> None: ...

    async def remote_closed(self, session: Session) -> None: ...

    def data_written(self, session: Session, blocks: list[tuple[CID, int]]) -> None: ...

    async def session_ended(self, session: Session, error: BaseException | None) -> None: ...


@dataclass
class _Data:
    """The note of a data frame: its bytes counted in flight and the blocks it carries."""

    nbytes: int
    blocks: list[tuple[CID, int]]


class Session:
    """One stream of the transfer protocol and the channel it serves (`channel`, set by the manager)."""

    def __init__(self, stream: Stream, peer: str, handler: SessionHandler, *, max_in_flight: int = 8 << 20,
                 linger: float = LINGER) -> None:
        self.stream = stream
        self.peer = peer
        self.handler = handler
        self.channel: Any = None  # the manager's Channel this stream serves
        self.receiver: Any = None  # the recipient's Receiver, when this stream brings us data
        self.have: list[CID] = []  # the peer's do-not-send list (HAVE frames)
        self.stopped = False  # ended because the node stopped (cancelled from outside)
        self.max_in_flight = max_in_flight
        self.linger = linger
        self._outbox = Outbox()  # filled and drained on the trio thread only
        self._in_flight = 0
        self._room = trio.Event()
        self._drained = trio.Event()
        self._drained.set()
        self._nursery: trio.Nursery | None = None
        self._finishing = False
        self._ended = trio.Event()
        self._writer_done = trio.Event()
        self.error: BaseException | None = None

    # -- running ----------------------------------------------------------------------
    async def run(self, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Serve the stream until both sides are done or it fails; then tell the handler."""
        try:
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                nursery.start_soon(self._writer)
                task_status.started()
                try:
                    await self._read_loop()
                except Exception as exc:  # the stream failed, or the peer broke the protocol
                    if not isinstance(exc, HoardError):
                        log.exception("transfer stream from %s failed", self.peer)
                    self._fail(exc)
                else:
                    await self.handler.remote_closed(self)
                    self.finish()
                    with trio.move_on_after(self.linger):
                        await self._writer_done.wait()
                    nursery.cancel_scope.cancel()
        except BaseException as exc:
            if _is_cancelled(exc):
                self.stopped = True  # cancelled from outside: the node is stopping
            raise
        finally:
            self._nursery = None
            self._finishing = True
            self._outbox.close()  # what is still queued is dropped with the stream
            with trio.CancelScope(shield=True):
                if self.error is not None or self.stopped:
                    await _reset(self.stream)
                try:
                    await self.handler.session_ended(self, self.error)
                finally:
                    self._ended.set()

    async def _read_loop(self) -> None:
        await read_frames(self.stream, MAX_FRAME, self._frame)  # type: ignore[arg-type]

    async def _frame(self, body: bytes) -> None:
        await self.handler.frame_received(self, body[0], body)

    async def _writer(self) -> None:
        try:
            await write_frames(self.stream, self._outbox, name=f"transfer stream to {self.peer}",
                               written=self._written)
            await self.stream.close()  # the outbox ends only when `finish` closed it
        except Exception as exc:  # noqa: BLE001 - any failure of the stream fails the session
            self._fail(exc)
        finally:
            self._writer_done.set()

    def _written(self, notes: list[object]) -> None:
        data = [note for note in notes if isinstance(note, _Data)]
        self._in_flight -= sum(d.nbytes for d in data)
        self._room.set()
        self._room = trio.Event()
        if self._in_flight == 0:
            self._drained.set()
        self.handler.data_written(self, [b for d in data for b in d.blocks])

    def _fail(self, exc: BaseException) -> None:
        if self.error is None:
            self.error = exc if isinstance(exc, PeerError) else PeerError(f"transfer stream failed: {exc!r}")
        if self._nursery is not None:
            self._nursery.cancel_scope.cancel()

    # -- sending ----------------------------------------------------------------------
    @property
    def in_flight(self) -> int:
        """Data bytes queued on this stream and not yet written."""
        return self._in_flight

    @property
    def open_for_sending(self) -> bool:
        return not self._finishing and not self._ended.is_set()

    def send(self, frame: bytes) -> None:
        """Queue a control frame (never waits). Dropped once the session is finishing."""
        if self.open_for_sending:
            self._outbox.put(frame)

    def send_message(self, message: Any) -> None:
        """Queue a transfer message (`Request`/`Response`)."""
        self.send(encode_message_frame(message.to_bytes()))

    async def send_data(self, parts: tuple[bytes, ...], nbytes: int, blocks: list[tuple[CID, int]]) -> None:
        """Queue data frames, waiting while `max_in_flight` bytes are queued and not yet written."""
        while self._in_flight > 0 and self._in_flight + nbytes > self.max_in_flight:
            if not self.open_for_sending:
                raise PeerError("the transfer stream is closing")
            await self._room.wait()
        if not self.open_for_sending:
            raise PeerError("the transfer stream is closing")
        self._in_flight += nbytes
        self._drained = trio.Event() if self._drained.is_set() else self._drained
        self._outbox.put(parts, note=_Data(nbytes, blocks))

    async def wait_written(self) -> None:
        """Wait until every queued data frame was written."""
        await self._drained.wait()

    def spawn(self, fn: Callable[..., Awaitable[Any]], *args: Any) -> None:
        """Run a task for as long as the session runs (cancelled when it ends); its failure aborts it."""
        if self._nursery is not None:
            self._nursery.start_soon(self._guarded, fn, *args)

    async def _guarded(self, fn: Callable[..., Awaitable[Any]], *args: Any) -> None:
        try:
            await fn(*args)
        except Exception as exc:
            log.exception("transfer task %r on the stream from %s failed", fn, self.peer)
            self._fail(exc)

    # -- ending -----------------------------------------------------------------------
    def finish(self) -> None:
        """Write what is queued, close our side; the session ends when the peer closed too."""
        if self._finishing or self._ended.is_set():
            return
        self._finishing = True
        self._outbox.close()
        if self._nursery is not None:
            self._nursery.start_soon(self._linger)

    async def _linger(self) -> None:
        await trio.sleep(self.linger)
        self._fail(PeerError("the peer did not close the transfer stream"))

    def abort(self, reason: str = "transfer stream aborted") -> None:
        """Reset the stream and end the session now."""
        self._fail(PeerError(reason))

    @property
    def ended(self) -> bool:
        return self._ended.is_set()

    async def wait_ended(self) -> None:
        await self._ended.wait()


def _is_cancelled(exc: BaseException) -> bool:
    if isinstance(exc, trio.Cancelled):
        return True
    if isinstance(exc, BaseExceptionGroup):
        return exc.subgroup(lambda e: isinstance(e, trio.Cancelled)) is not None
    return False


async def _reset(stream: Stream) -> None:
    try:
        await stream.reset()
    except Exception:  # noqa: BLE001, S110 - the stream may be gone already
        pass
