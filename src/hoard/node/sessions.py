"""Upload and download sessions, with the Logos semantics (DIGEST §1.4–1.5).

Upload session ids are a decimal counter per node starting at "0". Download sessions are
keyed by the CID string, one per CID. Every blocking step (hashing, LMDB, file I/O) runs in
a thread via `trio.to_thread`, one step at a time per session, so the event loop stays free.
"""

from __future__ import annotations

import itertools
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import trio

from hoard.content import ContentStore, FixedChunker, Upload, guess_mimetype
from hoard.content.chunker import check_block_size
from hoard.content.upload import LogosUpload
from hoard.errors import InvalidArgumentError, NotFoundError, QuotaExceededError, StateError
from hoard.ids.cid import CID
from hoard.limits import MAX_BLOCK_BYTES
from hoard.outfile import OutputFile


def read_size(chunk_size: int) -> int:
    """A download's chunkSize is a read size (as in Logos): 0 means 65536, any positive size
    works, and one read returns at most MAX_BLOCK_BYTES (4 MiB), like a stream's readOnce."""
    if isinstance(chunk_size, int) and not isinstance(chunk_size, bool) and chunk_size > MAX_BLOCK_BYTES:
        return MAX_BLOCK_BYTES
    return check_block_size(chunk_size)  # validates, and 0 -> 65536


FILE_READ_SIZE = 4 << 20


class Reader(Protocol):
    """What a download session reads from: the local store, or (with the network) peers."""

    size: int

    async def read(self, n: int) -> bytes: ...

    async def aclose(self) -> None: ...


@dataclass
class UploadSession:
    id: str
    upload: Upload
    filepath: Path | None
    chunk_size: int
    lock: trio.Lock = field(default_factory=trio.Lock)


@dataclass
class DownloadSession:
    cid: CID
    reader: Reader
    chunk_size: int
    local: bool
    lock: trio.Lock = field(default_factory=trio.Lock)
    streaming: bool = False


