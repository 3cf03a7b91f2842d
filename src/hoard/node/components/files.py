"""The files component: hugo files — indexed blocks, CRC32 (IEEE), history versions. Every
write makes a new version; old versions stay readable."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from functools import partial

import trio

from hoard.files import FileBlock, FileInfo, FileStore, FileWrite
from hoard.node.component import StreamHandler, idle
from hoard.node.context import NodeContext
from hoard.node.streams import LongCalls, NodeStream, ReadAhead


class FilesComponent:
    """hugo file write/read/stat on the node's content store."""

    name = "files"
    protocols: Mapping[str, StreamHandler] = {}

    def __init__(self, context: NodeContext, long_calls: LongCalls) -> None:
        self._context = context
        self._long = long_calls
        self.store = FileStore(context.content)

    async def run(self, context: NodeContext, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        await idle(task_status)

    async def aclose(self) -> None:
        return None

    async def write(self, ino: int, data: bytes, index: int | None = None, crc32: int | None = None) -> FileWrite:
        """Write one block of file `ino` at `index` (create or overwrite), or append it.

        With `crc32`, the data's CRC32 (IEEE) must match (CrcMismatchError, nothing written).
        Creates the file if `ino` is new. Returns the index written and the new version.
        """
        return await trio.to_thread.run_sync(partial(self.store.write, ino, data, index, crc32))

    async def stream_write(self, ino: int, blocks: Iterable[bytes]) -> FileWrite:
        """Append `blocks` to file `ino` in order, as one new version; returns their indices.

        `blocks` is consumed in a node thread as it goes (memory stays bounded); an error,
        including one raised by `blocks`, leaves the file unchanged.
        """
        pieces = ReadAhead(blocks)
        try:
            return await self._long.run(self.store.stream_write, ino, pieces)
        finally:
            pieces.close()

    async def read(self, ino: int, start: int | None = None, end: int | None = None,
                   version: int | None = None) -> NodeStream[FileBlock]:
        """The blocks of file `ino` with start <= index <= end (inclusive, both optional), in
        index order, as they were at `version` (default: the latest).

        NotFoundError (raised here) for a missing file or version.
        """
        blocks = await trio.to_thread.run_sync(partial(self.store.read, ino, start, end, version))
        return NodeStream(self._context.worker, blocks, lambda block: block.len)

    async def stat(self, ino: int, version: int | None = None) -> FileInfo:
        """File `ino` at `version` (default: the latest): blocks, bytes, next index, time."""
        return await trio.to_thread.run_sync(partial(self.store.stat, ino, version))
