"""Reading datasets and blocks back from the local store, in order, in bounded memory."""

from __future__ import annotations

from collections.abc import Iterator

from hoard.content.manifest import Manifest, is_dag
from hoard.content.repo import ContentStore
from hoard.errors import NotFoundError
from hoard.ids.cid import CID

READ_AHEAD = 64  # blocks fetched per store transaction


class LocalReader:
    """Reads a dataset (by manifest CID) or a single block from the local store.

    `read(n)` returns up to n bytes (b"" at the end); `pieces(n)` iterates the rest.
    """

    def __init__(self, content: ContentStore, cid: CID) -> None:
        self.content = content
        self.cid = cid
        self.manifest: Manifest | None = None
        self.offset = 0
        if is_dag(cid) and content.dataset_info(cid) is not None:
            self.manifest = content.manifest(cid)
            self.size = self.manifest.dataset_size
            self._blocks = self._dataset_blocks(self.manifest)
        else:
            size = content.store.size_of(cid)
            if size is None:
                raise NotFoundError(f"Block not found in local store: {cid}", cid=str(cid))
            self.size = size
            self._blocks = iter([content.store.get(cid) or b""])
        self._buf = memoryview(b"")

    def _dataset_blocks(self, manifest: Manifest) -> Iterator[bytes]:
        batch: list[CID] = []
        for cid, _size in self.content.iter_blocks(manifest):
            batch.append(cid)
            if len(batch) >= READ_AHEAD:
                yield from self._get(batch)
                batch = []
        if batch:
            yield from self._get(batch)

    def _get(self, cids: list[CID]) -> list[bytes]:
        blocks = self.content.store.get_many(cids)
        for cid, data in zip(cids, blocks):
            if data is None:
                raise NotFoundError(f"Block not found in local store: {cid}", cid=str(cid))
        return blocks  # type: ignore[return-value]

    def read(self, n: int) -> bytes:
        """Up to `n` bytes; b"" at the end. Whole blocks are joined with one copy."""
        parts: list[memoryview] = []
        got = 0
        while got < n:
            if not self._buf:
                block = next(self._blocks, None)
                if block is None:
                    break
                self._buf = memoryview(block)
            take = self._buf[: n - got]
            parts.append(take)
            got += len(take)
            self._buf = self._buf[len(take):]
        self.offset += got
        return parts[0].tobytes() if len(parts) == 1 else b"".join(parts)

    def pieces(self, n: int) -> Iterator[bytes | memoryview]:
        """The rest of the content in pieces of at most `n` bytes (whole blocks when n ≥ block)."""
        if self._buf:
            rest = bytes(self._buf)
            self._buf = memoryview(b"")
            self.offset += len(rest)
            yield rest
        for block in self._blocks:
            view = memoryview(block)
            for i in range(0, len(view), n):
                piece = view[i:i + n]
                self.offset += len(piece)
                yield piece
