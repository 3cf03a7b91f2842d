"""The net component: the node's libp2p `Network` while started, peers, and its own identity.

While the node is started, `run` runs a `hoard.net.Network` (a new one per start, same
identity, so the peer ID stays): it listens on `listen-addrs`, dials `bootstrap-node`, serves
the local store on `/hoard/blocks/1` plus every component's protocols (`serve`), and
advertises every stored dataset's manifest CID (at start, on each `dataset_stored` event, and
periodically). py-libp2p loads here, when the network starts, not when hoard is imported.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import trio

from hoard.errors import StateError
from hoard.ids.cid import CID
from hoard.ids.peer import PeerId
from hoard.node.component import StreamHandler
from hoard.node.context import NodeContext

if TYPE_CHECKING:
    from hoard.net import Network

log = logging.getLogger("hoard.node.net")


class NetComponent:
    """The network while started (`network`, None when stopped) and the peer operations."""

    name = "net"

    def __init__(self, context: NodeContext) -> None:
        self._context = context
        self._handlers: dict[str, StreamHandler] = {}
        self.network: Network | None = None
        self._stopped_spr: str | None = None
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
        from hoard.net import Network, NetworkConfig  # the network stack (py-libp2p) loads when the network starts

        config, content = context.config, context.content
        announce_ip = config.nat.removeprefix("extip:") if config.nat.startswith("extip:") else None
        network = Network(
            context.identity, config.listen_addrs, config.bootstrap_node, config.max_peers,
            block_source=context.store.get, provided=lambda: [d.cid for d in content.datasets()],
            config=NetworkConfig(agent_string=config.agent_string, announce_ip=announce_ip),
        )
        for protocol, handler in self._handlers.items():
            network.host.set_handler(protocol, handler)
        async with network.run():
            self.network = network
            try:
                for dataset in content.datasets():
                    await network.provide(dataset.cid)
                log.info("listening on %s", ", ".join(str(a) for a in network.addrs))
                task_status.started()
                await trio.sleep_forever()
            finally:
                self.network = None

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

    async def peer_id(self) -> str:
        """The libp2p peer ID."""
        return str(self._context.identity.peer_id)

    async def spr(self) -> str:
        """The node's signed peer record, `spr:...`, with its announced addresses: the same text
        until they change (while stopped: a record without addresses)."""
        if self.network is not None:
            return self.network.spr()
        if self._stopped_spr is None:
            self._stopped_spr = self._context.identity.signed_peer_record([])
        return self._stopped_spr

    async def debug(self) -> dict[str, Any]:
        """`{id, addrs, spr, announceAddresses, table: {localNode, nodes}}` (Logos shape)."""
        spr = await self.spr()
        peer = str(self._context.identity.peer_id)
        table = (self.network.routing_table() if self.network is not None else
                 {"localNode": {"nodeId": peer, "peerId": peer, "record": spr, "address": "", "seen": False},
                  "nodes": []})
        addrs = self.addrs()
        announced = [str(a) for a in self.network.announce_addrs] if self.network is not None else addrs
        return {"id": peer, "addrs": addrs, "spr": spr, "announceAddresses": announced, "table": table}

    # -- peers -------------------------------------------------------------------------
    async def connect(self, peer_id: str, addrs: list[str] | None = None) -> None:
        """Connect to a peer: dial `addrs` (multiaddrs) if given, else find it in the DHT."""
        await self.require("connect").connect(PeerId(peer_id), list(addrs) if addrs else None)

    async def peer_debug(self, peer_id: str) -> dict[str, Any]:
        """`{peerId, seqNo, addresses}` of a known peer ("peer not found." otherwise)."""
        return await self.require("get peer info").peer_debug(PeerId(peer_id))

    async def peers(self) -> list[str]:
        """Peer IDs of the currently connected peers."""
        return [str(p) for p in self.network.connected_peers()] if self.network is not None else []
