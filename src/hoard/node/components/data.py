"""The data component: the Logos storage operations on the local store.

Uploads and downloads (Logos sessions, node/sessions.py), uploads with explicit metadata, read
streams, and the store's datasets (list, space, exists, delete, verify). While the node is
started it expires cached datasets every `block-mi` (maintenance).

Data the node does not store is read through the fetch component (`local=False`).

**Read streams.** `stream_open` / `stream_read` / `stream_close` read a dataset (or a single
block) from any byte offset, in bounded memory. Unlike download sessions (one per CID, the
Logos contract) any number of streams may read the same CID at once, which an HTTP server
needs. A stream over data that is not local (`local=False`) reads from the network, from
offset 0 only.
"""

from __future__ import annotations

import builtins
import functools
import itertools
import logging
import os
import time
from collections.abc import Callable, Mapping
from typing import Protocol

import trio

from hoard.content import LocalReader
from hoard.content.formats.logos_dataset import TREE_PROTOCOL, is_logos_manifest
from hoard.content.manifest import is_dag
from hoard.content.repo import DatasetInfo
from hoard.errors import HoardError, IntegrityError, InvalidArgumentError, NotFoundError
from hoard.ids.cid import CID
from hoard.node import logos_fetch
from hoard.node.component import StreamHandler
from hoard.node.components.fetch import FetchComponent
from hoard.node.context import NodeContext
from hoard.node.params import is_int, parse_cid
from hoard.node.results import Dataset, Space, StreamInfo, VerifyReport
from hoard.node.sessions import Reader, Sessions

ADD_PIECE = 1 << 20  # bytes per upload_chunk of `add`
log = logging.getLogger("hoard")

MAX_READ = 16 << 20  # largest stream_read
STREAM_IDLE = 600.0  # a read stream unused this long is closed


class LocalStreamReader:
    """Async adapter over LocalReader: large reads run in a thread."""

    def __init__(self, reader: LocalReader) -> None:
        self._reader = reader
        self.size, self.filename, self.mimetype = reader.size, reader.filename, reader.mimetype

    @property
    def remaining(self) -> int:
        return self._reader.remaining

    async def read(self, n: int) -> bytes:
        if min(n, self._reader.remaining) <= 256 << 10:
            return self._reader.read(n)
        return await trio.to_thread.run_sync(self._reader.read, n)

    async def aclose(self) -> None:
        self._reader.close()


class _Stream(Protocol):
    size: int
    filename: str | None
    mimetype: str | None

    @property
    def remaining(self) -> int: ...

    async def read(self, n: int) -> bytes: ...

    async def aclose(self) -> None: ...


class _NetworkStream:
    """A read stream over a network reader, capped at `length`."""

    def __init__(self, reader: Reader, length: int | None, filename: str | None, mimetype: str | None) -> None:
        self._reader = reader
        self.size = reader.size
        self.remaining = reader.size if length is None else min(length, reader.size)
        self.filename, self.mimetype = filename, mimetype

    async def read(self, n: int) -> bytes:
        if self.remaining <= 0:
            return b""
        data = await self._reader.read(min(n, self.remaining))
        self.remaining -= len(data)
        return data

    async def aclose(self) -> None:
        await self._reader.aclose()


