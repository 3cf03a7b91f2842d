"""`NodeClient`: a running node, reached over its REST API, with the operations of `hoard.Node`.

Method names, arguments and results (the typed values of hoard.node.results, read back from
the Logos JSON by hoard.api.shapes) are those of `hoard.Node`, so code runs the same against
an embedded node or a running one; the CLI is such code. Bodies stream both ways (httpx): an
upload is sent while it is read, a download written while it arrives. An HTTP error becomes
the hoard error the node raised (`hoard.errors.error_for`: named by the `X-Hoard-Error`
header; by status for other servers).

The Logos operations are here, and `client.logs`, `client.transfer`, `client.blobs`,
`client.files` and `client.ipfs` (client_logs.py, client_transfer.py, client_blobs.py,
client_files.py, client_ipfs.py) over hoard's REST additions for them, with the methods of
`node.logs`, `node.transfer`, `node.blobs`, `node.files` and `node.ipfs`.
"""

from __future__ import annotations

import itertools
import os
import queue
import threading
import urllib.parse
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Self

import httpx

from hoard.api import shapes
from hoard.api.client_blobs import ClientBlobs
from hoard.api.client_files import ClientFiles
from hoard.api.client_ipfs import ClientIpfs
from hoard.api.client_logs import ClientLogs
from hoard.api.client_transfer import ClientTransfer
from hoard.content import guess_mimetype
from hoard.content.formats.logos_manifest import LogosManifest
from hoard.content.manifest import Manifest
from hoard.errors import (
    HoardError,
    InvalidArgumentError,
    NotFoundError,
    PeerError,
    StateError,
    error_for,
    map_exceptions,
)
from hoard.ids.cid import CID
from hoard.ids.peer import PeerId
from hoard.node.results import (
    ConnectedPeer,
    Dataset,
    DebugInfo,
    FetchProgress,
    FetchStarted,
    PeerInfo,
    Space,
    VerifyReport,
)
from hoard.outfile import OutputFile

API_BASE = "/api/storage/v1"
ERROR_HEADER = "x-hoard-error"
PIECE = 1 << 20
TIMEOUT = httpx.Timeout(60.0, connect=10.0)


def error_from_response(response: httpx.Response) -> HoardError:
    """The hoard error an error response stands for."""
    try:
        message = response.text.strip()
    except (httpx.HTTPError, UnicodeDecodeError):
        message = ""
    message = message or f"HTTP {response.status_code} {response.reason_phrase}"
    return error_for(message, code=response.headers.get(ERROR_HEADER), http_status=response.status_code)


def api_base(url: str) -> str:
    """The API base URL for `url`: a node address (`http://host:port`) or a full API base."""
    if "://" not in url:
        url = "http://" + url
    parsed = urllib.parse.urlsplit(url.rstrip("/"))
    if not parsed.hostname:
        raise InvalidArgumentError(f"--api: not a URL: {url!r}")
    return url.rstrip("/") if parsed.path.rstrip("/") else url.rstrip("/") + API_BASE


class _Abort(Exception):
    """Ends a pushed upload's body early, so the node drops what it stored."""


_CANCEL = object()


@dataclass
class _Upload:
    """An upload in progress: a request running on a thread, fed pieces through a queue."""

    path: Path | None
    name: str | None
    chunk_size: int
    pieces: queue.Queue[Any] = field(default_factory=lambda: queue.Queue(maxsize=4))
    thread: threading.Thread | None = None
    result: CID | None = None
    error: BaseException | None = None


class _NetClient:
    """`client.net`: the running node's connected peers (`GET /peers`, a hoard addition)."""

    def __init__(self, client: NodeClient) -> None:
        self._client = client

    def peer_list(self) -> list[ConnectedPeer]:
        """The connected peers with their addresses, direction, latency and agent."""
        return [shapes.connected_peer_from_json(p) for p in self._client._request("GET", "/peers").json()]

    def peers(self) -> list[PeerId]:
        """The currently connected peers."""
        return [p.peer_id for p in self.peer_list()]


