"""Logs on the node: GDP-style signed append-only logs, local and remote.

One `LogService` per node, created with the node on its store, writer keys in
`data-dir/keys`, closed with the node. It works whether or not the node is started; remote
logs need the network:

* the node serves the logs it hosts on `/hoard/logs/1` (`LogServer`), and while started
  advertises each of them in the DHT under `provider_key(name)` (at start, after
  `log_create`, and every hour);
* `log_open` of a name the node does not host asks `RemoteLogs.locate`: the peer that served
  it before, then the DHT providers of its key, then the connected peers, each asked to open
  it; the first that has it serves the handle (a `RemoteLogBackend`, one per peer).

The API returns `Log` handles (hoard.logs.log): they are used from any thread, their calls
block (a synchronous append until the record is durable), and they must not be used on the
node's worker thread. Here every blocking call runs in a trio worker thread
(`trio.to_thread`), and the remote backends reach the trio loop with `trio.from_thread`.
"""

from __future__ import annotations

import functools
import logging
import threading
from collections.abc import Awaitable, Callable
from typing import Any

import trio

from hoard.errors import LogError, PeerError, StateError
from hoard.ids.peer import PeerId
from hoard.logs import Event, Log, LogName, LogService, parse_name
from hoard.logs.metadata import MetadataInput
from hoard.logs.remote import ClientConn, LogServer, RemoteLogBackend, provider_key
from hoard.logs.wire import LOGS_PROTOCOL
from hoard.node.core import api

log = logging.getLogger("hoard.node.logs")

REPROVIDE_INTERVAL = 3600.0  # seconds between re-advertisements of the hosted logs
FIND_TIMEOUT = 10.0  # seconds a DHT provider lookup may take when locating a log
MAX_PROBES = 16  # peers asked for a log before giving up
ANNOUNCE_WAIT = 3.0  # seconds log_create waits for the DHT to take a new log's record


