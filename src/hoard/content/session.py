"""Ingest sessions: one writer's pending blocks and how they end (commit, keep, abandon), and
`Admission`, the quota held for accounted metadata. The rules are `ingest.py`'s."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Self

import cbor2

from hoard.content.commit import COUNTERS, as_batch
from hoard.content.index import load_index
from hoard.content.manifest import Manifest
from hoard.content.tables import HOLDS, OWNERS, U32, U64, Blocks, pack_cids
from hoard.errors import InvalidArgumentError, NotFoundError, StateError
from hoard.ids.cid import CID
from hoard.store.base import Batch
from hoard.store.catalog import CatalogBatch

if TYPE_CHECKING:
    from hoard.content.ingest import Ingest

__all__ = ["Admission", "IngestSession"]


class Admission:
    """Room for accounted metadata, held under the ingest lock (see `Ingest.admit`)."""

    def __init__(self, ingest: Ingest, account: bytes, room: int) -> None:
        self._ingest = ingest
        self._account = account
        self._room = room
        self.taken = 0

    def take(self, nbytes: int) -> None:
        """Count `nbytes` more; QuotaExceededError (nothing counted) if they do not fit."""
        self._ingest._admit(nbytes, self._room - self.taken)
        self.taken += nbytes

    def commit(self, batch: Batch | CatalogBatch, durable: bool = True) -> None:
        """Commit `batch` with the account's counter grown by what was taken."""
        ingest = self._ingest
        batch = as_batch(batch)
        batch.meta_put(COUNTERS, self._account, U64.pack(ingest._account(self._account) + self.taken))
        ingest._commit(batch, durable=durable)


