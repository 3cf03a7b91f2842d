"""Block storage: the `BlockStore` interface and its backends, opened by URL.

`open_blockstore("memory://")` or `open_blockstore("lmdb:///path/to/dir")` (a bare path means
LMDB). Backends are private sibling modules re-exported here.
"""

from __future__ import annotations

from pathlib import Path

from hoard.errors import InvalidArgumentError
from hoard.store._lmdb import LmdbBlockStore
from hoard.store._memory import MemoryBlockStore
from hoard.store.base import Batch, BlockStore, StoreStats

__all__ = ["Batch", "BlockStore", "LmdbBlockStore", "MemoryBlockStore", "StoreStats", "open_blockstore"]


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