class DataComponent:
    """Uploads, downloads, read streams and the local datasets (see the module docstring)."""

    name = "data"
    protocols: Mapping[str, StreamHandler] = {}

    def __init__(self, context: NodeContext, fetch: FetchComponent) -> None:
        self._context = context
        self._fetch = fetch
        self.sessions = Sessions(context.content, self.open_reader, context.config.dataset_format)
        self.protocols: Mapping[str, StreamHandler] = {
            TREE_PROTOCOL: functools.partial(logos_fetch.serve_tree, context.content)}
        self._streams: dict[str, tuple[_Stream, list[float]]] = {}
        self._stream_ids = itertools.count(1)

    async def run(self, context: NodeContext, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Maintenance: expire cached datasets every `block-mi`."""
        task_status.started()
        while True:
            await trio.sleep(context.config.block_mi)
            expired = await trio.to_thread.run_sync(context.content.expire)
            if expired:
                log.info("expired %d cached dataset(s)", len(expired))
            swept = await trio.to_thread.run_sync(context.content.ingest.sweep_orphans)
            if swept:
                log.info("released %d orphan block(s) from the bucket", swept)

    async def aclose(self) -> None:
        await self.sessions.close()
        for stream, _ in list(self._streams.values()):
            await stream.aclose()
        self._streams.clear()

    @property
    def open_streams(self) -> int:
        """How many read streams are open."""
        return len(self._streams)

    async def open_reader(self, cid: CID, local: bool) -> Reader:
        """A reader of `cid`: from the local store, else (unless `local`) from the network."""
        await self.adopt(cid)
        try:
            return LocalStreamReader(await trio.to_thread.run_sync(LocalReader, self._context.content, cid))
        except Exception:
            if local:
                raise
        return await self._fetch.open_network_reader(cid)

    async def adopt(self, cid: CID) -> bool:
        """Shared store (repo-kind s3): take a dataset another node stored in the bucket as
        stored here too before reading it (`ContentStore.adopt`), so that its blocks are held
        while this node reads them. False where there is none to adopt."""
        content = self._context.content
        if not content.blobs.shared or await trio.to_thread.run_sync(content.dataset_info, cid) is not None:
            return False
        adopted = await trio.to_thread.run_sync(content.adopt, cid)
        if adopted:
            await self._context.events.dataset_stored(cid)
        return adopted

    # -- uploads -----------------------------------------------------------------------
    async def upload_init(self, filepath: str, chunk_size: int = 0) -> str:
        """Open an upload session; returns its id. `chunk_size` (0 = 65536) is also the block size."""
        return self.sessions.upload_init(filepath, chunk_size)

    async def upload_open(self, filename: str | None = None, mimetype: str | None = None, chunk_size: int = 0,
                          reserve: int = 0) -> str:
        """Open an upload session for bytes pushed with `upload_chunk`; returns its id.

        The dataset's `filename` and `mimetype` are given explicitly (None: none).
        `chunk_size` (0 = 65536) is the block size. Finish with `upload_finalize`.
        `reserve`: the size expected (a Content-Length), admitted against the quota now
        (QuotaExceededError, and no session, when it does not fit) and kept for this upload.
        """
        for key, value in (("filename", filename), ("mimetype", mimetype)):
            if value is not None and not isinstance(value, str):
                raise InvalidArgumentError(f"Failed to init upload: {key} must be a string, got {value!r}")
        session_id = self.sessions.upload_init("", chunk_size)
        upload = self.sessions.uploads[session_id].upload
        upload.filename, upload.mimetype = filename or None, mimetype or None
        if reserve:
            try:
                await trio.to_thread.run_sync(upload.reserve, int(reserve))
            except BaseException:
                await self.sessions.upload_cancel(session_id)
                raise
        return session_id

    async def upload_chunk(self, session_id: str, data: bytes) -> None:
        """Append bytes to an upload session."""
        await self.sessions.upload_chunk(session_id, data)

    async def upload_finalize(self, session_id: str) -> CID:
        """Finish an upload; returns the manifest CID. Durable when it returns."""
        began = time.monotonic()
        cid = CID.parse(await self.sessions.upload_finalize(session_id))
        self._context.counters.upload(cid, self._size(cid), time.monotonic() - began)
        await self._context.events.dataset_stored(cid)
        return cid

    def _size(self, cid: CID) -> int:
        """A stored dataset's size (for the upload metrics)."""
        try:
            return int(self._context.content.any_manifest(cid).dataset_size)
        except Exception:  # noqa: BLE001 - metrics never fail an upload
            return 0

    async def upload_cancel(self, session_id: str) -> None:
        """Cancel an upload and remove what it stored (no error for an unknown session)."""
        await self.sessions.upload_cancel(session_id)

    async def upload_file(self, session_id: str, on_progress: Callable[[int], None] | None = None) -> CID:
        """Upload the file named at upload_init; `on_progress(n)` per stored block of n bytes."""
        began = time.monotonic()
        cid = CID.parse(await self.sessions.upload_file(session_id, on_progress))
        self._context.counters.upload(cid, self._size(cid), time.monotonic() - began)
        await self._context.events.dataset_stored(cid)
        return cid

    async def add(self, source: bytes | bytearray | memoryview | str | os.PathLike[str],
                  filename: str | None = None, mimetype: str | None = None) -> CID:
        """Store bytes, or the file at a path, in one call (an upload session opened, filled and
        finished); returns the manifest CID. Durable when it returns."""
        if isinstance(source, (bytes, bytearray, memoryview)):
            view = memoryview(source).cast("B")
            session = await self.upload_open(filename, mimetype, 0, len(view))
            try:
                for start in range(0, len(view), ADD_PIECE):
                    await self.upload_chunk(session, bytes(view[start:start + ADD_PIECE]))
            except BaseException:
                with trio.CancelScope(shield=True):
                    await self.upload_cancel(session)
                raise
            return await self.upload_finalize(session)
        return await self.upload_file(await self.upload_init(os.fspath(source), 0))

    async def cat(self, cid: str | CID, local: bool = True) -> bytes:
        """The whole content of a dataset (or block) as bytes, from the local store (or, with
        `local=False`, from the network too). It is held in memory: stream large data instead."""
        pieces: builtins.list[bytes] = []
        await self.download_stream(cid, None, 0, local, pieces.append)
        return b"".join(pieces)

    # -- downloads ---------------------------------------------------------------------
    async def download_init(self, cid: str | CID, chunk_size: int = 0, local: bool = True) -> str:
        """Open a download session for `cid` ("" or "Download session already exists.")."""
        return await self.sessions.download_init(parse_cid(cid, "download"), chunk_size, local)

    async def download_chunk(self, cid: str | CID) -> bytes:
        """The next chunk of an open download; b"" at the end."""
        return await self.sessions.download_chunk(parse_cid(cid, "download chunk"))

    async def download_stream(self, cid: str | CID, filepath: str | None = None, chunk_size: int = 0,
                              local: bool = True, on_progress: Callable[[bytes], None] | None = None) -> int:
        """Stream the whole content to `filepath` and/or `on_progress(chunk)`; returns bytes."""
        began, parsed = time.monotonic(), parse_cid(cid, "download stream")
        written = await self.sessions.download_stream(parsed, filepath, chunk_size, local, on_progress)
        self._context.counters.download(parsed, written, time.monotonic() - began, local)
        return written

    async def download_cancel(self, cid: str | CID) -> None:
        """Close a download session (no error if there is none)."""
        await self.sessions.download_cancel(parse_cid(cid, "cancel download"))

    # -- the local datasets ------------------------------------------------------------
    async def list(self) -> builtins.list[Dataset]:
        """Every stored dataset, with its manifest."""
        content = self._context.content

        def entry(d: DatasetInfo) -> Dataset:
            expires = None if d.pinned else d.expires
            try:
                return Dataset(d.cid, content.any_manifest(d.cid), not d.pinned, expires)
            except (IntegrityError, NotFoundError) as exc:  # listed with the reason, so it can be deleted
                return Dataset(d.cid, None, not d.pinned, expires, error=f"damaged manifest: {exc.message}")

        def run() -> builtins.list[Dataset]:
            return [entry(d) for d in content.datasets()]

        return await trio.to_thread.run_sync(run)

    async def space(self) -> Space:
        """Blocks stored, the quota, and the bytes used and reserved."""
        figures = self._context.content.space()
        return Space(figures.total_blocks, figures.quota_max_bytes, figures.quota_used_bytes,
                     figures.quota_reserved_bytes)

    async def delete(self, cid: str | CID) -> None:
        """Delete a dataset (manifest CID) or a single block (datasets using it then read as incomplete).
        An IPFS root is refused (its DAG would lose its root block): `node.ipfs.remove` removes it."""
        from hoard.node.components.ipfs import ROOTS

        parsed = parse_cid(cid, "delete")
        content = self._context.content
        if await trio.to_thread.run_sync(content.catalog.get, ROOTS, parsed.binary) is not None:
            raise InvalidArgumentError(f"{parsed} is a stored IPFS root, not a dataset: remove it with "
                                       "`hoard ipfs rm` (node.ipfs.remove), which releases its whole DAG",
                                       cid=str(parsed))
        await trio.to_thread.run_sync(content.delete, parsed)

    async def keep(self, cid: str | CID) -> None:
        """Store a cached dataset for good (no expiry), as an upload is; no-op if it is stored."""
        await trio.to_thread.run_sync(self._context.content.keep, parse_cid(cid, "keep"))

    async def exists(self, cid: str | CID) -> bool:
        """Whether the block (or manifest) is in the local store."""
        return self._context.content.ingest.present(parse_cid(cid, "check existence"))

    async def verify(self, cid: str | CID) -> VerifyReport:
        """Re-read a dataset (or block) from disk and check every block against its CID."""
        from hoard.node.maintenance import verify_dataset

        parsed = parse_cid(cid, "verify")
        report = await trio.to_thread.run_sync(verify_dataset, self._context.content, parsed)
        return VerifyReport(parsed, int(report["blocks"]), int(report["bytes"]))

    # -- read streams ------------------------------------------------------------------
    async def stream_open(self, cid: str | CID, offset: int = 0, length: int | None = None,
                          local: bool = True) -> StreamInfo:
        """Open a read stream over a dataset (manifest CID) or block, from byte `offset`.

        Reads at most `length` bytes (None: to the end). Returns the stream's id, the whole
        content's `size` and the `length` the stream will deliver. `local=False` also reads data that is not stored locally
        (from the network, when it runs), from offset 0 only.
        """
        parsed = parse_cid(cid, "download")
        if not is_int(offset) or offset < 0 or (length is not None and (not is_int(length) or length < 0)):
            raise InvalidArgumentError(f"Failed to download: bad range offset={offset!r} length={length!r}")
        stream: _Stream
        await self.adopt(parsed)
        try:
            stream = LocalStreamReader(
                await trio.to_thread.run_sync(LocalReader, self._context.content, parsed, offset, length))
        except NotFoundError:
            if local:
                raise
            if offset:
                raise InvalidArgumentError("Failed to download: a network stream starts at offset 0") from None
            filename = mimetype = None
            if is_dag(parsed) or is_logos_manifest(parsed):
                try:
                    manifest = await self._fetch.download_manifest(parsed)
                    filename, mimetype = manifest.filename, manifest.mimetype
                except HoardError:
                    pass
            reader = await self.open_reader(parsed, False)
            stream = _NetworkStream(reader, length, filename, mimetype)
        await self._close_idle_streams()
        stream_id = str(next(self._stream_ids))
        self._streams[stream_id] = (stream, [trio.current_time()])
        return StreamInfo(stream_id, stream.size, offset, stream.remaining, stream.filename, stream.mimetype)

    async def stream_read(self, stream_id: str, n: int = 1 << 20) -> bytes:
        """Up to `n` more bytes of a read stream; b"" at its end."""
        entry = self._streams.get(str(stream_id))
        if entry is None:
            raise NotFoundError(f"Failed to read: no stream {stream_id}", stream=str(stream_id))
        if not is_int(n) or n < 1:
            raise InvalidArgumentError(f"Failed to read: bad size {n!r}")
        stream, touched = entry
        touched[0] = trio.current_time()
        try:
            return await stream.read(min(n, MAX_READ))
        except BaseException:
            self._streams.pop(str(stream_id), None)
            await stream.aclose()
            raise

    async def _close_idle_streams(self) -> None:
        now = trio.current_time()
        for stream_id, (stream, touched) in list(self._streams.items()):
            if now - touched[0] > STREAM_IDLE:
                del self._streams[stream_id]
                await stream.aclose()

    async def stream_close(self, stream_id: str) -> None:
        """Close a read stream (no error if it is already closed)."""
        entry = self._streams.pop(str(stream_id), None)
        if entry is not None:
            await entry[0].aclose()
