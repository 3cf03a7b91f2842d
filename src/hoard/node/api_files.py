"""hugo file operations on the node: indexed blocks, CRC32 (IEEE), history versions."""

from __future__ import annotations

from collections.abc import Iterable
from functools import partial

import trio

from hoard.files import FileBlock, FileInfo, FileStore, FileWrite
from hoard.node.api_blobs import NodeStream, ReadAhead, run_long
from hoard.node.core import api


class FilesApi:
    """Node mixin: hugo files. Every write makes a new version; old versions stay readable."""

    files: FileStore

    def init_subsystem(self) -> None:
        self.files = FileStore(self.content)  # type: ignore[attr-defined]

    @api
    async def file_write(self, ino: int, data: bytes, index: int | None = None,
                         crc32: int | None = None) -> FileWrite:
        """Write one block of file `ino` at `index` (create or overwrite), or append it.

        With `crc32`, the data's CRC32 (IEEE) must match (CrcMismatchError, nothing written).
        Creates the file if `ino` is new. Returns the index written and the new version.
        """
        return await trio.to_thread.run_sync(partial(self.files.write, ino, data, index, crc32))

    @api
    async def file_stream_write(self, ino: int, blocks: Iterable[bytes]) -> FileWrite:
        """Append `blocks` to file `ino` in order, as one new version; returns their indices.

        `blocks` is consumed in a node thread as it goes (memory stays bounded); an error,
        including one raised by `blocks`, leaves the file unchanged.
        """
        pieces = ReadAhead(blocks)
        try:
            return await run_long(self, self.files.stream_write, ino, pieces)
        finally:
            pieces.close()

    @api
    async def file_read(self, ino: int, start: int | None = None, end: int | None = None,
                        version: int | None = None) -> NodeStream[FileBlock]:
        """The blocks of file `ino` with start <= index <= end (inclusive, both optional), in
        index order, as they were at `version` (default: the latest).

        NotFoundError (raised here) for a missing file or version.
        """
        blocks = await trio.to_thread.run_sync(partial(self.files.read, ino, start, end, version))
        return NodeStream(self.worker, blocks, lambda block: block.len)  # type: ignore[attr-defined]

    @api
    async def file_stat(self, ino: int, version: int | None = None) -> FileInfo:
        """File `ino` at `version` (default: the latest): blocks, bytes, next index, time."""
        return await trio.to_thread.run_sync(partial(self.files.stat, ino, version))
