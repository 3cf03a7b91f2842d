"""Block storage: the `BlockStore` interface and its backends, opened by URL.

`open_blockstore("memory://")` or `open_blockstore("lmdb:///path/to/dir")` (a bare path means
LMDB). Backends are private sibling modules re-exported here.

The split store (wave 2): a `BlobStore` for blocks and a `Catalog` for the metadata tables.
`open_blobstore(url)` opens `memory://`, `lmdb:///path` or `s3://bucket/prefix?...` (S3 names
and obstore load on first use, keeping `import hoard` light).
"""

from __future__ import annotations

import importlib
import os
from pathlib import Path
from typing import Any

from hoard.errors import InvalidArgumentError
from hoard.store._lmdb import LmdbBlockStore
from hoard.store._local import (
    LmdbBlobStore,
    LmdbCatalog,
    MemoryBlobStore,
    MemoryCatalog,
    local_views,
)
from hoard.store._memory import MemoryBlockStore
from hoard.store.base import Batch, BlockStore, StoreStats
from hoard.store.blobs import BlobStore
from hoard.store.catalog import Catalog, CatalogBatch

__all__ = [
    "Batch", "BlobStore", "BlockStore", "CachedBlobStore", "Catalog", "CatalogBatch", "HoldTiming",
    "LmdbBlobStore", "LmdbBlockStore", "LmdbCatalog", "MemoryBlobStore", "MemoryBlockStore", "MemoryCatalog",
    "S3BlobStore", "S3Settings", "StoreStats", "local_views", "open_blobstore", "open_blockstore",
]

_LAZY = {"CachedBlobStore": "hoard.store._cache", "HoldTiming": "hoard.store._s3",
         "S3BlobStore": "hoard.store._s3", "S3Settings": "hoard.store._s3"}


def __getattr__(name: str) -> Any:
    """The S3 and cache names, imported on first use (obstore costs ~16 ms to import)."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'hoard.store' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


def open_blockstore(url: str) -> BlockStore:
    """Open a backend from a URL: `memory://`, `lmdb:///abs/path`, `lmdb://rel/path` or a bare path."""
    if url == "memory://":
        return MemoryBlockStore()
    if url.startswith("memory:"):
        raise InvalidArgumentError(f"memory:// takes no path or options: {url!r}", url=url)
    if url.startswith("lmdb://"):
        path = url[len("lmdb://"):]
        if not path:
            raise InvalidArgumentError(f"lmdb URL needs a path: {url!r}", url=url)
        return LmdbBlockStore(Path(path))
    if "://" in url:
        raise InvalidArgumentError(f"unknown block store scheme in {url!r} (memory://, lmdb://)", url=url)
    return LmdbBlockStore(Path(url))


def open_blobstore(url: str, *, holder: str | None = None, cache_bytes: int = 0,
                   cache_dir: str | os.PathLike[str] | None = None) -> BlobStore:
    """Open a blob store from a URL: `memory://`, `lmdb:///abs/path` (or `lmdb://rel/path`), or
    `s3://bucket[/prefix]?endpoint=...&region=...&addressing=path|virtual&concurrency=N`
    (credentials from the AWS_* environment variables; unknown options are errors).

    `holder` names this node in a shared bucket's reference markers (its peer ID).
    `cache_bytes` > 0 puts an LRU read cache of that many bytes in front of a remote store:
    on disk (LMDB) under `cache_dir`, or in memory without one.
    """
    if cache_bytes < 0:
        raise InvalidArgumentError(f"cache size must be >= 0, got {cache_bytes}", cache_bytes=cache_bytes)
    if url.startswith("s3:"):
        from hoard.store._cache import CachedBlobStore
        from hoard.store._s3 import S3BlobStore, parse_s3_url

        remote: BlobStore = S3BlobStore(parse_s3_url(url), holder=holder)
        if cache_bytes == 0:
            return remote
        tier: BlobStore = LmdbBlobStore(Path(cache_dir)) if cache_dir is not None else MemoryBlobStore()
        return CachedBlobStore(remote, tier, cache_bytes)
    if cache_bytes or cache_dir is not None:
        raise InvalidArgumentError(f"a read cache only goes in front of a remote store, not {url!r}", url=url)
    if url == "memory://":
        return MemoryBlobStore()
    if url.startswith("memory:"):
        raise InvalidArgumentError(f"memory:// takes no path or options: {url!r}", url=url)
    if url.startswith("lmdb://"):
        path = url[len("lmdb://"):]
        if not path or "?" in path or "#" in path:
            raise InvalidArgumentError(f"lmdb URL needs a path and takes no options: {url!r}", url=url)
        return LmdbBlobStore(Path(path))
    raise InvalidArgumentError(f"unknown blob store URL {url!r} (memory://, lmdb://, s3://)", url=url)
