"""`Node` (blocking) and `AsyncNode` (asyncio or trio): the typed faces of a node.

Both are declared in source: every operation is a method with its signature and docstring.
A `Node` method dispatches the operation to the node's worker (a thread running a trio loop,
node/runtime.py) and waits for the result; an `AsyncNode` method dispatches it and awaits the
worker's future from the caller's loop. `AsyncNode` (node/async_node.py) is generated from
this module by `python -m hoard.node.codegen`, so the two cannot drift; a test checks it is
up to date.

The operations themselves belong to the node's components (node/components/); the facade
only names them. Between the `# -- operations` markers below, every method body is a single
`return self._call(component operation, arguments...)` or `return self._now(function)`.
"""

from __future__ import annotations

import builtins
import concurrent.futures
import functools
import logging
import os
from collections.abc import Awaitable, Callable, Iterable
from typing import TYPE_CHECKING, Any, ParamSpec, Self, TypeVar

from hoard.blobs import BlobDigest, BlobStat
from hoard.content.formats.logos_manifest import LogosManifest
from hoard.content.manifest import Manifest
from hoard.errors import InvalidArgumentError, StateError
from hoard.files import FileBlock, FileInfo, FileWrite
from hoard.ids.cid import CID
from hoard.ids.peer import PeerId
from hoard.logs import Event, Log, LogName, OpenInfo, parse_name
from hoard.logs.metadata import MetadataInput
from hoard.node import info, observability
from hoard.node.composition import Components, compose
from hoard.node.config import LOG_LEVELS, Config
from hoard.node.context import NodeContext
from hoard.node.lifecycle import Lifecycle
from hoard.node.repo import Repo
from hoard.node.results import (
    CarImport,
    ConnectedPeer,
    Dataset,
    DebugInfo,
    FetchInfo,
    FetchProgress,
    FetchStarted,
    IpfsRoot,
    LogSummary,
    PeerInfo,
    Space,
    StreamInfo,
    TransferEvent,
    VerifyReport,
)
from hoard.node.runtime import Worker
from hoard.node.streams import NodeStream
from hoard.transfer.builtin import TransferPolicy
from hoard.transfer.events import Subscriber, Unsubscribe
from hoard.transfer.manager import ChannelTransport
from hoard.transfer.selector import Selector
from hoard.transfer.types import ChannelID, ChannelState, Status
from hoard.transfer.vouchers import EncodedVoucher, EncodedVoucherResult, Voucher, VoucherResult

if TYPE_CHECKING:
    from hoard.node.async_node import AsyncNode

P = ParamSpec("P")
T = TypeVar("T")
F = TypeVar("F", bound="NodeBase")

_LEVELS = {"TRACE": 5, "DEBUG": logging.DEBUG, "INFO": logging.INFO, "NOTICE": 25, "WARN": logging.WARNING,
           "ERROR": logging.ERROR, "FATAL": logging.CRITICAL}
logging.addLevelName(5, "TRACE")
logging.addLevelName(25, "NOTICE")


def set_log_level(level: str) -> None:
    """Set the level of hoard's loggers: TRACE, DEBUG, INFO, NOTICE, WARN, ERROR or FATAL."""
    if not isinstance(level, str) or level.upper() not in LOG_LEVELS:
        raise InvalidArgumentError(f"Failed to set log level: invalid level {level!r} (one of {', '.join(LOG_LEVELS)})")
    logging.getLogger("hoard").setLevel(_LEVELS[level.upper()])


def on_loop(fn: Callable[P, T]) -> Callable[P, Awaitable[T]]:
    """`fn` as a coroutine function, so a plain call runs on the worker's loop (where the state
    it touches lives)."""

    @functools.wraps(fn)
    async def call(*args: P.args, **kwargs: P.kwargs) -> T:
        return fn(*args, **kwargs)

    return call


class _Shared:
    """The mutable state of one node, shared by its faces (`Node` and its `as_async()` view)."""

    def __init__(self) -> None:
        self.closed = False
        self.metrics: observability.MetricsServer | None = None


