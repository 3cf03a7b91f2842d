"""The go-data-transfer flows of DIGEST §3.6, replayed as events and messages on both sides.

There is no network here: each side is a `Side` (its channel state driven through the FSM,
cleanup follow-ups included) and every message goes through the CBOR encoder and decoder.
The small functions below do what the manager does for each flow step.
"""

from __future__ import annotations

import pytest
from _transfer_kit import ALICE, BOB, ROOT, DealResult, DealVoucher, Side, block, make_state

from hoard.transfer import (
    ChannelState,
    ErrInvalidTransition,
    ErrPause,
    ErrRejected,
    ErrResume,
    EventCode,
    Status,
    decode_message,
    encode_message,
    fsm,
    response_from_validation,
)
from hoard.transfer import messages as m

E = EventCode
S = Status
BLOCKS = [(block(i), 1000 + i) for i in range(4)]
TOTAL = sum(size for _, size in BLOCKS)


def wire(msg: m.Message) -> m.Message:
    """Send `msg` across: encode, decode."""
    return decode_message(encode_message(msg))


# -- the manager's steps, per §3.6 ---------------------------------------------------------------

def open_channel(*, pull: bool) -> tuple[Side, m.Message]:
    """Open push/pull: create the channel (initiator = ALICE), send New."""
    initiator = Side(make_state(self_peer=ALICE, pull=pull))
    initiator.fire(E.Open)
    return initiator, wire(m.new_request(7, DealVoucher("deal-1"), ROOT, pull=pull))


def receive_new(request: m.Message, outcome: BaseException | None = None,
                result: DealResult | None = None) -> tuple[Side | None, m.Message]:
    """Responder (BOB) receives New: validate; on acceptance create the channel and Accept."""
    assert isinstance(request, m.Request) and request.is_new and request.voucher is not None
    response = response_from_validation(outcome, request.transfer_id, result, is_new=True)
    if not response.accepted:
        return None, wire(response)
    sender, recipient = (BOB, ALICE) if request.pull else (ALICE, BOB)
    assert request.base_cid is not None
    responder = Side(ChannelState.create(self_peer=BOB, transfer_id=request.transfer_id, base_cid=request.base_cid,
                                         selector=request.selector, voucher=request.voucher, initiator=ALICE,
                                         sender=sender, recipient=recipient))
    responder.fire(E.Open)
    if response.voucher_result is not None:
        responder.fire(E.NewVoucherResult, voucher_result=response.voucher_result)
    responder.fire(E.Accept)
    if response.paused:
        responder.fire(E.PauseResponder)
    return responder, wire(response)


def initiator_receives(side: Side, response: m.Message) -> None:
    """Initiator receives a response (impl/events.go OnResponseReceived)."""
    assert isinstance(response, m.Response)
    if response.is_cancel:
        side.fire(E.Cancel)
        return
    if response.is_voucher_result:
        if not response.empty_voucher_result:
            side.fire(E.NewVoucherResult, voucher_result=response.voucher_result)
        if not response.accepted:
            side.fire(E.Error, message=str(ErrRejected()))
            return
        if response.is_new:
            side.fire(E.Accept)
        if response.is_restart:
            side.fire(E.Restart)
    if response.is_complete and response.accepted:
        if not response.paused:
            side.fire(E.ResponderCompletes)
            return
        side.fire(E.ResponderBeginsFinalization)
    side.fire(E.PauseResponder if response.paused else E.ResumeResponder)  # pauseOther / resumeOther


