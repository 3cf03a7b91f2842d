"""The host: TCP + Noise + yamux only, addresses, connect by address, max-peers, bootstrap."""

from __future__ import annotations

import logging
import socket

import pytest
from _net_kit import LOOPBACK, connect, networks, trio_test

from hoard.errors import InvalidArgumentError, PeerError, StateError
from hoard.ids.peer import Identity, decode_spr
from hoard.net import Host, Network

pytestmark = pytest.mark.timeout(60)


def test_only_tcp_noise_and_yamux_are_offered() -> None:
    swarm = Host(Identity.generate()).libp2p.get_network()
    assert list(swarm.upgrader.security_multistream.transports) == ["/noise"]
    assert list(swarm.upgrader.muxer_multistream.transports) == ["/yamux/1.0.0"]
    assert [type(t).__name__ for t in swarm.transport_manager.get_transports()] == ["TCP"]
    assert swarm.connection_config.max_connections_per_peer == 1


def test_yamux_frames_fit_one_noise_message_and_window_updates_are_batched() -> None:
    from libp2p.stream_muxer.yamux import yamux

    Host(Identity.generate())
    assert yamux.MAX_MESSAGE_SIZE == 65535 - 16
    assert yamux._yamux_release_on_read() is False


def test_listen_addresses_must_be_tcp() -> None:
    with pytest.raises(InvalidArgumentError, match="invalid address"):
        Host(Identity.generate(), ["/ip4/127.0.0.1/udp/0/quic-v1"])
    with pytest.raises(InvalidArgumentError, match="invalid address"):
        Host(Identity.generate(), ["not a multiaddr"])


@trio_test()
async def test_listen_addresses_report_the_bound_port_and_match_the_spr() -> None:
    async with networks(None) as [net]:
        [addr] = net.addrs
        assert str(addr).startswith("/ip4/127.0.0.1/tcp/")
        assert int(addr.value_for_protocol("tcp")) > 0
        peer_id, addrs, _seq = decode_spr(net.spr())
        assert peer_id == net.peer_id
        assert [str(a) for a in addrs] == [str(addr)]


@trio_test()
async def test_a_listen_address_in_use_fails_the_start() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        net = Network(Identity.generate(), [f"/ip4/127.0.0.1/tcp/{busy.getsockname()[1]}"])
        with pytest.raises(PeerError, match="cannot listen"):
            async with net.run():
                pass


@trio_test()
async def test_connect_by_address_connects_both_sides() -> None:
    async with networks(None, None) as [a, b]:
        await connect(a, b)
        assert a.connected_peers() == [b.peer_id]
        assert b.connected_peers() == [a.peer_id]
        debug = await a.peer_debug(b.peer_id)
        assert debug["peerId"] == str(b.peer_id)
        assert str(b.addrs[0]) in debug["addresses"]
        assert set(debug) == {"peerId", "seqNo", "addresses"}


@trio_test()
async def test_connect_accepts_an_address_with_the_p2p_suffix() -> None:
    async with networks(None, None) as [a, b]:
        await a.connect(str(b.peer_id), [f"{b.addrs[0]}/p2p/{b.peer_id}"])
        assert a.connected_peers() == [b.peer_id]


@trio_test()
async def test_a_bad_multiaddr_is_an_invalid_address_error() -> None:
    async with networks(None, None) as [a, b]:
        with pytest.raises(InvalidArgumentError, match="invalid address"):
            await a.connect(b.peer_id, ["/ip4/999.1.1.1/tcp/1"])
        with pytest.raises(InvalidArgumentError, match="invalid address"):
            await a.connect(b.peer_id, [f"{b.addrs[0]}/p2p/{a.peer_id}"])  # names another peer
        assert a.connected_peers() == []


@trio_test()
async def test_a_failed_dial_is_a_peer_error() -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    async with networks(None) as [a]:
        with pytest.raises(PeerError, match="failed to connect"):
            await a.connect(Identity.generate().peer_id, [f"/ip4/127.0.0.1/tcp/{port}"])


@trio_test()
async def test_connecting_to_self_is_refused() -> None:
    async with networks(None) as [a]:
        with pytest.raises(InvalidArgumentError, match="self"):
            await a.connect(a.peer_id, a.addrs)


@trio_test()
async def test_max_peers_refuses_connections_beyond_the_limit() -> None:
    limited = Network(Identity.generate(), LOOPBACK, max_peers=1)
    async with limited.run(), networks(None, None) as [b, c]:
        await connect(b, limited)
        with pytest.raises(PeerError):
            await connect(c, limited)
        assert limited.connected_peers() == [b.peer_id]
        with pytest.raises(PeerError):  # outbound dials count too
            await connect(limited, c)
        assert limited.connected_peers() == [b.peer_id]


@trio_test()
async def test_bootstrap_connects_to_live_peers_and_warns_about_dead_ones(caplog: pytest.LogCaptureFixture) -> None:
    dead = Identity.generate()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        dead_spr = dead.signed_peer_record([f"/ip4/127.0.0.1/tcp/{sock.getsockname()[1]}"])
    async with networks(None) as [a]:
        node = Network(Identity.generate(), LOOPBACK, bootstrap_sprs=[a.spr(), dead_spr])
        with caplog.at_level(logging.WARNING, logger="hoard.net"):
            async with node.run():
                assert node.connected_peers() == [a.peer_id]
                assert a.peer_id.libp2p in node.dht.kad.routing_table.get_peer_ids()
        assert any(str(dead.peer_id) in r.getMessage() and r.levelno == logging.WARNING for r in caplog.records)


def test_a_malformed_bootstrap_spr_is_rejected_at_creation() -> None:
    with pytest.raises(InvalidArgumentError, match="signed peer record"):
        Network(Identity.generate(), LOOPBACK, bootstrap_sprs=["spr:garbage"])


@trio_test()
async def test_a_network_runs_once_and_a_new_one_keeps_the_peer_id() -> None:
    identity = Identity.generate()
    first = Network(identity, LOOPBACK)
    async with first.run():
        pass
    assert not first.running
    with pytest.raises(StateError):
        async with first.run():
            pass
    again = Network(identity, LOOPBACK)
    async with again.run(), networks(None) as [other]:
        await connect(other, again)
        assert other.connected_peers() == [identity.peer_id]
