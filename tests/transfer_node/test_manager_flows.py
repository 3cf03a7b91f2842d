"""The manager's flows (DIGEST §3.6) end to end in one process: real managers, sessions, frames and
content stores, over in-memory streams instead of libp2p (see `_memnet`).
"""

from __future__ import annotations

from collections import Counter

import pytest
import trio
from _dt_ops import DealResult, DealValidator, DealVoucher, Payments
from _memnet import memory_net, random_data, setup_deals, trio_test

from hoard.errors import AlreadyExistsError, InvalidArgumentError
from hoard.ids.cid import CID
from hoard.transfer import (
    BlockRange,
    EncodedVoucher,
    ErrChannelNotFound,
    ErrInvalidTransition,
    ErrPause,
    EventCode,
    Status,
)
from hoard.transfer.manager import ERR_DISCONNECTED

pytestmark = pytest.mark.timeout(60)

E = EventCode
S = Status
DONE = (S.Completed, S.Failed, S.Cancelled)


# -- opening, completing ---------------------------------------------------------------------

@trio_test()
async def test_pull_moves_a_dataset_and_both_sides_follow_the_go_flow():
    async with memory_net() as net:
        a, b = await net.add("a"), await net.add("b")
        setup_deals(a, b)
        data = random_data(200_000)
        cid = b.upload(data)
        chid = await a.manager.open_pull_data_channel(b.peer_id, DealVoucher("deal-1"), cid)
        done_a = await a.wait_status(chid, *DONE)
        done_b = await b.wait_status(chid, *DONE)
        assert (done_a.status, done_b.status) == (S.Completed, S.Completed)
        assert a.codes(chid) == [E.Open, E.NewVoucherResult, E.Accept, E.ResumeResponder, E.FinishTransfer,
                                 E.ResponderCompletes, E.CleanupComplete]
        assert b.codes(chid) == [E.Open, E.NewVoucherResult, E.Accept, E.Complete, E.CleanupComplete]
        assert done_a.received == done_a.total_size == done_b.sent == done_b.queued > len(data)
        assert a.content.dataset_info(cid).pinned
        assert b"".join(a.content.blobs.get(c) for c, _ in a.content.iter_blocks(a.content.manifest(cid))) == data
        assert a.manager.decode_voucher_result(done_a.last_voucher_result).note == "deal deal-1 accepted"


@trio_test()
async def test_progress_events_come_first_and_once_per_block():
    async with memory_net() as net:
        a, b = await net.add("a"), await net.add("b")
        setup_deals(a, b)
        cid = b.upload(random_data(50_000))
        chid = await a.manager.open_pull_data_channel(b.peer_id, DealVoucher("deal-1"), cid)
        await b.wait_status(chid, *DONE)
        await a.wait_status(chid, *DONE)
        sent = [c for c in b.codes(chid, progress=True) if c in (E.DataQueued, E.DataQueuedProgress, E.DataSent,
                                                                    E.DataSentProgress)]
        blocks = len(b.last(chid).sent_cids)
        assert sent.count(E.DataQueuedProgress) == sent.count(E.DataQueued) == blocks
        assert sent.count(E.DataSentProgress) == sent.count(E.DataSent) == blocks
        got = [c for c in a.codes(chid, progress=True) if c in (E.DataReceived, E.DataReceivedProgress)]
        assert got == [E.DataReceivedProgress, E.DataReceived] * blocks


@trio_test()
async def test_push_moves_a_dataset():
    async with memory_net() as net:
        a, b = await net.add("a"), await net.add("b")
        setup_deals(a, b)
        data = random_data(150_000)
        cid = a.upload(data)
        chid = await a.manager.open_push_data_channel(b.peer_id, DealVoucher("deal-1"), cid)
        assert (await a.wait_status(chid, *DONE)).status is S.Completed
        done_b = await b.wait_status(chid, *DONE)
        assert a.codes(chid) == [E.Open, E.NewVoucherResult, E.Accept, E.ResumeResponder, E.FinishTransfer,
                                 E.ResponderCompletes, E.CleanupComplete]
        assert b.codes(chid) == [E.Open, E.NewVoucherResult, E.Accept, E.Complete, E.CleanupComplete]
        assert done_b.received == a.last(chid).sent
        assert b.content.dataset_info(cid) is not None


