"""NodeCore: the node's operations, as coroutines run on the worker's trio loop.

Frontends never call these directly: `hoard.Node` (blocking), `hoard.AsyncNode` (asyncio),
the C ABI, gRPC, REST and the CLI all dispatch them through the worker (node.py). Every
public coroutine here is marked `@api`; the frontends are generated from those marks.

Subsystems (maintenance, later the network) are `Service`s: started by `start()` inside a
nursery of their own and cancelled by `stop()`.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any, Protocol, TypeVar

import trio

from hoard.content import LocalReader
from hoard.errors import InvalidArgumentError, StateError
from hoard.ids.cid import CID
from hoard.node import info
from hoard.node.config import LOG_LEVELS, Config
from hoard.node.repo import Repo
from hoard.node.runtime import Worker
from hoard.node.sessions import Sessions

log = logging.getLogger("hoard")
F = TypeVar("F", bound=Callable[..., Awaitable[Any]])

API_NAMES: list[str] = []


def api(fn: F) -> F:
    """Mark a NodeCore coroutine as part of the public API (Node and AsyncNode get it)."""
    API_NAMES.append(fn.__name__)
    fn.__hoard_api__ = True  # type: ignore[attr-defined]
    return fn


class Service(Protocol):
    """A subsystem run while the node is started."""

    name: str

    async def run(self, core: CoreBase, task_status: trio.TaskStatus[None]) -> None: ...


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


def parse_cid(value: str | CID, op: str) -> CID:
    """Parse a CID argument, with the Logos error wording."""
    from hoard.errors import InvalidCidError

    try:
        return CID.parse(value)
    except InvalidCidError as exc:
        shown = str(value) if len(str(value)) <= 100 else f"{str(value)[:64]}... ({len(str(value))} characters)"
        raise InvalidCidError(f"Failed to {op}: cannot parse cid: {shown}", cid=shown) from exc


class CoreBase:
    """The state and operations of one node. Lives on the worker thread.

    Subsystem mixins (node/api_*.py) add `@api` coroutines and may define
    `init_subsystem(self)` (called at creation) and `async close_subsystem(self)` (at close).
    """

    def __init__(self, config: Config, repo: Repo, worker: Worker) -> None:
        self.config = config
        self.worker = worker
        self._repo = repo
        self.content = repo.content
        self.store = repo.store
        self.identity = repo.identity
        self.sessions = Sessions(self.content, self.open_reader)
        self.services: list[Service] = [MaintenanceService()]
        self.started = False
        self.network: Any = None  # set by the network service while started
        self._run_scope: trio.CancelScope | None = None
        self._stopped: trio.Event | None = None
        self.readers: list[Callable[[CID, bool], Awaitable[Any]]] = []  # network readers register here
        set_log_level(config.log_level)
        for cls in reversed(type(self).__mro__):
            init = vars(cls).get("init_subsystem")
            if init is not None:
                init(self)

    # -- lifecycle -------------------------------------------------------------------
    @api
    async def start(self) -> None:
        """Start the node's services (network, maintenance). Start again after stop works."""
        if self.started:
            return
        started = trio.Event()
        self._stopped = trio.Event()
        failure: list[BaseException] = []

        async def run_services(task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
            try:
                with trio.CancelScope() as scope:
                    self._run_scope = scope
                    async with trio.open_nursery() as nursery:
                        for service in self.services:
                            await nursery.start(service.run, self)
                        started.set()
                        task_status.started()
                        await trio.sleep_forever()
            except BaseException as exc:  # a service failed to start or died
                if not started.is_set():
                    failure.append(exc)
                    started.set()
                else:
                    log.exception("node service failed; node stopped")
            finally:
                self.started = False
                self.network = None
                assert self._stopped is not None
                self._stopped.set()

        self._spawn(run_services)
        await started.wait()
        if failure:
            exc = failure[0]
            if isinstance(exc, BaseExceptionGroup) and len(exc.exceptions) == 1:
                exc = exc.exceptions[0]
            raise StateError(f"Failed to start node: {exc}") from exc
        self.started = True
        log.info("node %s started", self.identity.peer_id)

    def _spawn(self, fn: Callable[..., Awaitable[Any]]) -> None:
        self.worker.spawn(fn)

    @api
    async def stop(self) -> None:
        """Stop services; data and sessions stay. Idempotent."""
        if not self.started or self._run_scope is None:
            return
        self._run_scope.cancel()
        assert self._stopped is not None
        await self._stopped.wait()
        self.started = False
        log.info("node %s stopped", self.identity.peer_id)

    async def close(self) -> None:
        await self.stop()
        await self.sessions.close()
        for cls in type(self).__mro__:
            close = vars(cls).get("close_subsystem")
            if close is not None:
                await close(self)

    # -- info ------------------------------------------------------------------------
    @api
    async def version(self) -> str:
        """hoard's version string."""
        return info.version()

    @api
    async def revision(self) -> str:
        """The source revision (short git hash) this hoard was built from."""
        return info.revision()

    @api
    async def repo(self) -> str:
        """The data-dir path."""
        return str(self._repo.path)

    @api
    async def peer_id(self) -> str:
        """The libp2p peer ID."""
        return str(self.identity.peer_id)

    @api
    async def spr(self) -> str:
        """The node's signed peer record, `spr:...`, with its current addresses."""
        return self.identity.signed_peer_record(self._addrs())

    def _addrs(self) -> list[str]:
        return [str(a) for a in self.network.addrs] if self.network is not None else []

    @api
    async def debug(self) -> dict[str, Any]:
        """`{id, addrs, spr, announceAddresses, table: {localNode, nodes}}` (Logos shape)."""
        spr = await self.spr()
        table = (self.network.routing_table() if self.network is not None else
                 {"localNode": {"nodeId": str(self.identity.peer_id), "peerId": str(self.identity.peer_id),
                                "record": spr, "address": "", "seen": False}, "nodes": []})
        addrs = self._addrs()
        return {"id": str(self.identity.peer_id), "addrs": addrs, "spr": spr, "announceAddresses": addrs, "table": table}

    @api
    async def log_level(self, level: str) -> None:
        """Set the log level at run time: TRACE, DEBUG, INFO, NOTICE, WARN, ERROR or FATAL."""
        if not isinstance(level, str) or level.upper() not in LOG_LEVELS:
            raise InvalidArgumentError(f"Failed to set log level: invalid level {level!r} (one of {', '.join(LOG_LEVELS)})")
        set_log_level(level.upper())

    # -- uploads ---------------------------------------------------------------------
    @api
    async def upload_init(self, filepath: str, chunk_size: int = 0) -> str:
        """Open an upload session; returns its id. `chunk_size` (0 = 65536) is also the block size."""
        return self.sessions.upload_init(filepath, chunk_size)

    @api
    async def upload_chunk(self, session_id: str, data: bytes) -> None:
        """Append bytes to an upload session."""
        await self.sessions.upload_chunk(session_id, data)

    @api
    async def upload_finalize(self, session_id: str) -> str:
        """Finish an upload; returns the manifest CID. Durable when it returns."""
        cid = await self.sessions.upload_finalize(session_id)
        await self.announce(CID.parse(cid))
        return cid

    @api
    async def upload_cancel(self, session_id: str) -> None:
        """Cancel an upload and remove what it stored (no error for an unknown session)."""
        await self.sessions.upload_cancel(session_id)

    @api
    async def upload_file(self, session_id: str, on_progress: Callable[[int], None] | None = None) -> str:
        """Upload the file named at upload_init; `on_progress(n)` per stored block of n bytes."""
        cid = await self.sessions.upload_file(session_id, on_progress)
        await self.announce(CID.parse(cid))
        return cid

    async def announce(self, cid: CID) -> None:
        """Called when a dataset was stored; the network mixin advertises it."""

    # -- downloads -------------------------------------------------------------------
    async def open_reader(self, cid: CID, local: bool) -> Any:
        try:
            reader = await trio.to_thread.run_sync(LocalReader, self.content, cid)
            return LocalStreamReader(reader)
        except Exception:
            if local or not self.readers:
                raise
        return await self.readers[0](cid, local)

    @api
    async def download_init(self, cid: str, chunk_size: int = 0, local: bool = True) -> str:
        """Open a download session for `cid` ("" or "Download session already exists.")."""
        return await self.sessions.download_init(parse_cid(cid, "download"), chunk_size, local)

    @api
    async def download_chunk(self, cid: str) -> bytes:
        """The next chunk of an open download; b"" at the end."""
        return await self.sessions.download_chunk(parse_cid(cid, "download chunk"))

    @api
    async def download_stream(self, cid: str, filepath: str | None = None, chunk_size: int = 0, local: bool = True,
                              on_progress: Callable[[bytes], None] | None = None) -> int:
        """Stream the whole content to `filepath` and/or `on_progress(chunk)`; returns bytes."""
        return await self.sessions.download_stream(parse_cid(cid, "download stream"), filepath, chunk_size, local,
                                                   on_progress)

    @api
    async def download_cancel(self, cid: str) -> None:
        """Close a download session (no error if there is none)."""
        await self.sessions.download_cancel(parse_cid(cid, "cancel download"))

    @api
    async def download_manifest(self, cid: str) -> dict[str, Any]:
        """The manifest JSON of a dataset."""
        parsed = parse_cid(cid, "download manifest")
        return (await trio.to_thread.run_sync(self.content.manifest, parsed)).to_json()

    # -- storage ---------------------------------------------------------------------
    @api
    async def list(self) -> list[dict[str, Any]]:
        """Every stored dataset: `[{"cid", "manifest"}]`."""

        def run() -> list[dict[str, Any]]:
            return [{"cid": str(d.cid), "manifest": self.content.manifest(d.cid).to_json()}
                    for d in self.content.datasets()]

        return await trio.to_thread.run_sync(run)

    @api
    async def space(self) -> dict[str, int]:
        """`{totalBlocks, quotaMaxBytes, quotaUsedBytes, quotaReservedBytes}`."""
        return self.content.space().to_json()

    @api
    async def delete(self, cid: str) -> None:
        """Delete a dataset (manifest CID) or a single unreferenced block."""
        await trio.to_thread.run_sync(self.content.delete, parse_cid(cid, "delete"))

    @api
    async def exists(self, cid: str) -> bool:
        """Whether the block (or manifest) is in the local store."""
        return self.store.has(parse_cid(cid, "check existence"))

    @api
    async def fetch(self, cid: str) -> dict[str, Any]:
        """Fetch a dataset into the local store (local only here; the network mixin overrides)."""
        parsed = parse_cid(cid, "fetch")
        return (await trio.to_thread.run_sync(self.content.manifest, parsed)).to_json()

    @api
    async def verify(self, cid: str) -> dict[str, Any]:
        """Re-read a dataset (or block) from disk and check every block against its CID."""
        from hoard.node.maintenance import verify_dataset

        return await trio.to_thread.run_sync(verify_dataset, self.content, parse_cid(cid, "verify"))


class MaintenanceService:
    """Expires cached datasets every `block-mi`."""

    name = "maintenance"

    async def run(self, core: CoreBase, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        while True:
            await trio.sleep(core.config.block_mi)
            expired = await trio.to_thread.run_sync(core.content.expire)
            if expired:
                log.info("expired %d cached dataset(s)", len(expired))


_LEVELS = {"TRACE": 5, "DEBUG": logging.DEBUG, "INFO": logging.INFO, "NOTICE": 25, "WARN": logging.WARNING,
           "ERROR": logging.ERROR, "FATAL": logging.CRITICAL}
logging.addLevelName(5, "TRACE")
logging.addLevelName(25, "NOTICE")


def set_log_level(level: str) -> None:
    logging.getLogger("hoard").setLevel(_LEVELS[level])

