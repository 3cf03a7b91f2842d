"""What the transfer manager needs from the node's storage, and its implementation on a ContentStore.

The manager reads blocks to send, stores blocks it receives, commits a received dataset, and
persists every channel's state. `TransferStorage` is that interface; `ContentStorage`
implements it on the node's `ContentStore` (and so on any `BlockStore`, the in-memory one
included). All methods do blocking I/O; the manager calls the slow ones from a thread.

Persistence, in the store's metadata tables:

```
transfer-channels  "<chid>"                         -> JSON: ChannelState.to_dict() without its CID lists
transfer-cids      "<chid>" 0x00 kind seq:u32 BE    -> (cidlen:u8 cid)*  kind: r received, s sent, q queued
transfer-config    key                               -> JSON (the default voucher policy)
```

CID lists are appended in chunks, never rewritten, so recording progress costs what it
adds. Received blocks and the chunk that records them are written in **one** commit
(`store_blocks`): after a crash the channel never claims a block the store lacks, and a
restart's do-not-send list is exact.

Received blocks enter through the ingest path (`hoard.content.ingest`): each channel has an
ingest session owned by `transfer/<chid>`, so its blocks are *pending*, count against the
quota while the transfer runs, and the rest of the announced size (the sender's TOTAL, less
what the channel received) is reserved as soon as it is known (`reserve`), so a transfer that
cannot fit fails before its data arrives and concurrent ones cannot overbook the quota; the
reservation is released when the stream ends (a batch that does not fit is refused and fails
the channel)
and are held durably under the channel. When the channel ends (`end_channel`, from the
manager's cleanup): a committed dataset references them; a completed transfer of no dataset
(a raw block, a range) keeps them as plain blocks; a failed or cancelled one has them
reclaimed. A channel interrupted by a crash or a lost peer keeps them (it can resume);
`load_channels` settles the channels that ended before a crash could settle them, and the
content store's maintenance (`expire`) reclaims the blocks of a channel that has received
nothing for `abandon_after` (by default `block-ttl`): it is abandoned.
"""

from __future__ import annotations

import json
import logging
import struct
import threading
import time
from collections import defaultdict
from collections.abc import Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Protocol

from hoard.content.ingest import IngestSession
from hoard.content.repo import ContentStore
from hoard.errors import StateError
from hoard.ids.cid import CID
from hoard.store.catalog import CatalogBatch
from hoard.transfer.cidset import CidSet
from hoard.transfer.types import ChannelID, ChannelState, Status

__all__ = ["CHANNELS_TABLE", "CIDS_TABLE", "CONFIG_TABLE", "ContentStorage", "TransferStorage"]

CHANNELS_TABLE = "transfer-channels"
CIDS_TABLE = "transfer-cids"
CONFIG_TABLE = "transfer-config"
FINISHED_TABLE = "transfer-finished"  # channel key -> when it was first saved in a final state (ns)
_FINISHED = struct.Struct(">Q")
_FINAL = frozenset({Status.Completed, Status.Failed, Status.Cancelled})

_SEQ = struct.Struct(">I")
SYNC_BYTES = 8 << 20  # received bytes between background flushes to disk
_SYNCER = ThreadPoolExecutor(max_workers=1, thread_name_prefix="hoard-transfer-sync")
log = logging.getLogger("hoard.transfer")
KINDS = {"r": "received_cids", "s": "sent_cids", "q": "queued_cids"}


class TransferStorage(Protocol):
    """The storage a `Manager` drives. Every method may block (call slow ones from a thread)."""

    def get_many(self, cids: Sequence[CID]) -> list[bytes | None]:
        """Blocks to send (None for a missing one)."""

    def has_many(self, cids: Sequence[CID]) -> list[bool]:
        """Which blocks the store holds."""

    def store_blocks(self, chid: ChannelID, blocks: Sequence[tuple[CID, bytes | memoryview]]) -> None:
        """Store received (verified) blocks and record them as received by `chid`, atomically.
        QuotaExceededError (nothing stored) when they do not fit."""

    def commit_dataset(self, chid: ChannelID, manifest_cid: CID) -> None:
        """Verify and commit (pinned) a dataset `chid` received, all of whose blocks are stored."""

    def reserve(self, chid: ChannelID, nbytes: int) -> None:
        """Keep room for `nbytes` more of `chid`'s blocks, replacing what it kept (0: release).
        QuotaExceededError (nothing kept) when they do not fit."""

    def holds_blocks(self, chid: ChannelID) -> bool:
        """Whether `chid` holds received blocks not settled yet (`end_channel` has work to do)."""

    def end_channel(self, chid: ChannelID, *, keep: bool) -> None:
        """The channel ended: keep what it received (completed) or reclaim it (failed, cancelled).
        Later `store_blocks` for it are refused."""

    def load_channels(self) -> list[ChannelState]:
        """Every persisted channel; the finished ones (Completed, Failed, Cancelled) last, in the
        order they finished."""

    def save_channel(self, state: ChannelState, appends: dict[str, list[CID]]) -> None:
        """Persist a channel's state; `appends` ("s"/"q" -> CIDs) extends its sent/queued lists."""

    def forget_channel(self, chid: ChannelID) -> None:
        """Delete a channel's record (the manager keeps a bounded number of finished channels)."""

    def get_config(self, key: str) -> Any:
        """A JSON config value, or None."""

    def put_config(self, key: str, value: Any) -> None:
        """Persist a JSON config value."""


