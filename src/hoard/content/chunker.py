"""Chunkers: turn a stream of byte pieces into blocks.

A chunker is fed pieces of any size with `feed(piece)`, which returns the blocks it could
complete (as memoryviews or bytes the caller may keep), and `flush()` returns the rest at
the end. Fixed-size is the Logos default (64 KiB); FastCDC v2020 with 128/256/512 KiB is the
castore default. Neither pads the last block: a dataset's size is the sum of its blocks.

Blocks are views of the pieces where they can be: a block within one `bytes` piece (or a
read-only view of one) costs no copy; bytes that may change under the chunker (a bytearray,
a writable view) and small pieces are copied once into a buffer of the chunker's own.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from hoard.errors import InvalidArgumentError

if TYPE_CHECKING:
    from pyfastcdc.cy import FastCDC

DEFAULT_BLOCK_SIZE = 65536
MAX_BLOCK_SIZE = 4 << 20  # bounded so a block always fits one network/gRPC message
CDC_MIN, CDC_AVG, CDC_MAX = 128 << 10, 256 << 10, 512 << 10


class Chunker(Protocol):
    name: str
    block_size: int  # the nominal block size recorded in the manifest

    def feed(self, piece: bytes | memoryview) -> list[bytes | memoryview]: ...

    def flush(self) -> list[bytes | memoryview]: ...


SMALL_PIECE = 64 << 10  # pieces below this are copied into the chunker's buffer, not held by reference


def _immutable(piece: bytes | bytearray | memoryview) -> bool:
    """Whether the chunker may keep `piece` by reference: its bytes can never change."""
    if type(piece) is bytes:
        return True
    return (isinstance(piece, memoryview) and piece.readonly and isinstance(piece.obj, bytes)
            and piece.ndim == 1 and piece.format in ("B", "b", "c"))


def check_block_size(size: int) -> int:
    """Validate a requested block size (0 means the default)."""
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise InvalidArgumentError(f"chunk size must be a non-negative integer, got {size!r}", chunk_size=size)
    if size == 0:
        return DEFAULT_BLOCK_SIZE
    if size > MAX_BLOCK_SIZE:
        raise InvalidArgumentError(f"chunk size {size} exceeds the maximum block size {MAX_BLOCK_SIZE}", chunk_size=size)
    return size


class FixedChunker:
    """Blocks of exactly `block_size` bytes; the last one may be shorter."""

    def __init__(self, block_size: int = DEFAULT_BLOCK_SIZE) -> None:
        self.block_size = check_block_size(block_size)
        self.name = "fixed"
        self._buf = bytearray()  # the start of the next block (copied)

    def feed(self, piece: bytes | memoryview) -> list[bytes | memoryview]:
        size = self.block_size
        view = memoryview(piece).cast("B") if not _immutable(piece) else memoryview(piece)
        blocks: list[bytes | memoryview] = []
        pos = 0
        if self._buf:
            pos = size - len(self._buf)
            self._buf += view[:pos]
            if len(self._buf) < size:
                return blocks
            blocks.append(bytes(self._buf))
            self._buf = bytearray()
        whole = pos + (len(view) - pos) // size * size
        if _immutable(piece):
            blocks.extend(view[i:i + size] for i in range(pos, whole, size))
        else:
            blocks.extend(bytes(view[i:i + size]) for i in range(pos, whole, size))
        self._buf += view[whole:]
        return blocks

    def flush(self) -> list[bytes | memoryview]:
        out: list[bytes | memoryview] = [bytes(self._buf)] if self._buf else []
        self._buf = bytearray()
        return out


class CdcChunker:
    """FastCDC v2020 (min/avg/max 128/256/512 KiB by default), as tvix castore chunks blobs.

    The cuts are those of one `cut_buf` over the whole stream, whatever the pieces. A block
    within one held piece is a view of it; the block spanning a short head and a large piece
    is cut from a join of one max-size window. Holds less than one max-size chunk of
    unconsumed bytes plus the pieces fed since the last cut (a cut runs once two max-size
    chunks are held).
    """

    def __init__(self, min_size: int = CDC_MIN, avg_size: int = CDC_AVG, max_size: int = CDC_MAX) -> None:
        from pyfastcdc.cy import FastCDC  # loaded on first use: not on every command's start-up

        self._cdc: FastCDC = FastCDC(avg_size=avg_size, min_size=min_size, max_size=max_size, normalized_chunking=1)
        self.block_size = avg_size
        self.max_size = max_size
        self.name = f"fastcdc-v2020({min_size},{avg_size},{max_size})"
        self._held: list[bytes | bytearray | memoryview] = []  # the unconsumed bytes, in order
        self._held_len = 0

    def _buffer(self, blocks: list[bytes | memoryview]) -> memoryview:
        """The held bytes as one buffer to cut; when they are a short head before one large
        piece, the block starting the head is cut from a window (appended to `blocks`) and
        the rest is a view of that piece."""
        held = self._held
        if len(held) == 1:
            return memoryview(held[0])
        last = memoryview(held[-1])
        head = self._held_len - len(last)
        if head < self.max_size <= len(last):
            # exactly max_size bytes from the block's start: its cut is final, as over the whole stream
            window = b"".join([*held[:-1], last[:self.max_size - head]])
            end = next(iter(self._cdc.cut_buf(window))).length
            if end >= head:  # else the head holds a cut already (small pieces): cut it all below
                blocks.append(memoryview(window)[:end])
                return last[end - head:]
        return memoryview(b"".join(held))

    def _cut(self, final: bool) -> list[bytes | memoryview]:
        blocks: list[bytes | memoryview] = []
        if not self._held:
            return blocks
        buf = self._buffer(blocks)
        size = len(buf)
        consumed = 0
        for chunk in self._cdc.cut_buf(buf):
            start, end = chunk.offset, chunk.offset + chunk.length
            # the last cut of a buffer is only final at end of stream: more data may move it
            if not final and end == size and size - start < self.max_size:
                break
            blocks.append(buf[start:end])
            consumed = end
        rest = buf[consumed:]
        self._held = [rest] if rest else []
        self._held_len = len(rest)
        return blocks

    def feed(self, piece: bytes | memoryview) -> list[bytes | memoryview]:
        if not piece:
            return []
        if _immutable(piece) and len(piece) >= SMALL_PIECE:
            self._held.append(piece)
        elif self._held and isinstance(self._held[-1], bytearray):  # never exported while last
            self._held[-1] += piece
        else:
            self._held.append(bytearray(piece))
        self._held_len += piece.nbytes if isinstance(piece, memoryview) else len(piece)
        if self._held_len < 2 * self.max_size:
            return []
        return self._cut(final=False)

    def flush(self) -> list[bytes | memoryview]:
        out = self._cut(final=True)
        self._held, self._held_len = [], 0
        return out
