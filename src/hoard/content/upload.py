"""Upload sessions: bytes in, blocks stored as they complete, a manifest at the end.

An `Upload` is fed pieces of any size. Complete blocks are hashed and written (as pending)
in batches of about `BATCH_BYTES` (`REMOTE_BATCH_BYTES` when the blocks go to a bucket, whose
requests in flight a batch keeps busy), so memory stays bounded whatever the dataset size: one
batch is committed in a background thread while the next is chunked and hashed (LMDB's
commit releases the GIL), so at most two batches are held. The whole-content BLAKE3 digest
is computed alongside. `finish()` builds the block index and the
manifest and commits the dataset durably; `cancel()` removes what the session stored.

`LogosUpload` is the same session writing the Logos format (content/formats/logos.py): blocks
padded to the block size, codex-block sha2-256 CIDs, Codex's Merkle tree and the protobuf
manifest; it commits through `ContentStore.commit_logos` (the tree kept as leaf-list parts).
Both go through one ingest session each: pending → verify → commit, the quota checked once.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor

import blake3

from hoard.content.chunker import DEFAULT_BLOCK_SIZE, Chunker, FixedChunker
from hoard.content.formats.logos_dataset import leaf_parts
from hoard.content.index import build_index
from hoard.content.manifest import Manifest, check_name
from hoard.content.repo import ContentStore
from hoard.errors import InvalidArgumentError, StateError
from hoard.ids.cid import CID, CODEX_MANIFEST, RAW

BATCH_BYTES = 8 << 20
REMOTE_BATCH_BYTES = 32 << 20
SYNC_BYTES = 64 << 20  # a local store is flushed to disk in the background every this many bytes


def batch_bytes(content: ContentStore) -> int:
    """How many bytes of blocks an upload writes at once to `content`."""
    return BATCH_BYTES if content.single is not None else REMOTE_BATCH_BYTES


class Upload:
    """One dataset being written. Not thread-safe: one writer at a time."""

    def __init__(self, content: ContentStore, chunker: Chunker | None = None,
                 filename: str | None = None, mimetype: str | None = None, pinned: bool = True,
                 reserve: int = 0) -> None:
        """`reserve`: the expected size, when known (a file, a Content-Length). It is admitted
        against the quota now (QuotaExceededError before any data) and kept for this upload."""
        check_name(filename, mimetype)  # a name a manifest may not carry is refused before any data
        self.content = content
        self._session = content.ingest.session(reserve=max(reserve, 0))
        self.chunker = chunker or FixedChunker()
        self.filename = filename
        self.mimetype = mimetype
        self.pinned = pinned
        self.size = 0
        self._hasher = blake3.blake3()
        self._entries: list[tuple[CID, int]] = []
        self._pending: list[tuple[CID, bytes | memoryview]] = []
        self._pending_bytes = 0
        self._closed = False
        self._inflight: Future[None] | None = None
        self._unsynced = 0
        self._syncing: Future[None] | None = None
        self._batch_bytes = batch_bytes(content)
        self.on_block: Callable[[CID, int], None] | None = None

    def reserve(self, nbytes: int) -> None:
        """Admit the `nbytes` still to come now (QuotaExceededError before they are sent) and
        keep them for this upload."""
        if self._closed:
            raise StateError("upload session is closed")
        self._session.reserve(nbytes)

    def write(self, piece: bytes | memoryview) -> None:
        """Append bytes; completed blocks are stored once a batch fills."""
        if self._closed:
            raise StateError("upload session is closed")
        if not piece:
            return
        self.size += len(piece)
        self._add_blocks(self.chunker.feed(piece))
        if self._pending_bytes >= self._batch_bytes:
            self._flush()

    def _add_blocks(self, blocks: list[bytes | memoryview]) -> None:
        hasher = self._hasher
        for data in blocks:  # the blocks in order are the content: both hashes read each block while it is cached
            cid = CID.from_digest(RAW, blake3.blake3(data).digest())
            hasher.update(data)
            self._entries.append((cid, len(data)))
            self._pending.append((cid, data))
            self._pending_bytes += len(data)

    def _flush(self, wait: bool = False) -> None:
        """Hand the pending batch to the committer thread (after the previous one finished)."""
        self._wait_inflight()
        if self._pending:
            pending, self._pending, self._pending_bytes = self._pending, [], 0
            self._inflight = _COMMITTER.submit(self._commit, pending)
        if wait:
            self._wait_inflight()

    def flush(self) -> None:
        """Wait until every block completed so far is stored (as pending)."""
        self._flush(wait=True)

    def _commit(self, pending: list[tuple[CID, bytes | memoryview]]) -> None:
        self._session.write(pending)
        self._sync_ahead(pending)
        if self.on_block is not None:
            for cid, data in pending:
                self.on_block(cid, len(data))

    def _sync_ahead(self, pending: list[tuple[CID, bytes | memoryview]]) -> None:
        """Start writing a local store's new blocks to disk in the background, so the durable
        commit in `finish` has little left to write (until then they are pending: a crash
        reclaims them as before). In the committer thread."""
        store = self.content.single
        if store is None:
            return
        self._unsynced += sum(len(data) for _, data in pending)
        if self._unsynced >= SYNC_BYTES and (self._syncing is None or self._syncing.done()):
            self._unsynced = 0
            self._syncing = _SYNCER.submit(store.sync)

    def _wait_sync(self) -> None:
        """Wait for this upload's background sync (so none outlives the upload)."""
        syncing, self._syncing = self._syncing, None
        if syncing is not None:
            syncing.result()

    def _wait_inflight(self) -> None:
        inflight, self._inflight = self._inflight, None
        if inflight is not None:
            try:
                inflight.result()
            except BaseException:
                self.cancel()
                raise

    def finish(self) -> CID:
        """Store the last blocks, the index and the manifest; return the manifest CID."""
        if self._closed:
            raise StateError("upload session is closed")
        try:
            check_name(self.filename, self.mimetype)  # also when set after construction
        except InvalidArgumentError:
            self.cancel()
            raise
        self._add_blocks(self.chunker.flush())
        self._flush(wait=True)
        try:
            self._wait_sync()
        except BaseException:
            self.cancel()
            raise
        root, nodes = build_index(self._entries)
        manifest = Manifest(
            dataset_size=self.size, block_size=self.chunker.block_size, block_count=len(self._entries),
            chunker=self.chunker.name, digest=self._hasher.digest(), index=root,
            filename=self.filename, mimetype=self.mimetype,
        )
        try:
            cid = self._session.commit_dataset(manifest, nodes, pinned=self.pinned)
        except BaseException:
            self.cancel()
            raise
        self._closed = True
        return cid

    def cancel(self) -> None:
        """Drop the session and every block only it stored. Idempotent."""
        if self._closed:
            return
        self._closed = True
        self._pending = []
        inflight, self._inflight = self._inflight, None
        if inflight is not None:
            try:
                inflight.result()
            except BaseException:  # noqa: BLE001, S110 - cancelling anyway; what it stored is dropped below
                pass
        try:
            self._wait_sync()
        except BaseException:  # noqa: BLE001, S110 - a flush of blocks about to be dropped
            pass
        self._session.abandon()


