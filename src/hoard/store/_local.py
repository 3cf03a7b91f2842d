"""The local backends of the split store: memory and LMDB, as views of one `BlockStore`.

A node's repo is one LMDB environment (`repo/`): named database `blocks` (+ `stats`) holds the
blocks and `m:<table>` the metadata tables. `LmdbBlobStore` is the blocks half of it and
`LmdbCatalog` the tables half; both open the *same* `LmdbBlockStore` (LMDB allows one open
environment per file and process), so the file of an existing repo opens unchanged, and the
damage checks and RSS bounds of `_lmdb.py` apply to both halves. With S3 blocks the same file
is the catalog alone; its `blocks` database simply stays empty.

    env = LmdbBlockStore(path)                          # the node owns and closes it
    blobs, catalog = LmdbBlobStore(env), LmdbCatalog(env)

Constructed from a path instead, a view opens and owns its environment (`open_blobstore`).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator

from hoard.ids.cid import CID
from hoard.store._lmdb import LmdbBlockStore
from hoard.store._memory import MemoryBlockStore
from hoard.store.base import Batch, BlockStore, StoreStats
from hoard.store.blobs import BlobStore, BlockData
from hoard.store.catalog import Catalog, CatalogBatch, check_table

__all__ = ["LmdbBlobStore", "LmdbCatalog", "MemoryBlobStore", "MemoryCatalog", "local_views"]


class _BlocksView(BlobStore):
    """The blocks of a `BlockStore` as a `BlobStore` (private to this node: `shared` False)."""

    def __init__(self, store: BlockStore, owns: bool) -> None:
        self._store = store
        self._owns = owns

    @property
    def block_store(self) -> BlockStore:
        """The single store this is a view of."""
        return self._store

    def get(self, cid: CID) -> bytes | None:
        return self._store.get(cid)

    def has(self, cid: CID) -> bool:
        return self._store.has(cid)

    def size_of(self, cid: CID) -> int | None:
        return self._store.size_of(cid)

    def put(self, cid: CID, data: BlockData) -> None:
        self._store.put(cid, data)

    def delete(self, cid: CID) -> bool:
        return self._store.delete(cid)

    def iter_cids(self) -> Iterator[CID]:
        return self._store.iter_cids()

    def get_many(self, cids: Iterable[CID]) -> list[bytes | None]:
        """One read transaction for the whole batch (LMDB)."""
        return self._store.get_many(list(cids))

    def has_many(self, cids: Iterable[CID]) -> list[bool]:
        """One read transaction for the whole batch (LMDB)."""
        return self._store.has_many(list(cids))

    def put_many(self, items: Iterable[tuple[CID, BlockData]]) -> None:
        """One commit for the whole batch: holds it in memory, so batch sensibly."""
        self._store.put_many(items)

    def delete_many(self, cids: Iterable[CID]) -> None:
        """One commit for the whole batch."""
        batch = Batch()
        for cid in cids:
            batch.delete(cid)
        if batch:
            self._store.commit(batch)

    def stats(self) -> StoreStats:
        """O(1): the store keeps the counts in the same transaction as the blocks."""
        return self._store.stats()

    def sync(self) -> None:
        self._store.sync()

    def close(self) -> None:
        if self._owns:
            self._store.close()


class _TablesView(Catalog):
    """The metadata tables of a `BlockStore` as a `Catalog`."""

    def __init__(self, store: BlockStore, owns: bool) -> None:
        self._store = store
        self._owns = owns
        self.supports_durability = store.supports_durability

    @property
    def block_store(self) -> BlockStore:
        """The single store this is a view of."""
        return self._store

    def get(self, table: str, key: bytes) -> bytes | None:
        return self._store.meta_get(check_table(table), key)

    def scan(self, table: str, prefix: bytes = b"") -> Iterator[tuple[bytes, bytes]]:
        return self._store.meta_iter(check_table(table), prefix)

    def commit(self, batch: CatalogBatch, durable: bool = False) -> None:
        meta = Batch(meta=dict(batch.rows))
        self._store.commit(meta, durable)

    def sync(self) -> None:
        self._store.sync()

    def close(self) -> None:
        if self._owns:
            self._store.close()


class MemoryBlobStore(_BlocksView):
    """Blocks in process memory; gone when the process ends. Over `store` (shared with a
    `MemoryCatalog`) or a fresh one of its own."""

    url_scheme = "memory"

    def __init__(self, store: MemoryBlockStore | None = None) -> None:
        super().__init__(store if store is not None else MemoryBlockStore(), owns=store is None)


class MemoryCatalog(_TablesView):
    """Tables in process memory. Over `store` (shared with a `MemoryBlobStore`) or its own."""

    def __init__(self, store: MemoryBlockStore | None = None) -> None:
        super().__init__(store if store is not None else MemoryBlockStore(), owns=store is None)


class LmdbBlobStore(_BlocksView):
    """Blocks in the `blocks` database of an LMDB environment: a path (opened and owned
    here) or an open `LmdbBlockStore` shared with an `LmdbCatalog` (not closed here)."""

    url_scheme = "lmdb"
    supports_durability = True

    def __init__(self, env: LmdbBlockStore | str | os.PathLike[str]) -> None:
        owns = not isinstance(env, LmdbBlockStore)
        super().__init__(LmdbBlockStore(env) if not isinstance(env, LmdbBlockStore) else env, owns=owns)


class LmdbCatalog(_TablesView):
    """Tables in the `m:<table>` databases of an LMDB environment: a path (opened and
    owned here) or an open `LmdbBlockStore` shared with an `LmdbBlobStore`."""

    def __init__(self, env: LmdbBlockStore | str | os.PathLike[str]) -> None:
        owns = not isinstance(env, LmdbBlockStore)
        super().__init__(LmdbBlockStore(env) if not isinstance(env, LmdbBlockStore) else env, owns=owns)


def local_views(store: BlockStore) -> tuple[BlobStore, Catalog]:
    """The blocks and tables halves of one single store (memory or LMDB), neither owning it:
    the caller closes `store`. How a node's repo gets both from its one LMDB file."""
    return _BlocksView(store, owns=False), _TablesView(store, owns=False)
