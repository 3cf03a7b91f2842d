"""The `BlobStore` interface: blocks by CID, and nothing else.

A backend implements seven required methods (`get`, `has`, `size_of`, `put`, `delete`,
`iter_cids`, `close`); everything else is a default built on them, each commented with its
cost, which a backend overrides where it does better (LMDB reads a batch in one transaction,
S3 runs a batch's requests concurrently). A missing block is `None` here; the layers above
turn it into `NotFoundError`.

**Sync, not async.** Every method blocks and every backend is safe to call from several
threads at once. That is how the callers use a store: content code runs blocking calls in
worker threads (`trio.to_thread.run_sync` on the node's trio loop), and the node's loop is trio,
which cannot await the asyncio futures that async S3 clients (obstore among them) return. A
remote backend gets its concurrency inside the batched forms (`get_many`, `put_many`,
`has_many`, `delete_many`) from a bounded pool of its own; measured against obstore's async
API on a private asyncio loop, the pool of blocking calls was faster (bench/s3.py notes).

**Shared stores and holders.** A store several nodes use at once (an S3 bucket) cannot learn
from one node's catalog whether a block is still needed. Such a store sets `shared = True`
and keeps per-node reference markers: `hold(cids)` records that this node needs the blocks
(before it writes them), `confirm(cids)` is called before the catalog commit that refers to
them and returns any that another node deleted meanwhile, and `release(cids)` gives them up
and deletes those no other node holds. On a private store the defaults below make these
plain: `hold` does nothing, `confirm` checks presence and `release` deletes (the node's own
refcounts already decided). Callers use the same three calls whatever the backend.

Crash safety across the two stores: blocks are written (and held) before the catalog commit
that refers to them, and released after the catalog commit that drops the last reference, so a
crash leaves at most orphan blocks, never a catalog entry naming a missing block.
"""

from __future__ import annotations

import abc
from collections.abc import Iterable, Iterator
from typing import Self

from hoard.ids.cid import CID
from hoard.store.base import StoreStats

__all__ = ["BlobStore", "BlockData", "StoreStats"]

BlockData = bytes | memoryview


class BlobStore(abc.ABC):
    """Blocks by CID. Thread-safe; puts are idempotent; a block is never partially visible.

    Capabilities are class attributes: `shared` (other nodes may write the same store, so
    holds and releases go through markers), `supports_durability` (`sync()` makes writes
    survive power loss), `url_scheme` (what `open_blobstore` calls it).
    """

    shared: bool = False
    supports_durability: bool = False
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
    def put(self, cid: CID, data: BlockData) -> None:
        """Store one block. Storing a block that is there already is a no-op (same CID, same
        bytes). The store trusts the caller that `data` hashes to `cid`."""

    @abc.abstractmethod
    def delete(self, cid: CID) -> bool:
        """Delete one block, whoever holds it; True if it was there. Not the multi-node-safe
        way to give a block up: that is `release`."""

    @abc.abstractmethod
    def iter_cids(self) -> Iterator[CID]:
        """Every stored block's CID, each once, in no promised order. Blocks written or
        deleted while iterating may or may not be seen."""

    @abc.abstractmethod
    def close(self) -> None:
        """Release resources. Idempotent."""

    # -- batched forms ----------------------------------------------------------------
    def get_many(self, cids: Iterable[CID]) -> list[bytes | None]:
        """Several blocks, in order. Default: one `get` each, sequentially."""
        return [self.get(cid) for cid in cids]

    def has_many(self, cids: Iterable[CID]) -> list[bool]:
        """Presence of several blocks, in order. Default: one `has` each, sequentially."""
        return [self.has(cid) for cid in cids]

    def put_many(self, items: Iterable[tuple[CID, BlockData]]) -> None:
        """Store several blocks. Default: one `put` each, sequentially. Not atomic as a
        whole: after a crash any subset may be stored (each block whole or absent)."""
        for cid, data in items:
            self.put(cid, data)

    def delete_many(self, cids: Iterable[CID]) -> None:
        """Delete several blocks. Default: one `delete` each, sequentially."""
        for cid in cids:
            self.delete(cid)

    # -- holders (see the module docstring) --------------------------------------------
    def hold(self, cids: Iterable[CID]) -> None:
        """Record that this node needs `cids`; call before writing or relying on them.
        Private stores: nothing to record. Idempotent."""

    def confirm(self, cids: Iterable[CID]) -> list[CID]:
        """The blocks of `cids` (held) that are missing now; call after writing them and
        before the catalog commit that refers to them. Default: one `has_many`."""
        cids = list(cids)
        return [cid for cid, there in zip(cids, self.has_many(cids), strict=True) if not there]

    def release(self, cids: Iterable[CID]) -> list[CID]:
        """Give up `cids` (this node's catalog no longer refers to them) and delete those
        no other holder needs; returns the ones no longer stored because of this call (a
        shared store may include some that were absent already: account from the catalog,
        not from this list). Default (private store): the caller's refcounts decided, so
        every present one is deleted with one `delete_many`."""
        cids = list(dict.fromkeys(cids))
        present = [cid for cid, there in zip(cids, self.has_many(cids), strict=True) if there]
        self.delete_many(present)
        return present

    def publish(self, cid: CID, record: bytes) -> None:
        """Shared stores: leave a small record about dataset `cid` in the store, for other nodes
        that adopt the dataset from it (a Logos dataset's leaf-list parts). It goes when the
        block `cid` is deleted. Private stores: nothing to do (the catalog has it)."""

    def published(self, cid: CID) -> bytes | None:
        """The record `publish` left for `cid`, or None (always None on a private store)."""
        return None

    def held(self) -> Iterator[CID]:
        """The blocks this node holds, for maintenance to compare with its catalog (a held
        block the catalog has no record of is this node's orphan: `release` it). Default
        (private store): every stored block, one `iter_cids` pass."""
        return self.iter_cids()

    # -- accounting and durability ---------------------------------------------------
    def stats(self) -> StoreStats:
        """Block count and bytes of the whole store (of every holder, on a shared store).
        Default: one `iter_cids` pass and a `size_of` each, O(n); local backends are O(1)."""
        blocks = total = 0
        for cid in self.iter_cids():
            size = self.size_of(cid)
            if size is not None:
                blocks += 1
                total += size
        return StoreStats(blocks, total)

    def sync(self) -> None:
        """Make every completed write durable where the backend can. Default: no-op (a
        remote store's writes are durable when they return)."""

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
