"""go-data-transfer v1.7 as its own text writes it (specs/go-data-transfer-v1.7.txt), not as hoard's code does.

* The README's toy validator and types.go's `RequestValidator`: `ValidatePush(sender, voucher,
  baseCid, selector)` / `ValidatePull(receiver, voucher, baseCid, selector)` returning
  `(VoucherResult, error)` (the README's returns just `error`).
* types.go's `Revalidator`: `Revalidate` returns `(VoucherResult, error)`, the `On*` hooks
  `(bool, VoucherResult, error)`.
* errors.go's constants and their exact texts; `EmptyTypeIdentifier`.
* `Manager.Start` / `OnReady(ReadyFunc)` / `Stop`.
* `ErrRejected`'s text, "response rejected", is the whole of a rejected channel's message.

Real managers, sessions and stores talk over in-memory streams (tests/transfer_node/_memnet.py).
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import trio

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "transfer_node"))

from _dt_ops import DealResult, DealVoucher
from _memnet import memory_net, random_data, trio_test

from hoard.errors import InvalidArgumentError, StateError, TransferError
from hoard.transfer import (
    EmptyTypeIdentifier,
    ErrChannelNotFound,
    ErrDisconnected,
    ErrHandlerAlreadySet,
    ErrHandlerNotSet,
    ErrIncomplete,
    ErrPause,
    ErrRejected,
    ErrRemoved,
    ErrResume,
    ErrUnsupported,
    EventCode,
    Status,
)
from hoard.transfer.validation import ValidatorAdapter

S = Status
DONE = (S.Completed, S.Failed, S.Cancelled)


class ToyValidator:
    """The README's myValidator: "validpush"/"validpull" pass, anything else is "invalid".
    Like types.go, it answers `(VoucherResult, error)`."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, str, str]] = []

    def validate_push(self, sender, voucher, base_cid, selector):
        self.calls.append(("push", sender, voucher.deal, str(base_cid)))
        if voucher.deal != "validpush":
            return None, TransferError("invalid")
        return DealResult("push ok"), None

    def validate_pull(self, receiver, voucher, base_cid, selector):
        self.calls.append(("pull", receiver, voucher.deal, str(base_cid)))
        if voucher.deal != "validpull":
            return None, TransferError("invalid")
        return DealResult("pull ok"), None


class ReadmeValidator:
    """The README's exact shape: Go's method names, and only an `error` returned."""

    def ValidatePush(self, sender, voucher, baseCid, selector):
        return None if voucher.deal == "validpush" else TransferError("invalid")

    def ValidatePull(self, receiver, voucher, baseCid, selector):
        return None if voucher.deal == "validpull" else TransferError("invalid")


def register(peers, validator, revalidator=None) -> None:
    for peer in peers:
        peer.manager.register_voucher_type(DealVoucher, validator)
        peer.manager.register_voucher_result_type(DealResult)
        if revalidator is not None:
            peer.manager.register_revalidator(DealVoucher, revalidator)


@trio_test()
async def test_a_four_argument_validator_accepts_a_pull_and_sees_the_receiver():
    async with memory_net() as net:
        a, b = await net.add("a"), await net.add("b")
        validator = ToyValidator()
        register([a, b], validator)
        data = random_data(20_000)
        cid = b.upload(data)
        chid = await a.manager.open_pull_data_channel(b.peer_id, DealVoucher("validpull"), cid)
        done = await a.wait_status(chid, *DONE)
        assert done.status is S.Completed, done.message
        assert validator.calls == [("pull", a.peer_id, "validpull", str(cid))]
        assert DealResult.from_bytes(done.voucher_results[0].data).note == "pull ok"


@trio_test()
async def test_a_four_argument_validator_accepts_a_push_and_sees_the_sender():
    async with memory_net() as net:
        a, b = await net.add("a"), await net.add("b")
        validator = ToyValidator()
        register([a, b], validator)
        cid = a.upload(random_data(20_000))
        chid = await a.manager.open_push_data_channel(b.peer_id, DealVoucher("validpush"), cid)
        done = await a.wait_status(chid, *DONE)
        assert done.status is S.Completed, done.message
        assert validator.calls == [("push", a.peer_id, "validpush", str(cid))]


@trio_test()
async def test_an_error_from_a_seed_validator_rejects_with_exactly_response_rejected():
    async with memory_net() as net:
        a, b = await net.add("a"), await net.add("b")
        register([a, b], ToyValidator())
        cid = b.upload(random_data(5_000))
        chid = await a.manager.open_pull_data_channel(b.peer_id, DealVoucher("validpush"), cid)
        done = await a.wait_status(chid, *DONE)
        assert done.status is S.Failed
        assert done.message == "response rejected"


@trio_test()
async def test_the_readme_validator_with_go_method_names_and_a_bare_error():
    async with memory_net() as net:
        a, b = await net.add("a"), await net.add("b")
        register([a, b], ReadmeValidator())
        cid = b.upload(random_data(5_000))
        good = await a.manager.open_pull_data_channel(b.peer_id, DealVoucher("validpull"), cid)
        bad = await a.manager.open_pull_data_channel(b.peer_id, DealVoucher("nope"), cid)
        assert (await a.wait_status(good, *DONE)).status is S.Completed
        refused = await a.wait_status(bad, *DONE)
        assert (refused.status, refused.message) == (S.Failed, "response rejected")