@trio_test()
async def test_a_single_block_moves_alone():
    async with memory_net() as net:
        a, b = await net.add("a"), await net.add("b")
        setup_deals(a, b)
        block = CID.of(b"just one block")
        b.content.blobs.put(block, b"just one block")
        chid = await a.manager.open_pull_data_channel(b.peer_id, DealVoucher("deal-1"), block)
        done = await a.wait_status(chid, *DONE)
        assert done.status is S.Completed and list(done.received_cids) == [block]
        assert a.content.blobs.get(block) == b"just one block"


@trio_test()
async def test_a_block_the_dataset_repeats_moves_once():
    async with memory_net() as net:
        a, b = await net.add("a"), await net.add("b")
        setup_deals(a, b)
        data = bytes(4096) * 30 + random_data(4096) + bytes(4096) * 10  # 41 blocks, 2 distinct
        cid = b.upload(data)
        chid = await a.manager.open_pull_data_channel(b.peer_id, DealVoucher("deal-1"), cid)
        done = await a.wait_status(chid, *DONE)
        assert done.status is S.Completed and len(done.received_cids) == 2 + 2
        content = a.content
        assert b"".join(content.blobs.get(c) for c, _ in content.iter_blocks(content.manifest(cid))) == data


@trio_test()
async def test_pull_of_what_the_responder_lacks_fails_both_sides():
    async with memory_net() as net:
        a, b = await net.add("a"), await net.add("b")
        setup_deals(a, b)
        missing = CID.of(b"nobody has this")
        chid = await a.manager.open_pull_data_channel(b.peer_id, DealVoucher("deal-1"), missing)
        done = await a.wait_status(chid, *DONE)
        assert done.status is S.Failed and "not found" in done.message
        assert (await b.wait_status(chid, *DONE)).status is S.Failed


@trio_test()
async def test_push_of_what_we_lack_is_refused_before_a_channel_exists():
    async with memory_net() as net:
        a, b = await net.add("a"), await net.add("b")
        setup_deals(a, b)
        with pytest.raises(InvalidArgumentError, match="not in the local store"):
            await a.manager.open_push_data_channel(b.peer_id, DealVoucher("deal-1"), CID.of(b"x"))
        assert a.manager.in_progress_channels() == {}


# -- rejection --------------------------------------------------------------------------------

@trio_test()
async def test_a_rejected_voucher_fails_the_initiator_with_the_reason():
    async with memory_net() as net:
        a, b = await net.add("a"), await net.add("b")
        setup_deals(a, b)
        cid = b.upload(random_data(10_000))
        chid = await a.manager.open_pull_data_channel(b.peer_id, DealVoucher("deal-9"), cid)
        done = await a.wait_status(chid, *DONE)
        assert done.status is S.Failed
        assert done.message == "response rejected"  # Go's ErrRejected text; the reason is the result
        assert done.last_voucher_result.data == b"no such deal: deal-9"
        assert a.codes(chid) == [E.Open, E.NewVoucherResult, E.Error, E.CleanupComplete]
        assert b.manager.transfer_channel_status(chid) is S.ChannelNotFoundError
        with pytest.raises(ErrChannelNotFound):
            b.manager.channel_state(chid)


@trio_test()
async def test_an_unknown_voucher_type_is_rejected():
    async with memory_net() as net:
        a, b = await net.add("a"), await net.add("b")
        setup_deals(a)  # b knows no deals
        cid = b.upload(random_data(10_000))
        chid = await a.manager.open_pull_data_channel(b.peer_id, DealVoucher("deal-1"), cid)
        done = await a.wait_status(chid, *DONE)
        assert (done.status, done.message) == (S.Failed, "response rejected")
        assert b"unknown voucher type" in done.last_voucher_result.data


