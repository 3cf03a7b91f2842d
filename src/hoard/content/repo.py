"""The content store: datasets, block refcounts, pending writes, quota and expiry.

Tables it owns in the BlockStore:
  datasets  manifest CID -> {"pinned", "expires", "added", "size"} (CBOR)
  refs      block CID -> occurrences referenced by datasets and file versions (u32 BE)
  pending   block CID -> size (u32 BE): written by an upload or fetch not committed yet
  digests   BLAKE3 of a whole dataset's content -> manifest CID (blob lookup)
  counters  b"pending" -> (blocks, bytes) of pending writes

A dataset commits in one batch (manifest, index, refcounts, pending markers cleared), so a
process killed mid-upload leaves only pending blocks, which `recover()` deletes on open.
Quota counts committed bytes (`quotaUsedBytes`) plus pending ones (`quotaReservedBytes`).
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
from hoard.content.manifest import Manifest, iter_index, is_dag
from hoard.errors import InvalidArgumentError, NotFoundError, QuotaExceededError
from hoard.ids.cid import CID
from hoard.store.base import Batch, BlockStore

_U32 = struct.Struct(">I")
_PAIR = struct.Struct(">QQ")


@dataclass(frozen=True)
class DatasetInfo:
    cid: CID
    pinned: bool
    expires: float | None
    added: float
    size: int


@dataclass(frozen=True)
class Space:
    total_blocks: int
    quota_max_bytes: int
    quota_used_bytes: int
    quota_reserved_bytes: int

    def to_json(self) -> dict[str, int]:
        return {"totalBlocks": self.total_blocks, "quotaMaxBytes": self.quota_max_bytes,
                "quotaUsedBytes": self.quota_used_bytes, "quotaReservedBytes": self.quota_reserved_bytes}


class ContentStore:
    """Datasets on top of a BlockStore. Thread-safe: metadata changes are serialised."""

    def __init__(self, store: BlockStore, quota: int, block_ttl: float) -> None:
        self.store = store
        self.quota = quota
        self.block_ttl = block_ttl
        self._lock = threading.RLock()
        self._live: Counter[CID] = Counter()  # pending blocks held by live sessions
        self.recover()

    # -- recovery and accounting -------------------------------------------------
    def recover(self) -> int:
        """Delete blocks left pending by a crashed upload/fetch. Returns how many."""
        with self._lock:
            batch = Batch()
            removed = 0
            for key, _ in self.store.meta_iter("pending"):
                cid = CID(key)
                batch.meta_delete("pending", key)
                if self._refs(cid) == 0:
                    batch.delete(cid)
                    removed += 1
            batch.meta_put("counters", b"pending", _PAIR.pack(0, 0))
            self.store.commit(batch, durable=True)
            return removed

    def _pending_counters(self) -> tuple[int, int]:
        raw = self.store.meta_get("counters", b"pending")
        return _PAIR.unpack(raw) if raw else (0, 0)

    def space(self) -> Space:
        stats = self.store.stats()
        p_blocks, p_bytes = self._pending_counters()
        return Space(stats.blocks - p_blocks, self.quota, stats.bytes - p_bytes, p_bytes)

    def available(self) -> int:
        stats = self.store.stats()
        return self.quota - stats.bytes

    def _refs(self, cid: CID) -> int:
        raw = self.store.meta_get("refs", cid.binary)
        return _U32.unpack(raw)[0] if raw else 0

    # -- pending writes (uploads and fetches in progress) -------------------------
    def write_pending(self, blocks: Iterable[tuple[CID, bytes]]) -> int:
        """Store blocks that are not yet part of a dataset; returns bytes newly stored.

        Blocks already present are not rewritten. Raises QuotaExceededError (storing
        nothing of this call) when the new bytes would exceed the quota.
        """
        with self._lock:
            batch = Batch()
            new_bytes = 0
            new_blocks = 0
            blocks = list(blocks)
            for cid, data in blocks:
                if cid in batch.puts or self.store.has(cid):
                    continue
                batch.put(cid, data)
                batch.meta_put("pending", cid.binary, _U32.pack(len(data)))
                new_bytes += len(data)
                new_blocks += 1
            if batch:
                stats = self.store.stats()
                if stats.bytes + new_bytes > self.quota:
                    raise QuotaExceededError(
                        f"storage quota exceeded: {stats.bytes} bytes used of {self.quota}, "
                        f"{new_bytes} more needed", quota=self.quota, used=stats.bytes, needed=new_bytes)
                p_blocks, p_bytes = self._pending_counters()
                batch.meta_put("counters", b"pending", _PAIR.pack(p_blocks + new_blocks, p_bytes + new_bytes))
                self.store.commit(batch)
            for cid, _ in blocks:
                self._live[cid] += 1
            return new_bytes

    def _release(self, cid: CID) -> None:
        self._live[cid] -= 1
        if self._live[cid] <= 0:
            del self._live[cid]

    def abandon(self, cids: Iterable[CID]) -> None:
        """Give up pending blocks held by a cancelled session; unreferenced ones are deleted."""
        with self._lock:
            batch = Batch()
            p_blocks, p_bytes = self._pending_counters()
            for cid in cids:
                self._release(cid)
                if cid in self._live or self._refs(cid) > 0:
                    continue
                marker = self.store.meta_get("pending", cid.binary)
                if marker is not None:
                    size = _U32.unpack(marker)[0]
                    batch.delete(cid)
                    batch.meta_delete("pending", cid.binary)
                    p_blocks -= 1
                    p_bytes -= size
            if batch:
                batch.meta_put("counters", b"pending", _PAIR.pack(max(p_blocks, 0), max(p_bytes, 0)))
                self.store.commit(batch)

    # -- datasets ----------------------------------------------------------------
    def commit_dataset(self, manifest: Manifest, index_nodes: list[tuple[CID, bytes]],
                       blocks: list[CID], held: Iterable[CID], pinned: bool = True) -> CID:
        """Commit a dataset whose data blocks are stored: manifest, index, refs, all at once.

        `blocks` lists the data blocks (repeats are fine); `held` the pending CIDs the
        session holds (released here). The commit is durable when it returns.

        A dataset holds one reference to each distinct block, index node and its manifest,
        however often the dataset repeats them (so the work and the counts stay bounded).
        """
        manifest_cid, manifest_bytes = manifest.encode()
        with self._lock:
            batch = Batch()
            existing = self.dataset_info(manifest_cid)
            if existing is None:
                holds = {manifest_cid, *(cid for cid, _ in index_nodes), *blocks}
                for cid, data in [(manifest_cid, manifest_bytes), *index_nodes]:
                    if not self.store.has(cid):
                        batch.put(cid, data)
                for cid in holds:
                    batch.meta_put("refs", cid.binary, _U32.pack(self._refs(cid) + 1))
                info = {"pinned": pinned, "expires": None if pinned else time.time() + self.block_ttl,
                        "added": time.time(), "size": manifest.dataset_size}
                batch.meta_put("datasets", manifest_cid.binary, cbor2.dumps(info))
                batch.meta_put("digests", manifest.digest, manifest_cid.binary)
            elif pinned and not existing.pinned:
                info = {"pinned": True, "expires": None, "added": existing.added, "size": existing.size}
                batch.meta_put("datasets", manifest_cid.binary, cbor2.dumps(info))
            self._settle_pending(batch, held)
            self.store.commit(batch, durable=True)
            return manifest_cid

    def commit_refs(self, batch: Batch, blocks: Iterable[CID], held: Iterable[CID] = ()) -> None:
        """Commit `batch` together with one more reference to each of `blocks` (repeats count).

        For holders of blocks other than datasets (hugo file versions): the blocks are stored
        already (by `write_pending`); `held` are the caller's pending holds, settled and
        released as in `commit_dataset`. A referenced block survives `recover`, `expire` and
        dataset deletes. Durable when it returns.
        """
        with self._lock:
            for cid, n in Counter(blocks).items():
                batch.meta_put("refs", cid.binary, _U32.pack(self._refs(cid) + n))
            self._settle_pending(batch, held)
            self.store.commit(batch, durable=True)

    def _settle_pending(self, batch: Batch, held: Iterable[CID]) -> None:
        """Clear the pending markers of blocks now committed and release the holds on them."""
        held = list(held)
        p_blocks, p_bytes = self._pending_counters()
        for cid in set(held):
            marker = self.store.meta_get("pending", cid.binary)
            if marker is not None:
                batch.meta_delete("pending", cid.binary)
                p_blocks -= 1
                p_bytes -= _U32.unpack(marker)[0]
        batch.meta_put("counters", b"pending", _PAIR.pack(max(p_blocks, 0), max(p_bytes, 0)))
        for cid in held:
            self._release(cid)

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
            if self._refs(cid) > 0:
                raise InvalidArgumentError(
                    f"block {cid} belongs to a stored dataset; delete the dataset instead", cid=str(cid))
            if cid in self._live:
                raise InvalidArgumentError(f"block {cid} is in use by an upload in progress", cid=str(cid))
            batch = Batch().delete(cid)
            marker = self.store.meta_get("pending", cid.binary)
            if marker is not None:
                p_blocks, p_bytes = self._pending_counters()
                batch.meta_delete("pending", cid.binary)
                batch.meta_put("counters", b"pending",
                               _PAIR.pack(max(p_blocks - 1, 0), max(p_bytes - _U32.unpack(marker)[0], 0)))
            self.store.commit(batch, durable=True)
            return "block"

    def _delete_dataset(self, cid: CID) -> None:
        manifest = self.manifest(cid)
        tree = IndexTree(manifest.index, manifest.block_count, manifest.dataset_size)
        lacking = set(tree.load_available(self.store.get_many))  # an incomplete dataset: release what is found
        holds = {cid, *(c for c in tree.node_cids() if c not in lacking), *tree.loaded_blocks()}
        batch = Batch()
        for block in holds:
            left = self._refs(block) - 1
            if left > 0:
                batch.meta_put("refs", block.binary, _U32.pack(left))
            else:
                batch.meta_delete("refs", block.binary)
                if block not in self._live:
                    batch.delete(block)
        batch.meta_delete("datasets", cid.binary)
        if self.manifest_by_digest(manifest.digest) == cid:
            batch.meta_delete("digests", manifest.digest)
        self.store.commit(batch, durable=True)

    def expire(self, now: float | None = None) -> list[CID]:
        """Delete cached (unpinned) datasets whose TTL has passed. Returns their CIDs."""
        now = time.time() if now is None else now
        expired = [d.cid for d in self.datasets() if not d.pinned and d.expires is not None and d.expires <= now]
        with self._lock:
            for cid in expired:
                if self.dataset_info(cid) is not None:
                    self._delete_dataset(cid)
        return expired