class LogosUpload(Upload):
    """An upload writing a Logos dataset (see the module docstring); the same interface."""

    def __init__(self, content: ContentStore, block_size: int = DEFAULT_BLOCK_SIZE,
                 filename: str | None = None, mimetype: str | None = None, pinned: bool = True,
                 reserve: int = 0) -> None:
        from hoard.content.formats.logos import LogosDatasetWriter  # google.protobuf: loaded on first use

        super().__init__(content, FixedChunker(block_size), filename, mimetype, pinned, reserve)
        self.block_size = block_size
        self._writer = LogosDatasetWriter(self._put, block_size)
        self._lengths: deque[int] = deque()  # data bytes of each pending block (`on_block`: unpadded)

    def _put(self, cid: CID, data: bytes) -> None:
        if cid.codec == CODEX_MANIFEST:
            return  # committed with the dataset (`commit_logos`), not pending
        self._lengths.append(min(len(data), self._writer.size - len(self._entries) * self.block_size))
        self._entries.append((cid, len(data)))
        self._pending.append((cid, data))
        self._pending_bytes += len(data)

    def _commit(self, pending: list[tuple[CID, bytes | memoryview]]) -> None:
        self._session.write(pending)
        self._sync_ahead(pending)
        lengths = [self._lengths.popleft() for _ in pending]
        if self.on_block is not None:
            for (cid, _), n in zip(pending, lengths, strict=True):
                self.on_block(cid, n)

    def write(self, piece: bytes | memoryview) -> None:
        """Append bytes; completed (padded) blocks are stored once a batch fills."""
        if self._closed:
            raise StateError("upload session is closed")
        if not piece:
            return
        try:
            self._writer.write(piece)
        except InvalidArgumentError:
            self.cancel()
            raise
        self.size += len(piece)
        if self._pending_bytes >= self._batch_bytes:
            self._flush()

    def finish(self) -> CID:
        """Pad and store the last block, build the tree and manifest, commit; the manifest CID."""
        if self._closed:
            raise StateError("upload session is closed")
        try:
            self._writer.filename, self._writer.mimetype = self.filename or None, self.mimetype or None
            dataset = self._writer.finish()  # InvalidArgumentError for an empty dataset or a bad name
            self._flush(wait=True)
            self._wait_sync()
            cid = self.content.commit_logos(self._session, dataset.manifest_cid, dataset.manifest_bytes,
                                            dataset.manifest, leaf_parts(dataset.tree.layers[0]), self.pinned)
        except BaseException:
            self.cancel()
            raise
        self._closed = True
        return cid


# One committer thread for all uploads: LMDB serialises write transactions anyway.
_COMMITTER = ThreadPoolExecutor(max_workers=1, thread_name_prefix="hoard-commit")
_SYNCER = ThreadPoolExecutor(max_workers=1, thread_name_prefix="hoard-sync")