class RemoteLogs:
    """The node's client side of `/hoard/logs/1`: a `RemoteLogBackend` per peer, and the
    `remote` hook its LogService calls for names it does not host."""

    def __init__(self, core: Any) -> None:
        self._core = core
        self._backends: dict[str, RemoteLogBackend] = {}
        self._hints: dict[LogName, str] = {}
        self._lock = threading.Lock()
        self._nursery: trio.Nursery | None = None
        self._token: trio.lowlevel.TrioToken | None = None
        self._trio_thread: int | None = None

    # -- lifetime (the LogsNetService, on the trio loop) ----------------------------------
    async def run(self, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Hold the nursery client streams run in while the node is started; advertise logs."""
        self._token = trio.lowlevel.current_trio_token()
        self._trio_thread = threading.get_ident()
        try:
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                task_status.started()
                await self._provide_forever()
        finally:
            self._nursery = None

    async def _provide_forever(self) -> None:
        while True:
            network = self._core.network
            if network is not None:
                names = await trio.to_thread.run_sync(self._core.logs.host.logs.names)
                for name in names:
                    await network.provide(provider_key(name))
            await trio.sleep(REPROVIDE_INTERVAL)

    # -- bridging from threads ------------------------------------------------------------
    def _run(self, fn: Callable[..., Awaitable[Any]], *args: Any) -> Any:
        """Run `fn(*args)` on the node's trio loop from another thread and wait for it."""
        token = self._token
        if token is None or self._nursery is None:
            raise LogError("the node is not started: remote logs need the network", status=503)
        if threading.get_ident() == self._trio_thread:
            raise StateError("a blocking log call on the node's worker thread would deadlock")
        try:
            return trio.from_thread.run(fn, *args, trio_token=token)
        except trio.RunFinishedError as exc:
            raise LogError("the node is closed", status=503) from exc

    async def _open_conn(self, peer: str) -> ClientConn:
        network = self._core.network
        nursery = self._nursery
        if network is None or nursery is None:
            raise LogError("the node is not started: remote logs need the network", status=503)
        try:
            stream = await network.host.open_stream(PeerId(peer), LOGS_PROTOCOL)
        except PeerError as exc:
            raise LogError(f"cannot reach log host {peer}: {exc.message}", status=503, peer=peer) from exc
        conn = ClientConn(peer, stream, trio.lowlevel.current_trio_token(), threading.get_ident())
        nursery.start_soon(conn.run)
        return conn

    def backend(self, peer: str) -> RemoteLogBackend:
        """The backend for the logs `peer` hosts (one per peer, reconnecting as needed)."""
        with self._lock:
            found = self._backends.get(peer)
            if found is None:
                found = self._backends[peer] = RemoteLogBackend(peer, functools.partial(self._run, self._open_conn, peer))
            return found

    # -- locating -------------------------------------------------------------------------
    async def _candidates(self, name: LogName) -> list[str]:
        network = self._core.network
        if network is None:
            return []
        found: list[str] = []
        with trio.move_on_after(FIND_TIMEOUT):
            try:
                found = [str(p) for p in await network.find_providers(provider_key(name))]
            except Exception as exc:  # noqa: BLE001 - fall back to the connected peers
                log.debug("provider lookup for log %s failed: %r", name, exc)
        connected = [str(p) for p in network.connected_peers()]
        return found + [p for p in connected if p not in found]

    def locate(self, name: LogName) -> RemoteLogBackend | None:
        """The backend of a peer hosting `name`, or None (LogService's `remote` hook; blocking)."""
        if self._core.network is None or self._nursery is None:
            return None
        hint = self._hints.get(name)
        tried: set[str] = set()
        candidates = [hint] if hint else []
        fetched = False
        while True:
            for peer in candidates:
                if peer in tried or len(tried) >= MAX_PROBES:
                    continue
                tried.add(peer)
                backend = self.backend(peer)
                try:
                    backend.probe(name)
                except LogError as exc:
                    if exc.code in (404, 502, 503, 504):
                        log.debug("peer %s does not serve log %s: %s", peer, name, exc.message)
                        continue
                    raise
                self._hints[name] = peer
                return backend
            if fetched:
                return None
            candidates = self._run(self._candidates, name)
            fetched = True

    def close(self) -> None:
        with self._lock:
            backends = list(self._backends.values())
        for backend in backends:
            backend.close()


class LogsNetService:
    """While the node is started: holds the client streams' nursery and advertises logs."""

    name = "logs"

    def __init__(self, remote: RemoteLogs) -> None:
        self._remote = remote

    async def run(self, core: Any, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        await self._remote.run(task_status)


class LogsApi:
    """Logs: create, open (local or remote), events."""

    logs: LogService
    remote_logs: RemoteLogs
    log_server: LogServer

    def init_subsystem(self) -> None:
        core: Any = self
        if not hasattr(core, "protocol_handlers"):
            raise StateError("LogsApi must come before NetApi in NodeCore's bases")
        self.remote_logs = RemoteLogs(core)
        self.logs = LogService(core.store, core._repo.keys_dir, remote=self.remote_logs.locate)
        self.log_server = LogServer(self.logs.host)
        core.protocol_handlers[LOGS_PROTOCOL] = self.log_server.handle
        core.services.append(LogsNetService(self.remote_logs))

    async def close_subsystem(self) -> None:
        self.remote_logs.close()
        await trio.to_thread.run_sync(self.logs.close)

    @api
    async def log_create(self, metadata: MetadataInput = None, name: str | None = None) -> Log:
        """Create a log hosted by this node; returns it open "ra". Its Ed25519 writer key is
        kept in `data-dir/keys/<name>.pem`. `metadata`: GDP metadata entries (a dict or
        (id, value) pairs; ids as ints or FourCC strings). `name`: create it under this name
        (else it is named SHA-256 of its metadata). While started, it is advertised in the DHT
        (this waits up to 3 s for the peers closest to its key to take the record)."""
        created = await trio.to_thread.run_sync(functools.partial(self.logs.log_create, metadata, name=name))
        await self._advertise(created.name)
        return created

    async def _advertise(self, name: LogName) -> None:
        """Announce a new log in the DHT: wait for it up to ANNOUNCE_WAIT, else finish in the background."""
        network = getattr(self, "network", None)
        if network is None:
            return
        with trio.move_on_after(ANNOUNCE_WAIT) as scope:
            await network.provide(provider_key(name), wait=True)
        if scope.cancelled_caught:
            await network.provide(provider_key(name))

    @api
    async def log_open(self, name: str | LogName, mode: str = "ra", signing_key: Any = None) -> Log:
        """Open a log, hosted here or (while started) by a peer: "ro", "ao" or "ra". Writing
        needs the writer key: `signing_key` (a key, 32-byte seed, PEM bytes or PEM path), else
        `data-dir/keys/<name>.pem`. LogError 404 if no one hosts it, 403 without the key."""
        return await trio.to_thread.run_sync(self.logs.log_open, name, mode, signing_key)

    @api
    async def event_next(self, log: Log | None = None, timeout: float | None = None) -> Event | None:
        """The next event of a log request made without a callback (of `log` only, if given);
        waits up to `timeout` seconds (None: until there is one); None on timeout."""
        return await trio.to_thread.run_sync(self.logs.event_next, log, timeout, abandon_on_cancel=True)

    @api
    async def parse_name(self, value: str | bytes | LogName) -> LogName:
        """A log name from its 43-character printable form, raw 32 bytes, or any other string
        (named by its SHA-256), as GDP's `gdp_parse_name`."""
        return parse_name(value)

    @api
    async def log_list(self) -> list[dict[str, Any]]:
        """The logs this node hosts: `[{"name", "nrecs"}]`, in name order."""
        store = self.logs.host.logs

        def run() -> list[dict[str, Any]]:
            return [{"name": str(n), "nrecs": store.nrecs(n)} for n in store.names()]

        return await trio.to_thread.run_sync(run)
