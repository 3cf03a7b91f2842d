"""The net component: the node's libp2p `Network` while started, peers, and its own identity.

While the node is started, `run` runs a `hoard.net.Network` (a new one per start, same
identity, so the peer ID stays): it listens on `listen-addrs`, dials `bootstrap-node`, serves
the local store on `/hoard/blocks/1`, on bitswap (`/ipfs/bitswap/1.2.0`, 1.1.0, 1.0.0) and,
unless `bulk: false`, on the bulk path (`/hoard/bulk/1` offers, TLS 1.3 on `bulk-port`, which
this node's fetches also use where a peer offers it), plus every component's protocols
(`serve`), and advertises every stored dataset's manifest CID (at start, on each
`dataset_stored` event, and periodically). The two block exchanges are `blocks` and `bitswap`
(`hoard.net.exchange.BlockExchange` both); `exchange_for(cid)` picks one by CID. py-libp2p
loads here, when the network starts, not when hoard is imported.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

import trio

from hoard.errors import StateError
from hoard.ids.cid import CID, DAG_PB, RAW, SHA2_256
from hoard.ids.peer import PeerId
from hoard.node.component import StreamHandler
from hoard.node.context import NodeContext
from hoard.node.results import ConnectedPeer, DebugInfo, PeerInfo, RoutingTable, TableNode

if TYPE_CHECKING:
    from hoard.net import Network
    from hoard.net.bitswap import Bitswap
    from hoard.net.blocks import HoardBlocks
    from hoard.net.bulk import BulkChannelOpener, BulkServer
    from hoard.net.exchange import BlockExchange

log = logging.getLogger("hoard.node.net")


def is_ipfs_cid(cid: CID) -> bool:
    """A CID of the IPFS world, fetched by bitswap: dag-pb, or a raw block addressed by sha2-256."""
    return cid.codec == DAG_PB or (cid.codec == RAW and cid.hash_code == SHA2_256)


class NetComponent:
    """The network while started (`network`, None when stopped) and the peer operations."""

    name = "net"

    def __init__(self, context: NodeContext) -> None:
        self._context = context
        self._handlers: dict[str, StreamHandler] = {}
        self.network: Network | None = None
        self._stopped_spr: str | None = None
        self.blocks: HoardBlocks | None = None  # /hoard/blocks/1 as a BlockExchange, while started
        self.bitswap: Bitswap | None = None  # /ipfs/bitswap/1.2.0, 1.1.0, 1.0.0, while started
        self.bulk_server: BulkServer | None = None
        self.bulk_opener: BulkChannelOpener | None = None
        self.protocols: Mapping[str, StreamHandler] = {}  # blocks: served by the Network itself
        context.events.on_dataset_stored(self.announce)

    def serve(self, protocols: Mapping[str, StreamHandler]) -> None:
        """Serve these libp2p protocols from the next start on (components' `protocols`)."""
        self._handlers.update(protocols)

    def require(self, op: str) -> Network:
        """The running network, or StateError "Failed to <op>: the node is not started"."""
        if self.network is None:
            raise StateError(f"Failed to {op}: the node is not started (no network)")
        return self.network

    async def run(self, context: NodeContext, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        # the network stack (py-libp2p) loads when the network starts
        from hoard.net import Network, NetworkConfig
        from hoard.net.bitswap import Bitswap
        from hoard.net.blocks import HoardBlocks
        from hoard.net.bulk import BulkServer
        from hoard.node.components.ipfs import ROOTS

        config, content = context.config, context.content

        def provided() -> list[CID]:
            """What this node announces on the DHT (again every `reprovide_interval`): its datasets
            and its IPFS roots."""
            return [d.cid for d in content.datasets()] + [CID(key) for key, _ in content.catalog.scan(ROOTS)]

        announce_ip = config.nat.removeprefix("extip:") if config.nat.startswith("extip:") else None
        network = Network(
            context.identity, config.listen_addrs, config.bootstrap_node, config.max_peers,
            block_source=context.content.blobs.get, provided=provided,
            config=NetworkConfig(agent_string=config.agent_string, announce_ip=announce_ip,
                                 announce_addrs=tuple(config.announce_addrs)),
        )
        for protocol, handler in self._handlers.items():
            network.host.set_handler(protocol, handler)
        bulk = BulkServer(network.host, context.identity, context.content.blobs.get, port=config.bulk_port) \
            if config.bulk else None
        async with network.run(), Bitswap(network.host, context.content.blobs.get).run() as bitswap, \
                self._bulk(network, bulk):
            self.network = network
            self.blocks = HoardBlocks(network.fetcher, network.server, network.find_providers)
            self.bitswap = bitswap
            try:
                for cid in await trio.to_thread.run_sync(provided):
                    await network.provide(cid)
                log.info("listening on %s", ", ".join(str(a) for a in network.addrs))
                task_status.started()
                await trio.sleep_forever()
            finally:
                self.network = self.blocks = self.bitswap = None
                self.bulk_server = self.bulk_opener = None

    @asynccontextmanager
    async def _bulk(self, network: Network, server: BulkServer | None) -> AsyncIterator[None]:
        """Serve the bulk path and fetch through it where peers offer it (else: the libp2p stream)."""
        if server is None:
            yield
            return
        from hoard.net.bulk import BulkCertificate, BulkChannelOpener
        from hoard.net.wire import StreamChannelOpener

        cert = await trio.to_thread.run_sync(BulkCertificate.create, self._context.identity)
        try:
            async with server.run():
                self.bulk_server = server
                self.bulk_opener = BulkChannelOpener(network.host, cert, StreamChannelOpener(network.host))
                network.fetcher.opener = self.bulk_opener
                log.info("bulk path on port %d", server.bound_port)
                yield
        finally:
            cert.remove()

    def exchange_for(self, cid: CID) -> BlockExchange:
        """The block exchange for `cid`: bitswap for IPFS CIDs (dag-pb, or raw sha2-256 blocks),
        `/hoard/blocks/1` for hoard's (StateError while stopped)."""
        if self.blocks is None or self.bitswap is None:
            raise StateError("Failed to fetch: the node is not started (no network)")
        return self.bitswap if is_ipfs_cid(cid) else self.blocks

    def exchange_stats(self) -> dict[str, Any]:
        """Counters of the block exchanges: `blocks` (served on /hoard/blocks/1), `bitswap`, and
        `bulk` (channels opened over the bulk path or the fallback, connections served)."""
        out: dict[str, Any] = {}
        if self.network is not None:
            out["blocks"] = dict(vars(self.network.server_stats()))
        if self.bitswap is not None:
            out["bitswap"] = self.bitswap.snapshot()
        if self.bulk_opener is not None and self.bulk_server is not None:
            out["bulk"] = {"port": self.bulk_server.bound_port, "opened": dict(self.bulk_opener.opened),
                           "served": dict(vars(self.bulk_server.stats))}
        return out

    async def aclose(self) -> None:
        self.network = None

    async def announce(self, cid: CID) -> None:
        """Advertise a stored dataset in the DHT (nothing while stopped)."""
        if self.network is not None:
            await self.network.provide(cid)

    # -- identity ----------------------------------------------------------------------
    def addrs(self) -> list[str]:
        """The addresses the node listens on (none while stopped)."""
        return [str(a) for a in self.network.addrs] if self.network is not None else []

    async def peer_id(self) -> PeerId:
        """The libp2p peer ID."""
        return self._context.identity.peer_id

    async def spr(self) -> str:
        """The node's signed peer record, `spr:...`, with its announced addresses: the same text
        until they change (while stopped: a record without addresses)."""
        if self.network is not None:
            return self.network.spr()
        if self._stopped_spr is None:
            self._stopped_spr = self._context.identity.signed_peer_record([])
        return self._stopped_spr

    async def debug(self) -> DebugInfo:
        """The node's peer ID, addresses, signed peer record and routing table (Logos `debug`)."""
        spr = await self.spr()
        peer = self._context.identity.peer_id
        if self.network is not None:
            raw = self.network.routing_table()
            table = RoutingTable(_table_node(raw["localNode"]), tuple(_table_node(n) for n in raw["nodes"]))
        else:
            table = RoutingTable(TableNode(node_id=str(peer), peer_id=str(peer),
                                           record=spr, address="", seen=False), ())
        addrs = tuple(self.addrs())
        announced = tuple(str(a) for a in self.network.announce_addrs) if self.network is not None else addrs
        return DebugInfo(peer, addrs, spr, announced, table)

    # -- peers -------------------------------------------------------------------------
    async def connect(self, peer_id: str | PeerId, addrs: list[str] | None = None) -> None:
        """Connect to a peer: dial `addrs` (multiaddrs) if given, else find it in the DHT."""
        await self.require("connect").connect(PeerId(str(peer_id)), list(addrs) if addrs else None)

    async def peer_debug(self, peer_id: str | PeerId) -> PeerInfo:
        """What the node knows of a peer: its newest record's sequence number and addresses
        (PeerError "peer not found." if it knows nothing)."""
        raw = await self.require("get peer info").peer_debug(PeerId(str(peer_id)))
        return PeerInfo(PeerId(raw["peerId"]), int(raw["seqNo"]), tuple(str(a) for a in raw["addresses"]))

    async def peers(self) -> list[PeerId]:
        """The currently connected peers."""
        return list(self.network.connected_peers()) if self.network is not None else []

    async def peer_list(self) -> list[ConnectedPeer]:
        """The connected peers with their addresses, direction, latency (a ping now) and agent."""
        if self.network is None:
            return []
        return [ConnectedPeer(d["peer_id"], tuple(d["addrs"]), d["direction"], d["latency_ms"], d["agent"])
                for d in await self.network.host.peer_details()]


def _table_node(raw: dict[str, Any]) -> TableNode:
    return TableNode(node_id=str(raw["nodeId"]), peer_id=str(raw["peerId"]), record=str(raw["record"]),
                     address=str(raw["address"]), seen=bool(raw["seen"]))
