"""A read cache in front of a remote blob store: LRU by bytes, on disk (LMDB) or in memory.

`CachedBlobStore(remote, tier, capacity)` serves `get`/`get_many` from `tier` (a local
`BlobStore`: `LmdbBlobStore` on disk, the default for nodes, or `MemoryBlobStore`) and admits
every block it reads from the remote, evicting the least recently read blocks while the tier
holds more than `capacity` bytes. Writes go to the remote only (an upload does not flush the
hot set). Presence, sizes, listing and the holder protocol always ask the remote: a cached
copy proves a block *was* in the bucket, not that it still is, so it never answers `has`.
Serving a cached block another node has since deleted is harmless: the bytes still match
their CID.

An on-disk tier survives restarts (its blocks are re-indexed, in arbitrary LRU order, on open)
and does not count against RSS; bench/s3.py measures both tiers.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterable, Iterator

from hoard.errors import InvalidArgumentError
from hoard.ids.cid import CID
from hoard.store.base import StoreStats
from hoard.store.blobs import BlobStore, BlockData

__all__ = ["CacheStats", "CachedBlobStore"]


class CacheStats:
    """Counters of a cache: hits, misses, bytes cached, evictions."""

    def __init__(self) -> None:
        self.hits = 0
        self.misses = 0
        self.evicted = 0

    def as_dict(self) -> dict[str, int]:
        return {"hits": self.hits, "misses": self.misses, "evicted": self.evicted}


class CachedBlobStore(BlobStore):
    """`remote` with a `capacity`-byte LRU read cache in `tier` (owned: closed with this)."""

    def __init__(self, remote: BlobStore, tier: BlobStore, capacity: int) -> None:
        if capacity <= 0:
            raise InvalidArgumentError(f"cache capacity must be positive, got {capacity}", capacity=capacity)
        self.remote = remote
        self.tier = tier
        self.capacity = capacity
        self.shared = remote.shared
        self.url_scheme = remote.url_scheme
        self.counters = CacheStats()
        self._lru: OrderedDict[CID, int] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()
        for cid in list(tier.iter_cids()):
            size = tier.size_of(cid)
            if size is not None:
                self._lru[cid] = size
                self._bytes += size
        self._evict()

    @property
    def cached_bytes(self) -> int:
        """Bytes in the cache tier now."""
        return self._bytes

    def _admit(self, blocks: list[tuple[CID, bytes]]) -> None:
        fresh = []
        with self._lock:
            for cid, data in blocks:
                if cid not in self._lru and len(data) <= self.capacity:
                    self._lru[cid] = len(data)
                    self._bytes += len(data)
                    fresh.append((cid, data))
        if fresh:
            self.tier.put_many(fresh)
        self._evict()

    def _evict(self) -> None:
        victims = []
        with self._lock:
            while self._bytes > self.capacity and self._lru:
                cid, size = self._lru.popitem(last=False)
                self._bytes -= size
                victims.append(cid)
            self.counters.evicted += len(victims)
        if victims:
            self.tier.delete_many(victims)

    def _forget(self, cids: Iterable[CID]) -> None:
        gone = []
        with self._lock:
            for cid in cids:
                size = self._lru.pop(cid, None)
                if size is not None:
                    self._bytes -= size
                    gone.append(cid)
        if gone:
            self.tier.delete_many(gone)

    def _cached(self, cid: CID) -> bool:
        with self._lock:
            if cid in self._lru:
                self._lru.move_to_end(cid)
                return True
            return False

    # -- reads: cache first ------------------------------------------------------------
    def get(self, cid: CID) -> bytes | None:
        return self.get_many([cid])[0]

    def get_many(self, cids: Iterable[CID]) -> list[bytes | None]:
        """Hits from the tier in one batch; misses from the remote in one batch, then admitted."""
        cids = list(cids)
        out: list[bytes | None] = [None] * len(cids)
        hits = [i for i, cid in enumerate(cids) if self._cached(cid)]
        for i, data in zip(hits, self.tier.get_many([cids[i] for i in hits]), strict=True):
            out[i] = data
            if data is None:  # evicted meanwhile: forget it so it is admitted again
                with self._lock:
                    self._bytes -= self._lru.pop(cids[i], 0)
        misses = [i for i, data in enumerate(out) if data is None]
        self.counters.hits += len(cids) - len(misses)
        self.counters.misses += len(misses)
        if misses:
            fetched = self.remote.get_many([cids[i] for i in misses])
            admit = []
            for i, data in zip(misses, fetched, strict=True):
                out[i] = data
                if data is not None:
                    admit.append((cids[i], data))
            self._admit(admit)
        return out

    # -- everything else: the remote ---------------------------------------------------
    def has(self, cid: CID) -> bool:
        return self.remote.has(cid)

    def has_many(self, cids: Iterable[CID]) -> list[bool]:
        return self.remote.has_many(cids)

    def size_of(self, cid: CID) -> int | None:
        return self.remote.size_of(cid)

    def put(self, cid: CID, data: BlockData) -> None:
        self.remote.put(cid, data)

    def put_many(self, items: Iterable[tuple[CID, BlockData]]) -> None:
        self.remote.put_many(items)

    def delete(self, cid: CID) -> bool:
        self._forget([cid])
        return self.remote.delete(cid)

    def delete_many(self, cids: Iterable[CID]) -> None:
        cids = list(cids)
        self._forget(cids)
        self.remote.delete_many(cids)

    def iter_cids(self) -> Iterator[CID]:
        return self.remote.iter_cids()

    def stats(self) -> StoreStats:
        return self.remote.stats()

    def hold(self, cids: Iterable[CID]) -> None:
        self.remote.hold(cids)

    def confirm(self, cids: Iterable[CID]) -> list[CID]:
        return self.remote.confirm(cids)

    def release(self, cids: Iterable[CID]) -> list[CID]:
        deleted = self.remote.release(cids)
        self._forget(deleted)
        return deleted

    def held(self) -> Iterator[CID]:
        return self.remote.held()

    def publish(self, cid: CID, record: bytes) -> None:
        self.remote.publish(cid, record)

    def published(self, cid: CID) -> bytes | None:
        return self.remote.published(cid)

    def sync(self) -> None:
        self.remote.sync()

    def close(self) -> None:
        try:
            self.remote.close()
        finally:
            self.tier.close()
