"""Fetching blocks over `/hoard/blocks/1` from several peers: order, verification, failures, memory."""

from __future__ import annotations

import logging

import pytest
import trio
import trio.lowlevel
from _net_kit import collect, connect, make_blocks, networks, store_with, trio_test

from hoard.errors import CancelledError, NotFoundError, PeerError
from hoard.ids.cid import CID
from hoard.ids.peer import Identity
from hoard.net import FetchLimits

pytestmark = pytest.mark.timeout(90)

SMALL_BATCHES = FetchLimits(batch_blocks=4, batches_per_peer=2, request_timeout=2.0, open_timeout=5.0)


def cids_of(blocks: list[tuple[CID, bytes]]) -> list[CID]:
    return [cid for cid, _ in blocks]


@trio_test()
async def test_a_fetch_draws_from_two_providers_and_yields_in_order() -> None:
    blocks = make_blocks(64)  # 4 MiB
    store = store_with(blocks)
    async with networks(store, store, None) as [p1, p2, client]:
        await connect(client, p1)
        await connect(client, p2)
        got = await collect(client.fetch_blocks(cids_of(blocks), [p1.peer_id, p2.peer_id], SMALL_BATCHES))
        assert got == blocks
        assert p1.server_stats().blocks_sent > 0 and p2.server_stats().blocks_sent > 0
        assert p1.server_stats().blocks_sent + p2.server_stats().blocks_sent == len(blocks)


@trio_test()
async def test_without_providers_a_fetch_finds_them_in_the_dht() -> None:
    blocks = make_blocks(8)
    async with networks(store_with(blocks), None, None) as [provider, middle, client]:
        await connect(provider, middle)
        await connect(client, middle)
        await provider.provide(blocks[0][0], wait=True)
        assert await collect(client.fetch_blocks(cids_of(blocks))) == blocks


@trio_test()
async def test_a_provider_sending_bad_blocks_is_dropped_and_the_fetch_completes(caplog: pytest.LogCaptureFixture) -> None:
    blocks = make_blocks(32)
    honest = store_with(blocks)

    def corrupting(cid: CID) -> bytes | None:  # a provider whose every block is damaged
        data = honest.get(cid)
        return None if data is None else data[:-1] + bytes([data[-1] ^ 1])

    async with networks(corrupting, honest, None) as [liar, good, client]:
        await connect(client, liar)
        await connect(client, good)
        with caplog.at_level(logging.WARNING, logger="hoard.net"):
            stream = client.fetch_blocks(cids_of(blocks), [liar.peer_id, good.peer_id], SMALL_BATCHES)
            assert await collect(stream) == blocks
        assert liar.server_stats().blocks_sent > 0  # it was asked, and answered
        assert stream.stats()["peers"][str(liar.peer_id)]["blocks"] == 0  # none of its blocks was taken
        record = client.penalties.get(liar.peer_id)
        assert record is not None and record.bad_blocks == 1 and "sent a bad block" in record.last_reason
        assert client.penalties.is_banned(liar.peer_id)
        assert client.penalties.get(good.peer_id) is None
        warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
        assert any(str(liar.peer_id) in m and "sent a bad block" in m for m in warnings)
        with pytest.raises(PeerError, match="banned"):  # not asked again while banned
            await collect(client.fetch_blocks(cids_of(blocks), [liar.peer_id]))


@trio_test()
async def test_a_provider_shut_down_mid_fetch_is_replaced_by_the_other() -> None:
    blocks = make_blocks(64)
    store = store_with(blocks)
    async with networks(store, None) as [survivor, client]:
        doomed_scope = trio.CancelScope()
        async with trio.open_nursery() as nursery:

            async def run_doomed(task_status: trio.TaskStatus) -> None:
                with doomed_scope:
                    async with networks(store) as [doomed]:
                        task_status.started(doomed)
                        await trio.sleep_forever()

            doomed = await nursery.start(run_doomed)
            await connect(client, doomed)
            await connect(client, survivor)
            got = []
            async with client.fetch_blocks(cids_of(blocks), [doomed.peer_id, survivor.peer_id], SMALL_BATCHES) as stream:
                async for item in stream:
                    got.append(item)
                    if len(got) == 4:
                        doomed_scope.cancel()  # its host closes every connection
            assert got == blocks
            assert stream.stats()["peers"][str(doomed.peer_id)]["state"].startswith("dropped")
            assert client.penalties.get(doomed.peer_id).failures == 1


