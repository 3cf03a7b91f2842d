"""The `Network` facade: lifecycle rules, errors out of `run()`, and the raw-stream benchmark."""

from __future__ import annotations

import pytest
from _net_kit import FAST, LOOPBACK, collect, connect, networks, trio_test

import hoard.net
from hoard.errors import PeerError, StateError
from hoard.ids.cid import CID
from hoard.ids.peer import Identity
from hoard.net import Network, NetworkConfig

pytestmark = pytest.mark.timeout(60)


def test_the_public_names_are_sorted_and_importable() -> None:
    assert hoard.net.__all__ == sorted(hoard.net.__all__)
    assert all(hasattr(hoard.net, name) for name in hoard.net.__all__)


@trio_test()
async def test_operations_need_a_running_network() -> None:
    net = Network(Identity.generate(), LOOPBACK)
    with pytest.raises(StateError):
        await net.connect(Identity.generate().peer_id, ["/ip4/127.0.0.1/tcp/1"])
    with pytest.raises(StateError):
        net.fetch_blocks([CID.of(b"x")])
    with pytest.raises(StateError):
        await net.provide(CID.of(b"x"))


@trio_test()
async def test_an_error_in_the_run_block_propagates_unwrapped() -> None:
    with pytest.raises(PeerError, match="^peer not found"):
        async with networks(None) as [net]:
            await net.connect(Identity.generate().peer_id)  # nobody to ask: not found


@trio_test()
async def test_an_empty_fetch_yields_nothing() -> None:
    async with networks(None) as [net]:
        assert await collect(net.fetch_blocks([], [])) == []


@trio_test()
async def test_the_raw_stream_benchmark_moves_the_bytes_asked() -> None:
    config = NetworkConfig(bench=True, fetch=FAST.fetch)
    source = Network(Identity.generate(), LOOPBACK, config=config)
    async with source.run(), networks(None) as [client]:
        await connect(client, source)
        result = await client.measure_raw_stream(source.peer_id, 4 << 20)
        assert result.bytes == 4 << 20 and result.seconds > 0 and result.mb_per_s > 0


@trio_test()
async def test_the_raw_stream_benchmark_is_off_by_default() -> None:
    async with networks(None, None) as [a, b]:
        await connect(a, b)
        with pytest.raises(PeerError):
            await a.measure_raw_stream(b.peer_id, 1 << 20)