class NodeBase:
    """Creation, teardown and dispatch shared by `Node` and `AsyncNode`.

    One node may be seen through several faces: `as_async()` / `as_sync()` return another
    face of the same node (same worker, same components), and `dispatch` is its face whose
    methods return the worker's `concurrent.futures.Future` at once (for frontends with their
    own threads and callbacks, such as the C ABI).
    """

    _SHARED = ("config", "_worker", "_repo", "_components", "_lifecycle", "_shared")

    def __init__(self, config: Config | dict[str, Any] | str | None = None) -> None:
        self.config = Config.coerce(config)
        self._worker = Worker(name=f"hoard-{self.config.data_dir.name}")
        self._repo = Repo(self.config)
        try:
            set_log_level(self.config.log_level)
            self._worker.start()
            self._components = compose(NodeContext(self.config, self._repo, self._worker))
            self._lifecycle = Lifecycle(self._components)
        except BaseException:
            self._worker.shutdown()
            self._repo.close()
            raise
        self._shared = _Shared()
        self._attach()
        try:
            self._shared.metrics = observability.start(self)  # log-format, log-file, metrics (Logos options)
        except BaseException:
            self._close_sync()
            raise

    def _attach(self) -> None:
        """Create the face's namespaces (each face class adds its own)."""
        from hoard.node.dispatch import NodeDispatch

        self.dispatch = NodeDispatch(self)

    def _view(self, cls: type[F]) -> F:
        """A face of class `cls` on this same node."""
        view = cls.__new__(cls)
        for name in self._SHARED:
            setattr(view, name, getattr(self, name))
        view._attach()
        return view

    def as_sync(self) -> Node:
        """This node's blocking face (`Node`); closing either face closes the node."""
        return self if isinstance(self, Node) else self._view(Node)

    def as_async(self) -> AsyncNode:
        """This node's awaitable face (`AsyncNode`); closing either face closes the node."""
        from hoard.node.async_node import AsyncNode

        return self if isinstance(self, AsyncNode) else self._view(AsyncNode)

    @property
    def components(self) -> Components:
        """The node's components (node/composition.py): for embedding code that extends the
        node; the operations above are the supported surface. StateError once closed."""
        if self._shared.closed:
            raise StateError("node is closed")
        return self._components

    _c = components

    @property
    def closed(self) -> bool:
        """Whether `close()` was called."""
        return self._shared.closed

    @property
    def started(self) -> bool:
        """Whether the node is started (its network and services run)."""
        return not self._shared.closed and self._lifecycle.started

    def _submit(self, fn: Callable[P, Awaitable[T]], /, *args: P.args, **kwargs: P.kwargs) -> concurrent.futures.Future[T]:
        """Dispatch `fn(*args, **kwargs)` to the worker; returns its Future at once (the "ack")."""
        if self._shared.closed:
            raise StateError("node is closed")
        return self._worker.submit(functools.partial(fn, *args, **kwargs))

    def _now(self, fn: Callable[[], T]) -> T:
        """`fn()` in the caller's thread (for operations that touch no node state)."""
        if self._shared.closed:
            raise StateError("node is closed")
        return fn()

    def _done(self, fn: Callable[[], T]) -> concurrent.futures.Future[T]:
        """`fn()` run now, as a finished Future (the `dispatch` form of `_now`)."""
        future: concurrent.futures.Future[T] = concurrent.futures.Future()
        try:
            future.set_result(self._now(fn))
        except Exception as exc:  # noqa: BLE001 - delivered through the future
            future.set_exception(exc)
        return future

    def _close_sync(self) -> None:
        if self._shared.closed:
            return
        metrics, self._shared.metrics = self._shared.metrics, None
        if metrics is not None:
            metrics.close()
        try:
            if not self._worker.in_worker:
                self._worker.call(self._lifecycle.close)
        finally:
            self._shared.closed = True
            self._worker.shutdown()
            self._repo.close()

    def _repo_path(self) -> str:
        return str(self._repo.path)

    def write_runtime_info(self, details: dict[str, Any]) -> None:
        """Write `data-dir/node.json` (pid + `details`: API addresses) for the CLI to find."""
        self._repo.write_runtime_info(details)