@trio_test()
async def test_a_stalled_provider_times_out_and_the_others_finish() -> None:
    blocks = make_blocks(24)
    store = store_with(blocks)

    async def stalls(cid: CID) -> bytes | None:
        await trio.sleep_forever()

    async with networks(stalls, store, None) as [stuck, good, client]:
        await connect(client, stuck)
        await connect(client, good)
        got = await collect(client.fetch_blocks(cids_of(blocks), [stuck.peer_id, good.peer_id], SMALL_BATCHES))
        assert got == blocks
        record = client.penalties.get(stuck.peer_id)
        assert record is not None and "stalled" in record.last_reason
        assert not client.penalties.is_banned(stuck.peer_id)


@trio_test()
async def test_an_unreachable_provider_is_skipped() -> None:
    blocks = make_blocks(8)
    ghost = Identity.generate().peer_id  # no address known
    async with networks(store_with(blocks), None) as [good, client]:
        await connect(client, good)
        assert await collect(client.fetch_blocks(cids_of(blocks), [ghost, good.peer_id], SMALL_BATCHES)) == blocks
        assert client.penalties.get(ghost).failures == 1


@trio_test()
async def test_a_block_no_provider_has_is_not_found() -> None:
    blocks = make_blocks(8)
    partial = store_with(blocks[:5])
    async with networks(partial, partial, None) as [p1, p2, client]:
        await connect(client, p1)
        await connect(client, p2)
        stream = client.fetch_blocks(cids_of(blocks), [p1.peer_id, p2.peer_id], SMALL_BATCHES)
        with pytest.raises(NotFoundError, match=str(blocks[5][0])):
            await collect(stream)


@trio_test()
async def test_a_fetch_with_no_providers_fails() -> None:
    async with networks(None) as [client]:
        with pytest.raises(PeerError, match="no providers"):
            await collect(client.fetch_blocks([CID.of(b"x")]))


@trio_test()
async def test_memory_is_bounded_by_the_window_when_the_consumer_is_slow() -> None:
    blocks = make_blocks(64, size=16384)
    limits = FetchLimits(window_blocks=8, batch_blocks=2, batches_per_peer=2, request_timeout=5.0)
    async with networks(store_with(blocks), None) as [provider, client]:
        await connect(client, provider)
        consumed = 0
        async with client.fetch_blocks(cids_of(blocks), [provider.peer_id], limits) as stream:
            async for cid, data in stream:
                consumed += 1
                assert provider.server_stats().blocks_sent <= consumed + 8
                await trio.lowlevel.checkpoint()  # let the fetch run ahead as far as it may
        assert consumed == 64


@trio_test()
async def test_closing_a_fetch_early_releases_the_providers() -> None:
    blocks = make_blocks(64)
    async with networks(store_with(blocks), None) as [provider, client]:
        await connect(client, provider)
        async with client.fetch_blocks(cids_of(blocks), [provider.peer_id], SMALL_BATCHES) as stream:
            async for _ in stream:
                break
        assert provider.server_stats().blocks_sent < 64
        while provider.server_stats().active:  # the provider sees its stream reset and stops
            await trio.sleep(0.01)
        assert await collect(client.fetch_blocks(cids_of(blocks[:4]), [provider.peer_id])) == blocks[:4]


@trio_test()
async def test_closing_a_fetch_wakes_a_waiting_consumer_with_cancelled() -> None:
    async def never(cid: CID) -> bytes | None:
        await trio.sleep_forever()

    async with networks(never, None) as [provider, client]:
        await connect(client, provider)
        stream = client.fetch_blocks([CID.of(b"x")], [provider.peer_id])
        async with trio.open_nursery() as nursery:
            nursery.start_soon(stream.aclose)
            with pytest.raises(CancelledError):
                await stream.__anext__()
