"""One `/hoard/logs/1` stream, between a trio loop and plain threads.

A libp2p stream lives on the node's trio thread; the log layer (`LogHost`, `Log`) runs on
plain threads. A `Conn` joins the two without ever blocking the trio loop:

* a trio **reader** task reads frames as fast as they come (so the stream is always drained:
  py-libp2p's yamux resets a stream whose reader stalls for 5 s) and queues them for
* one **conn thread**, which handles them in order (verifying signatures, reading the store,
  calling the log layer): whatever may take time happens there;
* an `Outbox` takes frames from any thread and a trio **writer** task writes them, joined
  into writes of up to `WRITE_BYTES`. Putting a frame never blocks: it wakes the writer
  through the loop's `TrioToken` only when the writer is waiting.

The read loop, the outbox and the writer are hoard.framing's framed-stream helper, shared with
`/hoard/transfer/1`; what is the log protocol's own is the conn thread and the pending bounds.

Memory stays bounded by the protocol's flow control (wire.py): a peer that queues more than
`max_pending` bytes or `max_pending_frames` frames of unhandled messages is breaking it, and
the stream is reset. The outbox counts the bytes put and not yet written (`queued_bytes`); a
thread about to produce a large reply waits for room with `wait_room`, so a peer that never
reads cannot make a host hold more than about one window of replies.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from typing import cast

import trio

from hoard.framing import WRITE_BYTES, Outbox, Readable, Writable, read_frames, write_frames
from hoard.limits import LOG_MAX_PENDING_FRAMES
from hoard.logs.wire import MAX_FRAME, ProtocolError
from hoard.ratelog import violation

__all__ = ["WRITE_BYTES", "Conn", "Outbox"]

_log = logging.getLogger(__name__)


def _protocol_error(exc: BaseException) -> ProtocolError | None:
    """The ProtocolError `exc` is or holds (in an exception group), if any."""
    if isinstance(exc, ProtocolError):
        return exc
    for inner in getattr(exc, "exceptions", ()):
        found = _protocol_error(inner)
        if found is not None:
            return found
    return None


class Conn:
    """A stream's reader and writer tasks (trio) and its conn thread.

    `handler(body)` runs on the conn thread for each received frame body, in order; a
    `ProtocolError` from it resets the stream. `on_closed()` runs on the conn thread once,
    after every received frame was handled, when the stream has ended for any reason.
    `inline(body) -> bool`, if given, sees each frame first, on the trio thread: it may take
    a frame it can handle at once without blocking (True), saving the hop to the conn thread.
    """

    def __init__(self, stream: object, token: trio.lowlevel.TrioToken, trio_thread: int,
                 handler: Callable[[bytes], None], on_closed: Callable[[], None], *, name: str,
                 max_pending: int, max_pending_frames: int = LOG_MAX_PENDING_FRAMES, max_inflight: int = 0,
                 max_inflight_bytes: int = 0, inline: Callable[[bytes], bool] | None = None) -> None:
        self.stream = stream
        self.name = name
        self.outbox = Outbox(token, trio_thread, max_inflight=max_inflight, max_inflight_bytes=max_inflight_bytes)
        self._token = token
        self._handler = handler
        self._inline = inline
        self._on_closed = on_closed
        self._inbox: queue.SimpleQueue[bytes | None] = queue.SimpleQueue()
        self._pending = 0
        self._pending_frames = 0
        self._max_pending = max_pending
        self._max_pending_frames = max_pending_frames
        self._lock = threading.Lock()
        self._scope: trio.CancelScope | None = None
        self._thread = threading.Thread(target=self._thread_main, name=name, daemon=True)
        self.closed = False  # the stream has ended (set on the trio thread)

    async def run(self) -> None:
        """Serve the stream until it ends, breaks, or the task is cancelled; then reset it."""
        self._thread.start()
        try:
            with trio.CancelScope() as scope:
                self._scope = scope
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(self._write_loop)
                    await self._read_loop()
                    nursery.cancel_scope.cancel()
        except Exception as exc:  # noqa: BLE001 - the peer went away, the stream broke, or broke the protocol
            broken = _protocol_error(exc)
            if broken is not None:
                violation(_log, self.name, "the peer broke /hoard/logs/1: %s; stream reset", broken.message)
            else:
                _log.debug("%s ended: %r", self.name, exc)
        finally:
            self.closed = True
            self.outbox.close()
            self._inbox.put(None)
            with trio.CancelScope(shield=True), trio.move_on_after(2):
                try:
                    await self.stream.reset()  # type: ignore[attr-defined]
                except Exception:  # noqa: BLE001, S110 - the stream is gone already
                    pass

    async def _read_loop(self) -> None:
        await read_frames(cast(Readable, self.stream), MAX_FRAME, self._received)

    async def _received(self, body: bytes) -> None:
        if self._inline is not None and self._inline(body):
            return
        with self._lock:
            self._pending += len(body)
            self._pending_frames += 1
            over = self._pending > self._max_pending or self._pending_frames > self._max_pending_frames
        if over:
            raise ProtocolError(f"more than {self._max_pending} bytes or {self._max_pending_frames} messages "
                                "sent without flow control")
        self._inbox.put(body)

    async def _write_loop(self) -> None:
        await write_frames(cast(Writable, self.stream), self.outbox, name=self.name)

    def _thread_main(self) -> None:
        broken = False
        while True:
            body = self._inbox.get()
            if body is None:
                break
            try:
                if not broken:
                    self._handler(body)
            except ProtocolError as exc:
                violation(_log, self.name, "the peer broke /hoard/logs/1: %s; stream reset", exc.message)
                broken = True
                self.abort()
            except Exception:  # noqa: BLE001 - a bug in one handler must not end the stream
                _log.exception("%s: handling a message failed", self.name)
            finally:
                with self._lock:
                    self._pending -= len(body)
                    self._pending_frames -= 1
        try:
            self._on_closed()
        except Exception:  # noqa: BLE001 - logged; the thread ends anyway
            _log.exception("%s: closing failed", self.name)

    def abort(self) -> None:
        """End the stream (from any thread): `run` resets it and `on_closed` follows."""
        scope = self._scope
        if scope is None or self.closed:
            return
        try:
            self._token.run_sync_soon(scope.cancel)
        except trio.RunFinishedError:
            pass