class Node(NodeBase):
    """A hoard node with a blocking API. `Node(config)` opens the repo (no network yet).

    `config` is a `Config`, a dict of Logos option names, a JSON string, or a path to a JSON
    file. Use `start()`/`stop()` for the network and services, `close()` (or a `with` block)
    to release everything. Methods may be called from any thread except hoard's own.
    """

    def _attach(self) -> None:
        super()._attach()
        self.net = NetApi(self)
        self.blobs = BlobsApi(self)
        self.files = FilesApi(self)
        self.logs = LogsApi(self)
        self.transfer = TransferApi(self)
        self.data_transfer = DataTransfer(self)
        self.ipfs = IpfsApi(self)

    def _call(self, fn: Callable[P, Awaitable[T]], /, *args: P.args, **kwargs: P.kwargs) -> T:
        return self._submit(fn, *args, **kwargs).result()

    def close(self) -> None:
        """Stop the node, cancel open sessions, release the repo. Idempotent."""
        self._close_sync()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- operations (AsyncNode is generated from here to the end marker) -------------------
    def start(self) -> None:
        """Start the node's network and services. Start again after stop works."""
        return self._call(self._lifecycle.start)

    def stop(self) -> None:
        """Stop the network and services; data and sessions stay. Idempotent."""
        return self._call(self._lifecycle.stop)

    def version(self) -> str:
        """hoard's version string."""
        return self._now(info.version)

    def revision(self) -> str:
        """The source revision (short git hash) this hoard was built from."""
        return self._now(info.revision)

    def repo(self) -> str:
        """The data-dir path."""
        return self._now(self._repo_path)

    def log_level(self, level: str) -> None:
        """Set the log level at run time: TRACE, DEBUG, INFO, NOTICE, WARN, ERROR or FATAL."""
        return self._now(lambda: set_log_level(level))

    def peer_id(self) -> PeerId:
        """The libp2p peer ID."""
        return self._call(self._c.net.peer_id)

    def spr(self) -> str:
        """The node's signed peer record, `spr:...`, with its current addresses."""
        return self._call(self._c.net.spr)

    def debug(self) -> DebugInfo:
        """The node's peer ID, addresses, signed peer record and routing table (Logos `debug`)."""
        return self._call(self._c.net.debug)

    def connect(self, peer_id: str | PeerId, addrs: builtins.list[str] | None = None) -> None:
        """Connect to a peer: dial `addrs` (multiaddrs) if given, else find it in the DHT."""
        return self._call(self._c.net.connect, peer_id, addrs)

    def peer_debug(self, peer_id: str | PeerId) -> PeerInfo:
        """What the node knows of a peer (PeerError "peer not found." if nothing)."""
        return self._call(self._c.net.peer_debug, peer_id)

    def upload_init(self, filepath: str, chunk_size: int = 0) -> str:
        """Open an upload session; returns its id. `chunk_size` (0 = 65536) is also the block size."""
        return self._call(self._c.data.upload_init, filepath, chunk_size)

    def upload_open(self, filename: str | None = None, mimetype: str | None = None, chunk_size: int = 0,
                    reserve: int = 0) -> str:
        """Open an upload session for bytes pushed with `upload_chunk`, with the dataset's
        `filename` and `mimetype` given explicitly; returns its id. `reserve`: the expected
        size, admitted against the quota now (QuotaExceededError, no session) and kept."""
        return self._call(self._c.data.upload_open, filename, mimetype, chunk_size, reserve)

    def upload_chunk(self, session_id: str, data: bytes) -> None:
        """Append bytes to an upload session."""
        return self._call(self._c.data.upload_chunk, session_id, data)

    def upload_finalize(self, session_id: str) -> CID:
        """Finish an upload; returns the manifest CID. Durable when it returns."""
        return self._call(self._c.data.upload_finalize, session_id)

    def upload_cancel(self, session_id: str) -> None:
        """Cancel an upload and remove what it stored (no error for an unknown session)."""
        return self._call(self._c.data.upload_cancel, session_id)

    def upload_file(self, session_id: str, on_progress: Callable[[int], None] | None = None) -> CID:
        """Upload the file named at upload_init; `on_progress(n)` per stored block of n bytes."""
        return self._call(self._c.data.upload_file, session_id, on_progress)

    def add(self, source: bytes | bytearray | memoryview | str | os.PathLike[str], filename: str | None = None,
            mimetype: str | None = None) -> CID:
        """Store bytes or the file at a path in one call; returns the manifest CID (durable)."""
        return self._call(self._c.data.add, source, filename, mimetype)

    def cat(self, cid: str | CID, local: bool = True) -> bytes:
        """The whole content of `cid` as bytes (`local=False`: from the network too); in memory."""
        return self._call(self._c.data.cat, cid, local)

    def download_init(self, cid: str | CID, chunk_size: int = 0, local: bool = True) -> str:
        """Open a download session for `cid` ("" or "Download session already exists.")."""
        return self._call(self._c.data.download_init, cid, chunk_size, local)

    def download_chunk(self, cid: str | CID) -> bytes:
        """The next chunk of an open download; b"" at the end."""
        return self._call(self._c.data.download_chunk, cid)

    def download_stream(self, cid: str | CID, filepath: str | None = None, chunk_size: int = 0, local: bool = True,
                        on_progress: Callable[[bytes], None] | None = None) -> int:
        """Stream the whole content to `filepath` and/or `on_progress(chunk)`; returns bytes."""
        return self._call(self._c.data.download_stream, cid, filepath, chunk_size, local, on_progress)

    def download_cancel(self, cid: str | CID) -> None:
        """Close a download session (no error if there is none)."""
        return self._call(self._c.data.download_cancel, cid)

    def download_manifest(self, cid: str | CID) -> Manifest | LogosManifest:
        """The manifest of a dataset: from the local store, else from the network."""
        return self._call(self._c.fetch.download_manifest, cid)

    def list(self) -> builtins.list[Dataset]:
        """Every stored dataset, with its manifest."""
        return self._call(self._c.data.list)

    def space(self) -> Space:
        """Blocks stored, the quota, and the bytes used and reserved (Logos `space`)."""
        return self._call(self._c.data.space)

    def delete(self, cid: str | CID) -> None:
        """Delete a dataset (manifest CID) or a single block."""
        return self._call(self._c.data.delete, cid)

    def keep(self, cid: str | CID) -> None:
        """Store a cached (fetched) dataset for good: no expiry, as an upload. No-op if stored."""
        return self._call(self._c.data.keep, cid)

    def exists(self, cid: str | CID) -> bool:
        """Whether the block (or manifest) is in the local store."""
        return self._call(self._c.data.exists, cid)

    def verify(self, cid: str | CID) -> VerifyReport:
        """Re-read a dataset (or block) from disk and check every block against its CID."""
        return self._call(self._c.data.verify, cid)

    def fetch(self, cid: str | CID) -> Manifest | LogosManifest:
        """Fetch a dataset into the local store in the background; returns its manifest at once."""
        return self._call(self._c.fetch.fetch, cid)

    def fetch_start(self, cid: str | CID) -> FetchStarted:
        """Start fetching a dataset in the background; its manifest and download id at once."""
        return self._call(self._c.fetch.fetch_start, cid)

    def fetch_progress(self, download_id: int, cid: str | CID | None = None) -> FetchProgress:
        """Progress of a fetch; `active=False` and nothing else for an unknown id."""
        return self._call(self._c.fetch.fetch_progress, download_id, cid)

    def fetch_cancel(self, download_id: int, cid: str | CID | None = None) -> None:
        """Cancel an active fetch (NotFoundError if there is no active fetch with that id)."""
        return self._call(self._c.fetch.fetch_cancel, download_id, cid)

    def fetches(self) -> builtins.list[FetchInfo]:
        """Every fetch still remembered (active ones, then recent finished ones), newest first."""
        return self._call(self._c.fetch.fetches)

    def stream_open(self, cid: str | CID, offset: int = 0, length: int | None = None,
                    local: bool = True) -> StreamInfo:
        """Open a read stream from byte `offset`: its id, the content size, the length it delivers."""
        return self._call(self._c.data.stream_open, cid, offset, length, local)

    def stream_read(self, stream_id: str, n: int = 1 << 20) -> bytes:
        """Up to `n` more bytes of a read stream; b"" at its end."""
        return self._call(self._c.data.stream_read, stream_id, n)

    def stream_close(self, stream_id: str) -> None:
        """Close a read stream (no error if it is already closed)."""
        return self._call(self._c.data.stream_close, stream_id)


