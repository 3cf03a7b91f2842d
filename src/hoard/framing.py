"""Length-prefixed frames over an async byte stream: what hoard's peer protocols share.

A frame is a 4-byte big-endian length and that many bytes of body. `FrameReader` reads frames
with a per-protocol size limit, keeping stream reads as a queue of chunks so a body is copied
at most once. It knows nothing of any protocol: `/hoard/blocks/1` (net/wire.py) and
`/hoard/logs/1` (logs/wire.py) build on it.
"""

from __future__ import annotations

import struct
from collections import deque
from typing import Protocol

from hoard.errors import PeerError

__all__ = ["LEN", "READ_SIZE", "FrameReader", "ProtocolError"]

LEN = struct.Struct(">I")
READ_SIZE = 1 << 20


class ProtocolError(PeerError):
    """A peer sent something its protocol does not allow."""


class Readable(Protocol):
    async def read(self, n: int | None = None) -> bytes: ...


class FrameReader:
    """Reads length-prefixed frames from a stream, at most `max_frame` bytes each."""

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
                raise PeerError("the stream ended inside a frame")  # the peer went away: not a fault
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
            raise ProtocolError(f"frame of {length} bytes (limit {self._max})")
        if not await self._fill(length):
            raise PeerError("the stream ended inside a frame")
        return length

    async def next_body(self) -> bytes | None:
        """The next frame body, or None at a clean end of stream."""
        length = await self._next_length()
        return None if length is None else self._take(length)
