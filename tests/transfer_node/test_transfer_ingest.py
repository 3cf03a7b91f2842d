"""Received blocks go through the ingest path: they count against the recipient's quota while
in flight, are reclaimed when a channel fails, is cancelled or is abandoned, and are kept for a
channel that can resume (after a crash too). Real managers over in-memory streams (`_memnet`)."""

from __future__ import annotations

import pytest
from _dt_ops import DealVoucher
from _memnet import memory_net, random_data, setup_deals, trio_test

from hoard.content.chunker import FixedChunker
from hoard.content.repo import ContentStore
from hoard.content.upload import Upload
from hoard.errors import StateError
from hoard.ids.cid import CID
from hoard.ids.peer import Identity
from hoard.store import MemoryBlockStore
from hoard.transfer import BlockRange, ChannelState, EventCode, Status
from hoard.transfer.manager import ERR_DISCONNECTED
from hoard.transfer.storage import ContentStorage, owner

pytestmark = pytest.mark.timeout(60)

S = Status
DONE = (S.Completed, S.Failed, S.Cancelled)
MB = 1 << 20


def figures(content: ContentStore) -> tuple[object, object]:
    return content.space(), content.ingest.stored()


@pytest.mark.parametrize("pull", [True, False])
@pytest.mark.parametrize("who", ["recipient", "sender"])
@trio_test()
async def test_a_cancelled_transfer_leaves_the_recipient_as_before(pull, who):
    async with memory_net() as net:
        a, b = await net.add("a"), await net.add("b")
        setup_deals(a, b, rate=400_000)
        sender, recipient = (b, a) if pull else (a, b)
        recipient.upload(random_data(50_000))  # something it had already stays
        before = figures(recipient.content)
        cid = sender.upload(random_data(400_000))
        open_ = a.manager.open_pull_data_channel if pull else a.manager.open_push_data_channel
        chid = await open_(b.peer_id, DealVoucher("deal-1"), cid)
        await recipient.wait_for(chid, lambda s: s.received > 60_000)
        assert recipient.content.space().quota_reserved_bytes > 0  # in flight: counted as reserved
        await (recipient if who == "recipient" else sender).manager.close_data_transfer_channel(chid)
        for peer in (a, b):
            assert (await peer.wait_status(chid, *DONE)).status is S.Cancelled
        assert figures(recipient.content) == before
        assert recipient.content.ingest.owners() == {}


@pytest.mark.parametrize("pull", [True, False])
@trio_test()
async def test_a_transfer_over_the_recipients_quota_fails_and_leaves_nothing(pull):
    async with memory_net() as net:
        small = ContentStore(MemoryBlockStore(), quota=300_000, block_ttl=3600)
        a = await net.add("a", small if pull else None)
        b = await net.add("b", None if pull else small)
        setup_deals(a, b)
        sender, recipient = (b, a) if pull else (a, b)
        before = figures(recipient.content)
        cid = sender.upload(random_data(600_000))
        open_ = a.manager.open_pull_data_channel if pull else a.manager.open_push_data_channel
        chid = await open_(b.peer_id, DealVoucher("deal-1"), cid)
        done = await recipient.wait_status(chid, *DONE)
        assert done.status is S.Failed and "quota" in done.message
        await sender.wait_status(chid, *DONE)  # the sender may have sent everything before it heard
        assert figures(recipient.content) == before
        assert recipient.content.ingest.stored().blocks == 0
        # refused on the announced size, before any block was stored
        assert EventCode.DataReceived not in recipient.codes(chid, progress=True)


@trio_test()
async def test_concurrent_transfers_cannot_overbook_the_quota():
    async with memory_net() as net:
        a = await net.add("a", ContentStore(MemoryBlockStore(), quota=1_000_000, block_ttl=3600))
        b = await net.add("b")
        setup_deals(a, b, rate=400_000)
        first, second = b.upload(random_data(600_000)), b.upload(random_data(600_000))
        one = await a.manager.open_pull_data_channel(b.peer_id, DealVoucher("deal-1"), first)
        await a.wait_for(one, lambda s: s.received > 0)  # its size is announced and reserved
        assert a.content.space().quota_reserved_bytes > 600_000
        two = await a.manager.open_pull_data_channel(b.peer_id, DealVoucher("deal-1"), second)
        done = await a.wait_status(two, *DONE)
        assert done.status is S.Failed and "quota" in done.message
        assert (await a.wait_status(one, *DONE)).status is S.Completed
        assert [d.cid for d in a.content.datasets()] == [first]
        assert a.content.space().quota_reserved_bytes == 0


@trio_test()
async def test_pulling_what_a_full_node_holds_already_needs_no_room():
    async with memory_net() as net:
        b = await net.add("b")
        data = random_data(300_000)
        cid = b.upload(data)
        store = MemoryBlockStore()
        roomy = ContentStore(store, quota=1 << 30, block_ttl=3600)
        up = Upload(roomy, FixedChunker(4096), filename="data.bin")
        up.write(data)
        assert up.finish() == cid
        full = ContentStore(store, quota=roomy.space().quota_used_bytes + 1000, block_ttl=3600)
        a = await net.add("a", full)
        setup_deals(a, b)
        chid = await a.manager.open_pull_data_channel(b.peer_id, DealVoucher("deal-1"), cid)
        done = await a.wait_status(chid, *DONE)
        assert done.status is S.Completed, done.message
        assert a.content.space().quota_reserved_bytes == 0