class NetApi:
    """`node.net`: the node on the network (beyond the Logos `connect`/`peer_debug`)."""

    def __init__(self, node: Node) -> None:
        self._node = node

    # -- operations (the async twin is generated from here to the end of the class) -------
    def peers(self) -> builtins.list[PeerId]:
        """The currently connected peers."""
        return self._node._call(self._node._c.net.peers)

    def peer_list(self) -> builtins.list[ConnectedPeer]:
        """The connected peers with their addresses, direction, latency (one ping now) and agent."""
        return self._node._call(self._node._c.net.peer_list)


    def addrs(self) -> builtins.list[str]:
        """The addresses the node listens on (none while stopped)."""
        return self._node._call(on_loop(self._node._c.net.addrs))

    def exchange_stats(self) -> dict[str, Any]:
        """Counters of the block exchanges: `blocks` (/hoard/blocks/1 served), `bitswap`, and `bulk`
        (`opened`: channels this node opened over the bulk path or the fallback; `served`); {} while stopped."""
        return self._node._call(on_loop(self._node._c.net.exchange_stats))


class IpfsApi:
    """`node.ipfs`: UnixFS files and directories, CAR files and IPFS blocks (kubo/Helia interop)."""

    def __init__(self, node: Node) -> None:
        self._node = node

    # -- operations (the async twin is generated from here to the end of the class) -------
    def add(self, path: str | os.PathLike[str], cid_version: int = 0, raw_leaves: bool = False,
            filename: str | None = None, pin: bool = True) -> IpfsRoot:
        """Import a file or directory as UnixFS: kubo's `ipfs add` (CIDv0), or with `cid_version=1,
        raw_leaves=True` its `--cid-version=1 --raw-leaves`; the root and its catalog entry."""
        return self._node._call(self._node._c.ipfs.add, path, cid_version, raw_leaves, filename, pin)

    def download(self, cid: str | CID, path: str | os.PathLike[str], network: bool = False) -> int:
        """Write the UnixFS file or directory under `cid` to `path` (must not exist), every block
        verified; with `network`, fetch it by bitswap first. Returns the content bytes written."""
        return self._node._call(self._node._c.ipfs.download, cid, path, network)

    def fetch(self, cid: str | CID, pin: bool = False) -> IpfsRoot:
        """Fetch the DAG under `cid` into the local store by bitswap (each block verified)."""
        return self._node._call(self._node._c.ipfs.fetch, cid, pin)

    def block(self, cid: str | CID) -> bytes:
        """One stored block, verified against its CID (NotFoundError if absent)."""
        return self._node._call(self._node._c.ipfs.block, cid)

    def has(self, cid: str | CID) -> bool:
        """Whether the block is stored locally."""
        return self._node._call(self._node._c.ipfs.has, cid)

    def stat(self, cid: str | CID) -> IpfsRoot:
        """The catalog entry of a stored root (NotFoundError if it is not one)."""
        return self._node._call(self._node._c.ipfs.stat, cid)

    def list(self) -> builtins.list[IpfsRoot]:
        """Every stored IPFS root (UnixFS files and directories, CAR roots)."""
        return self._node._call(self._node._c.ipfs.list)

    def remove(self, cid: str | CID) -> None:
        """Remove a stored root; its blocks nobody else holds are deleted."""
        return self._node._call(self._node._c.ipfs.remove, cid)

    def car_export(self, cid: str | CID, path: str | os.PathLike[str], version: int = 1) -> int:
        """Write the stored DAG under `cid` as a CARv1 (or CARv2) file; returns its bytes."""
        return self._node._call(self._node._c.ipfs.car_export, cid, path, version)

    def car_import(self, path: str | os.PathLike[str], pin: bool = True) -> CarImport:
        """Store a CARv1/CARv2 file's blocks (each verified) and record its roots; all or nothing."""
        return self._node._call(self._node._c.ipfs.car_import, path, pin)