@trio_test()
async def test_a_seed_validator_returning_err_pause_accepts_paused():
    class Pausing(ToyValidator):
        def validate_pull(self, receiver, voucher, base_cid, selector):
            return DealResult("pay first"), ErrPause()

    async with memory_net() as net:
        a, b = await net.add("a"), await net.add("b")
        register([a, b], Pausing())
        cid = b.upload(random_data(5_000))
        chid = await a.manager.open_pull_data_channel(b.peer_id, DealVoucher("validpull"), cid)
        paused = await a.wait_for(chid, lambda s: s.status is S.ResponderPaused)
        assert DealResult.from_bytes(paused.last_voucher_result.data).note == "pay first"
        await a.manager.close_data_transfer_channel(chid)


def test_the_form_is_read_once_from_the_signature_at_registration():
    class Later:
        def validate_push(self, is_restart, chid, sender, voucher, base_cid, selector):
            return None

        def validate_pull(self, is_restart, chid, receiver, voucher, base_cid, selector):
            return None

    class Mixed(Later):
        def validate_pull(self, receiver, voucher, base_cid, selector):
            return None

    assert ValidatorAdapter(ToyValidator()).forms == ("seed", "seed")
    assert ValidatorAdapter(Later()).forms == ("later", "later")
    assert ValidatorAdapter(Mixed()).forms == ("later", "seed")

    class Wrong:
        def validate_push(self, voucher, base_cid, selector):
            return None

        validate_pull = validate_push

    with pytest.raises(InvalidArgumentError, match="takes 3 positional arguments"):
        ValidatorAdapter(Wrong())


class SeedPayments:
    """types.go's Revalidator, answering as Go does: pause (with a result) every `interval`
    bytes sent until a voucher comes; `Revalidate` returns (result, ErrResume)."""

    def __init__(self, interval: int) -> None:
        self.interval, self.owed, self.waiting, self.paid = interval, {}, set(), []

    def revalidate(self, chid, voucher):
        self.paid.append(voucher.deal)
        self.owed[chid] = self.owed.get(chid, 0) - self.interval
        self.waiting.discard(chid)
        return DealResult(f"received {voucher.deal}"), ErrResume()

    def on_pull_data_sent(self, chid, additional_bytes_sent):
        self.owed[chid] = self.owed.get(chid, 0) + additional_bytes_sent
        if self.owed[chid] >= self.interval and chid not in self.waiting:
            self.waiting.add(chid)
            return True, DealResult("payment due"), ErrPause()
        return True, None, None

    def on_push_data_received(self, chid, additional_bytes_received):
        return False, None, None

    def on_complete(self, chid):
        return False, None, None


@trio_test(60)
async def test_a_seed_revalidator_pauses_resumes_and_completes():
    async with memory_net() as net:
        a, b = await net.add("a"), await net.add("b")
        payments = SeedPayments(8_192)
        register([a, b], ToyValidator(), payments)
        data = random_data(40_000)
        cid = b.upload(data)
        chid = await a.manager.open_pull_data_channel(b.peer_id, DealVoucher("validpull"), cid)
        sent = 0
        while True:  # each pause (a PauseResponder on the initiator) is paid once
            state = await a.wait_for(chid, lambda s, paid=sent: s.status in DONE or (
                s.status is S.ResponderPaused and a.codes(chid).count(EventCode.PauseResponder) > paid))
            if state.status in DONE:
                break
            sent += 1
            await a.manager.send_voucher(chid, DealVoucher(f"payment-{sent}"))
        assert state.status is S.Completed, state.message
        assert payments.paid == [f"payment-{i}" for i in range(1, sent + 1)] and sent >= 2
        notes = [DealResult.from_bytes(r.data).note for r in state.voucher_results]
        assert "payment due" in notes and "received payment-1" in notes


def test_the_error_values_have_go_s_exact_texts():
    assert [str(e()) for e in (ErrHandlerAlreadySet, ErrHandlerNotSet, ErrIncomplete, ErrRemoved,
                               ErrDisconnected, ErrPause, ErrRejected, ErrResume, ErrUnsupported,
                               ErrChannelNotFound)] == [
        "already set event handler", "event handler has not been set", "incomplete response",
        "channel removed due to inactivity", "other peer appears to have hung up. restart Channel",
        "pause channel", "response rejected", "resume channel", "unsupported", "channel not found"]
    assert EmptyTypeIdentifier == ""


@trio_test()
async def test_start_on_ready_and_stop():
    async with memory_net() as net:
        a = await net.add("a")
        seen: list[object] = []
        manager = type(a.manager)(a.peer_id, a.manager.storage)
        manager.on_ready(lambda err: seen.append(("early", err)))
        async with trio.open_nursery() as nursery:
            await manager.start(net.transport(a), nursery)
            assert manager.running and seen == [("early", None)]
            manager.on_ready(lambda err: seen.append(("late", err)))  # once ready: called at once
            assert seen == [("early", None), ("late", None)]
            with pytest.raises(StateError):
                await manager.start(net.transport(a), nursery)
            await manager.stop()
            assert not manager.running
            await manager.stop()  # a no-op once stopped
        manager.close()
