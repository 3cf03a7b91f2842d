"""The blobs component: tvix castore semantics. A blob is a dataset found by the BLAKE3 digest
of its whole content; its chunks are FastCDC 128/256/512 KiB blocks."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping

import trio

from hoard.blobs import BlobDigest, BlobService, BlobStat
from hoard.node.component import StreamHandler, idle
from hoard.node.context import NodeContext
from hoard.node.streams import LongCalls, NodeStream, ReadAhead, byte_pieces


class BlobsComponent:
    """Blob put/stat/read on the node's content store."""

    name = "blobs"
    protocols: Mapping[str, StreamHandler] = {}

    def __init__(self, context: NodeContext, long_calls: LongCalls) -> None:
        self._context = context
        self._long = long_calls
        self.service = BlobService(context.content)

    async def run(self, context: NodeContext, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        await idle(task_status)

    async def aclose(self) -> None:
        return None

    async def put(self, source: bytes | os.PathLike[str] | Iterable[bytes],
                  on_progress: Callable[[int], None] | None = None) -> BlobStat:
        """Store a blob (FastCDC 128/256/512 KiB chunks); returns its digest, size and manifest CID.

        `source` is bytes, a file path (`pathlib.Path`), or an iterable of byte pieces, consumed
        in a node thread as it goes (memory stays bounded). `on_progress(n)` is called from that
        thread per piece. The blob is also a dataset (listed, downloadable by its manifest CID).
        """
        pieces = ReadAhead(byte_pieces(source, on_progress))
        try:
            return await self._long.run(self.service.put, pieces)
        finally:
            pieces.close()

    async def stat(self, digest: str | bytes | BlobDigest, chunks: bool = True) -> BlobStat:
        """A blob's size, manifest CID and (with `chunks`) chunk list: `()` for a single chunk.

        `digest` is 32 bytes, `b3:<base64>` or hex. NotFoundError if absent.
        """
        parsed = BlobDigest.parse(digest)
        return await trio.to_thread.run_sync(self.service.stat, parsed, chunks)

    async def read(self, digest: str | bytes | BlobDigest) -> NodeStream[bytes]:
        """The bytes of a blob, or of one chunk by its digest, as a stream of pieces (≤ 1 MiB).

        NotFoundError (raised here, not on the first pull) if absent.
        """
        parsed = BlobDigest.parse(digest)
        pieces = await trio.to_thread.run_sync(self.service.read, parsed)
        return NodeStream(self._context.worker, pieces, len)