class BlobsApi:
    """`node.blobs`: castore blobs, found by the BLAKE3 digest of their content."""

    def __init__(self, node: Node) -> None:
        self._node = node

    # -- operations (the async twin is generated from here to the end of the class) -------
    def put(self, source: bytes | os.PathLike[str] | Iterable[bytes],
                 on_progress: Callable[[int], None] | None = None) -> BlobStat:
        """Store a blob (bytes, a file path or an iterable of pieces); its digest, size, manifest."""
        return self._node._call(self._node._c.blobs.put, source, on_progress)

    def stat(self, digest: str | bytes | BlobDigest, chunks: bool = True) -> BlobStat:
        """A blob's size, manifest CID and (with `chunks`) chunk list. NotFoundError if absent."""
        return self._node._call(self._node._c.blobs.stat, digest, chunks)

    def read(self, digest: str | bytes | BlobDigest) -> NodeStream[bytes]:
        """The bytes of a blob (or one chunk) as a stream of pieces. NotFoundError if absent."""
        return self._node._call(self._node._c.blobs.read, digest)



class FilesApi:
    """`node.files`: hugo files (indexed blocks, CRC32, history versions)."""

    def __init__(self, node: Node) -> None:
        self._node = node

    # -- operations (the async twin is generated from here to the end of the class) -------
    def write(self, ino: int, data: bytes, index: int | None = None, crc32: int | None = None) -> FileWrite:
        """Write one block of file `ino` at `index` (or append); `crc32` checked if given."""
        return self._node._call(self._node._c.files.write, ino, data, index, crc32)

    def stream_write(self, ino: int, blocks: Iterable[bytes]) -> FileWrite:
        """Append `blocks` to file `ino` in order, as one new version."""
        return self._node._call(self._node._c.files.stream_write, ino, blocks)

    def read(self, ino: int, start: int | None = None, end: int | None = None,
                  version: int | None = None) -> NodeStream[FileBlock]:
        """The blocks start..end (inclusive) of file `ino` at `version`, as a stream."""
        return self._node._call(self._node._c.files.read, ino, start, end, version)

    def stat(self, ino: int, version: int | None = None) -> FileInfo:
        """File `ino` at `version` (default: the latest): blocks, bytes, next index, time."""
        return self._node._call(self._node._c.files.stat, ino, version)