class NodeClient:
    """A running node, reached through its REST API at `url` (see the module docstring)."""

    def __init__(self, url: str, token: str | None = None) -> None:
        self.url = api_base(url)
        auth = {} if token is None else {"authorization": f"Bearer {token}"}  # the node's api-token
        self._client = httpx.Client(base_url=self.url, timeout=TIMEOUT, follow_redirects=False, headers=auth)
        self._uploads: dict[str, _Upload] = {}
        self._ids = itertools.count()
        self._info: dict[str, Any] | None = None
        self.net = _NetClient(self)
        self.logs = ClientLogs(self)
        self.transfer = ClientTransfer(self)
        self.blobs = ClientBlobs(self)
        self.files = ClientFiles(self)
        self.ipfs = ClientIpfs(self)

    # -- plumbing ----------------------------------------------------------------------
    def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        with self._reaching():
            response = self._client.request(method, path, **kwargs)
        if response.status_code >= 400:
            raise error_from_response(response)
        return response

    def _send_stream(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """A streamed response (the caller closes it), or the error it answered."""
        request = self._client.build_request(method, path, **kwargs)
        with self._reaching():
            response = self._client.send(request, stream=True)
            if response.status_code >= 400:
                try:
                    response.read()
                finally:
                    response.close()
                raise error_from_response(response)
        return response

    def _reaching(self) -> AbstractContextManager[None]:
        """Transport failures (connection refused, reset, timeout) as PeerError."""
        return map_exceptions({httpx.HTTPError: PeerError}, f"cannot reach the hoard node API at {self.url}")

    @staticmethod
    def _cid(cid: str | CID) -> str:
        if isinstance(cid, CID):
            return str(cid)
        if not isinstance(cid, str) or not cid.strip():
            raise InvalidArgumentError(f"cannot parse cid: {cid!r}")
        return urllib.parse.quote(cid.strip(), safe="")

    def close(self) -> None:
        self.logs.close()
        for upload in list(self._uploads.values()):
            self._stop_upload(upload)
        self._uploads.clear()
        self._client.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def start(self) -> None:
        """Nothing to do: the node is running."""

    def stop(self) -> None:
        """Nothing to do: the node keeps running (stop it where it was started)."""

    # -- info --------------------------------------------------------------------------
    def _debug_info(self) -> dict[str, Any]:
        info: dict[str, Any] = self._request("GET", "/debug/info").json()
        self._info = info
        return info

    def debug(self) -> DebugInfo:
        """The node's peer ID, addresses, signed peer record and routing table."""
        return shapes.debug_from_json(self._debug_info())

    def _debug_cached(self) -> dict[str, Any]:
        return self._info if self._info is not None else self._debug_info()

    def version(self) -> str:
        """The node's hoard version."""
        return str(self._debug_cached()["storage"]["version"])

    def revision(self) -> str:
        """The source revision the node was built from."""
        return str(self._debug_cached()["storage"]["revision"])

    def repo(self) -> str:
        """The node's data dir."""
        return str(self._debug_cached()["repo"])

    def peer_id(self) -> PeerId:
        """The node's libp2p peer ID."""
        return PeerId(self._request("GET", "/peerid", headers={"accept": "application/json"}).json()["id"])

    def spr(self) -> str:
        """The node's signed peer record."""
        return str(self._request("GET", "/spr", headers={"accept": "application/json"}).json()["spr"])

    def log_level(self, level: str) -> None:
        self._request("POST", "/debug/chronicles/loglevel", params={"level": level})

    def connect(self, peer_id: str | PeerId, addrs: list[str] | None = None) -> None:
        """Connect the node to a peer (at `addrs`, else found through the DHT)."""
        self._request("GET", f"/connect/{urllib.parse.quote(str(peer_id), safe='')}",
                      params={"addrs": list(addrs or [])})

    def peer_debug(self, peer_id: str | PeerId) -> PeerInfo:
        """What the node knows of a peer."""
        return shapes.peer_from_json(self._request("GET", f"/debug/peer/{urllib.parse.quote(str(peer_id), safe='')}")
                                     .json())

    # -- storage -----------------------------------------------------------------------
    def list(self) -> list[Dataset]:
        """Every dataset the node stores."""
        return [shapes.dataset_from_json(d) for d in self._request("GET", "/data").json()["content"]]

    def keep(self, cid: str | CID) -> None:
        """Store a cached dataset for good (`POST /data/{cid}/keep`, a hoard addition)."""
        self._request("POST", f"/data/{self._cid(cid)}/keep")

    def space(self) -> Space:
        """The node's storage space."""
        return shapes.space_from_json(self._request("GET", "/space").json())

    def exists(self, cid: str | CID) -> bool:
        """Whether the node stores the block (or manifest)."""
        found = self._request("GET", f"/data/{self._cid(cid)}/exists").json()
        return bool(next(iter(found.values()), False))

    def delete(self, cid: str | CID) -> None:
        """Delete a dataset or a single block."""
        self._request("DELETE", f"/data/{self._cid(cid)}")

    def verify(self, cid: str | CID) -> VerifyReport:
        """Have the node re-read a dataset and check every block."""
        return shapes.verify_from_json(self._request("POST", f"/data/{self._cid(cid)}/verify").json())

    def download_manifest(self, cid: str | CID) -> Manifest | LogosManifest:
        """A dataset's manifest (from the network if the node does not store it)."""
        return shapes.manifest_from_json(
            self._request("GET", f"/data/{self._cid(cid)}/network/manifest").json()["manifest"])

    def fetch(self, cid: str | CID) -> Manifest | LogosManifest:
        """Have the node fetch a dataset in the background; its manifest at once."""
        return self.fetch_start(cid).manifest

    def fetch_start(self, cid: str | CID) -> FetchStarted:
        """Have the node fetch a dataset in the background; its manifest and download id at once."""
        return shapes.fetch_started_from_json(self._request("POST", f"/data/{self._cid(cid)}/network").json())

    def fetch_progress(self, download_id: int, cid: str | CID | None = None) -> FetchProgress:
        """Progress of a background fetch (REST names it by CID and id: `cid` is needed)."""
        if cid is None:
            raise InvalidArgumentError("fetch_progress over REST needs the cid")
        return shapes.progress_from_json(
            self._request("GET", f"/data/{self._cid(cid)}/network/progress/{int(download_id)}").json())

    def fetch_cancel(self, download_id: int, cid: str | CID | None = None) -> None:
        """Cancel a background fetch (`cid` is needed, as for `fetch_progress`)."""
        if cid is None:
            raise InvalidArgumentError("fetch_cancel over REST needs the cid")
        self._request("DELETE", f"/data/{self._cid(cid)}/network/{int(download_id)}")

    # -- uploads -----------------------------------------------------------------------
    def upload_init(self, filepath: str, chunk_size: int = 0) -> str:
        """Open an upload: of the file at `filepath` (then `upload_file`), or of pushed chunks
        named `filepath` (then `upload_chunk`… `upload_finalize`)."""
        path = Path(filepath) if filepath else None
        if path is not None and path.is_absolute() and not path.is_file():
            raise NotFoundError(f"Failed to init upload: the filepath does not exist: {filepath}", path=filepath)
        session = str(next(self._ids))
        self._uploads[session] = _Upload(path if path is not None and path.is_file() else None,
                                         path.name if path is not None and path.name else None, chunk_size)
        return session

    def add(self, source: bytes | bytearray | memoryview | str | os.PathLike[str], filename: str | None = None,
            mimetype: str | None = None) -> CID:
        """Store bytes or the file at a path in one call; returns the manifest CID (as `Node.add`)."""
        if not isinstance(source, (bytes, bytearray, memoryview)):
            return self.upload_file(self.upload_init(str(Path(os.fspath(source)).resolve())))
        headers = {}
        kind = mimetype or (guess_mimetype(filename) if filename else None)
        if kind:
            headers["content-type"] = kind
        if filename:
            headers["content-disposition"] = "attachment; filename*=UTF-8''" + urllib.parse.quote(filename, safe="")
        return CID.parse(self._request("POST", "/data", content=bytes(source), headers=headers).text.strip())

    def cat(self, cid: str | CID, local: bool = True) -> bytes:
        """The whole content of `cid` as bytes (as `Node.cat`)."""
        pieces: list[bytes] = []
        self.download_stream(cid, None, 0, local, pieces.append)
        return b"".join(pieces)

    def _upload(self, session: str) -> _Upload:
        upload = self._uploads.get(str(session))
        if upload is None:
            raise NotFoundError(f"no upload session {session}", session=str(session))
        return upload

    def _post_data(self, upload: _Upload, body: Iterator[bytes], length: int | None) -> CID:
        headers = {}
        mimetype = guess_mimetype(upload.name)
        if mimetype:
            headers["content-type"] = mimetype
        if upload.name:
            headers["content-disposition"] = "attachment; filename*=UTF-8''" + urllib.parse.quote(upload.name, safe="")
        if length is not None:
            headers["content-length"] = str(length)
        params = {"blockSize": upload.chunk_size} if upload.chunk_size else {}
        return CID.parse(self._request("POST", "/data", content=body, headers=headers, params=params).text.strip())

    def upload_file(self, session: str, on_progress: Callable[[int], None] | None = None) -> CID:
        """Send the file named at upload_init; `on_progress(n)` for every n bytes sent."""
        upload = self._uploads.pop(str(session), None)
        if upload is None or upload.path is None:
            raise InvalidArgumentError(f"Failed to upload file: session {session} has no file")
        path = upload.path

        def body() -> Iterator[bytes]:
            with open(path, "rb") as fh:
                while piece := fh.read(PIECE):
                    yield piece
                    if on_progress is not None:
                        on_progress(len(piece))

        try:
            size = path.stat().st_size
        except OSError as exc:
            raise NotFoundError(f"Failed to upload file: cannot read {path}: {exc.strerror}", path=str(path)) from exc
        return self._post_data(upload, body(), size)

    def upload_chunk(self, session: str, data: bytes) -> None:
        """Send more bytes of a pushed upload (the request starts with the first chunk)."""
        upload = self._upload(session)
        if upload.thread is None:
            upload.thread = threading.Thread(target=self._send_pushed, args=(upload,), daemon=True,
                                             name=f"hoard-upload-{session}")
            upload.thread.start()
        while True:
            if upload.error is not None or not upload.thread.is_alive():
                self._uploads.pop(str(session), None)
                raise upload.error or StateError("upload request ended early")
            try:
                upload.pieces.put(bytes(data), timeout=0.5)
                return
            except queue.Full:
                continue

    def _send_pushed(self, upload: _Upload) -> None:
        def body() -> Iterator[bytes]:
            while (piece := upload.pieces.get()) is not None:
                if piece is _CANCEL:
                    raise _Abort("upload cancelled")
                yield piece

        try:
            upload.result = self._post_data(upload, body(), None)
        except BaseException as exc:  # noqa: BLE001 - handed to upload_chunk/upload_finalize
            upload.error = exc
            while True:  # unblock a producer waiting on a full queue
                try:
                    upload.pieces.get_nowait()
                except queue.Empty:
                    break

    def upload_finalize(self, session: str) -> CID:
        """Finish a pushed upload; the manifest CID."""
        upload = self._uploads.pop(str(session), None)
        if upload is None:
            raise NotFoundError(f"Failed to finalize upload: no upload session {session}", session=str(session))
        if upload.thread is None:
            return self._post_data(upload, iter(()), 0)
        self._stop_upload(upload, None)
        if upload.error is not None:
            raise upload.error
        assert upload.result is not None
        return upload.result

    def _stop_upload(self, upload: _Upload, last: Any = _CANCEL) -> None:
        """End a pushed upload's body: normally (`last=None`) or cut short (`_CANCEL`)."""
        if upload.thread is None:
            return
        while upload.thread.is_alive():
            try:
                upload.pieces.put(last, timeout=0.5)
                break
            except queue.Full:
                continue
        upload.thread.join()

    def upload_cancel(self, session: str) -> None:
        """Abandon an upload: a request already sending is cut short, so the node drops it."""
        upload = self._uploads.pop(str(session), None)
        if upload is not None:
            self._stop_upload(upload)

    # -- downloads ---------------------------------------------------------------------
    def download_init(self, cid: str | CID, chunk_size: int = 0, local: bool = True) -> str:
        """Nothing is opened ahead over HTTP; the download happens in `download_stream`."""
        self._cid(cid)
        return ""

    def download_stream(self, cid: str | CID, filepath: str | None = None, chunk_size: int = 0, local: bool = True,
                        on_progress: Callable[[bytes], None] | None = None) -> int:
        """Stream the content to `filepath` and/or `on_progress(chunk)`; returns bytes."""
        path = f"/data/{self._cid(cid)}" + ("" if local else "/network/stream")
        out = OutputFile(filepath) if filepath else None  # a temp file of its own, renamed over filepath at the end
        total = 0
        try:
            with self._reaching(), self._client.stream("GET", path) as response:
                if response.status_code >= 400:
                    response.read()
                    raise error_from_response(response)
                if out is not None:
                    out.open()
                for piece in response.iter_bytes(chunk_size or PIECE):
                    total += len(piece)
                    if out is not None:
                        out.write(piece)
                    if on_progress is not None:
                        on_progress(piece)
            if out is not None:
                out.commit()
                out = None
            return total
        finally:
            if out is not None:
                out.discard()  # only the temp file it created

    def download_cancel(self, cid: str | CID) -> None:
        """Nothing to cancel: downloads over HTTP hold no session."""