def test_registering_a_type_twice_is_an_error():
    async def main():
        async with memory_net() as net:
            a = await net.add("a")
            setup_deals(a)
            with pytest.raises(AlreadyExistsError, match="identifier already registered: test/deal"):
                a.manager.register_voucher_type(DealVoucher, DealValidator())
            with pytest.raises(InvalidArgumentError):
                a.manager.register_revalidator(DealVoucher, object())

    trio.run(main)


# -- pause and resume -----------------------------------------------------------------------------

@trio_test()
async def test_validator_pause_accepts_paused_until_a_voucher_resumes():
    async with memory_net() as net:
        a, b = await net.add("a"), await net.add("b")
        payments = Payments(interval=1 << 40)
        setup_deals(a, b, validator=DealValidator(pause=("deal-p",)), revalidator=payments)
        cid = b.upload(random_data(40_000))
        chid = await a.manager.open_pull_data_channel(b.peer_id, DealVoucher("deal-p"), cid)
        paused = await a.wait_status(chid, S.ResponderPaused)
        assert paused.received == 0 and b.manager.channel_state(chid).status is S.ResponderPaused
        await a.manager.send_voucher(chid, DealVoucher("payment-1"))
        assert (await a.wait_status(chid, *DONE)).status is S.Completed
        assert (await b.wait_status(chid, *DONE)).status is S.Completed
        assert payments.vouchers == ["payment-1"]
        assert b.codes(chid)[:6] == [E.Open, E.NewVoucherResult, E.Accept, E.PauseResponder, E.NewVoucher,
                                     E.NewVoucherResult]
        assert E.ResumeResponder in b.codes(chid)


@pytest.mark.parametrize("pull", [True, False])
@pytest.mark.parametrize("who", ["initiator", "responder"])
@trio_test()
async def test_pause_and_resume_mid_transfer(pull, who):
    async with memory_net() as net:
        a, b = await net.add("a"), await net.add("b")
        setup_deals(a, b, rate=400_000)
        source, sink = (b, a) if pull else (a, b)
        cid = source.upload(random_data(120_000))
        open_ = a.manager.open_pull_data_channel if pull else a.manager.open_push_data_channel
        chid = await open_(b.peer_id, DealVoucher("deal-1"), cid)
        await sink.wait_for(chid, lambda s: s.received > 0)
        pauser, other = (a, b) if who == "initiator" else (b, a)
        expected = S.InitiatorPaused if who == "initiator" else S.ResponderPaused
        await pauser.manager.pause_data_transfer_channel(chid)
        await other.wait_status(chid, expected)
        assert pauser.manager.channel_state(chid).status is expected
        await pauser.manager.resume_data_transfer_channel(chid)
        assert (await a.wait_status(chid, *DONE)).status is S.Completed
        assert (await b.wait_status(chid, *DONE)).status is S.Completed
        pause, resume = (E.PauseInitiator, E.ResumeInitiator) if who == "initiator" else \
            (E.PauseResponder, E.ResumeResponder)
        assert pause in a.codes(chid) and resume in a.codes(chid)
        assert pause in b.codes(chid) and resume in b.codes(chid)
        # the sender queued nothing between learning of the pause and of the resume
        codes = source.codes(chid, progress=True)
        paused_at = codes.index(pause)
        resumed_at = codes.index(resume, paused_at)
        assert E.DataQueued in codes[:paused_at] and E.DataQueued in codes[resumed_at:]
        assert E.DataQueued not in codes[paused_at:resumed_at]


@trio_test()
async def test_pausing_a_finished_channel_is_refused():
    async with memory_net() as net:
        a, b = await net.add("a"), await net.add("b")
        setup_deals(a, b)
        cid = b.upload(random_data(5_000))
        chid = await a.manager.open_pull_data_channel(b.peer_id, DealVoucher("deal-1"), cid)
        await a.wait_status(chid, *DONE)
        with pytest.raises(ErrInvalidTransition):
            await a.manager.pause_data_transfer_channel(chid)


# -- cancel -------------------------------------------------------------------------------------

