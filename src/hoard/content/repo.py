"""The content store: datasets and block refcounts, on top of the ingest path (`ingest.py`).

Tables it owns in the BlockStore:
  datasets  manifest CID -> {"pinned", "expires", "added", "size"} (CBOR)
  refs      block CID -> holders: one per dataset that uses it (however often), one per
            hugo file-version entry, one if it is kept as a plain block (ingest's `kept`) (u32 BE)
  digests   BLAKE3 of a whole dataset's content -> manifest CID (blob lookup)

Blocks enter only through `self.ingest` (pending → verify → commit, the quota checked once;
its tables are described there). A dataset commits in one durable batch (manifest, index,
refcounts, pending markers cleared), so a process killed mid-upload leaves only pending
blocks, which `Ingest.recover()` deletes on open.
"""

from __future__ import annotations

import struct
import threading
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import cbor2

from hoard.content.index import IndexTree
from hoard.content.ingest import KEPT, Ingest, Space
from hoard.content.manifest import Manifest, is_dag, iter_index
from hoard.errors import InvalidArgumentError, NotFoundError
from hoard.ids.cid import CID
from hoard.store.base import Batch, BlockStore

_U32 = struct.Struct(">I")

__all__ = ["ContentStore", "DatasetInfo", "Space"]


@dataclass(frozen=True)
class DatasetInfo:
    cid: CID
    pinned: bool
    expires: float | None
    added: float
    size: int


