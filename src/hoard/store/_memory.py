"""An in-memory BlockStore: dicts under a lock. For tests and throwaway nodes."""

from __future__ import annotations

import threading
from collections.abc import Iterator

from hoard.ids.cid import CID
from hoard.store.base import Batch, BlockStore, StoreStats


class MemoryBlockStore(BlockStore):
    """Blocks and metadata in process memory; gone when the process ends."""

    url_scheme = "memory"

    def __init__(self) -> None:
        self._blocks: dict[CID, bytes] = {}
        self._meta: dict[str, dict[bytes, bytes]] = {}
        self._bytes = 0
        self._lock = threading.Lock()

    def get(self, cid: CID) -> bytes | None:
        return self._blocks.get(cid)

    def has(self, cid: CID) -> bool:
        return cid in self._blocks

    def size_of(self, cid: CID) -> int | None:
        data = self._blocks.get(cid)
        return None if data is None else len(data)

    def iter_cids(self) -> Iterator[CID]:
        with self._lock:
            keys = sorted(self._blocks)
        return iter(keys)

    def meta_get(self, table: str, key: bytes) -> bytes | None:
        return self._meta.get(table, {}).get(key)

    def meta_iter(self, table: str, prefix: bytes = b"") -> Iterator[tuple[bytes, bytes]]:
        with self._lock:
            items = sorted((k, v) for k, v in self._meta.get(table, {}).items() if k.startswith(prefix))
        return iter(items)

    def commit(self, batch: Batch, durable: bool = False) -> None:
        with self._lock:
            for cid in batch.deletes:
                old = self._blocks.pop(cid, None)
                if old is not None:
                    self._bytes -= len(old)
            for cid, data in batch.puts.items():
                if cid not in self._blocks:
                    self._blocks[cid] = bytes(data)
                    self._bytes += len(data)
            for (table, key), value in batch.meta.items():
                rows = self._meta.setdefault(table, {})
                if value is None:
                    rows.pop(key, None)
                else:
                    rows[key] = bytes(value)

    def stats(self) -> StoreStats:
        with self._lock:
            return StoreStats(len(self._blocks), self._bytes)

    def close(self) -> None:
        pass