@pytest.mark.parametrize("who", ["initiator", "responder"])
@trio_test()
async def test_cancel_ends_both_sides(who):
    async with memory_net() as net:
        a, b = await net.add("a"), await net.add("b")
        setup_deals(a, b, rate=300_000)
        cid = b.upload(random_data(200_000))
        chid = await a.manager.open_pull_data_channel(b.peer_id, DealVoucher("deal-1"), cid)
        await a.wait_for(chid, lambda s: s.received > 0)
        canceller = a if who == "initiator" else b
        await canceller.manager.close_data_transfer_channel(chid)
        for peer in (a, b):
            done = await peer.wait_status(chid, *DONE)
            assert done.status is S.Cancelled
            assert peer.codes(chid)[-2:] == [E.Cancel, E.CleanupComplete]
        assert a.content.dataset_info(cid) is None


# -- selectors ----------------------------------------------------------------------------------

@trio_test()
async def test_a_range_moves_exactly_the_chosen_blocks():
    async with memory_net() as net:
        a, b = await net.add("a"), await net.add("b")
        setup_deals(a, b)
        cid = b.upload(random_data(100 * 1024), block_size=1024)  # 100 blocks
        manifest = b.content.manifest(cid)
        blocks = [c for c, _ in b.content.iter_blocks(manifest)]
        chid = await a.manager.open_pull_data_channel(b.peer_id, DealVoucher("deal-1"), cid, BlockRange(10, 25))
        done = await a.wait_status(chid, *DONE)
        assert done.status is S.Completed
        received = set(done.received_cids)
        assert received == {cid, manifest.index, *blocks[10:25]}
        assert all(a.content.blobs.has(c) for c in blocks[10:25])
        assert not any(a.content.blobs.has(c) for c in blocks[:10] + blocks[25:])
        assert a.content.dataset_info(cid) is None  # a range is kept as blocks, not as a dataset


@trio_test()
async def test_a_range_over_a_deep_index_takes_only_the_index_nodes_above_it():
    async with memory_net() as net:
        a, b = await net.add("a"), await net.add("b")
        setup_deals(a, b)
        cid = b.upload(random_data(3000 * 64), block_size=64)  # 3000 blocks: three leaves and a root
        manifest = b.content.manifest(cid)
        blocks = [c for c, _ in b.content.iter_blocks(manifest)]
        chid = await a.manager.open_pull_data_channel(b.peer_id, DealVoucher("deal-1"), cid, {"range": [1020, 1030]})
        done = await a.wait_status(chid, *DONE)
        assert done.status is S.Completed
        data_received = [c for c in done.received_cids if c in set(blocks)]
        assert data_received == blocks[1020:1030]
        assert len(done.received_cids) == 2 + 2 + 10  # manifest, root, the two leaves the range spans, blocks


# -- revalidation and finalization ------------------------------------------------------------

@pytest.mark.parametrize("pull", [True, False])
@trio_test()
async def test_a_revalidator_pauses_every_n_bytes_until_paid(pull):
    async with memory_net() as net:
        a, b = await net.add("a"), await net.add("b")
        payments = Payments(interval=50_000)
        setup_deals(a, b, revalidator=payments, rate=None if pull else 1_000_000)  # a push pauses its sender late
        source = b if pull else a
        cid = source.upload(random_data(120_000))
        paid = []

        def pay(event, state):
            if event.code is E.PauseResponder and state.channel_id == chid:
                paid.append(state.received)
                net.token.run_sync_soon(lambda: net.nursery.start_soon(
                    a.manager.send_voucher, chid, DealVoucher(f"payment-{len(paid)}")))

        a.manager.subscribe_to_events(pay)
        open_ = a.manager.open_pull_data_channel if pull else a.manager.open_push_data_channel
        chid = await open_(b.peer_id, DealVoucher("deal-1"), cid)
        assert (await a.wait_status(chid, *DONE)).status is S.Completed
        assert (await b.wait_status(chid, *DONE)).status is S.Completed
        # A pull's sender pauses at the exact block; a push's recipient pauses its sender one
        # message later, and what is in flight meanwhile counts towards the next payment.
        paid = len(payments.vouchers)
        assert paid == 2 if pull else 1 <= paid <= 2
        assert payments.vouchers == [f"payment-{i + 1}" for i in range(paid)]
        codes = b.codes(chid)
        assert codes.count(E.PauseResponder) == codes.count(E.ResumeResponder) == codes.count(E.NewVoucher) == paid


