"""The one ingest path: every way data enters the store goes pending → verify → commit, and
the storage quota is checked in one place (`Ingest._admit`).

```python
session = content.ingest.session(reserve=n)                 # an upload, a fetch, a file write
session = content.ingest.session(owner="transfer/<chid>")   # a transfer channel: survives a restart
session.write(blocks)                       # quota checked, then stored *pending*, held by the session
cid = session.commit_dataset(manifest, index_nodes)   # verify (index whole, every block there), commit
session.commit_refs(batch, cids)            # or: references of another holder (hugo file versions)
session.keep()                              # or: keep the blocks, unreferenced (a transfer of no dataset)
session.abandon()                           # or: reclaim every block only this session held
```

**Quota.** Used space is the bytes of every stored block (committed or pending), plus the
bytes of accounted metadata (log records: `admit()`), plus the reservations of open sessions
(`session(reserve=n)`: space promised before the data arrives, released as it is written or
when the session ends). `_admit` refuses with QuotaExceededError *before* anything is stored.

**Holds.** A session holds what it wrote, in memory: a dataset delete or another session's
abandon never removes a block a live session holds. A session with an `owner` holds its
pending blocks **durably** instead (no memory per block, however long the transfer): the CIDs
are recorded under the owner in the same commit as the blocks, and the block's pending marker
counts its durable holders. Blocks such a session found committed already are not held: if
their dataset is deleted meanwhile, the verification at its commit reports them missing.

**Crash safety.** Blocks and their pending markers commit together; a dataset's manifest,
index, references and the clearing of its markers commit together, durably. On open,
`recover()` reclaims every pending block nobody holds durably (the writes of a crashed
upload, fetch or file write). Durable holds are left for their owner to settle (a transfer
channel that can resume keeps its blocks) and are reclaimed by `expire_owners` once the
owner has not written for `abandon_after` seconds. With blocks and catalog in different
stores (issue 13), blocks are put first and the catalog commit follows: a crash leaves at
most blocks without a marker, never a marker or a dataset without its block. Every block
kept on purpose has a catalog record (a reference, or a pending marker), so an orphan is
exactly a block with neither, and a sweep may delete it.

Tables (in the BlockStore's metadata; the Catalog's, once the store is split):

```
pending   block CID            -> size u32 BE [durable holders u32 BE]
holds     owner 0x00 seq u32   -> (cidlen u8, cid)*     the blocks an owner holds, in chunks
owners    owner                -> CBOR {"touched": unix time of its last write}
kept      block CID            -> b""   the block is kept as a plain block: one of its `refs`
counters  b"pending"           -> blocks u64, bytes u64  (pending blocks)
          b"logs"              -> bytes u64               (accounted log records)
```
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING

import cbor2

from hoard.content.commit import (
    COUNTERS,
    SIZES,
    as_batch,
    claim_blocks,
    commit_split,
    record_blocks,
    stored_counter,
    write_blocks,
)
from hoard.content.session import Admission, IngestSession
from hoard.content.tables import (
    ACCOUNTS,
    HOLDS,
    KEPT,
    LOGS_ACCOUNT,
    MARK,
    OWNERS,
    PAIR,
    PENDING,
    U32,
    U64,
    Blocks,
    Space,
    owner_key,
    unmark,
    unpack_cids,
)
from hoard.errors import (
    InvalidArgumentError,
    NotFoundError,
    QuotaExceededError,
    StateError,
)
from hoard.ids.cid import CID
from hoard.store.base import Batch, StoreStats
from hoard.store.catalog import CatalogBatch

if TYPE_CHECKING:
    from hoard.content.repo import ContentStore

__all__ = ["ACCOUNTS", "HOLDS", "KEPT", "LOGS_ACCOUNT", "OWNERS", "PENDING", "Admission", "Ingest", "IngestSession",
           "Space"]

class Ingest:
    """Quota, pending blocks and holds of one ContentStore (see the module docstring). Thread-safe."""

    def __init__(self, content: ContentStore, quota: int, abandon_after: float) -> None:
        self.content = content
        self.blobs = content.blobs
        self.catalog = content.catalog
        self.quota = quota
        self.abandon_after = abandon_after
        self._single = content.single  # blobs and catalog in one store: atomic commits
        self._lock: threading.RLock = content._lock  # one lock with dataset commits and deletes
        self._live: Counter[CID] = Counter()  # in-memory holds of open sessions
        self._inflight: Counter[CID] = Counter()  # split stores: written, not yet recorded
        self._reserved = 0  # bytes promised to open sessions, not written yet
        self._sessions: dict[str, IngestSession] = {}  # open durable sessions by owner
        self.deletions = 0  # commits that deleted blocks (a verification older than one is redone)

    @property
    def reserved(self) -> int:
        """Bytes promised to open sessions and not written yet (they count against the quota)."""
        with self._lock:
            return self._reserved

    def _commit(self, batch: Batch | CatalogBatch, durable: bool = False, *, written: Iterable[CID] = ()) -> None:
        """Apply one unit of work (under the lock), counting commits that delete blocks.

        One store (the local repo): one atomic transaction. Split stores: blocks first (held,
        written, confirmed), then the catalog commit, then the blocks it dropped are released
        (`commit.py`). `written`: blocks of `batch.puts` stored already by `write_blocks`.
        """
        batch = as_batch(batch)
        if self._single is not None:
            self._single.commit(batch, durable=durable)
        else:
            commit_split(self.blobs, self.catalog, batch, durable, set(written))
        if batch.deletes:
            self.deletions += 1

    def present(self, cid: CID) -> bool:
        """Whether this node stores block `cid` (split stores: its catalog records it)."""
        if self._single is not None:
            return self._single.has(cid)
        return self.catalog.get(SIZES, cid.binary) is not None

    def present_many(self, cids: Sequence[CID]) -> list[bool]:
        """`present` of several blocks (one read transaction on one store)."""
        if self._single is not None:
            return self._single.has_many(cids)
        return [self.catalog.get(SIZES, cid.binary) is not None for cid in cids]

    def size(self, cid: CID) -> int | None:
        """The size of a block this node stores, or None."""
        if self._single is not None:
            return self._single.size_of(cid)
        raw = self.catalog.get(SIZES, cid.binary)
        return None if raw is None else U32.unpack(raw)[0]

    def stored(self) -> StoreStats:
        """Blocks and bytes this node stores (committed and pending). O(1)."""
        if self._single is not None:
            return self._single.stats()
        return stored_counter(self.catalog)

    # -- the quota: the one check --------------------------------------------------------
    def _room(self) -> int:
        """Bytes that may still be stored (negative when over). Call under the lock."""
        used = self.stored().bytes + sum(self._account(a) for a in ACCOUNTS)
        return self.quota - used - self._reserved

    def _admit(self, needed: int, room: int | None = None) -> None:
        """Refuse `needed` more bytes unless they fit. The only quota check. Under the lock."""
        if needed <= 0:
            return
        room = self._room() if room is None else room
        if needed > room:
            raise QuotaExceededError(
                f"storage quota exceeded: {needed} more bytes needed but only {max(room, 0)} of "
                f"{self.quota} are free", quota=self.quota, needed=needed, available=max(room, 0))

    def check(self, nbytes: int) -> None:
        """Refuse (QuotaExceededError) `nbytes` that would not fit now; reserves nothing.

        For an early answer only (a declared upload size): the bytes themselves are admitted
        when written. Prefer `session(reserve=nbytes)`, which also keeps the room.
        """
        with self._lock:
            self._admit(nbytes)

    def free(self) -> int:
        """Bytes that may still be stored."""
        with self._lock:
            return self._room()

    def _account(self, name: bytes) -> int:
        raw = self.catalog.get(COUNTERS, name)
        return U64.unpack(raw)[0] if raw else 0

    def _pending_counters(self) -> tuple[int, int]:
        raw = self.catalog.get(COUNTERS, b"pending")
        return PAIR.unpack(raw) if raw else (0, 0)

    def space(self) -> Space:
        with self._lock:
            stats = self.stored()
            p_blocks, p_bytes = self._pending_counters()
            accounted = sum(self._account(a) for a in ACCOUNTS)
            return Space(stats.blocks - p_blocks, self.quota, stats.bytes - p_bytes + accounted,
                         p_bytes + self._reserved)

    # -- accounted metadata (log records) ------------------------------------------------
    @contextmanager
    def admit(self, account: bytes = LOGS_ACCOUNT) -> Iterator[Admission]:
        """Hold the quota while a caller builds a metadata batch whose bytes count (log records).

        `take(n)` refuses (QuotaExceededError) what does not fit; `commit(batch)` commits the
        batch with the account's counter, so the bytes and the count land together.
        """
        if account not in ACCOUNTS:
            raise InvalidArgumentError(f"unknown quota account {account!r}")
        with self._lock:
            yield Admission(self, account, self._room())

    def ensure_account(self, account: bytes, measure: Callable[[], int]) -> None:
        """Start counting `account` (once per store): its counter is set to `measure()`."""
        with self._lock:
            if self.catalog.get(COUNTERS, account) is None:
                self._commit(CatalogBatch().put(COUNTERS, account, U64.pack(measure())), durable=True)

    # -- sessions -------------------------------------------------------------------------
    def session(self, owner: str | None = None, reserve: int = 0) -> IngestSession:
        """A new ingest session; with `owner`, its pending blocks are held durably under that name
        (an existing owner's holds are taken over, from disk or from an open session of the
        same owner, which is closed: a channel resuming after a restart).

        `reserve` bytes are admitted now (QuotaExceededError: nothing happened) and kept for
        this session's writes until it ends.
        """
        key = None if owner is None else owner_key(owner)
        with self._lock:
            previous = None if owner is None else self._sessions.get(owner)
            if previous is not None:
                previous._close()  # taken over: its durable holds pass to the new session
            if reserve:
                self._admit(reserve)
                self._reserved += reserve
            session = IngestSession(self, owner, key, reserve)
            if owner is not None:
                self._sessions[owner] = session
            return session

    def has_owner(self, owner: str) -> bool:
        return self.catalog.get(OWNERS, owner_key(owner)) is not None

    def owners(self) -> dict[str, float]:
        """Every durable owner with the time of its last write."""
        return {k.decode(): float(cbor2.loads(v)["touched"]) for k, v in self.catalog.scan(OWNERS)}

    def release_owner(self, owner: str, *, keep: bool) -> int:
        """End an owner's holds (an open session of it is closed): its pending blocks are kept as
        plain blocks (`keep`) or reclaimed unless someone else holds them. Returns the blocks
        removed. Idempotent; a no-op for an unknown owner."""
        with self._lock:
            session = self._sessions.get(owner)
            if session is not None and not session.closed:
                session._end(keep=keep)
                return session.removed
            batch = Batch()
            removed = self._end_durable(batch, owner_key(owner), keep)
            if batch:
                self._commit(batch, durable=True)
            return removed

    def expire_owners(self, now: float | None = None) -> list[str]:
        """Reclaim the holds of owners that have not written for `abandon_after` seconds."""
        now = time.time() if now is None else now
        stale = [o for o, touched in self.owners().items() if touched + self.abandon_after <= now]
        for owner in stale:
            self.release_owner(owner, keep=False)
        return stale

    # -- recovery -------------------------------------------------------------------------
    def recover(self) -> int:
        """Reclaim pending blocks nobody holds durably (a crashed process's writes). Returns how
        many blocks were deleted. The pending counters are recounted."""
        with self._lock:
            batch = Batch()
            removed = kept_blocks = kept_bytes = 0
            for key, raw in self.catalog.scan(PENDING):
                size, durable = unmark(raw)
                cid = CID(key)
                if durable > 0 and self.present(cid):
                    kept_blocks += 1
                    kept_bytes += size
                    continue
                batch.meta_delete(PENDING, key)
                if self.content._refs(cid) == 0 and self.present(cid):
                    batch.delete(cid)
                    removed += 1
            batch.meta_put(COUNTERS, b"pending", PAIR.pack(kept_blocks, kept_bytes))
            self._commit(batch, durable=True)
            return removed + self.sweep_orphans()

    # -- primitives (under the lock) ------------------------------------------------------
    def _meta(self, batch: Batch, table: str, key: bytes) -> bytes | None:
        """A metadata value as `batch` will leave it."""
        if (table, key) in batch.meta:
            return batch.meta[(table, key)]
        return self.catalog.get(table, key)

    def _mark(self, batch: Batch, cid: CID) -> tuple[int, int] | None:
        raw = self._meta(batch, PENDING, cid.binary)
        return None if raw is None else unmark(raw)

    def _put_mark(self, batch: Batch, cid: CID, size: int, holders: int) -> None:
        batch.meta_put(PENDING, cid.binary, MARK.pack(size, holders) if holders else U32.pack(size))

    def _counters(self, batch: Batch) -> tuple[int, int]:
        raw = self._meta(batch, COUNTERS, b"pending")
        return PAIR.unpack(raw) if raw else (0, 0)

    def _set_counters(self, batch: Batch, blocks: int, nbytes: int) -> None:
        batch.meta_put(COUNTERS, b"pending", PAIR.pack(max(blocks, 0), max(nbytes, 0)))

    def _write(self, blocks: Blocks, session: IngestSession, extra: Batch | CatalogBatch | None) -> int:
        written: list[CID] = []
        if self._single is None:  # split stores: the slow part (the bucket) runs outside the lock
            with self._lock:
                session._check_open()
                stored = self.present_many([cid for cid, _ in blocks])
                fresh = [(cid, data) for (cid, data), there in zip(blocks, stored, strict=True) if not there]
                self._admit(sum(len(d) for _, d in fresh) - session.reserved)  # early: before uploading
            self._inflight.update(cid for cid, _ in fresh)
            try:
                written = write_blocks(self.blobs, fresh)
            except BaseException:
                self._inflight.subtract(cid for cid, _ in fresh)
                raise
        try:
            return self._write_locked(blocks, session, extra, written)
        except BaseException:
            if written:
                with self._lock:  # the catalog never recorded them: give them up
                    orphans = [c for c in written if not self.present(c)]
                self.blobs.release(orphans)
            raise
        finally:
            if written:
                with self._lock:
                    self._inflight.subtract(written)
                    self._inflight += Counter()  # drop the zeros

    def _claim(self, session: IngestSession, sizes: dict[CID, int]) -> None:
        """Split stores: blocks another node wrote to the shared store become this session's
        pending blocks (held in the store and recorded, not written again)."""
        if self._single is not None or session.owner_key is not None:
            raise StateError("only an in-memory session on a shared store claims blocks")
        with self._lock:
            session._check_open()
            fresh = {cid: size for cid, size in sizes.items() if not self.present(cid)}
            self._admit(sum(fresh.values()) - session.reserved)
            claimed = list(fresh)
            self._inflight.update(claimed)
        try:
            lost = claim_blocks(self.blobs, claimed)
            if lost:
                raise NotFoundError(f"{len(lost)} block(s) are not in the store, e.g. {lost[0]}", cid=str(lost[0]))
            with self._lock:
                session._check_open()
                fresh = {cid: size for cid, size in fresh.items() if not self.present(cid)}
                new_bytes = sum(fresh.values())
                from_reserve = min(new_bytes, session.reserved)
                self._admit(new_bytes - from_reserve)
                batch = Batch()
                for cid, size in fresh.items():
                    self._put_mark(batch, cid, size, 0)
                p_blocks, p_bytes = self._counters(batch)
                self._set_counters(batch, p_blocks + len(fresh), p_bytes + new_bytes)
                rows = dict(batch.meta)
                record_blocks(self.catalog, rows, fresh, ())
                self.catalog.commit(CatalogBatch(rows))
                session.reserved -= from_reserve
                self._reserved -= from_reserve
                self._live.update(list(sizes))
                session.held.extend(sizes)
        finally:
            with self._lock:
                self._inflight.subtract(claimed)
                self._inflight += Counter()

    def sweep_orphans(self) -> int:
        """Split stores: release the blocks this node holds that its catalog does not record (a
        crash between writing blocks and committing their records). Returns how many. The
        listing runs outside the lock; each candidate is checked again, and released, under it."""
        if self._single is not None:
            return 0
        candidates = [cid for cid in self.blobs.held() if not self.present(cid)]
        if not candidates:
            return 0
        with self._lock:
            orphans = [cid for cid in candidates if cid not in self._inflight and not self.present(cid)]
            if orphans:
                self.blobs.release(orphans)
            return len(orphans)

    def _write_locked(self, blocks: Blocks, session: IngestSession, extra: Batch | CatalogBatch | None,
                      written: list[CID]) -> int:
        with self._lock:
            session._check_open()
            batch = as_batch(extra) if extra is not None else Batch()
            durable = session.owner_key is not None
            new_bytes = new_blocks = 0
            holds: list[CID] = []
            marks: dict[CID, tuple[int, int]] = {}
            stored = self.present_many([cid for cid, _ in blocks])
            for (cid, data), there in zip(blocks, stored, strict=True):
                if there or cid in batch.puts:
                    mark = marks.get(cid) or self._mark(batch, cid)
                    if mark is None or not durable:
                        continue  # committed already, or pending: held in memory below
                else:
                    batch.put(cid, data)
                    new_bytes += len(data)
                    new_blocks += 1
                    mark = (len(data), 0)
                if durable:
                    mark = (mark[0], mark[1] + 1)
                    holds.append(cid)
                marks[cid] = mark
            from_reserve = min(new_bytes, session.reserved)
            self._admit(new_bytes - from_reserve)
            for cid, (size, holders) in marks.items():
                self._put_mark(batch, cid, size, holders)
            if new_blocks:
                p_blocks, p_bytes = self._counters(batch)
                self._set_counters(batch, p_blocks + new_blocks, p_bytes + new_bytes)
            if holds:
                session._record(batch, holds)
            if batch:
                self._commit(batch, written=written)
            session.reserved -= from_reserve
            self._reserved -= from_reserve
            if not durable:  # an owner's holds are on disk: no per-block memory for long transfers
                self._live.update(cid for cid, _ in blocks)
                session.held.extend(cid for cid, _ in blocks)
            return new_bytes

    def _release_live(self, cids: Iterable[CID]) -> None:
        for cid in cids:
            self._live[cid] -= 1
            if self._live[cid] <= 0:
                del self._live[cid]

    def _settle(self, batch: Batch, cids: Iterable[CID], *, keep: bool = False) -> None:
        """Clear the pending markers of `cids`: referenced by what `batch` commits, or (`keep`)
        kept as plain blocks, each holding one reference recorded in `kept`."""
        p_blocks, p_bytes = counters = self._counters(batch)
        for cid in set(cids):
            mark = self._mark(batch, cid)
            if mark is not None:
                batch.meta_delete(PENDING, cid.binary)
                p_blocks -= 1
                p_bytes -= mark[0]
                if keep and self._meta(batch, KEPT, cid.binary) is None:
                    raw = self._meta(batch, "refs", cid.binary)
                    refs = U32.unpack(raw)[0] if raw else 0
                    batch.meta_put("refs", cid.binary, U32.pack(refs + 1))
                    batch.meta_put(KEPT, cid.binary, b"")
        if (p_blocks, p_bytes) != counters:
            self._set_counters(batch, p_blocks, p_bytes)

    def _unreferenced(self, batch: Batch, cids: Iterable[CID]) -> None:
        """Blocks that lost their last reference while a live session holds them: pending again
        (that session's end decides whether they stay)."""
        p_blocks, p_bytes = counters = self._counters(batch)
        for cid in cids:
            size = self.size(cid)
            if size is not None and self._mark(batch, cid) is None:
                self._put_mark(batch, cid, size, 0)
                p_blocks += 1
                p_bytes += size
        if (p_blocks, p_bytes) != counters:
            self._set_counters(batch, p_blocks, p_bytes)

    def _reclaim(self, batch: Batch, drops: Counter[CID]) -> int:
        """Drop durable holds (`drops`: CID -> holds to drop; 0 for an in-memory hold) and delete
        the pending blocks nobody holds any more. Returns how many blocks go."""
        p_blocks, p_bytes = counters = self._counters(batch)
        removed = 0
        for cid, n in drops.items():
            mark = self._mark(batch, cid)
            if mark is None:
                continue  # referenced or kept since, or gone already
            size, holders = mark[0], max(mark[1] - n, 0)
            if holders == 0 and cid not in self._live:
                batch.meta_delete(PENDING, cid.binary)
                p_blocks -= 1
                p_bytes -= size
                if self.content._refs(cid) == 0:  # else a dataset took it meanwhile: it stays
                    batch.delete(cid)
                    removed += 1
            elif holders != mark[1]:
                self._put_mark(batch, cid, size, holders)
        if (p_blocks, p_bytes) != counters:
            self._set_counters(batch, p_blocks, p_bytes)
        return removed

    def _take_owner(self, batch: Batch, key: bytes) -> Counter[CID]:
        """Remove an owner and its hold records in `batch`; returns what it held (with counts)."""
        holds: Counter[CID] = Counter()
        rows = []
        for row, chunk in self.catalog.scan(HOLDS, key + b"\x00"):
            rows.append(row)
            holds.update(unpack_cids(chunk))
        if rows or self.catalog.get(OWNERS, key) is not None:  # else nothing to write
            for row in rows:
                batch.meta_delete(HOLDS, row)
            batch.meta_delete(OWNERS, key)
        return holds

    def _end_durable(self, batch: Batch, key: bytes, keep: bool) -> int:
        """End an owner's durable holds in `batch`: its blocks are kept as plain blocks, or
        reclaimed. Returns the blocks deleted."""
        holds = self._take_owner(batch, key)
        if keep:
            self._settle(batch, holds, keep=True)
            return 0
        return self._reclaim(batch, holds)
