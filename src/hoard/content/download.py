"""Reading datasets and blocks back from the local store, in order, in bounded memory.

Blocks are read in batches (`get_many`). From a bucket (split stores), batches are bigger and
`PREFETCH` of them are requested ahead of the one being delivered, so the bucket's requests in
flight never drain at a batch boundary; memory stays bounded by those batches.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TYPE_CHECKING

from hoard.content.formats.logos_dataset import is_logos_manifest
from hoard.content.index import locate
from hoard.content.manifest import Manifest, is_dag
from hoard.content.repo import ContentStore
from hoard.errors import NotFoundError
from hoard.ids.cid import CID

if TYPE_CHECKING:
    from hoard.content.formats.logos_manifest import LogosManifest

READ_AHEAD = 64  # most blocks fetched per store transaction
READ_AHEAD_BYTES = 8 << 20  # ... and about this many bytes
REMOTE_READ_AHEAD = 256  # the same from a bucket
REMOTE_READ_AHEAD_BYTES = 32 << 20
PREFETCH = 2  # batches requested ahead from a bucket
_PREFETCHER = ThreadPoolExecutor(4, thread_name_prefix="hoard-read-ahead")


class LocalReader:
    """Reads bytes [offset, offset+length) of a dataset (manifest CID) or a single block.

    `read(n)` returns up to n bytes (b"" at the end); `pieces(n)` iterates the rest.
    Construction and reads do store I/O: call them from a thread when on an event loop.
    `size` is the whole content's size, `remaining` what is left to deliver.
    """

    def __init__(self, content: ContentStore, cid: CID, offset: int = 0, length: int | None = None) -> None:
        self.content = content
        self.cid = cid
        self._blocks: Iterator[bytes]
        self.manifest: Manifest | LogosManifest | None = None
        self.filename: str | None = None
        self.mimetype: str | None = None
        store = content.blobs
        if is_logos_manifest(cid) and content.dataset_info(cid) is not None:
            # a Logos dataset: its blocks are padded; `remaining` stops at the unpadded datasetSize
            self.manifest = logos = content.logos_manifest(cid)
            self.size = logos.dataset_size
            self.filename, self.mimetype = logos.filename, logos.mimetype
            block_no, skip = divmod(min(offset, self.size), logos.block_size)
            per_batch = self._per_batch(logos.block_size)
            self._blocks = self._batched(iter(content.logos_blocks(cid, logos)[block_no:]), per_batch)
        elif is_dag(cid) and content.dataset_info(cid) is not None:
            self.manifest = manifest = content.manifest(cid)
            self.size = manifest.dataset_size
            self.filename, self.mimetype = manifest.filename, manifest.mimetype
            block_no, skip = locate(manifest.index, manifest.block_count, self.size, min(offset, self.size), store.get)
            per_batch = self._per_batch(manifest.block_size)
            cids = (c for c, _ in content.iter_blocks(manifest, block_no))
            self._blocks = self._batched(cids, per_batch)
        else:
            data = store.get(cid)
            if data is None:
                raise NotFoundError(f"Block not found in local store: {cid}", cid=str(cid))
            self.size = len(data)
            skip = min(offset, self.size)
            self._blocks = iter([data])
        start = min(offset, self.size)
        self.offset = start
        self.remaining = self.size - start if length is None else max(min(length, self.size - start), 0)
        self._skip = skip
        self._buf = memoryview(b"")

    def _per_batch(self, block_size: int) -> int:
        if self.content.single is not None:
            return max(1, min(READ_AHEAD, READ_AHEAD_BYTES // max(block_size, 1)))
        return max(1, min(REMOTE_READ_AHEAD, REMOTE_READ_AHEAD_BYTES // max(block_size, 1)))

    def _batched(self, cids: Iterator[CID], per_batch: int) -> Iterator[bytes]:
        batches = _chunks(cids, per_batch)
        if self.content.single is not None:
            for batch in batches:
                yield from self._get(batch)
            return
        ahead: deque[Future[list[bytes]]] = deque()
        for batch in batches:
            ahead.append(_PREFETCHER.submit(self._get, batch))
            if len(ahead) > PREFETCH:
                yield from ahead.popleft().result()
        while ahead:
            yield from ahead.popleft().result()

    def _get(self, cids: list[CID]) -> list[bytes]:
        blocks = self.content.blobs.get_many(cids)
        for cid, data in zip(cids, blocks):
            if data is None:
                raise NotFoundError(f"Block not found in local store: {cid}", cid=str(cid))
        return blocks  # type: ignore[return-value]

    def _next_block(self) -> bool:
        block = next(self._blocks, None)
        if block is None:
            return False
        self._buf = memoryview(block)[self._skip:]
        self._skip = 0
        return True

    def read(self, n: int) -> bytes:
        """Up to `n` bytes; b"" at the end. Whole blocks are joined with one copy."""
        want = min(n, self.remaining)
        parts: list[memoryview] = []
        got = 0
        while got < want:
            if not self._buf and not self._next_block():
                break
            take = self._buf[: want - got]
            parts.append(take)
            got += len(take)
            self._buf = self._buf[len(take):]
        self.offset += got
        self.remaining -= got
        return parts[0].tobytes() if len(parts) == 1 else b"".join(parts)

    def pieces(self, n: int) -> Iterator[bytes | memoryview]:
        """The rest of the content in pieces of at most `n` bytes (no copy within a block)."""
        while self.remaining > 0:
            if not self._buf and not self._next_block():
                return
            piece = self._buf[: min(n, self.remaining)]
            self._buf = self._buf[len(piece):]
            self.offset += len(piece)
            self.remaining -= len(piece)
            yield piece

    def close(self) -> None:
        close = getattr(self._blocks, "close", None)
        if close is not None:
            close()
        self._blocks = iter(())
        self._buf = memoryview(b"")
        self.remaining = 0


def _chunks(cids: Iterator[CID], size: int) -> Iterator[list[CID]]:
    batch: list[CID] = []
    for cid in cids:
        batch.append(cid)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch
