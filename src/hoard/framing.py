"""Length-prefixed frames over an async byte stream: what hoard's peer protocols share.

A frame is a 4-byte big-endian length and that many bytes of body. This module is the one
framed-stream helper of `/hoard/blocks/1` (net/wire.py), `/hoard/logs/1` (logs/conn.py) and
`/hoard/transfer/1` (transfer/session.py); it knows nothing of any protocol.

* `FrameReader` reads frames with a per-protocol size limit, keeping stream reads as a queue
  of chunks so a body is copied at most once; `VarintFrameReader` reads frames whose length
  is an unsigned varint (bitswap's messages, net/bitswap/message.py).
* `read_frames(stream, max_frame, handle)` is the read loop: it reads as fast as frames come
  (a stream is always drained: py-libp2p's yamux resets a stream whose reader stalls for 5 s)
  and hands each body to `handle`, in order. It returns at a clean end of stream; an
  oversized frame is a `ProtocolError`, a stream that ends inside a frame or fails (reset) a
  `PeerError`.
* `Outbox` is the bounded queue of frames to write, filled from the trio loop or from plain
  threads, and `write_frames(stream, outbox)` the coalescing writer: it joins whatever is
  queued into writes of up to `WRITE_BYTES` (so yamux sends full frames) until the outbox is
  closed and empty. Backpressure: `queued_bytes` counts what was put and not yet written, and
  a thread waits for room with `wait_room`; frames put with `append=True` are held back while
  `max_inflight` of them (or `max_inflight_bytes`) are unanswered by the peer; and each write
  reports the `note`s of the frames it carried, so a sender can account its own bytes.
"""

from __future__ import annotations

import struct
import threading
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Protocol

import trio

from hoard.errors import HoardError, PeerError

__all__ = ["LEN", "READ_SIZE", "WRITE_BYTES", "FrameReader", "Outbox", "ProtocolError", "Readable",
           "VarintFrameReader", "Writable", "read_frames", "write_frames"]

LEN = struct.Struct(">I")
READ_SIZE = 1 << 20
WRITE_BYTES = 1 << 20


class ProtocolError(PeerError):
    """A peer sent something its protocol does not allow."""


class Readable(Protocol):
    async def read(self, n: int | None = None) -> bytes: ...


class Writable(Protocol):
    async def write(self, data: bytes) -> None: ...


class FrameReader:
    """Reads length-prefixed frames from a stream, at most `max_frame` bytes each.

    A subclass may name its frames (`what`, in error messages) and the error a frame that
    breaks the rules raises (`violation`, a PeerError)."""

    what = "frame"
    violation: type[PeerError] = ProtocolError

    def __init__(self, stream: Readable, max_frame: int) -> None:
        self._stream = stream
        self._max = max_frame
        self._chunks: deque[bytes] = deque()
        self._offset = 0      # bytes of the first chunk already consumed
        self._available = 0   # unconsumed bytes in all chunks

    async def _fill(self, need: int) -> bool:
        """Make `need` unconsumed bytes available. False on a clean EOF before any of them."""
        while self._available < need:
            try:
                chunk = await self._stream.read(READ_SIZE)
            except EOFError:  # py-libp2p's StreamEOF and MuxedStreamEOF are EOFErrors
                chunk = b""
            if not chunk:
                if not self._available:
                    return False
                raise PeerError(f"the stream ended inside a {self.what}")  # the peer went away: not a fault
            self._chunks.append(chunk)
            self._available += len(chunk)
        return True

    def _take(self, n: int) -> bytes:
        """Consume `n` available bytes: one copy (none if they are exactly one whole chunk)."""
        first = self._chunks[0]
        start = self._offset
        if len(first) - start >= n:
            out = first if (start == 0 and n == len(first)) else first[start:start + n]
            self._offset += n
            if self._offset == len(first):
                self._chunks.popleft()
                self._offset = 0
        else:
            parts: list[memoryview] = []
            remaining = n
            while remaining:
                chunk = self._chunks[0]
                piece = memoryview(chunk)[self._offset:self._offset + remaining]
                parts.append(piece)
                remaining -= len(piece)
                self._offset += len(piece)
                if self._offset == len(chunk):
                    self._chunks.popleft()
                    self._offset = 0
            out = b"".join(parts)
        self._available -= n
        return out

    async def _next_length(self) -> int | None:
        if not await self._fill(4):
            return None
        length: int = LEN.unpack(self._take(4))[0]
        if length == 0 or length > self._max:
            raise self.violation(f"{self.what} of {length} bytes (limit {self._max})")
        if not await self._fill(length):
            raise PeerError(f"the stream ended inside a {self.what}")
        return length

    async def next_body(self) -> bytes | None:
        """The next frame body, or None at a clean end of stream."""
        length = await self._next_length()
        if length is None:
            return None
        return self._take(length) if length else b""


class VarintFrameReader(FrameReader):
    """Frames whose length is an unsigned varint (libp2p's protobuf framing, as bitswap's);
    an empty frame is allowed."""

    def _byte_at(self, index: int) -> int:
        index += self._offset
        for chunk in self._chunks:
            if index < len(chunk):
                return chunk[index]
            index -= len(chunk)
        raise IndexError(index)

    async def _next_length(self) -> int | None:
        if not await self._fill(1):
            return None
        length = shift = 0
        for count in range(1, 11):  # a 64-bit length takes at most 10 bytes
            await self._fill(count)  # True, or PeerError: the stream ended inside the varint
            byte = self._byte_at(count - 1)
            length |= (byte & 0x7F) << shift
            if not byte & 0x80:
                self._take(count)
                break
            shift += 7
        else:
            raise self.violation(f"{self.what} length varint too long")
        if length > self._max:
            raise self.violation(f"{self.what} of {length} bytes (limit {self._max})")
        if not await self._fill(length):
            raise PeerError(f"the stream ended inside a {self.what}")
        return length


