"""Content stores for tests. The content and files tests run over both shapes of a node's
storage (fixture `store_kind`, tests/conftest.py): one local store (blocks and catalog commit
together) and split stores (blocks in a `BlobStore`, records in a `Catalog`, committed in
order: `hoard.content.commit`)."""

from __future__ import annotations

from typing import Any

from hoard.content import ContentStore
from hoard.store import MemoryBlobStore, MemoryBlockStore, MemoryCatalog


def make_content(kind: str, **options: Any) -> ContentStore:
    """A ContentStore on memory stores of `kind`."""
    if kind == "split":
        return ContentStore(MemoryBlobStore(), catalog=MemoryCatalog(), **options)
    return ContentStore(MemoryBlockStore(), **options)


def reopen(content: ContentStore, **options: Any) -> ContentStore:
    """A new ContentStore on the same stores, as after a restart."""
    if content.single is not None:
        return ContentStore(content.single, **options)
    return ContentStore(content.blobs, catalog=content.catalog, **options)