def responder_receives(side: Side, request: m.Message, revalidation: BaseException | None = None,
                       result: DealResult | None = None) -> m.Message | None:
    """Responder receives a request on an existing channel; returns its response, if any."""
    assert isinstance(request, m.Request)
    if request.is_cancel:
        side.fire(E.Cancel)
        return None
    if request.is_update:
        side.fire(E.PauseInitiator if request.is_paused else E.ResumeInitiator)
        return None
    if request.is_restart:
        assert request.voucher == side.state.voucher and request.base_cid == side.state.base_cid
        response = response_from_validation(revalidation, request.transfer_id, result, is_restart=True)
        side.fire(E.Restart)
        if response.paused:
            side.fire(E.PauseResponder)
        return wire(response)
    assert request.type is m.MessageType.Voucher
    side.fire(E.NewVoucher, voucher=request.voucher)
    finalizing = side.status is S.Finalizing
    if result is not None:
        side.fire(E.NewVoucherResult, voucher_result=result)
    if finalizing:
        response = m.complete_response(request.transfer_id, revalidation is None or isinstance(
            revalidation, (ErrPause, ErrResume)), isinstance(revalidation, ErrPause), result)
    else:
        response = response_from_validation(revalidation, request.transfer_id, result)
    if isinstance(revalidation, ErrPause):
        side.fire(E.PauseResponder)
    elif isinstance(revalidation, ErrResume):
        side.fire(E.ResumeResponder)
    return wire(response)


def responder_transport_finished(side: Side, on_complete: BaseException | None = None,
                                 result: DealResult | None = None) -> m.Message:
    """The responder's transport finished OK: send Complete, then Complete or BeginFinalizing."""
    paused = isinstance(on_complete, ErrPause)
    response = m.complete_response(side.state.transfer_id, True, paused, result)
    side.fire(E.BeginFinalizing if paused else E.Complete)
    return wire(response)


def move_blocks(sender: Side, recipient: Side) -> None:
    for cid, size in BLOCKS:
        sender.block(E.DataQueued, cid, size)
        sender.block(E.DataSent, cid, size)
        recipient.block(E.DataReceived, cid, size)


def accepted_pair(*, pull: bool) -> tuple[Side, Side]:
    initiator, request = open_channel(pull=pull)
    responder, response = receive_new(request)
    assert responder is not None
    initiator_receives(initiator, response)
    assert initiator.status is S.Ongoing and responder.status is S.Ongoing
    return initiator, responder


# -- happy paths -----------------------------------------------------------------------------

def test_push_happy_path() -> None:
    alice, bob = accepted_pair(pull=False)
    move_blocks(alice, bob)
    alice.fire(E.FinishTransfer)
    assert alice.status is S.TransferFinished
    initiator_receives(alice, responder_transport_finished(bob))
    assert (alice.status, bob.status) == (S.Completed, S.Completed)
    assert (alice.state.sent, alice.state.queued, bob.state.received) == (TOTAL, TOTAL, TOTAL)
    assert list(bob.state.received_cids) == [cid for cid, _ in BLOCKS]
    assert alice.seen[-3:] == [(E.FinishTransfer, S.TransferFinished), (E.ResponderCompletes, S.Completing),
                               (E.CleanupComplete, S.Completed)]
    assert bob.codes()[:2] == [E.Open, E.Accept]
    assert bob.seen[-2:] == [(E.Complete, S.Completing), (E.CleanupComplete, S.Completed)]
    assert (alice.cleanups, bob.cleanups) == (1, 1)


def test_push_where_the_responder_completes_first() -> None:
    alice, bob = accepted_pair(pull=False)
    move_blocks(alice, bob)
    initiator_receives(alice, responder_transport_finished(bob))
    assert alice.status is S.ResponderCompleted
    alice.fire(E.FinishTransfer)
    assert (alice.status, bob.status) == (S.Completed, S.Completed)


def test_pull_happy_path() -> None:
    alice, bob = accepted_pair(pull=True)
    assert alice.state.is_pull and bob.state.sender == BOB
    move_blocks(bob, alice)
    alice.fire(E.FinishTransfer)
    initiator_receives(alice, responder_transport_finished(bob))
    assert (alice.status, bob.status) == (S.Completed, S.Completed)
    assert (bob.state.sent, bob.state.queued, alice.state.received) == (TOTAL, TOTAL, TOTAL)


def test_validator_result_is_recorded_on_both_sides() -> None:
    alice, request = open_channel(pull=True)
    bob, response = receive_new(request, result=DealResult("welcome"))
    assert bob is not None
    initiator_receives(alice, response)
    assert alice.state.last_voucher_result == bob.state.last_voucher_result
    assert alice.state.last_voucher_result is not None and alice.state.last_voucher_result.data == b"welcome"