class LogsApi:
    """`node.logs`: GDP-style signed append-only logs, local and remote."""

    def __init__(self, node: Node) -> None:
        self._node = node

    # -- operations (the async twin is generated from here to the end of the class) -------
    def create(self, metadata: MetadataInput = None, name: str | None = None) -> Log:
        """Create a log hosted by this node; returns it open "ra"."""
        return self._node._call(self._node._c.logs.create, metadata, name)

    def open(self, name: str | LogName, mode: str = "ra", signing_key: Any = None,
             info: OpenInfo | None = None) -> Log:
        """Open a log, hosted here or (while started) by a peer: "ro", "ao" or "ra"; `info` is
        GDP's open information (`hoard.logs.OpenInfo`: key, key callbacks, caching)."""
        return self._node._call(self._node._c.logs.open, name, mode, signing_key, info)

    def event_next(self, log: Log | None = None, timeout: float | None = None) -> Event | None:
        """The next event of a log request made without a callback; None on timeout."""
        return self._node._call(self._node._c.logs.event_next, log, timeout)

    def parse_name(self, value: str | bytes | LogName) -> LogName:
        """A log name from its printable form, raw 32 bytes, or any other string (SHA-256)."""
        return self._node._call(self._node._c.logs.parse_name, value)

    def list(self) -> builtins.list[LogSummary]:
        """The logs this node hosts, with their record counts, in name order."""
        return self._node._call(self._node._c.logs.list)


    def writable(self, name: str | LogName) -> bool:
        """Whether this node holds the writer key of log `name` (in `data-dir/keys`)."""
        return self._node._call(on_loop(self._node._c.logs.writable), parse_name(name))