@trio_test()
async def test_finalization_waits_for_a_final_voucher():
    class Settle(Payments):
        def on_complete(self, chid):
            raise ErrPause(result=DealResult("settle up"))

    async with memory_net() as net:
        a, b = await net.add("a"), await net.add("b")
        setup_deals(a, b, revalidator=Settle(interval=1 << 40))
        cid = b.upload(random_data(20_000))
        chid = await a.manager.open_pull_data_channel(b.peer_id, DealVoucher("deal-1"), cid)
        await b.wait_status(chid, S.Finalizing)
        await a.wait_status(chid, S.ResponderFinalizingTransferFinished)
        await a.manager.send_voucher(chid, DealVoucher("final"))
        assert (await a.wait_status(chid, *DONE)).status is S.Completed
        assert (await b.wait_status(chid, *DONE)).status is S.Completed
        assert b.codes(chid)[-5:] == [E.BeginFinalizing, E.NewVoucher, E.NewVoucherResult, E.ResumeResponder,
                                      E.CleanupComplete]


# -- restart and durability -----------------------------------------------------------------------

@pytest.mark.parametrize("pull", [True, False])
@pytest.mark.parametrize("crashed", ["responder", "initiator"])
@pytest.mark.parametrize("restarter", ["initiator", "responder"])
@trio_test()
async def test_restart_after_a_crash_completes_without_receiving_a_block_twice(pull, crashed, restarter):
    async with memory_net() as net:
        peers = {"initiator": await net.add("a"), "responder": await net.add("b")}
        setup_deals(*peers.values(), rate=1_000_000)
        data = random_data(300_000)
        sender_role, recipient_role = ("responder", "initiator") if pull else ("initiator", "responder")
        cid = peers[sender_role].upload(data)
        a = peers["initiator"]
        open_ = a.manager.open_pull_data_channel if pull else a.manager.open_push_data_channel
        chid = await open_(peers["responder"].peer_id, DealVoucher("deal-1"), cid)
        await peers[recipient_role].wait_for(chid, lambda s: s.received > 40_000)
        victim, survivor = peers[crashed], peers["responder" if crashed == "initiator" else "initiator"]
        await net.crash(victim)
        lost = await survivor.wait_for(chid, lambda s: s.message.startswith(ERR_DISCONNECTED))
        assert lost.status is S.Ongoing
        peers[crashed] = await net.restart(victim)
        setup_deals(peers[crashed])
        recipient = peers[recipient_role]
        before = len(recipient.manager.channel_state(chid).received_cids)
        assert before > 0 and recipient.manager.channel_state(chid).received > 0
        assert peers["responder"].manager.channel_state(chid).status is S.Ongoing
        mark = len(recipient.events)
        await peers[restarter].manager.restart_data_transfer_channel(chid)
        for peer in peers.values():
            assert (await peer.wait_status(chid, *DONE)).status is S.Completed, peer.last(chid).message
        done = recipient.manager.channel_state(chid)
        assert done.received == done.total_size
        after = Counter(code for code, _s, _m, st in recipient.events[mark:] if st.channel_id == chid)
        # after the restart, only what was missing arrives, each block once (a block received
        # again would fire DataReceived without DataReceivedProgress)
        assert after[E.DataReceived] == after[E.DataReceivedProgress] == len(done.received_cids) - before > 0
        assert E.Restart in peers["initiator"].codes(chid) and E.Restart in peers["responder"].codes(chid)
        content = recipient.content
        assert b"".join(content.blobs.get(c) for c, _ in content.iter_blocks(content.manifest(cid))) == data


