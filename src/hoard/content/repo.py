"""The content store: datasets and block refcounts, on top of the ingest path (`ingest.py`).

Tables it owns in the BlockStore:
  datasets  manifest CID -> {"pinned", "expires", "added", "size"} (CBOR); a Logos dataset
            also has "format": "logos" and "parts": [leaf-list part CIDs, in order]
            (content/formats/logos_dataset.py; no "format" means hoard's dag-cbor format)
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
from typing import TYPE_CHECKING

import cbor2

from hoard.content.formats.logos_dataset import is_logos_manifest, join_parts, verified_block_cids
from hoard.content.index import IndexTree, load_index, walk_index
from hoard.content.ingest import KEPT, Ingest, IngestSession, Space
from hoard.content.manifest import Manifest, is_dag
from hoard.errors import IntegrityError, InvalidArgumentError, NotFoundError
from hoard.ids.cid import CID, CODEX_BLOCK, DIGEST_LEN, SHA2_256
from hoard.store import local_views
from hoard.store.base import Batch, BlockStore
from hoard.store.blobs import BlobStore
from hoard.store.catalog import Catalog

if TYPE_CHECKING:  # google.protobuf loads only when a Logos manifest is coded
    from hoard.content.formats.logos_manifest import LogosManifest

_U32 = struct.Struct(">I")

__all__ = ["ContentStore", "DatasetInfo", "Space"]

HOARD = "hoard"
LOGOS = "logos"


@dataclass(frozen=True)
class DatasetInfo:
    cid: CID
    pinned: bool
    expires: float | None
    added: float
    size: int
    format: str = HOARD
    parts: tuple[CID, ...] = ()  # a Logos dataset's leaf-list parts


def _info(cid: CID, raw: bytes) -> DatasetInfo:
    info = cbor2.loads(raw)
    return DatasetInfo(cid, info["pinned"], info["expires"], info["added"], info["size"],
                       info.get("format", HOARD), tuple(CID(p) for p in info.get("parts", ())))


def _info_bytes(info: DatasetInfo, pinned: bool, expires: float | None) -> bytes:
    out: dict[str, object] = {"pinned": pinned, "expires": expires, "added": info.added, "size": info.size}
    if info.format != HOARD:
        out.update({"format": info.format, "parts": [p.binary for p in info.parts]})
    return cbor2.dumps(out)


class ContentStore:
    """Datasets over a blob store and a catalog. Thread-safe: metadata changes are serialised."""

    def __init__(self, blobs: BlobStore | BlockStore, quota: int, block_ttl: float,
                 abandon_after: float | None = None, *, catalog: Catalog | None = None) -> None:
        """Blocks in `blobs` and records in `catalog`; or, without `catalog`, both in the one
        local store `blobs` (memory or a repo's LMDB: its changes commit atomically).

        `abandon_after`: seconds after which a durable ingest owner that stopped writing (an
        interrupted transfer) loses its pending blocks; `block_ttl` by default."""
        self.single: BlockStore | None = None
        if catalog is None:
            if not isinstance(blobs, BlockStore):
                raise TypeError("a BlobStore needs its Catalog")
            self.single = blobs
            blobs, catalog = local_views(blobs)
        elif isinstance(blobs, BlockStore):
            raise TypeError("pass a BlobStore with a Catalog, or one BlockStore alone")
        self.blobs: BlobStore = blobs
        self.catalog: Catalog = catalog
        self.block_ttl = block_ttl
        self._lock = threading.RLock()
        self.ingest = Ingest(self, quota, block_ttl if abandon_after is None else abandon_after)
        self.ingest.recover()

    def sync(self) -> None:
        """Make every write so far durable (blocks, then records)."""
        if self.single is not None:
            self.single.sync()
        else:
            self.blobs.sync()
            self.catalog.sync()

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
        raw = self.catalog.get("refs", cid.binary)
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
            batch.meta_put("datasets", manifest_cid.binary, _info_bytes(existing, True, None))

    def commit_logos(self, session: IngestSession, manifest_cid: CID, manifest_bytes: bytes, manifest: LogosManifest,
                     parts: list[tuple[CID, bytes]], pinned: bool = True) -> CID:
        """Verify and commit a Logos dataset whose blocks `session` stored; ends the session.

        `parts` are its leaf-list parts (`logos_dataset.leaf_parts`); they must give the
        manifest's tree, and every block they name must be stored (NotFoundError, nothing
        committed, the session stays open). The dataset holds one reference to its manifest,
        each part and each distinct block. Durable. A dataset stored already is only pinned (and
        its manifest or parts, if a single-block delete removed them, are stored again).
        """
        from hoard.content.formats.logos_manifest import LogosManifest

        session._check_open()
        LogosManifest.decode(manifest_bytes, manifest_cid)  # the bytes are that CID's manifest
        blocks = dict.fromkeys(verified_block_cids(manifest, join_parts([d for _, d in parts])))
        ingest = session.ingest
        held = set(session.held)
        seen = ingest.deletions
        missing = [c for c in blocks if c not in held and not self.ingest.present(c)]
        with ingest._lock:
            session._check_open()
            if not missing and ingest.deletions != seen:
                missing = [c for c in blocks if c not in held and not self.ingest.present(c)]
            if missing:
                raise NotFoundError(f"dataset {manifest_cid} lacks {len(missing)} block(s), e.g. {missing[0]}",
                                    cid=str(manifest_cid))
            batch = Batch()
            existing = self.dataset_info(manifest_cid)
            # the manifest and parts not stored: new, or deleted singly from a stored dataset (refilled)
            writes = [(c, d) for c, d in [(manifest_cid, manifest_bytes), *parts] if not self.ingest.present(c)]
            new_bytes = sum(len(d) for _, d in writes)
            from_reserve = min(new_bytes, session.reserved)
            ingest._admit(new_bytes - from_reserve)
            session.reserved -= from_reserve
            ingest._reserved -= from_reserve
            for cid, data in writes:
                batch.put(cid, data)
            if existing is None:
                for cid in {manifest_cid, *(c for c, _ in parts), *blocks}:
                    batch.meta_put("refs", cid.binary, _U32.pack(self._refs(cid) + 1))
                info = DatasetInfo(manifest_cid, pinned, None, time.time(), manifest.dataset_size, LOGOS,
                                   tuple(c for c, _ in parts))
                batch.meta_put("datasets", manifest_cid.binary,
                               _info_bytes(info, pinned, None if pinned else time.time() + self.block_ttl))
            elif pinned and not existing.pinned:
                batch.meta_put("datasets", manifest_cid.binary, _info_bytes(existing, True, None))
            session._finish(batch)
            if existing is None and self.blobs.shared:  # for the nodes that adopt it from the store
                self.blobs.publish(manifest_cid, cbor2.dumps({"parts": [c.binary for c, _ in parts]}))
            return manifest_cid

    def adopt(self, cid: CID, pinned: bool = False) -> bool:
        """Shared stores: record dataset `cid`, which another node stored in the shared store, as
        stored here too, reading its manifest and block list from the store and holding its
        blocks there (nothing is copied). True if the dataset is stored here now; False if it
        is not in the store (or this store is private). IntegrityError for a damaged dataset.
        """
        if self.dataset_info(cid) is not None:
            return True
        if not self.blobs.shared or not (is_dag(cid) or is_logos_manifest(cid)):
            return False
        data = self.blobs.get(cid)
        if data is None:
            return False
        with self.ingest.session() as session:
            if is_logos_manifest(cid):
                return self._adopt_logos(session, cid, data, pinned)
            manifest = Manifest.decode(data, cid)
            tree = load_index(manifest.index, manifest.block_count, manifest.dataset_size, self.blobs.get_many)
            nodes = tree.node_cids()
            sizes = {cid: len(data), **tree.unique_blocks()}
            for node, raw in zip(nodes, self.blobs.get_many(nodes), strict=True):
                if raw is None:
                    return False
                sizes[node] = len(raw)
            try:
                session.claim(sizes)
            except NotFoundError:
                return False
            session.commit_dataset(manifest, pinned=pinned, cid=cid)
        return True

    def _adopt_logos(self, session: IngestSession, cid: CID, data: bytes, pinned: bool) -> bool:
        from hoard.content.formats.logos_manifest import LogosManifest

        manifest = LogosManifest.decode(data, cid)
        record = self.blobs.published(cid)
        if record is None:
            return False
        try:
            names = cbor2.loads(record)["parts"]
            part_cids = [CID(bytes(name)) for name in names]
        except Exception as exc:
            raise IntegrityError(f"the store's record of dataset {cid} is damaged: {exc}", cid=str(cid)) from exc
        parts = self.blobs.get_many(part_cids)
        if any(p is None for p in parts):
            return False
        found = [(c, p) for c, p in zip(part_cids, parts, strict=True) if p is not None]
        for part_cid, part in found:
            part_cid.verify(part)
        blocks = verified_block_cids(manifest, join_parts([p for _, p in found]))
        sizes = {cid: len(data), **{c: len(p) for c, p in found}, **dict.fromkeys(blocks, manifest.block_size)}
        try:
            session.claim(sizes)
        except NotFoundError:
            return False
        self.commit_logos(session, cid, data, manifest, found, pinned=pinned)
        return True

    def _add_refs(self, batch: Batch, counts: Counter[CID]) -> None:
        """One more reference per occurrence in `counts` (hugo file versions), in `batch`."""
        for cid, n in counts.items():
            batch.meta_put("refs", cid.binary, _U32.pack(self._refs(cid) + n))

    def dataset_info(self, cid: CID) -> DatasetInfo | None:
        raw = self.catalog.get("datasets", cid.binary)
        return None if raw is None else _info(cid, raw)

    def keep(self, cid: CID) -> None:
        """Pin a cached dataset (no expiry from now on); NotFoundError if it is not stored."""
        with self._lock:
            info = self.dataset_info(cid)
            if info is None:
                raise NotFoundError(f"dataset {cid} is not stored here (fetch it first: hoard fetch)", cid=str(cid))
            if not info.pinned:
                batch = Batch()
                batch.meta_put("datasets", cid.binary, _info_bytes(info, True, None))
                self.ingest._commit(batch, durable=True)

    def datasets(self) -> Iterator[DatasetInfo]:
        for key, raw in self.catalog.scan("datasets"):
            yield _info(CID(key), raw)

    def manifest(self, cid: CID) -> Manifest:
        """The manifest stored under `cid` (NotFoundError if absent, IntegrityError if not one)."""
        if not is_dag(cid):
            raise InvalidArgumentError(f"{cid} is a raw block, not a manifest", cid=str(cid))
        data = self.blobs.get(cid)
        if data is None:
            raise NotFoundError(f"manifest {cid} not found in local store", cid=str(cid))
        return Manifest.decode(data, cid)

    def logos_manifest(self, cid: CID) -> LogosManifest:
        """The Logos manifest stored under `cid` (NotFoundError if absent, IntegrityError if not one)."""
        from hoard.content.formats.logos_manifest import LogosManifest

        if not is_logos_manifest(cid):
            raise InvalidArgumentError(f"{cid} is not a Logos manifest CID", cid=str(cid))
        data = self.blobs.get(cid)
        if data is None:
            raise NotFoundError(f"manifest {cid} not found in local store", cid=str(cid))
        return LogosManifest.decode(data, cid)

    def any_manifest(self, cid: CID) -> Manifest | LogosManifest:
        """The manifest stored under `cid`, in whichever format its CID names."""
        return self.logos_manifest(cid) if is_logos_manifest(cid) else self.manifest(cid)

    def logos_leaves(self, cid: CID) -> bytes | None:
        """The leaf bytes of the stored Logos dataset `cid` (None if it is not one, or a part is missing)."""
        info = self.dataset_info(cid)
        if info is None or info.format != LOGOS:
            return None
        parts = self.blobs.get_many(list(info.parts))
        if any(p is None for p in parts):
            return None
        return join_parts([p for p in parts if p is not None])

    def logos_blocks(self, cid: CID, manifest: LogosManifest | None = None) -> list[CID]:
        """The ordered block CIDs of the stored Logos dataset `cid`, checked against its tree."""
        manifest = manifest or self.logos_manifest(cid)
        leaves = self.logos_leaves(cid)
        if leaves is None:
            raise NotFoundError(f"the block list of dataset {cid} is not in the local store", cid=str(cid))
        return verified_block_cids(manifest, leaves)

    def verify_logos(self, cid: CID) -> tuple[int, int]:
        """Re-read a stored Logos dataset: its manifest against its CID, its block list against
        the treeCid, each distinct block against its CID. Returns (blocks, datasetSize).
        NotFoundError names a missing block; IntegrityError a bad one."""
        manifest = self.logos_manifest(cid)  # checked against its CID
        blocks = self.logos_blocks(cid, manifest)  # checked against the treeCid
        for block in dict.fromkeys(blocks):
            data = self.blobs.get(block)
            if data is None:
                raise NotFoundError(f"block {block} of {cid} is missing", cid=str(block))
            if len(data) != manifest.block_size:
                raise IntegrityError(f"block {block} has {len(data)} bytes, the block size is {manifest.block_size}",
                                     cid=str(block))
            block.verify(data)
        return len(blocks), manifest.dataset_size

    def is_complete(self, cid: CID) -> bool:
        """Whether `cid` is a stored dataset with every block it names in the store (a single
        block deleted makes it incomplete until a fetch stores the block again)."""
        info = self.dataset_info(cid)
        if info is None:
            return False
        if info.format == LOGOS:
            leaves = self.logos_leaves(cid)
            if leaves is None:
                return False
            blocks = {CID.from_digest(CODEX_BLOCK, leaves[i:i + DIGEST_LEN], SHA2_256)
                      for i in range(0, len(leaves), DIGEST_LEN)}
        else:
            manifest = self.manifest(cid)
            tree = IndexTree(manifest.index, manifest.block_count, manifest.dataset_size)
            if tree.load_available(self.blobs.get_many):
                return False
            blocks = set(tree.loaded_blocks())
        return all(self.ingest.present(block) for block in blocks)

    def manifest_by_digest(self, digest: bytes) -> CID | None:
        raw = self.catalog.get("digests", digest)
        return None if raw is None else CID(raw)

    def iter_blocks(self, manifest: Manifest, start_block: int = 0) -> Iterator[tuple[CID, int]]:
        return walk_index(manifest.index, manifest.block_count, manifest.dataset_size, self.blobs.get, start_block)

    def delete(self, cid: CID) -> str:
        """Delete a dataset (by manifest CID) or a single block.

        Blocks still referenced by another dataset survive a dataset's delete. A single block
        is deleted even if datasets use it (as Logos does): they then read as incomplete
        (NotFoundError naming the block) until a fetch stores it again; it keeps their
        references. Refused only while an upload or transfer in progress holds the block.
        Returns "dataset" or "block".
        """
        with self._lock:
            info = self.dataset_info(cid)
            if info is not None:
                self._delete_dataset(cid)
                return "dataset"
            if not self.ingest.present(cid):
                raise NotFoundError(f"{cid} not found in local store", cid=str(cid))
            kept = self.catalog.get(KEPT, cid.binary) is not None
            batch = Batch()
            mark = self.ingest._mark(batch, cid)
            if cid in self.ingest._live or (mark is not None and mark[1] > 0):
                raise InvalidArgumentError(f"block {cid} is in use by an upload or transfer in progress",
                                           cid=str(cid))
            batch.delete(cid)
            if kept:
                batch.meta_delete(KEPT, cid.binary)
                left = self._refs(cid) - 1
                if left > 0:
                    batch.meta_put("refs", cid.binary, _U32.pack(left))
                else:
                    batch.meta_delete("refs", cid.binary)
            self.ingest._settle(batch, [cid])
            self.ingest._commit(batch, durable=True)
            return "block"

    def _logos_holds(self, info: DatasetInfo) -> set[CID]:
        """What a Logos dataset holds references to: its manifest, leaf-list parts and blocks."""
        holds = {info.cid, *info.parts}
        for part in self.blobs.get_many(list(info.parts)):
            if part is not None:  # a missing part: its blocks' references stay (as hoard's lacking index nodes)
                holds.update(CID.from_digest(CODEX_BLOCK, part[i:i + DIGEST_LEN], SHA2_256)
                             for i in range(0, len(part) - len(part) % DIGEST_LEN, DIGEST_LEN))
        return holds

    def _delete_dataset(self, cid: CID) -> None:
        info = self.dataset_info(cid)
        digest = None
        if info is not None and info.format == LOGOS:
            holds = self._logos_holds(info)
        else:
            try:
                manifest = self.manifest(cid)
            except IntegrityError:  # stored before manifests were validated: its manifest block goes
                manifest = None
            if manifest is None:
                holds = {cid}
            else:
                digest = manifest.digest
                tree = IndexTree(manifest.index, manifest.block_count, manifest.dataset_size)
                lacking = set(tree.load_available(self.blobs.get_many))  # incomplete: release what is found
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
                elif self.ingest.present(block):  # a single block deleted earlier is gone already
                    batch.delete(block)
                    gone.append(block)
        self.ingest._settle(batch, gone)  # a pending marker of a block that goes goes with it
        self.ingest._unreferenced(batch, held)  # an upload in progress holds it: pending again
        batch.meta_delete("datasets", cid.binary)
        if digest is not None and self.manifest_by_digest(digest) == cid:
            batch.meta_delete("digests", digest)
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
