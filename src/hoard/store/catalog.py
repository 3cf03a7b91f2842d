"""The `Catalog` interface: a node's transactional metadata tables, committed atomically.

The catalog is the node's own record of what it stores: datasets, block references, writes in
progress, logs, transfer channels, files. It stays on the node's disk (LMDB) whatever holds
the blocks, because a bucket cannot commit several keys atomically. A `commit` applies a
`CatalogBatch` all-or-nothing: after a crash either all of it is there or none of it.

Tables are named by short strings and hold bytes keys and values; each layer above owns its
tables and their encodings. The tables in use (owner → tables):

  content/repo.py     datasets, refs, digests
  content/ingest.py   pending, holds, owners, kept, counters
  files/store.py      file_heads, file_versions, file_blocks, file_windows
  logs/store.py       logs, logtails, records
  transfer/storage.py transfer-channels, transfer-cids, transfer-config, transfer-finished

The LMDB catalog keeps table `t` in the named database `m:t` of the repo's LMDB environment,
the layout the single-store `BlockStore` has always used, so existing repos open unchanged
(see `_local.py`). A missing key is `None` here; the layers above decide what that means.
"""

from __future__ import annotations

import abc
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Self

from hoard.errors import InvalidArgumentError

__all__ = ["Catalog", "CatalogBatch", "check_table"]

_MAX_TABLE = 64


def check_table(table: str) -> str:
    """`table` if it is a valid table name (1-64 printable ASCII characters, no spaces)."""
    if not isinstance(table, str) or not 0 < len(table) <= _MAX_TABLE \
            or not all("!" <= ch <= "~" for ch in table):
        raise InvalidArgumentError(f"bad catalog table name {table!r}", table=repr(table))
    return table


@dataclass
class CatalogBatch:
    """Row writes to apply atomically; a later write of the same row wins."""

    rows: dict[tuple[str, bytes], bytes | None] = field(default_factory=dict)

    def put(self, table: str, key: bytes, value: bytes) -> CatalogBatch:
        """Set `table[key] = value`."""
        self.rows[(check_table(table), bytes(key))] = bytes(value)
        return self

    def delete(self, table: str, key: bytes) -> CatalogBatch:
        """Remove `table[key]` (a no-op if absent)."""
        self.rows[(check_table(table), bytes(key))] = None
        return self

    def __bool__(self) -> bool:
        return bool(self.rows)


class Catalog(abc.ABC):
    """Named tables of bytes rows with atomic batched commits. Thread-safe: readers run
    concurrently with one writer; commits are serialised by the backend."""

    supports_durability: bool = False  # commit(..., durable=True) survives power loss

    @abc.abstractmethod
    def get(self, table: str, key: bytes) -> bytes | None:
        """The row's value, or None."""

    @abc.abstractmethod
    def scan(self, table: str, prefix: bytes = b"") -> Iterator[tuple[bytes, bytes]]:
        """(key, value) rows of `table` whose key starts with `prefix`, in key order.
        A snapshot: safe to commit while iterating."""

    @abc.abstractmethod
    def commit(self, batch: CatalogBatch, durable: bool = False) -> None:
        """Apply `batch` atomically. With `durable=True`, it and every commit before it are
        on stable storage when this returns, where the backend supports it."""

    @abc.abstractmethod
    def close(self) -> None:
        """Release resources. Idempotent."""

    # -- defaults -------------------------------------------------------------------
    def sync(self) -> None:
        """Flush every commit so far to stable storage. Default: one empty durable commit."""
        self.commit(CatalogBatch(), durable=True)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