@trio_test()
async def test_a_completed_range_keeps_its_blocks_as_plain_blocks():
    async with memory_net() as net:
        a, b = await net.add("a"), await net.add("b")
        setup_deals(a, b)
        cid = b.upload(random_data(100 * 1024), block_size=1024)
        chid = await a.manager.open_pull_data_channel(b.peer_id, DealVoucher("deal-1"), cid, BlockRange(10, 25))
        done = await a.wait_status(chid, *DONE)
        assert done.status is S.Completed
        space = a.content.space()
        assert space.quota_reserved_bytes == 0 and space.total_blocks == len(done.received_cids)
        assert a.content.ingest.owners() == {} and list(a.content.datasets()) == []


@trio_test()
async def test_an_interrupted_pull_keeps_its_blocks_across_a_crash_and_resumes():
    async with memory_net() as net:
        a, b = await net.add("a"), await net.add("b")
        setup_deals(a, b, rate=500_000)
        data = random_data(400_000)
        cid = b.upload(data)
        chid = await a.manager.open_pull_data_channel(b.peer_id, DealVoucher("deal-1"), cid)
        await a.wait_for(chid, lambda s: s.received > 100_000)
        await net.crash(a)
        a = await net.restart(a)  # the content store is opened again: its recovery runs
        setup_deals(a)
        received = a.manager.channel_state(chid).received_cids
        assert len(received) > 0 and all(a.content.blobs.has(c) for c in received)
        space = a.content.space()
        assert space.quota_reserved_bytes >= a.manager.channel_state(chid).received > 0
        assert list(a.content.datasets()) == []  # nothing partial is listed
        await a.manager.restart_data_transfer_channel(chid)
        assert (await a.wait_status(chid, *DONE)).status is S.Completed
        space = a.content.space()
        assert space.quota_reserved_bytes == 0 and a.content.ingest.owners() == {}
        assert [d.cid for d in a.content.datasets()] == [cid]
        content = a.content
        assert b"".join(content.blobs.get(c) for c, _ in content.iter_blocks(content.manifest(cid))) == data


@trio_test()
async def test_an_interrupted_push_is_reclaimed_when_abandoned():
    async with memory_net() as net:
        a = await net.add("a")
        b = await net.add("b", ContentStore(MemoryBlockStore(), quota=1 << 30, block_ttl=3600, abandon_after=600))
        setup_deals(a, b, rate=500_000)
        before = figures(b.content)
        cid = a.upload(random_data(400_000))
        chid = await a.manager.open_push_data_channel(b.peer_id, DealVoucher("deal-1"), cid)
        await b.wait_for(chid, lambda s: s.received > 100_000)
        await net.crash(a)  # the pusher goes away for good
        lost = await b.wait_for(chid, lambda s: s.message.startswith(ERR_DISCONNECTED))
        assert lost.status is S.Ongoing
        assert b.content.space().quota_reserved_bytes > 100_000
        touched = b.content.ingest.owners()[owner(chid)]
        b.content.expire(now=touched + 599)
        assert b.content.space().quota_reserved_bytes > 100_000  # not yet abandoned
        b.content.expire(now=touched + 601)
        assert figures(b.content) == before


def test_a_channel_that_ended_before_a_crash_could_settle_it_is_settled_on_load():
    store = MemoryBlockStore()
    content = ContentStore(store, quota=1 << 30, block_ttl=3600)
    me, other = str(Identity.generate().peer_id), str(Identity.generate().peer_id)
    storage = ContentStorage(content)
    states = {}
    for tid, status in ((1, S.Failed), (2, S.Cancelling), (3, S.Ongoing), (4, S.Completed)):
        data = [random_data(5000) for _ in range(3)]
        state = ChannelState.create(self_peer=me, transfer_id=tid, base_cid=CID.of(data[0]), selector=None,
                                    voucher=DealVoucher("deal-1"), initiator=me, sender=other, recipient=me)
        storage.store_blocks(state.channel_id, [(CID.of(d), d) for d in data])
        storage.save_channel(state.evolve(status=status), {})
        states[status] = state.channel_id
    assert content.space().quota_reserved_bytes == 4 * 3 * 5000  # four channels of three blocks
    # a crash here: the Failed and Cancelling channels never reclaimed their blocks
    reopened = ContentStore(store, quota=1 << 30, block_ttl=3600)
    loaded = ContentStorage(reopened)
    loaded.load_channels()
    space = reopened.space()
    assert space.quota_reserved_bytes == 3 * 5000  # the Ongoing channel's: it can resume
    assert space.total_blocks == 3  # the Completed channel's, kept
    assert store.stats().blocks == 6
    assert set(reopened.ingest.owners()) == {owner(states[S.Ongoing])}
    with pytest.raises(StateError):
        loaded.store_blocks(states[S.Failed], [(CID.of(b"late"), b"late")])
