"""The `BlockStore` interface: blocks by CID, plus named metadata tables, committed atomically.

A backend implements six required methods (`get`, `has`, `size_of`, `iter_cids`, `meta_get`,
`meta_iter`, `commit`, `stats`, `close`); everything else is a default built on them, each
commented with its cost. Writes are grouped in a `Batch` and `commit` applies the batch
atomically: after a crash either all of it is there or none of it. That is how a manifest,
its index and the refcounts of its blocks land together.

A missing key is `None` here; the layers above turn it into `NotFoundError`.
Metadata tables are named by short strings (`refs`, `datasets`, ...); keys and values are
bytes. Layers above own their tables and their encodings.
"""

from __future__ import annotations

import abc
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Self

from hoard.ids.cid import CID


@dataclass
class Batch:
    """Writes to apply atomically: block puts/deletes and metadata puts/deletes."""

    puts: dict[CID, bytes | memoryview] = field(default_factory=dict)
    deletes: set[CID] = field(default_factory=set)
    meta: dict[tuple[str, bytes], bytes | None] = field(default_factory=dict)

    def put(self, cid: CID, data: bytes | memoryview) -> Batch:
        self.deletes.discard(cid)
        self.puts[cid] = data
        return self

    def delete(self, cid: CID) -> Batch:
        self.puts.pop(cid, None)
        self.deletes.add(cid)
        return self

    def meta_put(self, table: str, key: bytes, value: bytes) -> Batch:
        self.meta[(table, key)] = value
        return self

    def meta_delete(self, table: str, key: bytes) -> Batch:
        self.meta[(table, key)] = None
        return self

    def __bool__(self) -> bool:
        return bool(self.puts or self.deletes or self.meta)


@dataclass(frozen=True)
class StoreStats:
    """Number of blocks and the sum of their sizes, as committed."""

    blocks: int
    bytes: int


class BlockStore(abc.ABC):
    """Blocks by CID and small metadata tables, with atomic batched writes.

    Capabilities are class attributes. Backends must be safe to call from several threads
    (readers concurrently with one writer); `commit` calls are serialised by the backend.
    """

    supports_durability: bool = False  # commit(..., durable=True) survives power loss
    url_scheme: str = ""

    # -- required -------------------------------------------------------------------
    @abc.abstractmethod
    def get(self, cid: CID) -> bytes | None:
        """The block's bytes, or None."""

    @abc.abstractmethod
    def has(self, cid: CID) -> bool:
        """Whether the block is stored."""

    @abc.abstractmethod
    def size_of(self, cid: CID) -> int | None:
        """The block's size in bytes, or None."""

    @abc.abstractmethod
    def iter_cids(self) -> Iterator[CID]:
        """Every stored block's CID, in binary-CID order. A snapshot: safe while writing."""

    @abc.abstractmethod
    def meta_get(self, table: str, key: bytes) -> bytes | None:
        """A metadata value, or None."""

    @abc.abstractmethod
    def meta_iter(self, table: str, prefix: bytes = b"") -> Iterator[tuple[bytes, bytes]]:
        """(key, value) pairs of a table whose key starts with `prefix`, in key order. A snapshot."""

    @abc.abstractmethod
    def commit(self, batch: Batch, durable: bool = False) -> None:
        """Apply `batch` atomically. Putting an existing block or deleting a missing one is a no-op.

        With `durable=True` the batch (and everything committed before it) is on stable
        storage when this returns, where the backend supports it.
        """

    @abc.abstractmethod
    def stats(self) -> StoreStats:
        """Committed block count and bytes. O(1)."""

    @abc.abstractmethod
    def close(self) -> None:
        """Release resources. Idempotent."""

    # -- defaults -------------------------------------------------------------------
    def put(self, cid: CID, data: bytes | memoryview, durable: bool = False) -> None:
        """Store one block. One commit."""
        self.commit(Batch().put(cid, data), durable)

    def put_many(self, items: Iterable[tuple[CID, bytes | memoryview]], durable: bool = False) -> None:
        """Store many blocks in one commit. Holds them all in memory: batch sensibly."""
        batch = Batch()
        for cid, data in items:
            batch.put(cid, data)
        self.commit(batch, durable)

    def delete(self, cid: CID) -> bool:
        """Delete one block; True if it was there. One lookup and one commit."""
        if not self.has(cid):
            return False
        self.commit(Batch().delete(cid))
        return True

    def get_many(self, cids: Iterable[CID]) -> list[bytes | None]:
        """Several blocks; one `get` each unless a backend does better."""
        return [self.get(c) for c in cids]

    def has_many(self, cids: Iterable[CID]) -> list[bool]:
        """Presence of several blocks; one `has` each unless a backend does better."""
        return [self.has(c) for c in cids]

    def sync(self) -> None:
        """Flush everything committed so far to stable storage. No-op where not supported."""

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
