"""The senders of one manager together hold at most `send_budget` bytes (read from the store and
queued, not yet written): a channel whose peer stops taking data keeps what it holds, the others
go on within the rest, and everything is given back at the end."""

from __future__ import annotations

import pytest
import trio
from _dt_ops import DealVoucher
from _memnet import memory_net, random_data, setup_deals, trio_test

from hoard.transfer import Status
from hoard.transfer.channel import TransferLimits

pytestmark = pytest.mark.timeout(60)

DONE = (Status.Completed, Status.Failed, Status.Cancelled)
LIMITS = TransferLimits(batch_bytes=64 << 10, max_in_flight=128 << 10, checkpoint_bytes=64 << 10, linger=2.0,
                        send_budget=256 << 10)


@trio_test()
async def test_senders_share_a_bounded_budget():
    async with memory_net(LIMITS) as net:
        a, b = await net.add("a"), await net.add("b")
        setup_deals(a, b, rate=2_000_000)
        budget = b.manager.send_budget
        peak = 0

        async def watch() -> None:
            nonlocal peak
            while True:
                peak = max(peak, budget.used)
                await trio.sleep(0.001)  # sampling pace, not synchronisation

        async with trio.open_nursery() as nursery:
            nursery.start_soon(watch)
            cids = [b.upload(random_data(600_000)) for _ in range(3)]
            stalled = await a.manager.open_pull_data_channel(b.peer_id, DealVoucher("deal-1"), cids[0])
            await a.wait_for(stalled, lambda s: s.received > 0)
            await a.manager.pause_data_transfer_channel(stalled)  # its sender stops, holding what it read
            others = [await a.manager.open_pull_data_channel(b.peer_id, DealVoucher("deal-1"), cid)
                      for cid in cids[1:]]
            for chid in others:
                assert (await a.wait_status(chid, *DONE)).status is Status.Completed
            await a.manager.resume_data_transfer_channel(stalled)
            assert (await a.wait_status(stalled, *DONE)).status is Status.Completed
            for chid in [stalled, *others]:
                await b.wait_status(chid, *DONE)
            nursery.cancel_scope.cancel()
        assert 0 < peak <= LIMITS.send_budget
        assert budget.used == 0  # every sender gave back what it took


@trio_test()
async def test_the_budget_waits_for_room():
    import trio.testing

    from hoard.transfer.datapath import SendBudget

    budget = SendBudget(100)
    assert await budget.acquire(60) == 60
    got: list[int] = []

    async def take() -> None:
        got.append(await budget.acquire(50))

    async with trio.open_nursery() as nursery:
        nursery.start_soon(take)
        await trio.testing.wait_all_tasks_blocked()
        assert got == []  # 60 + 50 > 100: it waits
        budget.release(60)
    assert got == [50] and budget.used == 50
    assert await SendBudget(100).acquire(1000) == 100  # a batch larger than the budget takes all of it
