"""The Kademlia DHT: finding peers through a third node, provider records, the table view."""

from __future__ import annotations

import pytest
import trio
from _net_kit import FAST, LOOPBACK, connect, networks, trio_test

from hoard.errors import PeerError
from hoard.ids.cid import CID
from hoard.ids.peer import Identity
from hoard.net import Network, NetworkConfig

pytestmark = pytest.mark.timeout(90)


@trio_test()
async def test_connect_without_addresses_finds_the_peer_through_a_third_node() -> None:
    async with networks(None, None, None) as [a, b, c]:
        await connect(a, b)
        await connect(c, b)
        assert a.peer_id not in c.connected_peers()
        await c.connect(a.peer_id)  # c knows only b; b knows a
        assert a.peer_id in c.connected_peers()
        debug = await c.peer_debug(a.peer_id)
        assert str(a.addrs[0]) in debug["addresses"]
        assert debug["seqNo"] > 0  # from a's signed record, learned through the DHT


@trio_test()
async def test_an_unknown_peer_is_not_found() -> None:
    async with networks(None, None) as [a, b]:
        await connect(a, b)
        stranger = Identity.generate().peer_id
        with pytest.raises(PeerError, match=r"^peer not found\.$"):
            await a.connect(stranger)
        with pytest.raises(PeerError, match=r"^peer not found\.$"):
            await a.peer_debug(stranger)


@trio_test()
async def test_providers_are_found_through_the_dht() -> None:
    cid = CID.of(b"a manifest")
    async with networks(None, None, None) as [a, b, c]:
        await connect(a, b)
        await connect(c, b)
        assert await a.provide(cid, wait=True) >= 1  # b confirmed
        assert await c.find_providers(cid) == [a.peer_id]
        assert await c.find_providers(CID.of(b"nobody has this")) == []
        await c.connect(a.peer_id)  # the provider's address was learned with the record


@trio_test()
async def test_many_announcements_are_paced_not_dropped() -> None:
    cids = [CID.of(bytes([i])) for i in range(11)]  # py-libp2p servers drop >10 per 10 s per peer
    async with networks(None, None) as [a, b]:
        await connect(a, b)
        started = trio.current_time()
        for cid in cids:
            assert await a.provide(cid, wait=True) == 1
        assert trio.current_time() - started > 10  # the 10th waited for the window to pass
        store = b.dht.kad.provider_store
        assert all(store.get_providers(cid.multihash) for cid in cids)


@trio_test()
async def test_a_node_re_advertises_what_it_provides() -> None:
    cid = CID.of(b"dataset")
    async with networks(None) as [b]:
        config = NetworkConfig(reprovide_interval=0.2, fetch=FAST.fetch)
        a = Network(Identity.generate(), LOOPBACK, bootstrap_sprs=[b.spr()], provided=lambda: [cid], config=config)
        async with a.run():
            rounds = a.dht.reprovide_rounds
            while a.dht.reprovide_rounds < rounds + 2:  # two full rounds after bootstrap
                await a.dht.wait_reprovided()
            assert [p.peer_id for p in b.dht.kad.provider_store.get_providers(cid.multihash)] == [a.peer_id.libp2p]


@trio_test()
async def test_the_routing_table_view_lists_known_nodes() -> None:
    async with networks(None, None) as [a, b]:
        await connect(a, b)
        table = a.routing_table()
        assert table["localNode"]["peerId"] == str(a.peer_id)
        assert table["localNode"]["record"] == a.spr()
        assert table["localNode"]["address"] == str(a.addrs[0])
        [node] = table["nodes"]
        assert set(node) == {"nodeId", "peerId", "record", "address", "seen"}
        assert node["peerId"] == str(b.peer_id)
        assert node["address"] == str(b.addrs[0])
        assert node["seen"] is True
        assert len(node["nodeId"]) == 64
