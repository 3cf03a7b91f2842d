"""The node on the network: the network service, connect, peer debug, network reads and fetches.

While the node is started, `NetworkService` runs a `hoard.net.Network` (a new one per start,
same identity, so the peer ID stays): it listens on `listen-addrs`, dials `bootstrap-node`,
serves the local store on `/hoard/blocks/1`, and advertises every stored dataset's manifest
CID (at start, after each upload or fetch, and periodically). Other subsystems add protocol
handlers to `core.protocol_handlers` before start (logs, transfer).

Reading data the node does not have (`download_*(..., local=False)`, `fetch`):
1. providers: the DHT providers of the manifest CID, plus connected peers as a fallback;
2. the manifest block, then the block-index nodes level by level, each verified;
3. the data blocks through a `BlockStream` (several peers, verified, bounded window, in order).
A download streams them without storing; a fetch stores them as pending blocks and commits
the dataset as cached (unpinned, expires after `block-ttl`) when complete.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import trio

from hoard.content.index import IndexTree
from hoard.content.manifest import Manifest, is_dag
from hoard.errors import IntegrityError, NotFoundError, StateError
from hoard.ids.cid import CID
from hoard.ids.peer import PeerId
from hoard.node.core import api, parse_cid

if TYPE_CHECKING:
    from hoard.net import Network

log = logging.getLogger("hoard.node.net")

FETCH_BATCH_BYTES = 8 << 20

Handler = Callable[[Any], Awaitable[None]]


class NetworkService:
    """Runs the node's Network while the node is started."""

    name = "network"

    async def run(self, core: Any, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        from hoard.net import Network  # the network stack (py-libp2p) loads when the network starts

        network = Network(
            core.identity, core.config.listen_addrs, core.config.bootstrap_node, core.config.max_peers,
            block_source=core.store.get, provided=lambda: [d.cid for d in core.content.datasets()],
        )
        for protocol, handler in core.protocol_handlers.items():
            network.host.set_handler(protocol, handler)
        async with network.run():
            core.network = network
            try:
                for dataset in core.content.datasets():
                    await network.provide(dataset.cid)
                log.info("listening on %s", ", ".join(str(a) for a in network.addrs))
                task_status.started()
                await trio.sleep_forever()
            finally:
                core.network = None


def _require_network(core: Any, op: str) -> Network:
    if core.network is None:
        raise StateError(f"Failed to {op}: the node is not started (no network)")
    return core.network


class NetApi:
    """Peer operations and network reads."""

    protocol_handlers: dict[str, Handler]

    def init_subsystem(self) -> None:
        core: Any = self
        self.protocol_handlers = {}
        core.services.append(NetworkService())
        core.readers.append(self._open_network_reader)
        core.fetch_runner = self._fetch_runner

    async def announce(self, cid: CID) -> None:
        network = getattr(self, "network", None)
        if network is not None:
            await network.provide(cid)

    # -- peers -----------------------------------------------------------------------
    @api
    async def connect(self, peer_id: str, addrs: list[str] | None = None) -> None:
        """Connect to a peer: dial `addrs` (multiaddrs) if given, else find it in the DHT."""
        network = _require_network(self, "connect")
        await network.connect(PeerId(peer_id), list(addrs) if addrs else None)

    @api
    async def peer_debug(self, peer_id: str) -> dict[str, Any]:
        """`{peerId, seqNo, addresses}` of a known peer ("peer not found." otherwise)."""
        network = _require_network(self, "get peer info")
        return await network.peer_debug(PeerId(peer_id))

    @api
    async def peers(self) -> list[str]:
        """Peer IDs of the currently connected peers."""
        network = getattr(self, "network", None)
        return [str(p) for p in network.connected_peers()] if network is not None else []

    # -- manifests -------------------------------------------------------------------
    @api
    async def download_manifest(self, cid: str) -> dict[str, Any]:
        """The manifest JSON of a dataset: from the local store, else from the network."""
        parsed = parse_cid(cid, "download manifest")
        return (await self._manifest(parsed)).to_json()

    async def _manifest(self, cid: CID) -> Manifest:
        core: Any = self
        if not is_dag(cid) or core.store.has(cid) or core.network is None:
            return await trio.to_thread.run_sync(core.content.manifest, cid)
        providers = await self._providers(cid)
        data = await self._fetch_one(cid, providers)
        return Manifest.decode(data, cid)

    async def _providers(self, cid: CID) -> list[PeerId]:
        network = _require_network(self, "find providers")
        try:
            found = await network.find_providers(cid)
        except Exception as exc:  # noqa: BLE001 - fall back to connected peers
            log.debug("provider lookup for %s failed: %r", cid, exc)
            found = []
        seen = set(found)
        return found + [p for p in network.connected_peers() if p not in seen and not network.penalties.is_banned(p)]

    async def _fetch_one(self, cid: CID, providers: list[PeerId]) -> bytes:
        return (await self._fetch_many([cid], providers))[0]

    async def _fetch_many(self, cids: list[CID], providers: list[PeerId]) -> list[bytes]:
        network = _require_network(self, "fetch")
        if not providers:
            raise NotFoundError(f"no peer provides {cids[0]}", cid=str(cids[0]))
        out: list[bytes] = []
        async with network.fetch_blocks(cids, providers) as stream:
            async for _cid, data in stream:
                out.append(data)
        return out

    async def _index(self, manifest: Manifest, providers: list[PeerId]) -> tuple[IndexTree, list[tuple[CID, bytes]]]:
        """The dataset's block index (each distinct node read once, from the store or from peers,
        checked against its parent) and its node blocks. Bounded by the distinct nodes."""
        core: Any = self
        tree = IndexTree(manifest.index, manifest.block_count, manifest.dataset_size)
        nodes: list[tuple[CID, bytes]] = []
        while level := tree.frontier():
            local = await trio.to_thread.run_sync(core.store.get_many, level)
            missing = [c for c, d in zip(level, local) if d is None]
            fetched = dict(zip(missing, await self._fetch_many(missing, providers))) if missing else {}
            for cid, data in zip(level, local):
                data = data if data is not None else fetched[cid]
                nodes.append((cid, data))
                tree.add(cid, data)
        return tree, nodes

    # -- network reads ---------------------------------------------------------------
    async def _open_network_reader(self, cid: CID, local: bool) -> NetworkReader:
        network = _require_network(self, "download from the network")
        providers = await self._providers(cid)
        if not is_dag(cid):
            data = await self._fetch_one(cid, providers)
            return NetworkReader(len(data), None, data)
        manifest = await self._manifest(cid)
        tree, _ = await self._index(manifest, providers)
        stream = network.fetch_blocks(tree.blocks_view(), providers)
        return NetworkReader(manifest.dataset_size, stream)

    async def _fetch_runner(self, cid: CID, manifest_json: dict[str, Any], record: Any) -> None:
        """Pull a whole dataset into the local store (cached), reporting progress to `record`."""
        core: Any = self
        _require_network(self, "fetch")
        providers = await self._providers(cid)
        manifest_bytes = core.store.get(cid) or await self._fetch_one(cid, providers)
        manifest = Manifest.decode(manifest_bytes, cid)
        if manifest.encode()[0] != cid:
            raise IntegrityError(f"manifest {cid} is not in hoard's canonical form", cid=str(cid))
        tree, nodes = await self._index(manifest, providers)
        entries = list(tree.unique_blocks().items())  # each distinct block is fetched once
        present = core.store.get_many([c for c, _ in entries]) if len(entries) <= 4096 else None
        wanted: list[CID] = []
        for i, (block, size) in enumerate(entries):
            have = present[i] is not None if present is not None else core.store.has(block)
            if have:
                record.advance(1, size)
            else:
                wanted.append(block)
        held: list[CID] = []
        batch: list[tuple[CID, bytes]] = []
        batch_bytes = 0
        try:
            if wanted:
                async with core.network.fetch_blocks(wanted, providers) as stream:
                    async for block, data in stream:
                        batch.append((block, data))
                        batch_bytes += len(data)
                        if batch_bytes >= FETCH_BATCH_BYTES:
                            await self._store_batch(batch, held, record)
                            batch, batch_bytes = [], 0
                if batch:
                    await self._store_batch(batch, held, record)
            await trio.to_thread.run_sync(
                core.content.commit_dataset, manifest, nodes, [c for c, _ in entries], held, False)
            held = []
        finally:
            if held:
                with trio.CancelScope(shield=True):
                    await trio.to_thread.run_sync(core.content.abandon, held)
        await self.announce(cid)

    async def _store_batch(self, batch: list[tuple[CID, bytes]], held: list[CID], record: Any) -> None:
        core: Any = self
        await trio.to_thread.run_sync(core.content.write_pending, batch)
        held.extend(c for c, _ in batch)
        record.advance(len(batch), sum(len(d) for _, d in batch))

    @api
    async def fetch(self, cid: str) -> dict[str, Any]:
        """Fetch a dataset into the local store in the background; returns its manifest JSON at once.

        Progress: `fetches()` / `fetch_progress(id)`; cancel: `fetch_cancel(id)`.
        """
        core: Any = self
        return (await core.fetch_start(cid))["manifest"]


class NetworkReader:
    """A download's reader over a BlockStream: bytes in order as blocks arrive."""

    def __init__(self, size: int, stream: Any, single: bytes | None = None) -> None:
        self.size = size
        self._stream = stream
        self._buf = memoryview(single if single is not None else b"")
        self._entered = False

    async def read(self, n: int) -> bytes:
        parts: list[memoryview] = []
        got = 0
        while got < n:
            if not self._buf:
                if self._stream is None:
                    break
                if not self._entered:
                    await self._stream.__aenter__()
                    self._entered = True
                try:
                    _cid, data = await self._stream.__anext__()
                except StopAsyncIteration:
                    await self.aclose()
                    break
                self._buf = memoryview(data)
            take = self._buf[: n - got]
            parts.append(take)
            got += len(take)
            self._buf = self._buf[len(take):]
        return b"".join(parts)

    async def aclose(self) -> None:
        stream, self._stream = self._stream, None
        if stream is not None:
            await stream.aclose()

