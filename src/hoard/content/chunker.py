"""Chunkers: turn a stream of byte pieces into blocks.

A chunker is fed pieces of any size with `feed(piece)`, which returns the blocks it could
complete (as memoryviews or bytes the caller may keep), and `flush()` returns the rest at
the end. Fixed-size is the Logos default (64 KiB); FastCDC v2020 with 128/256/512 KiB is the
castore default. Neither pads the last block: a dataset's size is the sum of its blocks.
"""

from __future__ import annotations

from typing import Protocol

from pyfastcdc.cy import FastCDC

from hoard.errors import InvalidArgumentError

DEFAULT_BLOCK_SIZE = 65536
MAX_BLOCK_SIZE = 4 << 20  # bounded so a block always fits one network/gRPC message
CDC_MIN, CDC_AVG, CDC_MAX = 128 << 10, 256 << 10, 512 << 10


class Chunker(Protocol):
    name: str
    block_size: int  # the nominal block size recorded in the manifest

    def feed(self, piece: bytes | memoryview) -> list[bytes]: ...

    def flush(self) -> list[bytes]: ...


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
        self._buf = bytearray()

    def feed(self, piece: bytes | memoryview) -> list[bytes]:
        size = self.block_size
        if not self._buf and len(piece) >= size:
            # fast path: slice whole blocks straight out of the piece
            view = memoryview(piece)
            whole = len(view) - len(view) % size
            blocks = [bytes(view[i:i + size]) for i in range(0, whole, size)]
            self._buf += view[whole:]
            return blocks
        self._buf += piece
        if len(self._buf) < size:
            return []
        view = memoryview(self._buf)
        whole = len(view) - len(view) % size
        blocks = [bytes(view[i:i + size]) for i in range(0, whole, size)]
        rest = bytes(view[whole:])
        view.release()
        self._buf = bytearray(rest)
        return blocks

    def flush(self) -> list[bytes]:
        out = [bytes(self._buf)] if self._buf else []
        self._buf = bytearray()
        return out


class CdcChunker:
    """FastCDC v2020 (min/avg/max 128/256/512 KiB by default), as tvix castore chunks blobs.

    Keeps at most one max-size window of unconsumed bytes buffered.
    """

    def __init__(self, min_size: int = CDC_MIN, avg_size: int = CDC_AVG, max_size: int = CDC_MAX) -> None:
        self._cdc = FastCDC(avg_size=avg_size, min_size=min_size, max_size=max_size, normalized_chunking=1)
        self.block_size = avg_size
        self.max_size = max_size
        self.name = f"fastcdc-v2020({min_size},{avg_size},{max_size})"
        self._buf = bytearray()

    def _cut(self, final: bool) -> list[bytes]:
        blocks: list[bytes] = []
        if not self._buf:
            return blocks
        size = len(self._buf)
        with memoryview(self._buf) as view:
            cuts = [(c.offset, c.offset + c.length) for c in self._cdc.cut_buf(view)]
            consumed = 0
            for start, end in cuts:
                # the last cut of a buffer is only final at end of stream: more data may move it
                if not final and end == size and size - start < self.max_size:
                    break
                blocks.append(bytes(view[start:end]))
                consumed = end
        del self._buf[:consumed]  # keeps only the unconsumed tail (less than one max-size chunk)
        return blocks

    def feed(self, piece: bytes | memoryview) -> list[bytes]:
        self._buf += piece
        if len(self._buf) < 4 * self.max_size:
            return []
        return self._cut(final=False)

    def flush(self) -> list[bytes]:
        out = self._cut(final=True)
        self._buf = bytearray()
        return out
