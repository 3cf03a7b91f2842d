"""The ingest path's catalog tables and their encodings (see `ingest.py` for what they mean)."""

from __future__ import annotations

import struct
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

from hoard.errors import InvalidArgumentError
from hoard.ids.cid import CID

__all__ = ["ACCOUNTS", "HOLDS", "KEPT", "LOGS_ACCOUNT", "OWNERS", "PENDING", "Blocks", "Space", "owner_key",
           "pack_cids", "unmark", "unpack_cids"]

PENDING = "pending"
HOLDS = "holds"
OWNERS = "owners"
KEPT = "kept"
LOGS_ACCOUNT = b"logs"
ACCOUNTS = (LOGS_ACCOUNT,)

U32 = struct.Struct(">I")
MARK = struct.Struct(">II")
PAIR = struct.Struct(">QQ")
U64 = struct.Struct(">Q")

Blocks = Sequence[tuple[CID, "bytes | memoryview"]]


@dataclass(frozen=True)
class Space:
    """The Logos `space` figures: committed blocks and bytes, and bytes promised or pending."""

    total_blocks: int
    quota_max_bytes: int
    quota_used_bytes: int
    quota_reserved_bytes: int

    def to_json(self) -> dict[str, int]:
        return {"totalBlocks": self.total_blocks, "quotaMaxBytes": self.quota_max_bytes,
                "quotaUsedBytes": self.quota_used_bytes, "quotaReservedBytes": self.quota_reserved_bytes}


def unmark(raw: bytes) -> tuple[int, int]:
    """(size, durable holders) of a pending marker (a 4-byte marker has no durable holder)."""
    return (U32.unpack(raw)[0], 0) if len(raw) == U32.size else MARK.unpack(raw)


def pack_cids(cids: Iterable[CID]) -> bytes:
    return b"".join(bytes((len(c.binary),)) + c.binary for c in cids)


def unpack_cids(data: bytes) -> Iterator[CID]:
    pos = 0
    while pos < len(data):
        n = data[pos]
        yield CID(data[pos + 1:pos + 1 + n])
        pos += 1 + n


def owner_key(owner: str) -> bytes:
    key = owner.encode()
    if not key or b"\x00" in key or len(key) > 200:
        raise InvalidArgumentError(f"bad ingest owner name {owner!r}")
    return key
