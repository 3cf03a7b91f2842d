"""Kademlia DHT: peer routing and provider records, on py-libp2p 0.8.1's `kad_dht`.

What py-libp2p's DHT does, as measured here (see docs/network.md), and what this module adds:

- Peer routing (`KadDHT.find_peer`: routing table, peerstore, then an iterative FIND_NODE) works
  and is used as is.
- Provider records work, with two traps. (1) A DHT server accepts at most 10 ADD_PROVIDER
  messages per sending peer per 10 s and silently resets the rest, so announcing many CIDs at
  once loses most of them: announcements here are paced per receiving peer (≤ 9 per 10.5 s).
  (2) `ProviderStore.provide` is fire-and-forget and `find_providers` stops at the local store
  when it holds any record (it never asks the network for more). So `provide` here sends its
  own ADD_PROVIDER (the same message) and waits briefly for the server's echo, and
  `find_providers` always asks the peers closest to the key, merging what it knows locally.
- Provider records are keyed by the CID's multihash, as in IPFS. The DHT protocol is the
  standard `/ipfs/kad/1.0.0` (py-libp2p's default).
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import asynccontextmanager
from typing import Any

import multiaddr
import trio
import varint
from libp2p.custom_types import TProtocol
from libp2p.kad_dht.common import ALPHA, MAX_DHT_MESSAGE_SIZE, PROTOCOL_ID, QUERY_TIMEOUT
from libp2p.kad_dht.kad_dht import DHTMode, KadDHT
from libp2p.kad_dht.pb.kademlia_pb2 import Message
from libp2p.peer.id import ID
from libp2p.peer.peerinfo import PeerInfo
from libp2p.peer.peerstore import env_to_send_in_RPC
from libp2p.tools.anyio_service import background_trio_service
from libp2p.utils.varint import read_varint_prefixed_bytes_limited

from hoard.ids.cid import CID
from hoard.ids.peer import PeerId, encode_spr

from .host import Host, strip_p2p

__all__ = ["Dht"]

logger = logging.getLogger(__name__)

ECHO_TIMEOUT = 2.0        # how long `provide` waits for a server's ADD_PROVIDER echo
PACE_LIMIT = 9            # ADD_PROVIDER messages per receiving peer ...
PACE_WINDOW = 10.5        # ... per this many seconds (py-libp2p servers allow 10 per 10 s)
SEEN_WITHIN = 3600.0      # a routing-table node counts as `seen` if heard from this recently
MAX_PROVIDER_ROUNDS = 3


class _Pacer:
    """At most `limit` sends to one peer in any `window` seconds (a sliding window)."""

    def __init__(self, limit: int = PACE_LIMIT, window: float = PACE_WINDOW) -> None:
        self._limit = limit
        self._window = window
        self._sent: dict[ID, deque[float]] = {}

    async def wait(self, peer: ID) -> None:
        times = self._sent.setdefault(peer, deque())
        while True:
            now = trio.current_time()
            while times and now - times[0] >= self._window:
                times.popleft()
            if len(times) < self._limit:
                times.append(now)
                return
            await trio.sleep(self._window - (now - times[0]))


class Dht:
    """A node's Kademlia DHT (server mode). Run it inside `host.run()` with `async with dht.run()`."""

    def __init__(self, host: Host) -> None:
        self.host = host
        self.kad = KadDHT(host.libp2p, DHTMode.SERVER)
        self._pacer = _Pacer()
        self._self_id = host.peer_id.libp2p
        self.reprovide_rounds = 0  # completed re-advertising rounds
        self._reprovided = trio.lowlevel.ParkingLot()

    @asynccontextmanager
    async def run(self) -> AsyncIterator[Dht]:
        async with background_trio_service(self.kad):
            yield self

    # -- peers ------------------------------------------------------------------------
    async def add_peer(self, peer_id: PeerId) -> bool:
        """Put a connected peer in the routing table (every hoard node is a DHT server)."""
        return await self.kad.add_peer(peer_id.libp2p, skip_server_mode_check=True)

    async def bootstrap(self) -> None:
        """Look ourselves up: fills our routing table and puts us in our neighbours' tables."""
        try:
            with trio.move_on_after(QUERY_TIMEOUT * 2):
                await self.kad.peer_routing.find_closest_peers_network(self._self_id.to_bytes())
        except Exception as exc:  # noqa: BLE001 - a lookup failure is not fatal: the table refreshes later
            logger.debug("DHT self-lookup failed: %r", exc)

    async def find_peer(self, peer_id: PeerId) -> list[multiaddr.Multiaddr]:
        """Addresses of a peer (routing table, peerstore, then the network); [] if not found."""
        try:
            info = await self.kad.find_peer(peer_id.libp2p)
        except Exception as exc:  # noqa: BLE001 - py-libp2p's lookup raises anything; not found
            logger.debug("find_peer %s failed: %r", peer_id, exc)
            return []
        return [strip_p2p(a) for a in info.addrs] if info is not None else []

    # -- providers --------------------------------------------------------------------
    async def provide(self, cid: CID) -> int:
        """Announce that this node provides `cid` to the peers closest to it.

        Returns how many peers confirmed (echoed) the announcement; 0 is normal when alone.
        Announcements are paced per peer, so many calls in a row take a while.
        """
        key = cid.multihash
        self.kad.provider_store.add_provider(key, PeerInfo(self._self_id, self.host.announce_addrs))
        closest = await self.kad.peer_routing.find_closest_peers_network(key)
        confirmed = 0
        limiter = trio.CapacityLimiter(ALPHA)

        async def announce(peer: ID) -> None:
            nonlocal confirmed
            async with limiter:
                await self._pacer.wait(peer)
                if await self._send_add_provider(peer, key):
                    confirmed += 1

        async with trio.open_nursery() as nursery:
            for peer in closest:
                if peer != self._self_id:
                    nursery.start_soon(announce, peer)
        logger.debug("provided %s to %d of %d peers", cid, confirmed, len(closest))
        return confirmed

    async def _send_add_provider(self, peer: ID, key: bytes) -> bool:
        stream = None
        try:
            with trio.fail_after(QUERY_TIMEOUT):
                stream = await self.host.libp2p.new_stream(peer, [TProtocol(PROTOCOL_ID)])
                envelope, _ = env_to_send_in_RPC(self.host.libp2p)
                message = Message()
                message.type = Message.MessageType.ADD_PROVIDER
                message.key = key
                message.senderRecord = envelope
                provider = message.providerPeers.add()
                provider.id = self._self_id.to_bytes()
                provider.addrs.extend(a.to_bytes() for a in self.host.announce_addrs)
                provider.signedRecord = envelope
                data = message.SerializeToString()
                await stream.write(varint.encode(len(data)) + data)
            with trio.move_on_after(ECHO_TIMEOUT):
                echo = Message()
                echo.ParseFromString(await read_varint_prefixed_bytes_limited(stream, MAX_DHT_MESSAGE_SIZE))
                return echo.type == Message.MessageType.ADD_PROVIDER and echo.key == key
            return False
        except Exception as exc:  # noqa: BLE001 - one peer's failure is reported as not stored
            logger.debug("ADD_PROVIDER to %s failed: %r", peer, exc)
            return False
        finally:
            if stream is not None:
                with trio.CancelScope(shield=True):
                    try:
                        await stream.close()
                    except Exception:  # noqa: BLE001, S110 - the peer may have gone
                        pass

    async def find_providers(self, cid: CID, count: int = 20) -> list[tuple[PeerId, list[multiaddr.Multiaddr]]]:
        """Up to `count` providers of `cid` (not this node), with their addresses.

        Asks the peers closest to the key (and the closer peers they name, a few rounds),
        merged with the records this node holds. The addresses are added to the peerstore.
        """
        key = cid.multihash
        store = self.kad.provider_store
        found: dict[ID, PeerInfo] = {}

        def add(infos: Iterable[PeerInfo]) -> None:
            for info in infos:
                if info.peer_id != self._self_id and info.peer_id not in found:
                    found[info.peer_id] = info

        add(store.get_providers(key))
        candidates = await self.kad.peer_routing.find_closest_peers_network(key)
        queried: set[ID] = {self._self_id}
        for _round in range(MAX_PROVIDER_ROUNDS):
            batch = [p for p in candidates if p not in queried][:ALPHA]
            if not batch or len(found) >= count:
                break
            closer: list[ID] = []

            async def ask(peer: ID, closer: list[ID]) -> None:
                queried.add(peer)
                with trio.move_on_after(QUERY_TIMEOUT):
                    providers, more = await store._get_providers_from_peer_with_closers(peer, key)
                    for info in providers:
                        store.add_provider(key, info)
                    add(providers)
                    closer.extend(more)

            async with trio.open_nursery() as nursery:
                for peer in batch:
                    nursery.start_soon(ask, peer, closer)
            candidates = [p for p in dict.fromkeys(candidates + closer) if p not in queried]
        result = []
        for info in list(found.values())[:count]:
            peer_id, addrs = PeerId(info.peer_id), [strip_p2p(a) for a in info.addrs]
            self.host.learn(peer_id, addrs)
            result.append((peer_id, addrs))
        return result

    async def reprovide_forever(self, list_cids: Callable[[], Iterable[CID]], interval: float) -> None:
        """Every `interval` seconds (from the start of a round), announce every CID `list_cids()` gives."""
        while True:
            started = trio.current_time()
            count = 0
            for cid in list(list_cids()):
                try:
                    await self.provide(cid)
                    count += 1
                except Exception as exc:  # noqa: BLE001 - one failure must not stop the loop
                    logger.warning("re-advertising %s failed: %r", cid, exc)
            logger.debug("re-advertised %d CIDs in %.1fs", count, trio.current_time() - started)
            self.reprovide_rounds += 1
            self._reprovided.unpark_all()
            await trio.sleep_until(started + interval)

    async def wait_reprovided(self) -> None:
        """Return when the next re-advertising round completes."""
        await self._reprovided.park()

    # -- debug ------------------------------------------------------------------------
    def table(self, local_spr: str) -> dict[str, Any]:
        """The routing table as Logos `debug()["table"]`: `{localNode, nodes: [...]}`."""
        connected = set(self.host.libp2p.get_connected_peers())
        now = time.time()
        local_addrs = self.host.announce_addrs
        nodes = []
        for bucket in self.kad.routing_table.buckets:
            for peer, (info, last_seen) in list(bucket.peers.items()):
                envelope = self.host.libp2p.get_peerstore().get_peer_record(peer)
                nodes.append(_node(peer, encode_spr(envelope.marshal_envelope()) if envelope else "",
                                   [strip_p2p(a) for a in info.addrs],
                                   peer in connected or now - last_seen < SEEN_WITHIN))
        return {"localNode": _node(self._self_id, local_spr, local_addrs, True), "nodes": nodes}


def _node(peer: ID, record: str, addrs: list[multiaddr.Multiaddr], seen: bool) -> dict[str, Any]:
    return {
        "nodeId": hashlib.sha256(peer.to_bytes()).hexdigest(),  # the Kademlia key of the peer
        "peerId": peer.to_base58(),
        "record": record,
        "address": str(addrs[0]) if addrs else "",
        "seen": bool(seen),
    }

