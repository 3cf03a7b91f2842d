"""The local blob backends and catalogs pass their conformance suites; an existing
single-store repo opens unchanged as a blob store plus a catalog; blob store URLs are strict."""

import shutil
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

from hoard.errors import InvalidArgumentError
from hoard.store import (
    Batch,
    CachedBlobStore,
    LmdbBlobStore,
    LmdbBlockStore,
    LmdbCatalog,
    MemoryBlobStore,
    MemoryCatalog,
    local_views,
    open_blobstore,
)
from hoard.store.blob_testing import (
    BlobStoreConformance,
    PersistentBlobStoreConformance,
    block,
    make_blob_state_machine,
)
from hoard.store.catalog import CatalogBatch
from hoard.store.catalog_testing import CatalogConformance, PersistentCatalogConformance


class TestMemoryBlobs(BlobStoreConformance):
    def make_store(self, path):
        return MemoryBlobStore()


class TestLmdbBlobs(PersistentBlobStoreConformance):
    def make_store(self, path):
        return LmdbBlobStore(path / "lmdb")

    def reopen_store(self, store, path):
        store.close()
        return LmdbBlobStore(path / "lmdb")


class TestCachedLocalBlobs(BlobStoreConformance):
    """The cache keeps every BlobStore promise of the store behind it (a tiny capacity
    forces evictions throughout)."""

    def make_store(self, path):
        return CachedBlobStore(MemoryBlobStore(), LmdbBlobStore(path / "cache"), capacity=4096)


class TestMemoryCatalog(CatalogConformance):
    def make_catalog(self, path):
        return MemoryCatalog()


class TestLmdbCatalog(PersistentCatalogConformance):
    def make_catalog(self, path):
        return LmdbCatalog(path / "lmdb")

    def reopen_catalog(self, catalog, path):
        catalog.close()
        return LmdbCatalog(path / "lmdb")


_fast = settings(max_examples=30, stateful_step_count=20, deadline=None,
                 suppress_health_check=[HealthCheck.too_slow])
TestMemoryBlobModel = make_blob_state_machine(MemoryBlobStore).TestCase
TestMemoryBlobModel.settings = _fast
class _OwnDirLmdbBlobStore(LmdbBlobStore):
    """An LMDB blob store in a temporary directory of its own, removed when the store closes (the
    state machine makes one per example and closes it in its teardown)."""

    def __init__(self) -> None:
        self._own_dir = tempfile.mkdtemp(prefix="hoard-blob-sm-")
        super().__init__(self._own_dir)

    def close(self) -> None:
        try:
            super().close()
        finally:
            shutil.rmtree(self._own_dir, ignore_errors=True)


TestLmdbBlobModel = make_blob_state_machine(_OwnDirLmdbBlobStore).TestCase
TestLmdbBlobModel.settings = _fast


def test_existing_repo_opens_as_blobs_and_catalog(tmp_path: Path) -> None:
    """A repo written by the single BlockStore reads back through the split views."""
    cid, data = block(b"old block")
    old = LmdbBlockStore(tmp_path / "repo")
    old.commit(Batch().put(cid, data).meta_put("datasets", cid.binary, b"info"), durable=True)
    old.close()
    env = LmdbBlockStore(tmp_path / "repo")
    blobs, catalog = LmdbBlobStore(env), LmdbCatalog(env)
    assert blobs.get(cid) == data and catalog.get("datasets", cid.binary) == b"info"
    new, new_data = block(b"new block")
    blobs.put(new, new_data)
    catalog.commit(CatalogBatch().put("refs", new.binary, b"\x00\x00\x00\x01"), durable=True)
    blobs.close()
    catalog.close()  # views of a shared environment leave it open
    assert env.get(new) == new_data and env.meta_get("refs", new.binary) == b"\x00\x00\x00\x01"
    assert env.stats().blocks == 2
    env.close()


def test_local_views_share_one_store() -> None:
    blobs, catalog = local_views(store := MemoryBlobStore().block_store)
    cid, data = block(b"shared")
    blobs.put(cid, data)
    catalog.commit(CatalogBatch().put("t", b"k", b"v"))
    assert store.get(cid) == data and store.meta_get("t", b"k") == b"v"


def test_cache_serves_repeated_reads_from_its_tier(tmp_path: Path) -> None:
    remote = MemoryBlobStore()
    items = [block(b"%d" % i * 1000) for i in range(8)]
    remote.put_many(items)
    cache = CachedBlobStore(remote, MemoryBlobStore(), capacity=4 * 1000 + 500)
    cids = [c for c, _ in items]
    assert cache.get_many(cids[:4]) == [d for _, d in items[:4]]
    assert cache.counters.misses == 4
    assert cache.get_many(cids[:4]) == [d for _, d in items[:4]]
    assert cache.counters.hits == 4
    assert cache.cached_bytes <= cache.capacity


def test_cache_evicts_least_recently_read_first(tmp_path: Path) -> None:
    remote = MemoryBlobStore()
    a, b, c = (block(bytes([i]) * 100) for i in range(3))
    remote.put_many([a, b, c])
    cache = CachedBlobStore(remote, MemoryBlobStore(), capacity=200)
    cache.get(a[0])
    cache.get(b[0])
    cache.get(a[0])  # a is now the most recent
    cache.get(c[0])  # evicts b
    assert set(cache.tier.iter_cids()) == {a[0], c[0]}
    assert cache.counters.evicted == 1


def test_cache_on_disk_is_reindexed_on_open(tmp_path: Path) -> None:
    remote = MemoryBlobStore()
    cid, data = block(b"warm" * 100)
    remote.put(cid, data)
    cache = CachedBlobStore(remote, LmdbBlobStore(tmp_path / "cache"), capacity=10_000)
    cache.get(cid)
    cache.tier.close()
    again = CachedBlobStore(MemoryBlobStore(), LmdbBlobStore(tmp_path / "cache"), capacity=10_000)
    assert again.cached_bytes == len(data)
    assert again.get(cid) == data and again.counters.hits == 1  # served with the remote empty
    assert not again.has(cid)  # presence always asks the remote
    again.close()


def test_cache_forgets_deleted_blocks(tmp_path: Path) -> None:
    remote = MemoryBlobStore()
    cid, data = block(b"doomed")
    remote.put(cid, data)
    cache = CachedBlobStore(remote, MemoryBlobStore(), capacity=1000)
    cache.get(cid)
    assert cache.release([cid]) == [cid]
    assert cache.get(cid) is None and cache.cached_bytes == 0


@pytest.mark.parametrize("url", ["memory://x", "memory://?a=1", "lmdb://", "lmdb:///tmp/x?sync=1", "ftp://x",
                                 "/bare/path", "s3://", "S3://Bucket"])
def test_bad_blobstore_urls_are_refused(url: str) -> None:
    with pytest.raises(InvalidArgumentError):
        open_blobstore(url)


def test_a_cache_needs_a_remote_store(tmp_path: Path) -> None:
    with pytest.raises(InvalidArgumentError):
        open_blobstore("memory://", cache_bytes=1 << 20)
    with pytest.raises(InvalidArgumentError):
        open_blobstore("memory://", cache_bytes=-1)


def test_open_blobstore_local(tmp_path: Path) -> None:
    with open_blobstore("memory://") as mem:
        assert isinstance(mem, MemoryBlobStore)
    with open_blobstore(f"lmdb://{tmp_path}/b") as disk:
        cid, data = block(b"on disk")
        disk.put(cid, data)
        assert disk.get(cid) == data