class IngestSession:
    """One writer's pending blocks (see `Ingest.session`). One thread at a time."""

    def __init__(self, ingest: Ingest, owner: str | None, owner_key: bytes | None, reserved: int) -> None:
        self.ingest = ingest
        self.owner = owner
        self.owner_key = owner_key
        self.reserved = reserved
        self.held: list[CID] = []  # in-memory holds, with repeats (released one for one)
        self.closed = False
        self.removed = 0  # blocks reclaimed when it ended
        self._seq: int | None = None

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        if not self.closed:
            self.abandon()

    def _check_open(self) -> None:
        if self.closed:
            what = f"ingest session of {self.owner}" if self.owner else "ingest session"
            raise StateError(f"the {what} has ended")

    def _record(self, batch: Batch, cids: list[CID]) -> None:
        """Append durable holds on `cids` (and touch the owner) in `batch`. Under the lock."""
        key = self.owner_key
        assert key is not None
        if self._seq is None:
            rows = [row for row, _ in self.ingest.catalog.scan(HOLDS, key + b"\x00")]
            self._seq = U32.unpack(rows[-1][-4:])[0] + 1 if rows else 0
        batch.meta_put(HOLDS, key + b"\x00" + U32.pack(self._seq), pack_cids(cids))
        batch.meta_put(OWNERS, key, cbor2.dumps({"touched": time.time()}))
        self._seq += 1

    # -- pending --------------------------------------------------------------------------
    def reserve(self, nbytes: int) -> None:
        """Admit `nbytes` more now and keep them for this session's writes (QuotaExceededError:
        nothing reserved). For a size learnt after the session began (a file's, a Content-Length)."""
        ingest = self.ingest
        with ingest._lock:
            self._check_open()
            ingest._admit(nbytes)
            nbytes = max(nbytes, 0)
            self.reserved += nbytes
            ingest._reserved += nbytes

    def set_reservation(self, nbytes: int) -> None:
        """Keep exactly `nbytes` of room for this session's coming writes: more is admitted
        (QuotaExceededError: the reservation is unchanged), less is released; 0 releases all."""
        ingest = self.ingest
        nbytes = max(nbytes, 0)
        with ingest._lock:
            self._check_open()
            ingest._admit(nbytes - self.reserved)
            ingest._reserved += nbytes - self.reserved
            self.reserved = nbytes

    def write(self, blocks: Blocks, extra: Batch | CatalogBatch | None = None) -> int:
        """Store verified blocks as pending, held by this session; returns the bytes newly stored.

        The caller has checked each block against its CID. Blocks already stored are not
        rewritten (nor counted). Raises QuotaExceededError, storing nothing (`extra`, the
        caller's metadata rows to commit with the blocks, included), when they do not fit in
        this session's reservation plus the free quota.
        """
        self._check_open()
        if not blocks and extra is None:
            return 0
        return self.ingest._write(blocks, self, extra)

    def claim(self, sizes: dict[CID, int]) -> None:
        """Shared stores: take blocks already in the store (another node's; CID -> size) as
        this session's pending blocks without writing them. NotFoundError if any is missing."""
        self._check_open()
        self.ingest._claim(self, sizes)

    # -- endings --------------------------------------------------------------------------
    def commit_dataset(self, manifest: Manifest, index_nodes: Iterable[tuple[CID, bytes]] | None = None, *,
                       pinned: bool = True, cid: CID | None = None) -> CID:
        """Verify and commit a dataset whose blocks are stored; ends the session. Durable.

        Verify: the manifest is canonical (its CID is `cid` when given); the index (from
        `index_nodes`, else from the store) is whole and consistent (`load_index`); every
        block it names is stored. Raises IntegrityError / NotFoundError (nothing committed;
        the session stays open) or QuotaExceededError for the manifest and index bytes.
        """
        self._check_open()
        manifest_cid, manifest_bytes = manifest.encode()
        if cid is not None and cid != manifest_cid:
            raise InvalidArgumentError(f"manifest {cid} is not in hoard's canonical form", cid=str(cid))
        nodes = dict(index_nodes or ())
        ingest = self.ingest

        def get_many(cids: Sequence[CID]) -> list[bytes | None]:
            local = [c for c in cids if c not in nodes]
            found = dict(zip(local, ingest.blobs.get_many(local))) if local else {}
            return [nodes[c] if c in nodes else found[c] for c in cids]

        tree = load_index(manifest.index, manifest.block_count, manifest.dataset_size, get_many)
        node_cids = tree.node_cids()
        wanted = {c: None for c in node_cids if c not in nodes}
        blocks = tree.unique_blocks()
        content = self.ingest.content
        held = set(self.held)  # held blocks cannot go; the others are looked up

        def lacking() -> list[CID]:
            return [c for c in [*wanted, *blocks] if c not in held and not ingest.present(c)]

        seen = self.ingest.deletions
        missing = lacking()  # outside the lock: a big dataset does not stall other writers
        with self.ingest._lock:
            self._check_open()
            if not missing and self.ingest.deletions != seen:
                missing = lacking()  # blocks were deleted meanwhile: look again, under the lock
            if missing:
                raise NotFoundError(f"dataset {manifest_cid} lacks {len(missing)} block(s), e.g. {missing[0]}",
                                    cid=str(manifest_cid))
            writes = [(c, d) for c, d in [(manifest_cid, manifest_bytes), *nodes.items()] if not ingest.present(c)]
            new_bytes = sum(len(d) for _, d in writes)
            from_reserve = min(new_bytes, self.reserved)
            self.ingest._admit(new_bytes - from_reserve)
            self.reserved -= from_reserve
            self.ingest._reserved -= from_reserve
            batch = Batch()
            content._dataset_batch(batch, manifest_cid, manifest, writes, node_cids, blocks, pinned)
            self._finish(batch)
            return manifest_cid

    def commit_refs(self, batch: Batch | CatalogBatch, blocks: Iterable[CID]) -> None:
        """Commit `batch` with one more reference to each of `blocks` (repeats count); ends the
        session. For holders other than datasets (hugo file versions). Durable."""
        with self.ingest._lock:
            self._check_open()
            unit = as_batch(batch)
            self.ingest.content._add_refs(unit, Counter(blocks))
            self._finish(unit)

    def keep(self) -> None:
        """End the session keeping its pending blocks as plain blocks (each holds a reference,
        recorded in `kept`, until `ContentStore.delete` of the block). Durable."""
        self._end(keep=True)

    def abandon(self) -> None:
        """End the session, deleting every pending block only it held. Idempotent."""
        self._end(keep=False)

    def _finish(self, batch: Batch) -> None:
        """Commit `batch` with this session's pending blocks settled: those `batch` references
        lose their marker; any other (a block the dataset does not use) is reclaimed as by
        `abandon`. Ends the session."""
        ingest = self.ingest
        drops: Counter[CID] = Counter({c: 0 for c in self.held})
        if self.owner_key is not None:
            drops.update(ingest._take_owner(batch, self.owner_key))
        used = [c for c in drops if ("refs", c.binary) in batch.meta]
        ingest._settle(batch, used)
        ingest._release_live(self.held)
        self.held = []
        ingest._reclaim(batch, Counter({c: n for c, n in drops.items() if ("refs", c.binary) not in batch.meta}))
        ingest._commit(batch, durable=True)
        self._close()

    def _end(self, *, keep: bool) -> None:
        ingest = self.ingest
        with ingest._lock:
            if self.closed:
                return
            held = self.held
            ingest._release_live(held)
            self.held = []
            batch = Batch()
            if self.owner_key is not None:
                self.removed = ingest._end_durable(batch, self.owner_key, keep)
            if keep:
                ingest._settle(batch, held, keep=True)
            else:
                self.removed += ingest._reclaim(batch, Counter({c: 0 for c in held}))
            if batch:
                ingest._commit(batch, durable=True)
            self._close()

    def _close(self) -> None:
        ingest = self.ingest
        if self.held:
            ingest._release_live(self.held)
            self.held = []
        ingest._reserved -= self.reserved
        self.reserved = 0
        self.closed = True
        if self.owner is not None and ingest._sessions.get(self.owner) is self:
            del ingest._sessions[self.owner]