# -- rejection ------------------------------------------------------------------------------

def test_rejected_request_fails_the_initiator() -> None:
    alice, request = open_channel(pull=False)
    bob, response = receive_new(request, ValueError("unknown deal"), DealResult("no such deal"))
    assert bob is None  # the responder creates no channel
    assert isinstance(response, m.Response) and not response.accepted
    initiator_receives(alice, response)
    assert alice.status is S.Failed
    assert alice.state.message == "response rejected"
    assert alice.seen[-2:] == [(E.Error, S.Failing), (E.CleanupComplete, S.Failed)]
    assert alice.state.last_voucher_result is not None


# -- pause and resume ----------------------------------------------------------------------------

def test_validator_pause_accepts_paused_and_a_voucher_resumes() -> None:
    alice, request = open_channel(pull=True)
    bob, response = receive_new(request, ErrPause(result=DealResult("pay first")))
    assert bob is not None and bob.status is S.ResponderPaused
    initiator_receives(alice, response)
    assert alice.status is S.ResponderPaused
    answer = responder_receives(bob, wire(m.voucher_request(7, DealVoucher("payment-1"))), ErrResume(),
                                DealResult("paid"))
    assert bob.status is S.Ongoing and len(bob.state.vouchers) == 2
    assert answer is not None
    initiator_receives(alice, answer)
    assert alice.status is S.Ongoing


def test_initiator_pauses_and_resumes() -> None:
    alice, bob = accepted_pair(pull=False)
    alice.fire(E.PauseInitiator)
    responder_receives(bob, wire(m.update_request(7, True)))
    assert (alice.status, bob.status) == (S.InitiatorPaused, S.InitiatorPaused)
    alice.fire(E.ResumeInitiator)
    responder_receives(bob, wire(m.update_request(7, False)))
    assert (alice.status, bob.status) == (S.Ongoing, S.Ongoing)


def test_responder_pauses_and_resumes() -> None:
    alice, bob = accepted_pair(pull=True)
    bob.fire(E.PauseResponder)
    initiator_receives(alice, wire(m.update_response(7, True)))
    assert (alice.status, bob.status) == (S.ResponderPaused, S.ResponderPaused)
    bob.fire(E.ResumeResponder)
    initiator_receives(alice, wire(m.update_response(7, False)))
    assert (alice.status, bob.status) == (S.Ongoing, S.Ongoing)


def test_both_pause_and_both_must_resume() -> None:
    alice, bob = accepted_pair(pull=False)
    alice.fire(E.PauseInitiator)
    responder_receives(bob, wire(m.update_request(7, True)))
    bob.fire(E.PauseResponder)
    initiator_receives(alice, wire(m.update_response(7, True)))
    assert (alice.status, bob.status) == (S.BothPaused, S.BothPaused)
    alice.fire(E.ResumeInitiator)
    responder_receives(bob, wire(m.update_request(7, False)))
    assert (alice.status, bob.status) == (S.ResponderPaused, S.ResponderPaused)
    bob.fire(E.ResumeResponder)
    initiator_receives(alice, wire(m.update_response(7, False)))
    assert (alice.status, bob.status) == (S.Ongoing, S.Ongoing)


def test_pause_is_only_recorded_once_the_transfer_finished() -> None:
    alice, _ = accepted_pair(pull=False)
    alice.fire(E.FinishTransfer)
    alice.fire(E.PauseInitiator)
    assert alice.status is S.TransferFinished


# -- finalization -------------------------------------------------------------------------------