class ContentStore:
    """Datasets on top of a BlockStore. Thread-safe: metadata changes are serialised."""

    def __init__(self, store: BlockStore, quota: int, block_ttl: float, abandon_after: float | None = None) -> None:
        """`abandon_after`: seconds after which a durable ingest owner that stopped writing (an
        interrupted transfer) loses its pending blocks; `block_ttl` by default."""
        self.store = store
        self.block_ttl = block_ttl
        self._lock = threading.RLock()
        self.ingest = Ingest(self, quota, block_ttl if abandon_after is None else abandon_after)
        self.ingest.recover()

    @property
    def quota(self) -> int:
        return self.ingest.quota

    def recover(self) -> int:
        """Delete blocks left pending by a crashed writer (see `Ingest.recover`). Returns how many."""
        return self.ingest.recover()

    def space(self) -> Space:
        return self.ingest.space()

    def available(self) -> int:
        """Bytes that may still be stored (quota less used, pending and reserved bytes)."""
        return self.ingest.free()

    def _refs(self, cid: CID) -> int:
        raw = self.store.meta_get("refs", cid.binary)
        return _U32.unpack(raw)[0] if raw else 0

    # -- datasets ----------------------------------------------------------------
    def _dataset_batch(self, batch: Batch, manifest_cid: CID, manifest: Manifest,
                       writes: list[tuple[CID, bytes]], node_cids: Iterable[CID], blocks: Iterable[CID],
                       pinned: bool) -> None:
        """Add a verified dataset to `batch` (by `IngestSession.commit_dataset`, under the lock).

        A dataset holds one reference to each distinct block, index node and its manifest,
        however often the dataset repeats them (so the work and the counts stay bounded).
        A dataset stored already is only pinned, if asked.
        """
        existing = self.dataset_info(manifest_cid)
        if existing is None:
            for cid, data in writes:
                batch.put(cid, data)
            holds = {manifest_cid, *node_cids, *blocks}
            for cid in holds:
                batch.meta_put("refs", cid.binary, _U32.pack(self._refs(cid) + 1))
            info = {"pinned": pinned, "expires": None if pinned else time.time() + self.block_ttl,
                    "added": time.time(), "size": manifest.dataset_size}
            batch.meta_put("datasets", manifest_cid.binary, cbor2.dumps(info))
            batch.meta_put("digests", manifest.digest, manifest_cid.binary)
        elif pinned and not existing.pinned:
            info = {"pinned": True, "expires": None, "added": existing.added, "size": existing.size}
            batch.meta_put("datasets", manifest_cid.binary, cbor2.dumps(info))

    def _add_refs(self, batch: Batch, counts: Counter[CID]) -> None:
        """One more reference per occurrence in `counts` (hugo file versions), in `batch`."""
        for cid, n in counts.items():
            batch.meta_put("refs", cid.binary, _U32.pack(self._refs(cid) + n))

    def dataset_info(self, cid: CID) -> DatasetInfo | None:
        raw = self.store.meta_get("datasets", cid.binary)
        if raw is None:
            return None
        info = cbor2.loads(raw)
        return DatasetInfo(cid, info["pinned"], info["expires"], info["added"], info["size"])

    def datasets(self) -> Iterator[DatasetInfo]:
        for key, raw in self.store.meta_iter("datasets"):
            info = cbor2.loads(raw)
            yield DatasetInfo(CID(key), info["pinned"], info["expires"], info["added"], info["size"])

    def manifest(self, cid: CID) -> Manifest:
        """The manifest stored under `cid` (NotFoundError if absent, IntegrityError if not one)."""
        if not is_dag(cid):
            raise InvalidArgumentError(f"{cid} is a raw block, not a manifest", cid=str(cid))
        data = self.store.get(cid)
        if data is None:
            raise NotFoundError(f"manifest {cid} not found in local store", cid=str(cid))
        return Manifest.decode(data, cid)

    def manifest_by_digest(self, digest: bytes) -> CID | None:
        raw = self.store.meta_get("digests", digest)
        return None if raw is None else CID(raw)

    def iter_blocks(self, manifest: Manifest, start_block: int = 0) -> Iterator[tuple[CID, int]]:
        return iter_index(manifest.index, self.store.get, start_block)

    def delete(self, cid: CID) -> str:
        """Delete a dataset (by manifest CID) or an unreferenced single block.

        Blocks still referenced by another dataset survive. Returns "dataset" or "block".
        """
        with self._lock:
            info = self.dataset_info(cid)
            if info is not None:
                self._delete_dataset(cid)
                return "dataset"
            if not self.store.has(cid):
                raise NotFoundError(f"{cid} not found in local store", cid=str(cid))
            kept = self.store.meta_get(KEPT, cid.binary) is not None
            if self._refs(cid) > (1 if kept else 0):
                raise InvalidArgumentError(
                    f"block {cid} belongs to a stored dataset; delete the dataset instead", cid=str(cid))
            batch = Batch()
            mark = self.ingest._mark(batch, cid)
            if cid in self.ingest._live or (mark is not None and mark[1] > 0):
                raise InvalidArgumentError(f"block {cid} is in use by an upload or transfer in progress",
                                           cid=str(cid))
            batch.delete(cid)
            if kept:
                batch.meta_delete(KEPT, cid.binary)
                batch.meta_delete("refs", cid.binary)
            self.ingest._settle(batch, [cid])
            self.ingest._commit(batch, durable=True)
            return "block"

    def _delete_dataset(self, cid: CID) -> None:
        manifest = self.manifest(cid)
        tree = IndexTree(manifest.index, manifest.block_count, manifest.dataset_size)
        lacking = set(tree.load_available(self.store.get_many))  # an incomplete dataset: release what is found
        holds = {cid, *(c for c in tree.node_cids() if c not in lacking), *tree.loaded_blocks()}
        batch = Batch()
        gone, held = [], []
        for block in holds:
            left = self._refs(block) - 1
            if left > 0:
                batch.meta_put("refs", block.binary, _U32.pack(left))
            else:
                batch.meta_delete("refs", block.binary)
                if block in self.ingest._live:
                    held.append(block)
                else:
                    batch.delete(block)
                    gone.append(block)
        self.ingest._settle(batch, gone)  # a pending marker of a block that goes goes with it
        self.ingest._unreferenced(batch, held)  # an upload in progress holds it: pending again
        batch.meta_delete("datasets", cid.binary)
        if self.manifest_by_digest(manifest.digest) == cid:
            batch.meta_delete("digests", manifest.digest)
        self.ingest._commit(batch, durable=True)

    def expire(self, now: float | None = None) -> list[CID]:
        """Delete cached (unpinned) datasets whose TTL has passed. Returns their CIDs."""
        now = time.time() if now is None else now
        expired = [d.cid for d in self.datasets() if not d.pinned and d.expires is not None and d.expires <= now]
        with self._lock:
            for cid in expired:
                if self.dataset_info(cid) is not None:
                    self._delete_dataset(cid)
        self.ingest.expire_owners(now)
        return expired
