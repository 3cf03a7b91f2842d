"""Committing a unit of work across the two stores: blocks in a `BlobStore`, records in a `Catalog`.

The content layer builds each change as one `Batch` (block puts and deletes, catalog rows).
On a node's local repo both halves are views of one LMDB environment and the batch commits
in one transaction (`Ingest._commit`). With blocks elsewhere (an S3 bucket) no transaction
spans the two, and `commit_split` orders the work so that a crash at any point leaves at most
orphan blocks, never a catalog record naming a missing block:

1. the new blocks are held (`BlobStore.hold`), written, and confirmed present (a block another
   node deleted meanwhile is written again);
2. the catalog commits the rows, with a `sizes` row per block this node now stores and the
   `stored` counter (what the quota and `space` count: the bucket's own totals are every
   node's);
3. the blocks the batch dropped are released (`BlobStore.release`: deleted unless another
   node still holds them).

A crash between 1 and 2 leaves blocks held but unrecorded: `Ingest.sweep_orphans` (run when a
node opens its repo, and by its maintenance every `block-mi`) releases every held block
without a `sizes` row.
A crash between 2 and 3 leaves a released reference held: the same sweep finds it.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Sequence

from hoard.errors import StateError
from hoard.ids.cid import CID
from hoard.store.base import Batch, StoreStats
from hoard.store.blobs import BlobStore, BlockData
from hoard.store.catalog import Catalog, CatalogBatch

__all__ = ["COUNTERS", "SIZES", "STORED", "as_batch", "claim_blocks", "commit_split", "record_blocks", "stored_counter",
           "write_blocks"]

COUNTERS = "counters"
SIZES = "sizes"  # split stores only: block CID -> size u32 BE, for every block this node stores
STORED = b"stored"  # in COUNTERS: blocks u64, bytes u64 (split stores only)
WRITE_ATTEMPTS = 3  # confirm rounds before a block that keeps vanishing fails the write

_U32 = struct.Struct(">I")
_PAIR = struct.Struct(">QQ")


def as_batch(batch: Batch | CatalogBatch) -> Batch:
    """A content `Batch` of `batch` (catalog rows only, from a `CatalogBatch`)."""
    return Batch(meta=dict(batch.rows)) if isinstance(batch, CatalogBatch) else batch


def stored_counter(catalog: Catalog, rows: dict[tuple[str, bytes], bytes | None] | None = None) -> StoreStats:
    """Blocks and bytes this node stores, as the catalog (and `rows` about to commit) say."""
    raw = rows.get((COUNTERS, STORED)) if rows and (COUNTERS, STORED) in rows else catalog.get(COUNTERS, STORED)
    return StoreStats(*_PAIR.unpack(raw)) if raw else StoreStats(0, 0)


def write_blocks(blobs: BlobStore, items: Sequence[tuple[CID, BlockData]]) -> list[CID]:
    """Hold, write and confirm `items` (step 1); returns their CIDs. StateError if a block keeps
    being deleted by another node as fast as it is written."""
    if not items:
        return []
    data = dict(items)
    cids = list(data)
    blobs.hold(cids)
    blobs.put_many(items)
    for _ in range(WRITE_ATTEMPTS):
        lost = blobs.confirm(cids)
        if not lost:
            return cids
        blobs.put_many([(cid, data[cid]) for cid in lost])
    raise StateError(f"{len(lost)} block(s) were deleted from the store as they were written, e.g. {lost[0]}",
                     cid=str(lost[0]))


def record_blocks(catalog: Catalog, rows: dict[tuple[str, bytes], bytes | None],
                  added: dict[CID, int], dropped: Iterable[CID]) -> list[CID]:
    """Add to `rows` the `sizes` rows and `stored` counter for blocks this node now stores
    (`added`: CID -> size) and no longer stores (`dropped`); returns the dropped ones it did
    store (to release after the commit)."""
    stats = stored_counter(catalog, rows)
    blocks, nbytes = stats.blocks, stats.bytes

    def recorded(cid: CID) -> bytes | None:
        key = (SIZES, cid.binary)
        return rows[key] if key in rows else catalog.get(SIZES, cid.binary)

    for cid, size in added.items():
        if recorded(cid) is None:
            rows[(SIZES, cid.binary)] = _U32.pack(size)
            blocks += 1
            nbytes += size
    released = []
    for cid in dropped:
        raw = recorded(cid)
        if raw is not None:
            rows[(SIZES, cid.binary)] = None
            blocks -= 1
            nbytes -= _U32.unpack(raw)[0]
            released.append(cid)
    if (blocks, nbytes) != (stats.blocks, stats.bytes):
        rows[(COUNTERS, STORED)] = _PAIR.pack(max(blocks, 0), max(nbytes, 0))
    return released


def commit_split(blobs: BlobStore, catalog: Catalog, batch: Batch, durable: bool, written: set[CID]) -> None:
    """Steps 1-3 for `batch` (the caller serialises commits). `written`: blocks of `batch.puts`
    that `write_blocks` (or `claim_blocks`) stored or confirmed already."""
    rows = dict(batch.meta)
    released = record_blocks(catalog, rows, {cid: len(data) for cid, data in batch.puts.items()}, batch.deletes)
    write_blocks(blobs, [(cid, data) for cid, data in batch.puts.items() if cid not in written])
    if durable:
        blobs.sync()
    catalog.commit(CatalogBatch(rows), durable=durable)
    if released:
        blobs.release(released)


def claim_blocks(blobs: BlobStore, cids: Sequence[CID]) -> list[CID]:
    """Hold blocks another node wrote to a shared store and check they are there (step 1
    without the writes); returns the missing ones, whose holds are given up again."""
    if not cids:
        return []
    blobs.hold(cids)
    lost = blobs.confirm(cids)
    if lost:
        blobs.release(cids)
    return lost


def recorded_cids(catalog: Catalog) -> Iterable[CID]:
    """Every block the catalog records as stored (split stores)."""
    return (CID(key) for key, _ in catalog.scan(SIZES))