@pytest.mark.parametrize("initiator_finishes_first", [True, False])
def test_finalization_waits_for_a_final_voucher(initiator_finishes_first: bool) -> None:
    alice, bob = accepted_pair(pull=True)
    move_blocks(bob, alice)
    if initiator_finishes_first:
        alice.fire(E.FinishTransfer)
    complete = responder_transport_finished(bob, ErrPause(), DealResult("settle up"))
    assert bob.status is S.Finalizing
    initiator_receives(alice, complete)
    if initiator_finishes_first:
        assert alice.status is S.ResponderFinalizingTransferFinished
    else:
        assert alice.status is S.ResponderFinalizing
        alice.fire(E.FinishTransfer)
        assert alice.status is S.ResponderFinalizingTransferFinished
    answer = responder_receives(bob, wire(m.voucher_request(7, DealVoucher("final payment"))), ErrResume())
    assert isinstance(answer, m.Response) and answer.is_complete and answer.accepted and not answer.paused
    assert bob.status is S.Completed
    initiator_receives(alice, answer)
    assert alice.status is S.Completed


# -- cancel, errors, restart -------------------------------------------------------------------------

def test_initiator_cancels() -> None:
    alice, bob = accepted_pair(pull=False)
    move_blocks(alice, bob)
    alice.fire(E.Cancel)
    responder_receives(bob, wire(m.cancel_request(7)))
    assert (alice.status, bob.status) == (S.Cancelled, S.Cancelled)
    assert alice.seen[-2:] == [(E.Cancel, S.Cancelling), (E.CleanupComplete, S.Cancelled)]


def test_responder_cancels() -> None:
    alice, bob = accepted_pair(pull=True)
    bob.fire(E.Cancel)
    initiator_receives(alice, wire(m.cancel_response(7)))
    assert (alice.status, bob.status) == (S.Cancelled, S.Cancelled)


def test_cancel_while_paused() -> None:
    alice, _bob = accepted_pair(pull=False)
    alice.fire(E.PauseInitiator)
    alice.fire(E.Cancel)
    assert alice.status is S.Cancelled


def test_transport_error_fails_the_channel() -> None:
    _alice, bob = accepted_pair(pull=False)
    bob.fire(E.Error, message="data transfer channel failed to transfer data: stream reset")
    assert bob.status is S.Failed and "stream reset" in bob.state.message


def test_nothing_happens_after_the_end() -> None:
    alice, _bob = accepted_pair(pull=False)
    alice.fire(E.Cancel)
    with pytest.raises(ErrInvalidTransition):
        alice.fire(E.Cancel)
    assert alice.status is S.Cancelled
    assert fsm.apply_block(alice.state, E.DataSent, block(9), 10) == (alice.state, [])


def test_push_restart_after_disconnect_resends_without_double_counting() -> None:
    alice, bob = accepted_pair(pull=False)
    move_blocks(alice, bob)
    alice.fire(E.Disconnected, message="other peer appears to have hung up. restart Channel")
    assert alice.status is S.Ongoing and alice.state.message.startswith("other peer")
    answer = responder_receives(bob, wire(m.new_request(7, DealVoucher("deal-1"), ROOT, restart=True)))
    assert isinstance(answer, m.Response) and answer.is_restart and answer.accepted
    initiator_receives(alice, answer)
    assert alice.state.message == "" and alice.codes()[-2:] == [E.Restart, E.ResumeResponder]
    move_blocks(alice, bob)  # the same blocks again, as after a restart
    assert (alice.state.sent, bob.state.received) == (TOTAL, TOTAL)
    alice.fire(E.FinishTransfer)
    initiator_receives(alice, responder_transport_finished(bob))
    assert (alice.status, bob.status) == (S.Completed, S.Completed)


def test_restart_finishes_an_interrupted_cleanup() -> None:
    # The node stopped after Cancel was recorded but before CleanupComplete: the channel was
    # persisted in Cancelling. Restarting it fires CompleteCleanupOnRestart, which re-runs cleanup.
    alice, _ = accepted_pair(pull=False)
    persisted = fsm.apply(alice.state, E.Cancel)
    reloaded = Side(ChannelState.from_dict(persisted.to_dict()))
    assert reloaded.status is S.Cancelling
    reloaded.fire(E.CompleteCleanupOnRestart)
    assert reloaded.status is S.Cancelled and reloaded.cleanups == 1
