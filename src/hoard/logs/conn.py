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
from collections import deque
from collections.abc import Callable
from typing import cast

import trio

from hoard.errors import PeerError
from hoard.framing import Readable
from hoard.limits import LOG_MAX_PENDING_FRAMES
from hoard.logs.wire import FrameReader, ProtocolError
from hoard.ratelog import violation

__all__ = ["Conn", "Outbox"]

_log = logging.getLogger(__name__)

WRITE_BYTES = 1 << 20


def _protocol_error(exc: BaseException) -> ProtocolError | None:
    """The ProtocolError `exc` is or holds (in an exception group), if any."""
    if isinstance(exc, ProtocolError):
        return exc
    for inner in getattr(exc, "exceptions", ()):
        found = _protocol_error(inner)
        if found is not None:
            return found
    return None


class Outbox:
    """Frames to write to one stream, in order. `put` from any thread; `take` on the trio loop.

    Frames put with `append=True` count as in flight from when they are taken until
    `answered(size)`; with limits set, the writer holds further appends (and what follows
    them) while `max_inflight` frames or `max_inflight_bytes` bytes are in flight.
    """

    def __init__(self, token: trio.lowlevel.TrioToken, trio_thread: int, *, max_inflight: int = 0,
                 max_inflight_bytes: int = 0) -> None:
        self._token = token
        self._trio_thread = trio_thread
        self._lock = threading.Lock()
        self._frames: deque[tuple[bytes, bool]] = deque()
        self._event: trio.Event | None = None  # set while the writer waits
        self._blocked = False  # the writer waits for in-flight room
        self._closed = False
        self._max_inflight = max_inflight
        self._max_bytes = max_inflight_bytes
        self._room = threading.Condition(self._lock)
        self.inflight = 0
        self.inflight_bytes = 0
        self.queued_bytes = 0  # put and not yet written to the stream

    def put(self, frame: bytes, *, append: bool = False) -> bool:
        """Queue a frame; False (and nothing queued) once the outbox is closed."""
        with self._lock:
            if self._closed:
                return False
            self._frames.append((frame, append))
            self.queued_bytes += len(frame)
            event, self._event = (self._event, None) if not self._blocked else (None, self._event)
        if event is not None:
            self._wake(event)
        return True

    def answered(self, size: int) -> None:
        """An append taken earlier was answered: its room is free again."""
        with self._lock:
            self.inflight -= 1
            self.inflight_bytes -= size
            event = None
            if self._blocked:
                self._blocked = False
                event, self._event = self._event, None
        if event is not None:
            self._wake(event)

    def written(self, nbytes: int) -> None:
        """The writer wrote `nbytes` of taken frames to the stream."""
        with self._lock:
            self.queued_bytes -= nbytes
            self._room.notify_all()

    def wait_room(self, limit: int, timeout: float) -> bool:
        """Wait (on a plain thread, never the trio one) until fewer than `limit` bytes are
        unwritten or the outbox closed; False if `timeout` seconds passed first."""
        with self._room:
            return self._room.wait_for(lambda: self._closed or self.queued_bytes < limit, timeout)

    def _wake(self, event: trio.Event) -> None:
        if threading.get_ident() == self._trio_thread:
            event.set()
            return
        try:
            self._token.run_sync_soon(event.set)
        except trio.RunFinishedError:
            pass

    def _full(self) -> bool:
        return bool(self._max_inflight) and (self.inflight >= self._max_inflight or self.inflight_bytes >= self._max_bytes)

    async def take(self, max_bytes: int = WRITE_BYTES) -> list[bytes]:
        """Wait for frames; return the next ones (up to about `max_bytes`); [] once closed."""
        while True:
            with self._lock:
                out: list[bytes] = []
                size = 0
                blocked = False
                while self._frames and size < max_bytes:
                    frame, is_append = self._frames[0]
                    if is_append:
                        if self._full():
                            blocked = True
                            break
                        self.inflight += 1
                        self.inflight_bytes += len(frame)
                    self._frames.popleft()
                    out.append(frame)
                    size += len(frame)
                if out:
                    return out
                if self._closed:
                    return []
                self._blocked = blocked
                event = self._event = trio.Event()
            await event.wait()

    def close(self) -> None:
        """Refuse further frames and wake the writer (it returns what is left, then [])."""
        with self._lock:
            self._closed = True
            event, self._event = self._event, None
            self._blocked = False
            self._room.notify_all()
        if event is not None:
            self._wake(event)

    @property
    def closed(self) -> bool:
        return self._closed


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
        reader = FrameReader(cast(Readable, self.stream))
        while True:
            body = await reader.next_body()
            if body is None:
                return
            if self._inline is not None and self._inline(body):
                continue
            with self._lock:
                self._pending += len(body)
                self._pending_frames += 1
                over = self._pending > self._max_pending or self._pending_frames > self._max_pending_frames
            if over:
                raise ProtocolError(f"more than {self._max_pending} bytes or {self._max_pending_frames} messages "
                                    "sent without flow control")
            self._inbox.put(body)

    async def _write_loop(self) -> None:
        while True:
            frames = await self.outbox.take()
            if not frames:
                return
            data = frames[0] if len(frames) == 1 else b"".join(frames)
            del frames
            try:
                await self.stream.write(data)  # type: ignore[attr-defined]
            except Exception as exc:
                raise PeerError(f"{self.name}: write failed: {exc or type(exc).__name__}") from exc
            self.outbox.written(len(data))

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