async def read_frames(stream: Readable, max_frame: int, handle: Callable[[bytes], Awaitable[None]]) -> None:
    """Read frames of at most `max_frame` bytes and `await handle(body)` for each, in order,
    until a clean end of stream. A frame over the limit raises ProtocolError; a stream that
    ends inside a frame, or fails (a reset, a broken connection), raises PeerError."""
    reader = FrameReader(stream, max_frame)
    while True:
        try:
            body = await reader.next_body()
        except HoardError:
            raise
        except Exception as exc:  # py-libp2p's StreamReset and friends: the peer went away
            raise PeerError(f"the stream failed: {exc or type(exc).__name__}") from exc
        if body is None:
            if _reset_by_peer(stream):
                raise PeerError("the stream failed: the peer reset it")
            return
        await handle(body)


def _reset_by_peer(stream: object) -> bool:
    """Whether the end of `stream` was the peer's reset. py-libp2p 0.8.1's yamux reports a
    reset that arrived between frames as a plain end of stream (StreamEOF) once it has
    dropped the stream; its muxed stream still records the RST."""
    return getattr(getattr(stream, "muxed_stream", None), "reset_received", False) is True


Frame = bytes | tuple[bytes, ...]  # one frame, whole or in parts (written joined with the rest)


class Outbox:
    """Frames to write to one stream, in order: `put` from the trio thread or any other thread,
    `take` (through `write_frames`) on the trio loop.

    Putting never blocks: it wakes a waiting writer directly on the trio thread, or through
    `token` from another one (give `token` and `trio_thread` when other threads put frames).
    Frames put with `append=True` count as in flight from when they are taken until
    `answered(size)`; with limits set, the writer holds further appends (and what follows
    them) while `max_inflight` frames or `max_inflight_bytes` bytes are in flight.
    """

    def __init__(self, token: trio.lowlevel.TrioToken | None = None, trio_thread: int | None = None, *,
                 max_inflight: int = 0, max_inflight_bytes: int = 0) -> None:
        self._token = token
        self._trio_thread = trio_thread
        self._lock = threading.Lock()
        self._frames: deque[tuple[Frame, int, bool, object]] = deque()
        self._event: trio.Event | None = None  # set while the writer waits
        self._blocked = False  # the writer waits for in-flight room
        self._closed = False
        self._max_inflight = max_inflight
        self._max_bytes = max_inflight_bytes
        self._room = threading.Condition(self._lock)
        self.inflight = 0
        self.inflight_bytes = 0
        self.queued_bytes = 0  # put and not yet written to the stream

    def put(self, frame: Frame, *, append: bool = False, note: object = None) -> bool:
        """Queue a frame; False (and nothing queued) once the outbox is closed. `note`, if not
        None, is handed to `write_frames`' `written` callback once the frame was written."""
        size = len(frame) if isinstance(frame, bytes) else sum(len(p) for p in frame)
        with self._lock:
            if self._closed:
                return False
            self._frames.append((frame, size, append, note))
            self.queued_bytes += size
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
        if self._token is None or threading.get_ident() == self._trio_thread:
            event.set()
            return
        try:
            self._token.run_sync_soon(event.set)
        except trio.RunFinishedError:
            pass

    def _full(self) -> bool:
        return bool(self._max_inflight) and (self.inflight >= self._max_inflight or self.inflight_bytes >= self._max_bytes)

    async def take(self, max_bytes: int = WRITE_BYTES) -> tuple[list[bytes], list[object]]:
        """Wait for frames; return the next ones as (parts, notes), up to about `max_bytes`;
        ([], []) once closed and empty."""
        while True:
            with self._lock:
                parts: list[bytes] = []
                notes: list[object] = []
                size = 0
                blocked = False
                while self._frames and size < max_bytes:
                    frame, frame_size, is_append, note = self._frames[0]
                    if is_append:
                        if self._full():
                            blocked = True
                            break
                        self.inflight += 1
                        self.inflight_bytes += frame_size
                    self._frames.popleft()
                    if isinstance(frame, bytes):
                        parts.append(frame)
                    else:
                        parts.extend(frame)
                    if note is not None:
                        notes.append(note)
                    size += frame_size
                if parts or notes:
                    return parts, notes
                if self._closed:
                    return [], []
                self._blocked = blocked
                event = self._event = trio.Event()
            await event.wait()

    def close(self) -> None:
        """Refuse further frames and wake the writer (it writes what is left, then ends)."""
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


async def write_frames(stream: Writable, outbox: Outbox, *, name: str, max_bytes: int = WRITE_BYTES,
                       written: Callable[[list[object]], None] | None = None) -> None:
    """Write what `outbox` holds, joined into writes of up to about `max_bytes`, until it is
    closed and empty; after each write, `written(notes)` gets the notes of the frames it
    carried. A failed write raises PeerError naming `name`."""
    while True:
        parts, notes = await outbox.take(max_bytes)
        if not parts and not notes:
            return
        data = parts[0] if len(parts) == 1 else b"".join(parts)
        del parts
        if data:
            try:
                await stream.write(data)
            except Exception as exc:
                raise PeerError(f"{name}: write failed: {exc or type(exc).__name__}") from exc
        outbox.written(len(data))
        if notes and written is not None:
            written(notes)