class Sessions:
    """The node's open upload and download sessions."""

    def __init__(self, content: ContentStore, open_reader: Callable[[CID, bool], Awaitable[Reader]],
                 dataset_format: str = "logos") -> None:
        """`dataset_format`: how uploads address their datasets, "logos" (Logos CIDs) or "hoard"."""
        self.content = content
        self.open_reader = open_reader
        self.dataset_format = dataset_format
        self.uploads: dict[str, UploadSession] = {}
        self.downloads: dict[str, DownloadSession] = {}
        self._ids = itertools.count()

    # -- uploads ---------------------------------------------------------------------
    def upload_init(self, filepath: str, chunk_size: int = 0) -> str:
        if not isinstance(filepath, str):
            raise InvalidArgumentError(f"Failed to init upload: filepath must be a string, got {filepath!r}")
        size = check_block_size(chunk_size)
        path = Path(filepath) if filepath else None
        if path is not None and path.is_absolute() and not path.is_file():
            raise NotFoundError(f"Failed to init upload: the filepath does not exist: {filepath}", path=filepath)
        source = path if path is not None and path.is_file() else None
        upload: Upload
        if self.dataset_format == "logos":  # filename and mimetype as Logos's upload_init gives them
            from hoard.content.formats.logos import logos_file_meta

            name, mimetype = logos_file_meta(filepath)
            upload = LogosUpload(self.content, size, filename=name, mimetype=mimetype)
        else:
            name = path.name if path is not None and path.name else None
            upload = Upload(self.content, FixedChunker(size), filename=name, mimetype=guess_mimetype(name))
        session = UploadSession(str(next(self._ids)), upload, source, size)
        self.uploads[session.id] = session
        return session.id

    def _upload(self, session_id: str, op: str) -> UploadSession:
        session = self.uploads.get(str(session_id))
        if session is None:
            raise NotFoundError(f"Failed to {op}: no upload session {session_id}", session=str(session_id))
        return session

    async def upload_chunk(self, session_id: str, data: bytes) -> None:
        session = self._upload(session_id, "upload chunk")
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise InvalidArgumentError(f"Failed to upload chunk: expected bytes, got {type(data).__name__}")
        async with session.lock:
            try:
                await trio.to_thread.run_sync(session.upload.write, bytes(data))
            except QuotaExceededError:
                self.uploads.pop(session.id, None)
                raise

    async def upload_finalize(self, session_id: str) -> str:
        session = self._upload(session_id, "finalize upload")
        async with session.lock:
            try:
                cid = await trio.to_thread.run_sync(session.upload.finish)
            finally:
                self.uploads.pop(session.id, None)
        return str(cid)

    async def upload_cancel(self, session_id: str) -> None:
        session = self.uploads.pop(str(session_id), None)
        if session is not None:
            async with session.lock:
                await trio.to_thread.run_sync(session.upload.cancel)

    async def upload_file(self, session_id: str, on_progress: Callable[[int], None] | None = None) -> str:
        session = self._upload(session_id, "upload file")
        if session.filepath is None:
            self.uploads.pop(session.id, None)
            raise InvalidArgumentError(
                f"Failed to upload file: session {session_id} has no file (upload_init was given a name, not a path)")
        path = session.filepath

        def run() -> str:
            try:
                size = path.stat().st_size
            except OSError as exc:
                raise NotFoundError(f"Failed to upload file: cannot read {path}: {exc.strerror}", path=str(path)) from exc
            session.upload.reserve(size)  # the quota's answer before reading the file; the room is kept
            if on_progress is not None:
                session.upload.on_block = lambda _cid, n: on_progress(n)
            with open(path, "rb", buffering=0) as fh:
                while piece := fh.read(FILE_READ_SIZE):
                    session.upload.write(piece)
            return str(session.upload.finish())

        async with session.lock:
            try:
                return await trio.to_thread.run_sync(run)
            except BaseException:
                await trio.to_thread.run_sync(session.upload.cancel)
                raise
            finally:
                self.uploads.pop(session.id, None)

    # -- downloads -------------------------------------------------------------------
    async def download_init(self, cid: CID, chunk_size: int = 0, local: bool = True) -> str:
        size = read_size(chunk_size)
        if str(cid) in self.downloads:
            return "Download session already exists."
        reader = await self.open_reader(cid, local)
        self.downloads[str(cid)] = DownloadSession(cid, reader, size, local)
        return ""

    async def download_chunk(self, cid: CID) -> bytes:
        session = self.downloads.get(str(cid))
        if session is None:
            raise NotFoundError(f"Failed to download chunk: no session for cid {cid}", cid=str(cid))
        async with session.lock:
            try:
                return await session.reader.read(session.chunk_size)
            except BaseException:
                await self._drop(session)
                raise

    async def download_stream(self, cid: CID, filepath: str | None = None, chunk_size: int = 0, local: bool = True,
                              on_progress: Callable[[bytes], None] | None = None) -> int:
        if str(cid) not in self.downloads:
            await self.download_init(cid, chunk_size, local)
        session = self.downloads[str(cid)]
        if session.streaming:
            raise StateError(f"Failed to download stream: a stream for {cid} is already running", cid=str(cid))
        piece_size = read_size(chunk_size) if chunk_size else session.chunk_size
        fh = OutputFile(filepath) if filepath else None  # a temp file of its own, renamed over filepath at the end
        session.streaming = True
        total = 0
        try:
            if fh is not None:
                await trio.to_thread.run_sync(fh.open)
            async with session.lock:
                while data := await session.reader.read(max(piece_size, 1 << 20) if fh and not on_progress else piece_size):
                    total += len(data)
                    if fh is not None:
                        await trio.to_thread.run_sync(fh.write, data)
                    if on_progress is not None:
                        on_progress(data)
            if fh is not None:
                await trio.to_thread.run_sync(fh.commit)
                fh = None
            return total
        finally:
            session.streaming = False
            if fh is not None:
                fh.discard()  # only the temp file it created
            await self._drop(session)

    async def download_cancel(self, cid: CID) -> None:
        session = self.downloads.get(str(cid))
        if session is not None and not session.streaming:
            await self._drop(session)

    async def _drop(self, session: DownloadSession) -> None:
        if self.downloads.get(str(session.cid)) is session:
            del self.downloads[str(session.cid)]
        await session.reader.aclose()

    async def close(self) -> None:
        for session in list(self.downloads.values()):
            await self._drop(session)
        for upload in list(self.uploads.values()):
            await trio.to_thread.run_sync(upload.upload.cancel)
        self.uploads.clear()