@trio_test()
async def test_a_restart_whose_voucher_differs_is_refused():
    async with memory_net() as net:
        a, b = await net.add("a"), await net.add("b")
        setup_deals(a, b, validator=DealValidator(accept=("deal-1", "deal-2")), rate=500_000)
        cid = b.upload(random_data(200_000))
        chid = await a.manager.open_pull_data_channel(b.peer_id, DealVoucher("deal-1"), cid)
        await a.wait_for(chid, lambda s: s.received > 0)
        await net.crash(b)
        await a.wait_for(chid, lambda s: s.message.startswith(ERR_DISCONNECTED))
        b = await net.restart(b)
        setup_deals(b, validator=DealValidator(accept=("deal-1", "deal-2")))
        # the initiator's record no longer matches: persisted so, and read back by a restarted manager
        forged = a.manager.channel_state(chid).evolve(vouchers=(EncodedVoucher.of(DealVoucher("deal-2")),))
        await net.crash(a)
        a.manager.storage.save_channel(forged, {})
        a = await net.restart(a)
        setup_deals(a, validator=DealValidator(accept=("deal-1", "deal-2")), rate=500_000)
        await a.manager.restart_data_transfer_channel(chid)
        done = await a.wait_status(chid, *DONE)
        assert done.status is S.Failed
        assert done.message == "response rejected"
        assert done.last_voucher_result.data == b"restart request voucher differs from the channel's voucher"
        assert b.manager.channel_state(chid).status is S.Ongoing  # the responder's channel is untouched


@trio_test()
async def test_channels_survive_a_restart_of_the_manager():
    async with memory_net() as net:
        a, b = await net.add("a"), await net.add("b")
        setup_deals(a, b)
        cid = b.upload(random_data(30_000))
        chid = await a.manager.open_pull_data_channel(b.peer_id, DealVoucher("deal-1"), cid)
        done = await a.wait_status(chid, *DONE)
        await net.crash(a)
        a2 = await net.restart(a)
        loaded = a2.manager.channel_state(chid)
        assert loaded == done
        assert a2.manager.in_progress_channels() == {chid: done}
        await a2.manager.restart_data_transfer_channel(chid)  # a finished channel: nothing to do
        assert a2.manager.channel_state(chid) == done


@trio_test()
async def test_restarting_an_interrupted_cleanup_finishes_it():
    async with memory_net() as net:
        a, b = await net.add("a"), await net.add("b")
        setup_deals(a, b)
        cid = b.upload(random_data(30_000))
        chid = await a.manager.open_pull_data_channel(b.peer_id, DealVoucher("deal-1"), cid)
        done = await a.wait_status(chid, *DONE)
        await net.crash(a)
        a.manager.storage.save_channel(done.evolve(status=S.Cancelling), {})  # as if persisted mid-cleanup
        a = await net.restart(a)
        setup_deals(a)
        await a.manager.restart_data_transfer_channel(chid)
        assert a.manager.channel_state(chid).status is S.Cancelled
        await a.wait_status(chid, S.Cancelled)
        assert a.codes(chid)[-2:] == [E.CompleteCleanupOnRestart, E.CleanupComplete]


@trio_test()
async def test_operations_on_unknown_channels_and_peers():
    async with memory_net() as net:
        a = await net.add("a")
        setup_deals(a)
        with pytest.raises(ErrChannelNotFound):
            await a.manager.pause_data_transfer_channel(f"{a.peer_id}-{a.peer_id}-1")
        with pytest.raises(InvalidArgumentError):
            await a.manager.open_pull_data_channel(a.peer_id, DealVoucher("deal-1"), CID.of(b"x"))
        with pytest.raises(InvalidArgumentError):
            a.manager.channel_state("not-a-channel")
        unreachable = "12D3KooWQEKAeG9bj5uua6knrZSFo6vczQJZw2pXHBJhKrviuboZ"
        with pytest.raises(Exception, match="unreachable"):
            await a.manager.open_pull_data_channel(unreachable, DealVoucher("deal-1"), CID.of(b"x"))
        (_chid, state), = a.manager.in_progress_channels().items()
        assert state.status is S.Failed and state.message.startswith("Unable to send request")