class TransferApi:
    """`node.transfer`: data-transfer channels, as JSON-shaped states (`node.data_transfer` is the
    go-data-transfer `Manager` API)."""

    def __init__(self, node: Node) -> None:
        self._node = node

    # -- operations (the async twin is generated from here to the end of the class) -------
    def open(self, peer: str | PeerId, cid: str | CID, direction: str = "pull", selector: Any = None,
                      voucher: Any = None, addrs: builtins.list[str] | None = None) -> ChannelState:
        """Open a data-transfer channel with `peer` for `cid`; returns its state."""
        return self._node._call(self._node._c.transfer.open, peer, cid, direction, selector, voucher, addrs)

    def channels(self) -> builtins.list[ChannelState]:
        """Every channel this node knows (finished ones too), oldest first."""
        return self._node._call(self._node._c.transfer.channels)

    def channel(self, chid: str | ChannelID) -> ChannelState:
        """One channel's state ("<initiator>-<responder>-<id>")."""
        return self._node._call(self._node._c.transfer.channel, chid)

    def pause(self, chid: str | ChannelID) -> ChannelState:
        """Pause a channel (our side); returns its state."""
        return self._node._call(self._node._c.transfer.pause, chid)

    def resume(self, chid: str | ChannelID) -> ChannelState:
        """Resume a channel (our side); returns its state."""
        return self._node._call(self._node._c.transfer.resume, chid)

    def cancel(self, chid: str | ChannelID) -> ChannelState:
        """Cancel a channel; returns its state."""
        return self._node._call(self._node._c.transfer.cancel, chid)

    def restart(self, chid: str | ChannelID) -> ChannelState:
        """Restart an interrupted channel; returns its state."""
        return self._node._call(self._node._c.transfer.restart, chid)

    def send_voucher(self, chid: str | ChannelID, voucher: Any = None) -> ChannelState:
        """Send a further voucher on a channel we initiated; returns its state."""
        return self._node._call(self._node._c.transfer.send_voucher, chid, voucher)

    def wait(self, chid: str | ChannelID, on_event: Callable[[TransferEvent], None] | None = None,
             timeout: float | None = None) -> ChannelState:
        """Wait until a channel is Completed, Failed or Cancelled (or `timeout` seconds passed);
        its state then. `on_event(event)` for each of its events meanwhile (events thread)."""
        return self._node._call(self._node._c.transfer.wait, chid, on_event, timeout)

    def policy(self, push: bool | None = None, pull: bool | None = None,
                        peers: builtins.list[str] | None = None, any_peer: bool = False) -> TransferPolicy:
        """The default voucher's policy (push, pull, peers); arguments change it (persisted)."""
        return self._node._call(self._node._c.transfer.policy, push, pull, peers, any_peer)


