"""Background fetches with progress, and read streams: what the REST API needs from a node.

**Fetches.** `fetch_start(cid)` gets the dataset's manifest (locally, or from the network once
it runs) and fetches the dataset into the local store in the background; it returns
`{cid, manifest, downloadId}` at once (the Logos `POST /data/{cid}/network`). Each fetch is a
`Fetch` record with `{active, received, total, bytes}` progress (blocks received, blocks in
the dataset, bytes received) that `fetch_progress` reports and `fetch_cancel` stops.

A dataset already stored completes at once with full progress. Otherwise the fetch is
run by `core.fetch_runner`, set by the network subsystem (node/api_net.py): a coroutine
`runner(cid, manifest_json, fetch)` that downloads the dataset into the local store and calls
`fetch.advance(blocks, nbytes)` for each verified block it stores; cancelling the fetch
cancels the runner. A node without a runner cannot fetch what it does not store (StateError).

**Uploads with metadata.** `upload_open(filename, mimetype)` opens an upload session like
`upload_init`, with the filename and mimetype given explicitly (an HTTP upload takes them
from its Content-Disposition and Content-Type headers).

**Read streams.** `stream_open` / `stream_read` / `stream_close` read a dataset (or a single
block) from any byte offset, in bounded memory. Unlike download sessions (one per CID, the
Logos contract) any number of streams may read the same CID at once, which an HTTP server
needs. A stream over data that is not local (`local=False`) reads through the node's
`open_reader`, the same path as `download_stream(..., local=False)`.
"""

from __future__ import annotations

import functools
import itertools
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import trio

from hoard.content.download import LocalReader
from hoard.content.manifest import is_dag
from hoard.content.repo import ContentStore
from hoard.errors import HoardError, InvalidArgumentError, NotFoundError, StateError
from hoard.ids.cid import CID
from hoard.node.core import LocalStreamReader, api, parse_cid

KEEP_FINISHED = 64  # finished fetches kept for progress queries
MAX_READ = 16 << 20  # largest stream_read
STREAM_IDLE = 600.0  # a read stream unused this long is closed


@dataclass
class Fetch:
    """One background fetch. `advance()` is how a fetcher reports verified blocks stored."""

    id: int
    cid: CID
    manifest: dict[str, Any]
    total: int
    total_bytes: int
    received: int = 0
    bytes: int = 0
    active: bool = True
    error: str | None = None
    started: float = field(default_factory=time.time)
    scope: trio.CancelScope = field(default_factory=trio.CancelScope)

    def advance(self, blocks: int = 1, nbytes: int = 0) -> None:
        """Count `blocks` more blocks (`nbytes` bytes) received and stored."""
        self.received = min(self.received + blocks, self.total)
        self.bytes = min(self.bytes + nbytes, self.total_bytes)

    def complete(self) -> None:
        self.received, self.bytes = self.total, self.total_bytes

    def progress(self) -> dict[str, Any]:
        """`{active, received, total, bytes}` (+ `error` when it failed or was cancelled)."""
        out: dict[str, Any] = {"active": self.active, "received": self.received, "total": self.total,
                               "bytes": self.bytes}
        if self.error is not None:
            out["error"] = self.error
        return out

    def to_json(self) -> dict[str, Any]:
        return {"downloadId": self.id, "cid": str(self.cid), "filename": self.manifest.get("filename"),
                "datasetSize": self.total_bytes, "started": self.started, **self.progress()}


FetchRunner = Callable[[CID, dict[str, Any], Fetch], Awaitable[None]]


