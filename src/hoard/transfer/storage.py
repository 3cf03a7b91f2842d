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
restart's do-not-send list is exact. Received blocks are stored as plain blocks (no
reference, no pending marker: `ContentStore.recover` leaves them); a complete dataset is then
committed as a pinned dataset (`commit_dataset`), which references them.
"""

from __future__ import annotations

import json
import struct
import threading
from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import Any, Protocol

from hoard.content.index import load_index
from hoard.content.repo import ContentStore
from hoard.errors import InvalidArgumentError, NotFoundError, QuotaExceededError
from hoard.ids.cid import CID
from hoard.store.base import Batch
from hoard.transfer.cidset import CidSet
from hoard.transfer.types import ChannelID, ChannelState

__all__ = ["CHANNELS_TABLE", "CIDS_TABLE", "CONFIG_TABLE", "ContentStorage", "TransferStorage"]

CHANNELS_TABLE = "transfer-channels"
CIDS_TABLE = "transfer-cids"
CONFIG_TABLE = "transfer-config"

_SEQ = struct.Struct(">I")
SYNC_BYTES = 32 << 20  # received bytes between flushes to disk
KINDS = {"r": "received_cids", "s": "sent_cids", "q": "queued_cids"}


class TransferStorage(Protocol):
    """The storage a `Manager` drives. Every method may block (call slow ones from a thread)."""

    def get_many(self, cids: Sequence[CID]) -> list[bytes | None]:
        """Blocks to send (None for a missing one)."""

    def has_many(self, cids: Sequence[CID]) -> list[bool]:
        """Which blocks the store holds."""

    def store_blocks(self, chid: ChannelID, blocks: list[tuple[CID, bytes]]) -> None:
        """Store received (verified) blocks and record them as received by `chid`, atomically."""

    def commit_dataset(self, manifest_cid: CID) -> None:
        """Commit a dataset all of whose blocks are stored (pinned)."""

    def load_channels(self) -> list[ChannelState]:
        """Every persisted channel."""

    def save_channel(self, state: ChannelState, appends: dict[str, list[CID]]) -> None:
        """Persist a channel's state; `appends` ("s"/"q" -> CIDs) extends its sent/queued lists."""

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


def header(state: ChannelState) -> dict[str, Any]:
    """`state.to_dict()` without the CID lists (those are stored in chunks)."""
    empty = CidSet()
    return state.evolve(received_cids=empty, sent_cids=empty, queued_cids=empty).to_dict()


class ContentStorage:
    """`TransferStorage` on a ContentStore: blocks in its BlockStore, channels in metadata tables."""

    def __init__(self, content: ContentStore) -> None:
        self.content = content
        self.store = content.store
        self._lock = threading.Lock()
        self._next_seq: dict[tuple[bytes, str], int] = defaultdict(int)
        self._unsynced = 0

    # -- blocks ------------------------------------------------------------------------
    def get_many(self, cids: Sequence[CID]) -> list[bytes | None]:
        return self.store.get_many(cids)

    def has_many(self, cids: Sequence[CID]) -> list[bool]:
        return [self.store.has(c) for c in cids]

    def store_blocks(self, chid: ChannelID, blocks: list[tuple[CID, bytes]]) -> None:
        if not blocks:
            return
        batch = Batch()
        for cid, data in blocks:
            batch.put(cid, data)  # a block the store holds already is not rewritten (nor counted)
        new_bytes = sum(len(d) for d in batch.puts.values())
        if new_bytes > self.content.available():  # near the quota: count only what is new
            new_bytes = sum(len(d) for c, d in batch.puts.items() if not self.store.has(c))
        if new_bytes and new_bytes > self.content.available():
            used = self.store.stats().bytes
            raise QuotaExceededError(
                f"storage quota exceeded: {used} bytes used of {self.content.quota}, {new_bytes} more needed",
                quota=self.content.quota, used=used, needed=new_bytes)
        with self._lock:
            self._append(batch, chid, "r", [c for c, _ in blocks])
            self.store.commit(batch)
            self._unsynced += new_bytes
            sync = self._unsynced >= SYNC_BYTES
            if sync:
                self._unsynced = 0
        if sync:
            # Flush to disk as the data arrives (on the storer's thread, while the network
            # goes on), so the dataset's durable commit at the end has little left to write.
            self.store.sync()

    def commit_dataset(self, manifest_cid: CID) -> None:
        manifest = self.content.manifest(manifest_cid)
        if manifest.encode()[0] != manifest_cid:
            raise InvalidArgumentError(f"manifest {manifest_cid} is not in hoard's canonical form",
                                       cid=str(manifest_cid))
        tree = load_index(manifest.index, manifest.block_count, manifest.dataset_size, self.store.get_many)
        node_cids = tree.node_cids()
        nodes = list(zip(node_cids, self.store.get_many(node_cids)))
        blocks = list(tree.unique_blocks())
        missing = [c for c in blocks if not self.store.has(c)]
        if missing:
            raise NotFoundError(f"dataset {manifest_cid} lacks {len(missing)} block(s), e.g. {missing[0]}",
                                cid=str(manifest_cid))
        self.content.commit_dataset(manifest, nodes, blocks, [], pinned=True)  # type: ignore[arg-type]

    # -- channels ----------------------------------------------------------------------
    def _append(self, batch: Batch, chid: ChannelID, kind: str, cids: list[CID]) -> None:
        if not cids:
            return
        key = _chid_key(chid)
        seq = self._next_seq[(key, kind)]
        self._next_seq[(key, kind)] = seq + 1
        batch.meta_put(CIDS_TABLE, key + b"\x00" + kind.encode() + _SEQ.pack(seq), _pack_cids(cids))

    def save_channel(self, state: ChannelState, appends: dict[str, list[CID]]) -> None:
        batch = Batch()
        with self._lock:
            for kind, cids in appends.items():
                self._append(batch, state.channel_id, kind, cids)
            batch.meta_put(CHANNELS_TABLE, _chid_key(state.channel_id), json.dumps(header(state)).encode())
            self.store.commit(batch)

    def load_channels(self) -> list[ChannelState]:
        states = []
        for key, raw in self.store.meta_iter(CHANNELS_TABLE):
            data = json.loads(raw)
            lists: dict[str, list[CID]] = {kind: [] for kind in KINDS}
            seqs: dict[str, int] = {kind: 0 for kind in KINDS}
            for cid_key, chunk in self.store.meta_iter(CIDS_TABLE, key + b"\x00"):
                kind = cid_key[len(key) + 1:len(key) + 2].decode()
                if kind in lists:
                    lists[kind].extend(_unpack_cids(chunk))
                    seqs[kind] = _SEQ.unpack(cid_key[len(key) + 2:])[0] + 1
            state = ChannelState.from_dict(data)
            state = state.evolve(**{KINDS[kind]: CidSet(cids) for kind, cids in lists.items()})
            if state.recipient == state.self_peer:
                # The header may be newer than the last stored batch: count what is stored.
                sizes = [self.store.size_of(c) for c in state.received_cids]
                state = state.evolve(received=sum(s for s in sizes if s is not None))
            with self._lock:
                for kind, seq in seqs.items():
                    self._next_seq[(key, kind)] = seq
            states.append(state)
        return states

    # -- config ------------------------------------------------------------------------
    def get_config(self, key: str) -> Any:
        raw = self.store.meta_get(CONFIG_TABLE, key.encode())
        return None if raw is None else json.loads(raw)

    def put_config(self, key: str, value: Any) -> None:
        self.store.commit(Batch().meta_put(CONFIG_TABLE, key.encode(), json.dumps(value).encode()))