class DataTransfer:
    """`node.data_transfer`: the transfer manager's API (go-data-transfer's `Manager`), run on
    the node's worker. Call it from any thread except hoard's own (validators and revalidators
    run there, so they must not call it; subscribers run on the events thread and may)."""

    def __init__(self, node: Node) -> None:
        self._node = node

    def _call(self, fn: Callable[P, Awaitable[T]], /, *args: P.args, **kwargs: P.kwargs) -> T:
        return self._node._call(fn, *args, **kwargs)

    # -- operations (AsyncDataTransfer is generated from here to the end marker) -----------
    def register_voucher_type(self, voucher_cls: type[Voucher], validator: Any) -> None:
        """Validate requests carrying `voucher_cls` with `validator` (a RequestValidator)."""
        return self._call(on_loop(self._node._c.transfer.manager.register_voucher_type), voucher_cls, validator)

    def register_revalidator(self, voucher_cls: type[Voucher], revalidator: Any) -> None:
        """Revalidate running channels with vouchers of `voucher_cls` (a Revalidator)."""
        return self._call(on_loop(self._node._c.transfer.manager.register_revalidator), voucher_cls, revalidator)

    def register_voucher_result_type(self, result_cls: type[VoucherResult]) -> None:
        """Make results of `result_cls` decodable (`decode_voucher_result`)."""
        return self._call(on_loop(self._node._c.transfer.manager.register_voucher_result_type), result_cls)

    def register_transport_configurer(self, voucher_cls: type[Voucher],
                                      configurer: Callable[[ChannelID, Voucher, ChannelTransport], None]) -> None:
        """Run `configurer(chid, voucher, transport)` for each channel opened or accepted with `voucher_cls`."""
        return self._call(on_loop(self._node._c.transfer.manager.register_transport_configurer), voucher_cls,
                          configurer)

    def decode_voucher(self, encoded: EncodedVoucher) -> Voucher:
        """A voucher object from its encoding, with any registry that knows its type."""
        return self._call(on_loop(self._node._c.transfer.manager.decode_voucher), encoded)

    def decode_voucher_result(self, encoded: EncodedVoucherResult) -> VoucherResult:
        """A voucher result object from its encoding (its type must be registered)."""
        return self._call(on_loop(self._node._c.transfer.manager.decode_voucher_result), encoded)

    def subscribe_to_events(self, subscriber: Subscriber) -> Unsubscribe:
        """Call `subscriber(event, channel_state)` for every event, on the events thread."""
        return self._call(on_loop(self._node._c.transfer.manager.subscribe_to_events), subscriber)

    def channel_state(self, chid: ChannelID | str) -> ChannelState:
        """The channel's current state; ErrChannelNotFound when unknown."""
        return self._call(on_loop(self._node._c.transfer.manager.channel_state), chid)

    def transfer_channel_status(self, chid: ChannelID | str) -> Status:
        """The channel's status; `Status.ChannelNotFoundError` when unknown (as Go)."""
        return self._call(on_loop(self._node._c.transfer.manager.transfer_channel_status), chid)

    def in_progress_channels(self) -> dict[ChannelID, ChannelState]:
        """Every channel this node knows, finished ones included (as Go's InProgressChannels)."""
        return self._call(on_loop(self._node._c.transfer.manager.in_progress_channels))

    def open_push_data_channel(self, to: str | PeerId, voucher: Voucher | EncodedVoucher, base_cid: CID | str,
                               selector: Selector | dict[str, Any] = None) -> ChannelID:
        """Send `base_cid` (the blocks `selector` chooses) to `to`, who validates `voucher`."""
        return self._call(self._node._c.transfer.manager.open_push_data_channel, to, voucher, base_cid, selector)

    def open_pull_data_channel(self, to: str | PeerId, voucher: Voucher | EncodedVoucher, base_cid: CID | str,
                               selector: Selector | dict[str, Any] = None) -> ChannelID:
        """Ask `to` for `base_cid` (the blocks `selector` chooses); `to` validates `voucher`."""
        return self._call(self._node._c.transfer.manager.open_pull_data_channel, to, voucher, base_cid, selector)

    def send_voucher(self, chid: ChannelID | str, voucher: Voucher | EncodedVoucher) -> None:
        """Send a further voucher on a channel we initiated."""
        return self._call(self._node._c.transfer.manager.send_voucher, chid, voucher)

    def close_data_transfer_channel(self, chid: ChannelID | str) -> None:
        """Cancel a channel (both sides)."""
        return self._call(self._node._c.transfer.manager.close_data_transfer_channel, chid)

    def pause_data_transfer_channel(self, chid: ChannelID | str) -> None:
        """Pause a channel (our side)."""
        return self._call(self._node._c.transfer.manager.pause_data_transfer_channel, chid)

    def resume_data_transfer_channel(self, chid: ChannelID | str) -> None:
        """Resume a channel (our side)."""
        return self._call(self._node._c.transfer.manager.resume_data_transfer_channel, chid)

    def restart_data_transfer_channel(self, chid: ChannelID | str) -> None:
        """Restart an interrupted channel."""
        return self._call(self._node._c.transfer.manager.restart_data_transfer_channel, chid)
    # -- end of operations --
