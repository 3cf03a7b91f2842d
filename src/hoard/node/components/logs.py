"""The logs component: GDP-style signed append-only logs, local and remote.

One `LogService` per node, created with the node on its store, writer keys in
`data-dir/keys`, closed with the node. It works whether or not the node is started; remote
logs need the network:

* the node serves the logs it hosts on `/hoard/logs/1` (`LogServer`), and while started
  advertises each of them in the DHT under `provider_key(name)` (at start, after
  `create`, and every hour);
* `open` of a name the node does not host asks `RemoteLogs.locate`: the peer that served
  it before, then the DHT providers of its key, then the connected peers, each asked to open
  it; the first that has it serves the handle (a `RemoteLogBackend`, one per peer).

The API returns `Log` handles (hoard.logs.log): they are used from any thread, their calls
block (a synchronous append until the record is durable), and they must not be used on the
node's worker thread. Here every blocking call runs in a trio worker thread
(`trio.to_thread`), and the remote backends reach the trio loop with `trio.from_thread`.
"""

from __future__ import annotations

import builtins
import functools
import logging
import threading
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import trio

from hoard.errors import LogError, PeerError, StateError
from hoard.ids.peer import PeerId
from hoard.logs import Event, Log, LogName, LogService, OpenInfo, parse_name
from hoard.logs.metadata import MetadataInput
from hoard.logs.remote import ClientConn, LogServer, RemoteLogBackend, provider_key
from hoard.logs.wire import LOGS_PROTOCOL
from hoard.node.component import StreamHandler
from hoard.node.components.net import NetComponent
from hoard.node.context import NodeContext
from hoard.node.results import LogSummary

log = logging.getLogger("hoard.node.logs")

REPROVIDE_INTERVAL = 3600.0  # seconds between re-advertisements of the hosted logs
FIND_TIMEOUT = 10.0  # seconds a DHT provider lookup may take when locating a log
MAX_PROBES = 16  # peers asked for a log before giving up
ANNOUNCE_WAIT = 3.0  # seconds log_create waits for the DHT to take a new log's record


class RemoteLogs:
    """The node's client side of `/hoard/logs/1`: a `RemoteLogBackend` per peer, and the
    `remote` hook its LogService calls for names it does not host."""

    def __init__(self, net: NetComponent, hosted_names: Callable[[], builtins.list[LogName]]) -> None:
        self._net = net
        self._hosted_names = hosted_names
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
            network = self._net.network
            if network is not None:
                names = await trio.to_thread.run_sync(self._hosted_names)
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
        network = self._net.network
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
    async def _candidates(self, name: LogName) -> builtins.list[str]:
        network = self._net.network
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
        if self._net.network is None or self._nursery is None:
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
                    if exc.http_status in (404, 502, 503, 504):
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



class LogsComponent:
    """Logs: create, open (local or remote), events; serves `/hoard/logs/1`."""

    name = "logs"

    def __init__(self, context: NodeContext, net: NetComponent) -> None:
        self._net = net
        self.keydir = context.repo.keys_dir
        self.service = LogService(context.content.catalog, context.repo.keys_dir, remote=self._locate,
                                  quota=context.content.ingest)  # records count against storage-quota
        self.remote = RemoteLogs(net, self.service.host.logs.names)
        self.server = LogServer(self.service.host)
        self.protocols: Mapping[str, StreamHandler] = {LOGS_PROTOCOL: self.server.handle}

    def _locate(self, name: LogName) -> RemoteLogBackend | None:
        return self.remote.locate(name)

    async def run(self, context: NodeContext, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """While started: hold the client streams' nursery and advertise the hosted logs."""
        await self.remote.run(task_status)

    async def aclose(self) -> None:
        self.remote.close()
        await trio.to_thread.run_sync(self.service.close)

    async def create(self, metadata: MetadataInput = None, name: str | None = None) -> Log:
        """Create a log hosted by this node; returns it open "ra". Its Ed25519 writer key is
        kept in `data-dir/keys/<name>.pem`. `metadata`: GDP metadata entries (a dict or
        (id, value) pairs; ids as ints or FourCC strings). `name`: create it under this name
        (else it is named SHA-256 of its metadata). While started, it is advertised in the DHT
        (this waits up to 3 s for the peers closest to its key to take the record)."""
        created = await trio.to_thread.run_sync(functools.partial(self.service.log_create, metadata, name=name))
        await self._advertise(created.name)
        return created

    async def _advertise(self, name: LogName) -> None:
        """Announce a new log in the DHT: wait for it up to ANNOUNCE_WAIT, else finish in the background."""
        network = self._net.network
        if network is None:
            return
        with trio.move_on_after(ANNOUNCE_WAIT) as scope:
            await network.provide(provider_key(name), wait=True)
        if scope.cancelled_caught:
            await network.provide(provider_key(name))

    async def open(self, name: str | LogName, mode: str = "ra", signing_key: Any = None,
                   info: OpenInfo | None = None) -> Log:
        """Open a log, hosted here or (while started) by a peer: "ro", "ao" or "ra". Writing
        needs the writer key: `signing_key` (a key, 32-byte seed, PEM bytes or PEM path), else
        GDP's open information `info` (its key, key callback, passphrase callback, caching),
        else `data-dir/keys/<name>.pem`. LogError 404 if no one hosts it, 403 without the key."""
        return await trio.to_thread.run_sync(functools.partial(self.service.log_open, name, mode, signing_key,
                                                               info=info))

    async def event_next(self, log: Log | None = None, timeout: float | None = None) -> Event | None:
        """The next event of a log request made without a callback (of `log` only, if given);
        waits up to `timeout` seconds (None: until there is one); None on timeout."""
        return await trio.to_thread.run_sync(self.service.event_next, log, timeout, abandon_on_cancel=True)

    async def parse_name(self, value: str | bytes | LogName) -> LogName:
        """A log name from its 43-character printable form, raw 32 bytes, or any other string
        (named by its SHA-256), as GDP's `gdp_parse_name`."""
        return parse_name(value)

    async def list(self) -> builtins.list[LogSummary]:
        """The logs this node hosts, with their record counts, in name order."""
        store = self.service.host.logs

        def run() -> builtins.list[LogSummary]:
            return [LogSummary(n, store.nrecs(n)) for n in store.names()]

        return await trio.to_thread.run_sync(run)

    def writable(self, name: LogName) -> bool:
        """Whether this node holds the writer key of log `name` (in `data-dir/keys`)."""
        from hoard.logs.keys import key_path

        return key_path(self.keydir, name).is_file()
