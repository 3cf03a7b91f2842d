"""`Network`: a node's whole network layer, owned by the node and run on its trio thread.

```python
network = Network(identity, ["/ip4/0.0.0.0/tcp/8070"], bootstrap_sprs, max_peers=160,
                  block_source=store, provided=list_manifest_cids)
async with network.run():          # listen, DHT, block server, bootstrap, re-advertising
    await network.connect(peer_id, addrs)
    async with network.fetch_blocks(cids) as blocks:
        async for cid, data in blocks: ...
```

Every method must be called from the trio loop that runs `run()`. Nothing here knows about
the Node: it is given an identity, a block source, and a callable listing what to advertise.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import multiaddr
import trio

from hoard.errors import InvalidArgumentError, PeerError, StateError
from hoard.ids.cid import CID
from hoard.ids.peer import Identity, PeerId

from .blocks import BlockServer, BlockSource, ServerStats
from .dht import Dht
from .fetch import BlockFetcher, BlockStream, FetchLimits, PeerPenalties
from .host import DEFAULT_DIAL_TIMEOUT, Host, parse_spr
from .rawbench import SOURCE_PROTOCOL, RawStreamResult, measure_raw_stream, serve_source
from .wire import BLOCKS_PROTOCOL, StreamChannelOpener

__all__ = ["Network", "NetworkConfig"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class NetworkConfig:
    """Settings of the network layer beyond addresses and peers."""

    dial_timeout: float = DEFAULT_DIAL_TIMEOUT
    bootstrap_timeout: float = 5.0       # run() waits this long for bootstrap dials, then goes on
    reprovide_interval: float = 3600.0   # seconds between re-advertisements of `provided()`
    ban_seconds: float = 600.0           # how long a peer that sent a bad block is not asked again
    fetch: FetchLimits = field(default_factory=FetchLimits)
    bench: bool = False                  # serve /hoard/bench/source/1 (benchmarks only)
    agent_string: str | None = None      # identify's agent version (None: py-libp2p's)
    announce_ip: str | None = None       # announce the bound addresses with this IP (nat: extip:<IP>)
    announce_addrs: tuple[str, ...] = ()  # announce these addresses instead (announce-addrs)


def _peer(value: str | PeerId) -> PeerId:
    return value if isinstance(value, PeerId) else PeerId(value)


class Network:
    """Host + DHT + `/hoard/blocks/1` server and fetcher, with bootstrap and re-advertising."""

    def __init__(self, identity: Identity, listen_addrs: Sequence[str | multiaddr.Multiaddr] = ("/ip4/127.0.0.1/tcp/0",),
                 bootstrap_sprs: Iterable[str] = (), max_peers: int = 160, block_source: BlockSource | None = None,
                 *, provided: Callable[[], Iterable[CID]] | None = None, config: NetworkConfig | None = None) -> None:
        self.config = config or NetworkConfig()
        self.bootstrap_sprs = list(bootstrap_sprs)
        for text in self.bootstrap_sprs:
            parse_spr(text)  # a bad SPR in the config is an InvalidArgumentError now, not at start
        self.host = Host(identity, listen_addrs, max_peers, self.config.dial_timeout,
                         agent_string=self.config.agent_string, announce_ip=self.config.announce_ip,
                         announce_addrs=self.config.announce_addrs)
        self.dht = Dht(self.host)
        self.penalties = PeerPenalties(self.config.ban_seconds)
        self.fetcher = BlockFetcher(StreamChannelOpener(self.host), self.config.fetch, self.penalties)
        self.server = BlockServer(block_source if block_source is not None else (lambda cid: None))
        self.host.set_handler(BLOCKS_PROTOCOL, self.server.handle)
        if self.config.bench:
            self.host.set_handler(SOURCE_PROTOCOL, serve_source)
        self._provided = provided
        self._nursery: trio.Nursery | None = None
        self._started = False
        self._announce_send, self._announce_receive = trio.open_memory_channel[CID](float("inf"))

    # -- lifecycle --------------------------------------------------------------------
    @asynccontextmanager
    async def run(self) -> AsyncIterator[Network]:
        """Listen, run the DHT, connect to the bootstrap peers (waiting up to
        `bootstrap_timeout`), re-advertise periodically; stop everything when the block exits.

        A Network runs once (py-libp2p's host does not restart cleanly): to start again, make
        a new one from the same identity; the peer ID stays the same."""
        if self._started:
            raise StateError("this Network has already run; create a new one to start again")
        self._started = True
        error: Exception | None = None
        async with self.host.run(), self.dht.run(), trio.open_nursery() as nursery:
            self._nursery = nursery
            try:
                nursery.start_soon(self._announcer)
                if self._provided is not None:
                    nursery.start_soon(self.dht.reprovide_forever, self._provided, self.config.reprovide_interval)
                if self.bootstrap_sprs:
                    done = trio.Event()
                    nursery.start_soon(self._bootstrap, done)
                    with trio.move_on_after(self.config.bootstrap_timeout):
                        await done.wait()
                try:
                    yield self
                except Exception as exc:  # noqa: BLE001 - re-raised below, outside py-libp2p's nurseries, so
                    error = exc           # callers see it as raised, not in nested ExceptionGroups
            finally:
                self._nursery = None
                nursery.cancel_scope.cancel()
        if error is not None:
            raise error

    @property
    def running(self) -> bool:
        return self._nursery is not None

    def _require_running(self) -> trio.Nursery:
        if self._nursery is None:
            raise StateError("the network is not running")
        return self._nursery

    async def _bootstrap(self, done: trio.Event) -> None:
        connected = 0

        async def dial(text: str) -> None:
            nonlocal connected
            peer_id, addrs = self.host.learn_spr(text)
            if peer_id == self.peer_id:
                return  # a node may list itself among the bootstrap nodes
            try:
                await self.connect(peer_id, addrs)
                connected += 1
            except (PeerError, InvalidArgumentError) as exc:
                logger.warning("bootstrap node %s is unreachable: %s", peer_id, exc.message)

        async with trio.open_nursery() as nursery:
            for text in self.bootstrap_sprs:
                nursery.start_soon(dial, text)
        if connected:
            await self.dht.bootstrap()
        done.set()

    # -- identity and addresses -------------------------------------------------------
    @property
    def peer_id(self) -> PeerId:
        return self.host.peer_id

    @property
    def addrs(self) -> list[multiaddr.Multiaddr]:
        """The bound listen addresses (real ports), without `/p2p/`."""
        return self.host.addrs

    @property
    def announce_addrs(self) -> list[multiaddr.Multiaddr]:
        """The addresses this node announces (`NetworkConfig.announce_ip`), without `/p2p/`."""
        return self.host.announce_addrs

    def spr(self) -> str:
        """This node's signed peer record for its announced addresses (the same until they change)."""
        return self.host.spr()

    def connected_peers(self) -> list[PeerId]:
        return self.host.connected_peers()

    # -- peers ------------------------------------------------------------------------
    async def connect(self, peer_id: str | PeerId, addrs: Sequence[str | multiaddr.Multiaddr] | None = None) -> None:
        """Connect to a peer: dial `addrs` (a bad multiaddr → InvalidArgumentError "invalid address ..."),
        or without them find it in the DHT (PeerError "peer not found." when it cannot)."""
        self._require_running()
        peer = _peer(peer_id)
        if addrs is None and not self.host.is_connected(peer):
            addrs = await self.dht.find_peer(peer)
            if not addrs:
                raise PeerError("peer not found.", peer_id=str(peer))
        await self.host.connect(peer, addrs)
        await self.dht.add_peer(peer)

    async def find_peer(self, peer_id: str | PeerId) -> list[multiaddr.Multiaddr]:
        """A peer's addresses from the DHT; PeerError "peer not found." when none."""
        self._require_running()
        peer = _peer(peer_id)
        addrs = await self.dht.find_peer(peer)
        if not addrs:
            raise PeerError("peer not found.", peer_id=str(peer))
        return addrs

    async def peer_debug(self, peer_id: str | PeerId) -> dict[str, Any]:
        """`{peerId, seqNo, addresses}` for a peer: its newest signed record if known, else the
        addresses known or found in the DHT (seqNo 0); PeerError "peer not found." otherwise."""
        self._require_running()
        peer = _peer(peer_id)
        if peer == self.peer_id:
            _env, _p, addrs, seq = parse_spr(self.spr())
            return {"peerId": str(peer), "seqNo": seq, "addresses": [str(a) for a in addrs]}
        record = self.host.peer_record(peer)
        if record is None and not self.host.known_addrs(peer):
            await self.dht.find_peer(peer)
            record = self.host.peer_record(peer)
        if record is not None:
            seq, addrs = record
        else:
            seq, addrs = 0, self.host.known_addrs(peer)
        if not addrs:
            raise PeerError("peer not found.", peer_id=str(peer))
        return {"peerId": str(peer), "seqNo": seq, "addresses": [str(a) for a in addrs]}

    def routing_table(self) -> dict[str, Any]:
        """`{localNode: {nodeId, peerId, record, address, seen}, nodes: [...]}` for `debug()["table"]`."""
        return self.dht.table(self.spr())

    # -- discovery --------------------------------------------------------------------
    async def provide(self, cid: CID, *, wait: bool = False) -> int | None:
        """Advertise `cid` in the DHT. By default queued and announced in the background;
        with `wait=True`, announced now, returning how many peers confirmed."""
        self._require_running()
        if wait:
            return await self.dht.provide(cid)
        self._announce_send.send_nowait(cid)
        return None

    async def _announcer(self) -> None:
        async for cid in self._announce_receive:
            try:
                await self.dht.provide(cid)
            except Exception as exc:  # noqa: BLE001 - one failed announcement must not stop the announcer
                logger.warning("advertising %s failed: %r", cid, exc)

    async def find_providers(self, cid: CID, count: int = 20) -> list[PeerId]:
        """Peers that advertise `cid` (not this node, not banned ones), their addresses learned."""
        self._require_running()
        found = await self.dht.find_providers(cid, count)
        return [p for p, _addrs in found if not self.penalties.is_banned(p)]

    # -- blocks -----------------------------------------------------------------------
    def fetch_blocks(self, cids: Sequence[CID], providers: Iterable[str | PeerId] | None = None,
                     limits: FetchLimits | None = None) -> BlockStream:
        """Fetch `cids` from `providers` (default: the DHT providers of `cids[0]`, else the
        connected peers), verified, in order: `async with network.fetch_blocks(cids) as s:
        async for cid, data in s`. Errors (PeerError, NotFoundError) are raised by the iteration."""
        nursery = self._require_running()
        cids = [CID.parse(c) for c in cids]
        if providers is not None:
            peers = [p for p in map(_peer, providers) if p != self.peer_id]
            return self.fetcher.fetch(cids, peers, nursery, limits)
        return self.fetcher.fetch(cids, [], nursery, limits, discover=lambda: self._default_providers(cids))

    async def _default_providers(self, cids: list[CID]) -> list[PeerId]:
        if not cids:
            return []
        found = await self.find_providers(cids[0])
        return found or [p for p in self.connected_peers() if not self.penalties.is_banned(p)]

    def server_stats(self) -> ServerStats:
        return self.server.stats

    async def measure_raw_stream(self, peer_id: str | PeerId, nbytes: int) -> RawStreamResult:
        """Time receiving `nbytes` over a raw stream from a peer that runs with `bench=True`."""
        self._require_running()
        return await measure_raw_stream(self.host, _peer(peer_id), nbytes)