def _chid_key(chid: ChannelID) -> bytes:
    return str(chid).encode()


def _pack_cids(cids: Iterable[CID]) -> bytes:
    return b"".join(bytes((len(c.binary),)) + c.binary for c in cids)


def _unpack_cids(data: bytes) -> list[CID]:
    out, pos = [], 0
    while pos < len(data):
        n = data[pos]
        out.append(CID(data[pos + 1:pos + 1 + n]))
        pos += 1 + n
    return out


OWNER_PREFIX = "transfer/"
_ENDED_KEEP = frozenset({Status.Completed, Status.Completing})
_ENDED_RECLAIM = frozenset({Status.Failed, Status.Failing, Status.Cancelled, Status.Cancelling})


def owner(chid: ChannelID) -> str:
    """The ingest owner holding a channel's received blocks."""
    return OWNER_PREFIX + str(chid)


def header(state: ChannelState) -> dict[str, Any]:
    """`state.to_dict()` without the CID lists (those are stored in chunks)."""
    empty = CidSet()
    return state.evolve(received_cids=empty, sent_cids=empty, queued_cids=empty).to_dict()


class ContentStorage:
    """`TransferStorage` on a ContentStore: blocks in its BlockStore, channels in metadata tables."""

    def __init__(self, content: ContentStore) -> None:
        self.content = content
        self.catalog = content.catalog
        self._lock = threading.Lock()
        self._next_seq: dict[tuple[bytes, str], int] = defaultdict(int)
        self._unsynced = 0
        self._syncing: Future[None] | None = None  # the background flush, while it runs
        self._sessions: dict[ChannelID, IngestSession] = {}  # receiving channels' ingest sessions
        self._ended: set[ChannelID] = set()

    # -- blocks ------------------------------------------------------------------------
    def get_many(self, cids: Sequence[CID]) -> list[bytes | None]:
        return self.content.blobs.get_many(cids)

    def has_many(self, cids: Sequence[CID]) -> list[bool]:
        return [self.content.ingest.present(c) for c in cids]

    def _session(self, chid: ChannelID) -> IngestSession:
        """The channel's ingest session (taking over its durable holds after a restart). Under _lock."""
        if chid in self._ended:
            raise StateError(f"channel {chid} has ended: it stores nothing more", chid=str(chid))
        session = self._sessions.get(chid)
        if session is None or session.closed:  # closed: abandoned by expiry, then resumed
            session = self._sessions[chid] = self.content.ingest.session(owner=owner(chid))
        return session

    def store_blocks(self, chid: ChannelID, blocks: Sequence[tuple[CID, bytes | memoryview]]) -> None:
        if not blocks:
            return
        with self._lock:
            session = self._session(chid)
            batch = CatalogBatch()
            self._append(batch, chid, "r", [c for c, _ in blocks])
            try:
                new_bytes = session.write(blocks, extra=batch)  # the quota is checked here
            except BaseException:
                self._next_seq[(_chid_key(chid), "r")] -= 1  # that chunk was not written
                raise
            self._unsynced += new_bytes
            if self._unsynced >= SYNC_BYTES and (self._syncing is None or self._syncing.done()):
                # Flush to disk as the data arrives, in the background (the storer goes on with
                # the next batch: the stream never waits for the disk), so that the dataset's
                # durable commit at the end has little left to write. Only an early start: the
                # blocks stay pending until that commit, and what a crash loses it reclaims.
                self._unsynced = 0
                self._syncing = _SYNCER.submit(self._sync)

    def _sync(self) -> None:
        try:
            self.content.sync()
        except Exception as exc:  # noqa: BLE001 - the durable commit at the end reports a failing disk
            log.warning("flushing received blocks to disk failed: %r", exc)

    def wait_synced(self) -> None:
        """Wait for the background flush, if one runs (before a durable commit, or the store closes)."""
        with self._lock:
            syncing = self._syncing
        if syncing is not None:
            syncing.result()  # _sync never raises

    def commit_dataset(self, chid: ChannelID, manifest_cid: CID) -> None:
        self.wait_synced()
        manifest = self.content.manifest(manifest_cid)
        with self._lock:
            session = self._session(chid)
        session.commit_dataset(manifest, None, pinned=True, cid=manifest_cid)  # verifies, then commits

    def reserve(self, chid: ChannelID, nbytes: int) -> None:
        with self._lock:
            if nbytes <= 0 and (chid in self._ended or chid not in self._sessions):
                return  # nothing kept
            session = self._session(chid)
        session.set_reservation(nbytes)

    def holds_blocks(self, chid: ChannelID) -> bool:
        session = self._sessions.get(chid)
        return (session is not None and not session.closed) or self.content.ingest.has_owner(owner(chid))

    def end_channel(self, chid: ChannelID, *, keep: bool) -> None:
        self.wait_synced()
        with self._lock:
            self._ended.add(chid)
            self._sessions.pop(chid, None)
        self.content.ingest.release_owner(owner(chid), keep=keep)

    # -- channels ----------------------------------------------------------------------
    def _append(self, batch: CatalogBatch, chid: ChannelID, kind: str, cids: list[CID]) -> None:
        if not cids:
            return
        key = _chid_key(chid)
        seq = self._next_seq[(key, kind)]
        self._next_seq[(key, kind)] = seq + 1
        batch.put(CIDS_TABLE, key + b"\x00" + kind.encode() + _SEQ.pack(seq), _pack_cids(cids))

    def save_channel(self, state: ChannelState, appends: dict[str, list[CID]]) -> None:
        batch = CatalogBatch()
        with self._lock:
            for kind, cids in appends.items():
                self._append(batch, state.channel_id, kind, cids)
            key = _chid_key(state.channel_id)
            batch.put(CHANNELS_TABLE, key, json.dumps(header(state)).encode())
            if state.status in _FINAL and self.catalog.get(FINISHED_TABLE, key) is None:
                batch.put(FINISHED_TABLE, key, _FINISHED.pack(time.time_ns()))
            self.catalog.commit(batch)

    def forget_channel(self, chid: ChannelID) -> None:
        key = _chid_key(chid)
        batch = CatalogBatch().delete(CHANNELS_TABLE, key).delete(FINISHED_TABLE, key)
        with self._lock:
            for cid_key, _chunk in self.catalog.scan(CIDS_TABLE, key + b"\x00"):
                batch.delete(CIDS_TABLE, cid_key)
            for kind in KINDS:
                self._next_seq.pop((key, kind), None)
            self.catalog.commit(batch)
            self._ended.discard(chid)

    def load_channels(self) -> list[ChannelState]:
        states = []
        for key, raw in self.catalog.scan(CHANNELS_TABLE):
            data = json.loads(raw)
            lists: dict[str, list[CID]] = {kind: [] for kind in KINDS}
            seqs: dict[str, int] = {kind: 0 for kind in KINDS}
            for cid_key, chunk in self.catalog.scan(CIDS_TABLE, key + b"\x00"):
                kind = cid_key[len(key) + 1:len(key) + 2].decode()
                if kind in lists:
                    lists[kind].extend(_unpack_cids(chunk))
                    seqs[kind] = _SEQ.unpack(cid_key[len(key) + 2:])[0] + 1
            state = ChannelState.from_dict(data)
            state = state.evolve(**{KINDS[kind]: CidSet(cids) for kind, cids in lists.items()})
            if state.recipient == state.self_peer:
                # The header may be newer than the last stored batch: count what is stored.
                sizes = [self.content.ingest.size(c) for c in state.received_cids]
                state = state.evolve(received=sum(s for s in sizes if s is not None))
            with self._lock:
                for kind, seq in seqs.items():
                    self._next_seq[(key, kind)] = seq
            states.append(state)
        self._settle_ended(states)

        def finished_at(state: ChannelState) -> int:
            raw = self.catalog.get(FINISHED_TABLE, _chid_key(state.channel_id))
            return _FINISHED.unpack(raw)[0] if raw is not None and len(raw) == _FINISHED.size else 0

        live = [s for s in states if s.status not in _FINAL]
        return live + sorted((s for s in states if s.status in _FINAL), key=finished_at)

    def _settle_ended(self, states: list[ChannelState]) -> None:
        """Settle the received blocks of channels that ended before a crash let them (and of
        owners no channel record names): completed ones keep them, the others lose them."""
        ingest = self.content.ingest
        by_owner = {owner(s.channel_id): s for s in states if s.recipient == s.self_peer}
        for name in ingest.owners():
            if not name.startswith(OWNER_PREFIX):
                continue
            state = by_owner.get(name)
            if state is None or state.status in _ENDED_RECLAIM:
                ingest.release_owner(name, keep=False)
            elif state.status in _ENDED_KEEP:
                ingest.release_owner(name, keep=True)
        for state in states:
            if state.status in _ENDED_KEEP or state.status in _ENDED_RECLAIM:
                self._ended.add(state.channel_id)

    # -- config ------------------------------------------------------------------------
    def get_config(self, key: str) -> Any:
        raw = self.catalog.get(CONFIG_TABLE, key.encode())
        return None if raw is None else json.loads(raw)

    def put_config(self, key: str, value: Any) -> None:
        self.catalog.commit(CatalogBatch().put(CONFIG_TABLE, key.encode(), json.dumps(value).encode()))