class FetchesMixin:
    """Background fetches and read streams (see the module docstring)."""

    fetch_runner: FetchRunner | None

    def init_subsystem(self) -> None:
        self.fetch_runner = None
        self._fetches: dict[int, Fetch] = {}
        self._fetch_ids = itertools.count(1)
        self._streams: dict[str, Any] = {}
        self._stream_ids = itertools.count(1)

    async def close_subsystem(self) -> None:
        for record in list(self._fetches.values()):
            record.scope.cancel()
        for stream in list(self._streams.values()):
            await stream.aclose()
        self._streams.clear()

    # -- fetches ---------------------------------------------------------------------
    @api
    async def fetch_start(self, cid: str) -> dict[str, Any]:
        """Start fetching a dataset into the local store in the background.

        Returns `{cid, manifest, downloadId}` once the manifest is known (locally or from the
        network); follow the fetch with `fetch_progress(downloadId)` and stop it with
        `fetch_cancel(downloadId)`. A dataset already stored completes at once.
        """
        parsed = parse_cid(cid, "fetch")
        core: Any = self
        manifest = await core.download_manifest(str(parsed))
        stored = core.content.dataset_info(parsed) is not None
        if not stored and self.fetch_runner is None:
            raise StateError(f"Failed to fetch: {parsed} is not stored and this node has no network to fetch it from",
                             cid=str(parsed))
        record = Fetch(next(self._fetch_ids), parsed, manifest, int(manifest.get("blockCount", 0)),
                       int(manifest.get("datasetSize", 0)))
        self._fetches[record.id] = record
        self._forget_finished()
        if stored:
            record.complete()
            record.active = False
        else:
            core._spawn(functools.partial(self._run_fetch, record, self.fetch_runner))
        return {"cid": str(parsed), "manifest": manifest, "downloadId": record.id}

    async def _run_fetch(self, record: Fetch, runner: FetchRunner) -> None:
        try:
            with record.scope:
                await runner(record.cid, record.manifest, record)
                record.complete()
        except HoardError as exc:
            record.error = exc.message
        except Exception as exc:  # noqa: BLE001 - a fetch failure is reported, not raised
            record.error = f"fetch failed: {exc}"
        finally:
            if record.scope.cancelled_caught and record.error is None:
                record.error = "cancelled"
            record.active = False

    def _forget_finished(self) -> None:
        finished = [f for f in self._fetches.values() if not f.active]
        for record in finished[: max(len(finished) - KEEP_FINISHED, 0)]:
            del self._fetches[record.id]

    def _fetch_record(self, download_id: int, cid: str | None, op: str) -> Fetch | None:
        wanted = parse_cid(cid, op) if cid is not None else None
        record = self._fetches.get(int(download_id)) if _is_int(download_id) else None
        if record is not None and wanted is not None and wanted != record.cid:
            return None
        return record

    @api
    async def fetch_progress(self, download_id: int, cid: str | None = None) -> dict[str, Any]:
        """`{active, received, total, bytes}` of a fetch; `{"active": false}` for an unknown id.

        With `cid`, the fetch must be of that CID (as the Logos REST path names both).
        """
        record = self._fetch_record(download_id, cid, "get download progress")
        return record.progress() if record is not None else {"active": False}

    @api
    async def fetch_cancel(self, download_id: int, cid: str | None = None) -> None:
        """Cancel an active fetch (NotFoundError if there is no active fetch with that id)."""
        record = self._fetch_record(download_id, cid, "cancel download")
        if record is None or not record.active:
            raise NotFoundError(f"Background download not found: {download_id}", download_id=str(download_id))
        record.error = "cancelled"
        record.scope.cancel()

    @api
    async def fetches(self) -> list[dict[str, Any]]:
        """Every fetch still remembered (active ones, then recent finished ones), newest first."""
        return [f.to_json() for f in sorted(self._fetches.values(), key=lambda f: (not f.active, -f.id))]

    # -- uploads with explicit metadata ----------------------------------------------
    @api
    async def upload_open(self, filename: str | None = None, mimetype: str | None = None, chunk_size: int = 0) -> str:
        """Open an upload session for bytes pushed with `upload_chunk`; returns its id.

        The dataset's `filename` and `mimetype` are given explicitly (None: none).
        `chunk_size` (0 = 65536) is the block size. Finish with `upload_finalize`.
        """
        for key, value in (("filename", filename), ("mimetype", mimetype)):
            if value is not None and not isinstance(value, str):
                raise InvalidArgumentError(f"Failed to init upload: {key} must be a string, got {value!r}")
        sessions = self.sessions  # type: ignore[attr-defined]
        session_id: str = sessions.upload_init("", chunk_size)
        upload = sessions.uploads[session_id].upload
        upload.filename, upload.mimetype = filename or None, mimetype or None
        return session_id

    # -- read streams ----------------------------------------------------------------
    @api
    async def stream_open(self, cid: str, offset: int = 0, length: int | None = None,
                          local: bool = True) -> dict[str, Any]:
        """Open a read stream over a dataset (manifest CID) or block, from byte `offset`.

        Reads at most `length` bytes (None: to the end). Returns `{id, size, offset, length,
        filename, mimetype}` where `size` is the whole content's size and `length` what the
        stream will deliver. `local=False` also reads data that is not stored locally
        (from the network, when it runs), from offset 0 only.
        """
        parsed = parse_cid(cid, "download")
        if not _is_int(offset) or offset < 0 or (length is not None and (not _is_int(length) or length < 0)):
            raise InvalidArgumentError(f"Failed to download: bad range offset={offset!r} length={length!r}")
        content: ContentStore = self.content  # type: ignore[attr-defined]
        try:
            stream: Any = LocalStreamReader(await trio.to_thread.run_sync(LocalReader, content, parsed, offset, length))
        except NotFoundError:
            if local:
                raise
            if offset:
                raise InvalidArgumentError("Failed to download: a network stream starts at offset 0") from None
            core: Any = self
            meta: dict[str, Any] = {}
            if is_dag(parsed):
                try:
                    meta = await core.download_manifest(str(parsed))
                except HoardError:
                    pass
            reader = await core.open_reader(parsed, False)
            stream = _NetworkStream(reader, length, meta.get("filename"), meta.get("mimetype"))
        await self._close_idle_streams()
        stream.touched = trio.current_time()
        stream_id = str(next(self._stream_ids))
        self._streams[stream_id] = stream
        return {"id": stream_id, "size": stream.size, "offset": offset, "length": stream.remaining,
                "filename": stream.filename, "mimetype": stream.mimetype}

    @api
    async def stream_read(self, stream_id: str, n: int = 1 << 20) -> bytes:
        """Up to `n` more bytes of a read stream; b"" at its end."""
        stream = self._streams.get(str(stream_id))
        if stream is None:
            raise NotFoundError(f"Failed to read: no stream {stream_id}", stream=str(stream_id))
        if not _is_int(n) or n < 1:
            raise InvalidArgumentError(f"Failed to read: bad size {n!r}")
        stream.touched = trio.current_time()
        try:
            return await stream.read(min(n, MAX_READ))
        except BaseException:
            self._streams.pop(str(stream_id), None)
            await stream.aclose()
            raise

    async def _close_idle_streams(self) -> None:
        now = trio.current_time()
        for stream_id, stream in list(self._streams.items()):
            if now - stream.touched > STREAM_IDLE:
                del self._streams[stream_id]
                await stream.aclose()

    @api
    async def stream_close(self, stream_id: str) -> None:
        """Close a read stream (no error if it is already closed)."""
        stream = self._streams.pop(str(stream_id), None)
        if stream is not None:
            await stream.aclose()


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


class _NetworkStream:
    """A read stream over a node reader (`open_reader(cid, local=False)`), capped at `length`."""

    def __init__(self, reader: Any, length: int | None, filename: str | None, mimetype: str | None) -> None:
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
