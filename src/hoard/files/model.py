"""hugo file model: values, the CRC mismatch error, and the metadata key layout.

Tables (in the BlockStore's metadata, all integers big-endian so keys sort numerically):
  file_heads     ino                    -> head: version, next index, blocks, bytes, entries
  file_versions  ino|version            -> what that version was: time, blocks written,
                                           next index, blocks, bytes
  file_blocks    ino|index|version      -> block CID (36 bytes) | len u32 | crc32 u32: the
                                           block written at `index` by `version`
  file_windows   ino|index>>16 (6 bytes) -> b"": which 65536-index windows hold entries

A version never changes once written. The state at version k is, per index, the entry with
the greatest version <= k; a read walks the windows that overlap its range, so its cost
and memory follow the entries there, not the file or its history.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from hoard.errors import IntegrityError, InvalidArgumentError
from hoard.ids.cid import CID

MAX_U64 = (1 << 64) - 1
WINDOW_BITS = 16

HEADS, VERSIONS, BLOCKS, WINDOWS = "file_heads", "file_versions", "file_blocks", "file_windows"

U64 = struct.Struct(">Q")
HEAD = struct.Struct(">QQQQQ")  # version, next_index, blocks, bytes, entries
VERSION = struct.Struct(">dQQQQ")  # time, written, next_index, blocks, bytes
ENTRY_TAIL = struct.Struct(">II")  # len, crc32 (after the 36-byte CID)


class CrcMismatchError(IntegrityError):
    """A block's CRC32 (IEEE) is not the one the writer sent. Nothing was written.

    hugo answers this with FAILED_PRECONDITION, so that is this error's gRPC status.
    """

    code = "crc-mismatch"
    grpc_status = "FAILED_PRECONDITION"
    http_status = 412


@dataclass(frozen=True)
class FileBlock:
    """One block of a file as read: its index, bytes and CRC32 (IEEE)."""

    index: int
    data: bytes
    crc32: int

    @property
    def len(self) -> int:
        return len(self.data)


@dataclass(frozen=True)
class BlockRef:
    """Where a file's block lives: index, block CID, length, CRC32, and the version that wrote it."""

    index: int
    cid: CID
    len: int
    crc32: int
    version: int


@dataclass(frozen=True)
class FileWrite:
    """The outcome of a write: the indices written (in order) and the version it made.

    `version` is None where the write went through an API that does not report it (hugo's
    gRPC responses carry only indices).
    """

    ino: int
    indices: tuple[int, ...]
    version: int | None

    @property
    def index(self) -> int:
        """The index of the block written (the first, for a stream)."""
        return self.indices[0]


@dataclass(frozen=True)
class FileInfo:
    """A file at one version: distinct block indices, their bytes, and the next append index."""

    ino: int
    version: int
    latest: int  # the file's newest version
    blocks: int
    size: int
    next_index: int
    time: float  # when the version was written (seconds since the epoch)

    def to_json(self) -> dict[str, object]:
        return {"ino": self.ino, "version": self.version, "latest": self.latest, "blocks": self.blocks,
                "size": self.size, "nextIndex": self.next_index, "time": self.time}


@dataclass(frozen=True)
class Head:
    version: int = 0
    next_index: int = 0
    blocks: int = 0
    bytes: int = 0
    entries: int = 0


def check_u64(name: str, value: object) -> int:
    """Validate an inode number or block index (an unsigned 64-bit integer)."""
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_U64:
        raise InvalidArgumentError(f"{name} must be an integer in 0..2^64-1, got {value!r}", **{name: str(value)})
    return value


def block_key(ino: int, index: int, version: int) -> bytes:
    return U64.pack(ino) + U64.pack(index) + U64.pack(version)


def window_key(ino: int, index: int) -> bytes:
    return U64.pack(ino) + U64.pack(index)[:8 - WINDOW_BITS // 8]


def encode_entry(cid: CID, length: int, crc: int) -> bytes:
    return cid.binary + ENTRY_TAIL.pack(length, crc)


def decode_entry(key: bytes, value: bytes) -> BlockRef:
    length, crc = ENTRY_TAIL.unpack_from(value, 36)
    return BlockRef(U64.unpack_from(key, 8)[0], CID(value[:36]), length, crc, U64.unpack_from(key, 16)[0])
