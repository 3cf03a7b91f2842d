"""The channel FSM, tested with events only: every rule of DIGEST §3.4, one case each."""

from __future__ import annotations

import itertools

import pytest
from _transfer_kit import ROOT, DealResult, DealVoucher, block, make_state
from hypothesis import given, settings
from hypothesis import strategies as st

from hoard.errors import InvalidArgumentError, TransferError
from hoard.transfer import EncodedVoucher, EncodedVoucherResult, ErrInvalidTransition, EventCode, Status, fsm

S = Status
E = EventCode
REJECT = "reject"

TRANSFERRING = [S.Requested, S.Ongoing, S.InitiatorPaused, S.ResponderPaused, S.BothPaused,
                S.ResponderCompleted, S.ResponderFinalizing]
FINALS = [S.Completed, S.Failed, S.Cancelled]

# (event, source status, expected status or REJECT) — each bullet of DIGEST §3.4, written from
# the spec text. "any" rules are exercised from a source that has no specific rule.
RULES = [
    (E.Open, S.Ongoing, S.Requested),
    (E.Open, S.Failing, S.Requested),
    (E.Accept, S.Requested, S.Ongoing),
    (E.Accept, S.Ongoing, REJECT),
    (E.Accept, S.TransferFinished, REJECT),
    (E.Accept, S.ResponderPaused, REJECT),
    (E.TransferRequestQueued, S.Ongoing, S.Ongoing),
    (E.Restart, S.InitiatorPaused, S.InitiatorPaused),
    (E.Restart, S.Failing, S.Failing),
    (E.Cancel, S.Ongoing, S.Cancelling),
    (E.Cancel, S.Finalizing, S.Cancelling),
    (E.Error, S.Requested, S.Failing),
    (E.Error, S.Cancelling, S.Failing),
    (E.DataReceived, S.Ongoing, S.Ongoing),
    (E.DataReceived, S.Completing, S.Completing),
    (E.Disconnected, S.Ongoing, S.Ongoing),
    (E.SendDataError, S.Ongoing, S.Ongoing),
    (E.ReceiveDataError, S.ResponderPaused, S.ResponderPaused),
    (E.RequestCancelled, S.Ongoing, S.Ongoing),
    (E.NewVoucher, S.Finalizing, S.Finalizing),
    (E.NewVoucherResult, S.Ongoing, S.Ongoing),
    *[(E.DataReceivedProgress, s, s) for s in TRANSFERRING],
    (E.DataReceivedProgress, S.TransferFinished, REJECT),
    (E.DataReceivedProgress, S.Finalizing, REJECT),
    *[(E.DataSentProgress, s, s) for s in TRANSFERRING],
    (E.DataSentProgress, S.TransferFinished, REJECT),
    *[(E.DataQueuedProgress, s, s) for s in TRANSFERRING],
    (E.DataQueuedProgress, S.Failing, REJECT),
    *[(E.DataSent, s, s) for s in [*TRANSFERRING, S.TransferFinished]],
    (E.DataSent, S.Completing, REJECT),
    *[(E.DataQueued, s, s) for s in [*TRANSFERRING, S.TransferFinished]],
    (E.DataQueued, S.ResponderFinalizingTransferFinished, REJECT),
    (E.PauseInitiator, S.Requested, S.InitiatorPaused),
    (E.PauseInitiator, S.Ongoing, S.InitiatorPaused),
    (E.PauseInitiator, S.ResponderPaused, S.BothPaused),
    (E.PauseInitiator, S.TransferFinished, S.TransferFinished),
    (E.PauseInitiator, S.InitiatorPaused, S.InitiatorPaused),
    (E.PauseResponder, S.Requested, S.ResponderPaused),
    (E.PauseResponder, S.Ongoing, S.ResponderPaused),
    (E.PauseResponder, S.InitiatorPaused, S.BothPaused),
    (E.PauseResponder, S.Finalizing, S.Finalizing),
    (E.ResumeInitiator, S.InitiatorPaused, S.Ongoing),
    (E.ResumeInitiator, S.BothPaused, S.ResponderPaused),
    (E.ResumeInitiator, S.ResponderPaused, S.ResponderPaused),
    (E.ResumeInitiator, S.Ongoing, S.Ongoing),
    (E.ResumeResponder, S.ResponderPaused, S.Ongoing),
    (E.ResumeResponder, S.BothPaused, S.InitiatorPaused),
    (E.ResumeResponder, S.Finalizing, S.Completing),
    (E.ResumeResponder, S.InitiatorPaused, S.InitiatorPaused),
    (E.FinishTransfer, S.Ongoing, S.TransferFinished),
    (E.FinishTransfer, S.Requested, S.TransferFinished),
    (E.FinishTransfer, S.Failing, S.Failing),
    (E.FinishTransfer, S.Cancelling, S.Cancelling),
    (E.FinishTransfer, S.ResponderCompleted, S.Completing),
    (E.FinishTransfer, S.ResponderFinalizing, S.ResponderFinalizingTransferFinished),
    (E.ResponderBeginsFinalization, S.Ongoing, S.ResponderFinalizing),
    (E.ResponderBeginsFinalization, S.ResponderFinalizingTransferFinished, S.ResponderFinalizing),
    (E.ResponderBeginsFinalization, S.Failing, S.Failing),
    (E.ResponderBeginsFinalization, S.Cancelling, S.Cancelling),
    (E.ResponderBeginsFinalization, S.TransferFinished, S.ResponderFinalizingTransferFinished),
    (E.ResponderCompletes, S.Ongoing, S.ResponderCompleted),
    (E.ResponderCompletes, S.Failing, S.Failing),
    (E.ResponderCompletes, S.Cancelling, S.Cancelling),
    (E.ResponderCompletes, S.ResponderPaused, S.ResponderFinalizing),
    (E.ResponderCompletes, S.TransferFinished, S.Completing),
    (E.ResponderCompletes, S.ResponderFinalizing, S.ResponderCompleted),
    (E.ResponderCompletes, S.ResponderFinalizingTransferFinished, S.Completing),
    (E.BeginFinalizing, S.Ongoing, S.Finalizing),
    (E.Complete, S.Ongoing, S.Completing),
    (E.Complete, S.Finalizing, S.Completing),
    (E.CleanupComplete, S.Cancelling, S.Cancelled),
    (E.CleanupComplete, S.Failing, S.Failed),
    (E.CleanupComplete, S.Completing, S.Completed),
    (E.CleanupComplete, S.Ongoing, REJECT),
    (E.CleanupComplete, S.Requested, REJECT),
    (E.CleanupComplete, S.Finalizing, REJECT),
    (E.CompleteCleanupOnRestart, S.Cancelling, S.Cancelling),
    (E.CompleteCleanupOnRestart, S.Ongoing, S.Ongoing),
    (E.RequestTimedOut, S.Ongoing, REJECT),  # deprecated in v1.7.8: no rule
]

ARGS = {"voucher": DealVoucher("deal-2"), "voucher_result": DealResult("ok")}


def _id(case: tuple[EventCode, Status, object]) -> str:
    event, source, expected = case
    return f"{event.name}-from-{source.name}->{getattr(expected, 'name', expected)}"


@pytest.mark.parametrize("case", RULES, ids=_id)
def test_rule(case: tuple[EventCode, Status, object]) -> None:
    event, source, expected = case
    state = make_state(source)
    if expected == REJECT:
        with pytest.raises(ErrInvalidTransition, match="^Invalid transition$"):
            fsm.apply(state, event, **ARGS)
        assert state == make_state(source)
    else:
        assert fsm.apply(state, event, **ARGS).status == expected


# -- the whole matrix against an independent model of §3.4 -----------------------------------

def model(event: EventCode, s: Status) -> Status | str:
    """Where `event` takes a channel in `s`, read off DIGEST §3.4 bullet by bullet."""
    if s in FINALS:
        return REJECT
    if event == E.Open:
        return S.Requested
    if event == E.Accept:
        return S.Ongoing if s == S.Requested else REJECT
    if event in (E.TransferRequestQueued, E.Restart, E.DataReceived, E.Disconnected, E.SendDataError,
                 E.ReceiveDataError, E.RequestCancelled, E.NewVoucher, E.NewVoucherResult,
                 E.CompleteCleanupOnRestart):
        return s
    if event == E.Cancel:
        return S.Cancelling
    if event == E.Error:
        return S.Failing
    if event in (E.DataReceivedProgress, E.DataSentProgress, E.DataQueuedProgress):
        return s if s in TRANSFERRING else REJECT
    if event in (E.DataSent, E.DataQueued):
        return s if s in TRANSFERRING or s == S.TransferFinished else REJECT
    if event == E.PauseInitiator:
        return {S.Requested: S.InitiatorPaused, S.Ongoing: S.InitiatorPaused, S.ResponderPaused: S.BothPaused}.get(s, s)
    if event == E.PauseResponder:
        return {S.Requested: S.ResponderPaused, S.Ongoing: S.ResponderPaused, S.InitiatorPaused: S.BothPaused}.get(s, s)
    if event == E.ResumeInitiator:
        return {S.InitiatorPaused: S.Ongoing, S.BothPaused: S.ResponderPaused}.get(s, s)
    if event == E.ResumeResponder:
        return {S.ResponderPaused: S.Ongoing, S.BothPaused: S.InitiatorPaused, S.Finalizing: S.Completing}.get(s, s)
    if event == E.FinishTransfer:
        if s in (S.Failing, S.Cancelling):
            return s
        return {S.ResponderCompleted: S.Completing,
                S.ResponderFinalizing: S.ResponderFinalizingTransferFinished}.get(s, S.TransferFinished)
    if event == E.ResponderBeginsFinalization:
        if s in (S.Failing, S.Cancelling):
            return s
        return S.ResponderFinalizingTransferFinished if s == S.TransferFinished else S.ResponderFinalizing
    if event == E.ResponderCompletes:
        if s in (S.Failing, S.Cancelling):
            return s
        return {S.ResponderPaused: S.ResponderFinalizing, S.TransferFinished: S.Completing,
                S.ResponderFinalizing: S.ResponderCompleted,
                S.ResponderFinalizingTransferFinished: S.Completing}.get(s, S.ResponderCompleted)
    if event == E.BeginFinalizing:
        return S.Finalizing
    if event == E.Complete:
        return S.Completing
    if event == E.CleanupComplete:
        return {S.Cancelling: S.Cancelled, S.Failing: S.Failed, S.Completing: S.Completed}.get(s, REJECT)
    return REJECT  # RequestTimedOut


def just_records(event: EventCode, s: Status) -> bool:
    """Go's ToJustRecord rules: the state is kept and its entry action does not run."""
    if event in (E.TransferRequestQueued, E.Restart):
        return True
    if event == E.PauseInitiator:
        return s not in (S.Requested, S.Ongoing, S.ResponderPaused)
    if event == E.PauseResponder:
        return s not in (S.Requested, S.Ongoing, S.InitiatorPaused)
    if event == E.ResumeInitiator:
        return s not in (S.InitiatorPaused, S.BothPaused)
    if event == E.ResumeResponder:
        return s not in (S.ResponderPaused, S.BothPaused, S.Finalizing)
    if event in (E.FinishTransfer, E.ResponderBeginsFinalization, E.ResponderCompletes):
        return s in (S.Failing, S.Cancelling)
    return False


MATRIX = list(itertools.product(EventCode, Status))


@pytest.mark.parametrize(("event", "source"), MATRIX, ids=[f"{e.name}-{s.name}" for e, s in MATRIX])
def test_matrix_matches_the_spec(event: EventCode, source: Status) -> None:
    expected = model(event, source)
    state = make_state(source)
    if expected == REJECT:
        with pytest.raises(ErrInvalidTransition):
            fsm.apply(state, event, **ARGS)
        with pytest.raises(ErrInvalidTransition):
            fsm.follow_up(source, event)
        assert state.status == source
        return
    after = fsm.apply(state, event, **ARGS)
    assert after.status == expected
    cleanup_due = expected in (S.Cancelling, S.Failing, S.Completing) and not just_records(event, source)
    assert fsm.follow_up(source, event) == (E.CleanupComplete if cleanup_due else None)


def test_every_event_code_has_a_rule_except_the_deprecated_one() -> None:
    assert set(EventCode) - set(fsm.TRANSITIONS) == {E.RequestTimedOut}


def test_specific_rule_wins_over_any_rule() -> None:
    assert fsm.rule_for(S.ResponderCompleted, E.FinishTransfer).target == S.Completing
    assert fsm.rule_for(S.Ongoing, E.FinishTransfer).source is fsm.ANY


@pytest.mark.parametrize("final", FINALS)
@pytest.mark.parametrize("event", list(EventCode))
def test_final_states_accept_nothing(final: Status, event: EventCode) -> None:
    with pytest.raises(ErrInvalidTransition) as info:
        fsm.apply(make_state(final), event, **ARGS)
    assert info.value.status is final and info.value.event is event


def test_invalid_transition_is_a_transfer_error_naming_event_and_state() -> None:
    with pytest.raises(TransferError) as info:
        fsm.apply(make_state(S.Ongoing), E.Accept)
    assert str(info.value) == "Invalid transition"  # go-statemachine's text
    assert info.value.status == S.Ongoing and info.value.event == E.Accept
    assert info.value.to_dict()["status"] == "Ongoing" and info.value.to_dict()["event"] == "Accept"


def test_unknown_event_code_is_invalid_argument() -> None:
    with pytest.raises(InvalidArgumentError, match="not an event code"):
        fsm.apply(make_state(), 99)


def test_apply_accepts_plain_ints() -> None:
    assert fsm.apply(make_state(S.Requested), 1).status == S.Ongoing


# -- the cleanup follow-up -------------------------------------------------------------------

@pytest.mark.parametrize(("source", "event"), [
    (S.Ongoing, E.Cancel),
    (S.Ongoing, E.Error),
    (S.Ongoing, E.Complete),
    (S.Finalizing, E.ResumeResponder),
    (S.ResponderCompleted, E.FinishTransfer),
    (S.TransferFinished, E.ResponderCompletes),
    (S.ResponderFinalizingTransferFinished, E.ResponderCompletes),
    (S.Cancelling, E.CompleteCleanupOnRestart),
    (S.Failing, E.CompleteCleanupOnRestart),
    (S.Completing, E.CompleteCleanupOnRestart),
    (S.Cancelling, E.Cancel),
])
def test_entering_a_cleanup_state_makes_cleanup_complete_due(source: Status, event: EventCode) -> None:
    assert fsm.follow_up(source, event) is E.CleanupComplete


@pytest.mark.parametrize(("source", "event"), [
    (S.Requested, E.Accept),
    (S.Cancelling, E.FinishTransfer),  # just recorded
    (S.Failing, E.ResponderCompletes),  # just recorded
    (S.Cancelling, E.PauseInitiator),  # just recorded
    (S.Completing, E.Restart),  # just recorded
    (S.Cancelling, E.CleanupComplete),  # the follow-up itself leads to a final state
    (S.Ongoing, E.CompleteCleanupOnRestart),
])
def test_no_follow_up_outside_cleanup_entry(source: Status, event: EventCode) -> None:
    assert fsm.follow_up(source, event) is None


def test_cleanup_states_lead_to_their_final_states() -> None:
    for cleaning, final in [(S.Cancelling, S.Cancelled), (S.Failing, S.Failed), (S.Completing, S.Completed)]:
        assert fsm.is_cleaning_up(cleaning) and not fsm.is_terminated(cleaning)
        assert fsm.apply(make_state(cleaning), E.CleanupComplete).status == final
        assert fsm.is_terminated(final)


# -- what events do besides moving the status --------------------------------------------------

def test_apply_never_modifies_its_input() -> None:
    state = make_state(S.Ongoing)
    snapshot = state.to_dict()
    fsm.apply(state, E.DataReceivedProgress, delta=10)
    fsm.apply(state, E.DataReceived, cid=block(1))
    fsm.apply(state, E.NewVoucher, voucher=DealVoucher("x"))
    fsm.apply(state, E.Error, message="boom")
    assert state.to_dict() == snapshot


def test_rejected_event_leaves_state_unchanged() -> None:
    state = fsm.apply(make_state(S.Ongoing), E.DataReceivedProgress, delta=5)
    snapshot = state.to_dict()
    with pytest.raises(ErrInvalidTransition):
        fsm.apply(state, E.CleanupComplete)
    assert state.to_dict() == snapshot


@pytest.mark.parametrize("event", [E.Error, E.Disconnected, E.SendDataError, E.ReceiveDataError,
                                   E.RequestCancelled])
def test_error_events_set_the_message(event: EventCode) -> None:
    assert fsm.apply(make_state(S.Ongoing), event, message="peer went away").message == "peer went away"


@pytest.mark.parametrize("event", [E.Restart, E.TransferRequestQueued])
def test_restart_and_queued_clear_the_message(event: EventCode) -> None:
    state = fsm.apply(make_state(S.Ongoing), E.Disconnected, message="gone")
    assert fsm.apply(state, event).message == ""


def test_other_events_keep_the_message() -> None:
    state = fsm.apply(make_state(S.Ongoing), E.Disconnected, message="gone")
    assert fsm.apply(state, E.PauseInitiator).message == "gone"


@pytest.mark.parametrize(("event", "counter"), [
    (E.DataReceivedProgress, "received"), (E.DataSentProgress, "sent"), (E.DataQueuedProgress, "queued"),
])
def test_progress_events_add_their_delta(event: EventCode, counter: str) -> None:
    state = fsm.apply(fsm.apply(make_state(S.Ongoing), event, delta=100), event, delta=23)
    assert getattr(state, counter) == 123
    assert sum(getattr(state, c) for c in ("received", "sent", "queued")) == 123


def test_negative_delta_is_rejected() -> None:
    with pytest.raises(InvalidArgumentError):
        fsm.apply(make_state(S.Ongoing), E.DataSentProgress, delta=-1)


def test_new_voucher_and_result_are_appended_encoded() -> None:
    state = fsm.apply(make_state(S.Ongoing), E.NewVoucher, voucher=DealVoucher("deal-2"))
    state = fsm.apply(state, E.NewVoucherResult, voucher_result=DealResult("paid"))
    assert state.vouchers == (EncodedVoucher("test/deal-voucher", b"deal-1"),
                              EncodedVoucher("test/deal-voucher", b"deal-2"))
    assert state.last_voucher == EncodedVoucher("test/deal-voucher", b"deal-2")
    assert state.voucher == EncodedVoucher("test/deal-voucher", b"deal-1")
    assert state.last_voucher_result == EncodedVoucherResult("test/deal-result", b"paid")


def test_new_voucher_without_voucher_is_invalid() -> None:
    with pytest.raises(InvalidArgumentError):
        fsm.apply(make_state(S.Ongoing), E.NewVoucher)


# -- progress de-duplication (fireProgressEvent) ---------------------------------------------

@pytest.mark.parametrize(("plain", "progress", "counter", "seen"), [
    (E.DataReceived, E.DataReceivedProgress, "received", "received_cids"),
    (E.DataSent, E.DataSentProgress, "sent", "sent_cids"),
    (E.DataQueued, E.DataQueuedProgress, "queued", "queued_cids"),
])
def test_progress_fires_once_per_cid_and_before_the_plain_event(plain: EventCode, progress: EventCode,
                                                                counter: str, seen: str) -> None:
    state = make_state(S.Ongoing)
    assert fsm.block_events(state, plain, block(1), 50) == [
        fsm.PendingEvent(progress, delta=50), fsm.PendingEvent(plain, cid=block(1))]
    state, fired = fsm.apply_block(state, plain, block(1), 50)
    assert fired == [progress, plain]
    assert fsm.block_events(state, plain, block(1), 50) == [fsm.PendingEvent(plain, cid=block(1))]
    state, fired = fsm.apply_block(state, plain, block(1), 50)
    assert fired == [plain]
    state, fired = fsm.apply_block(state, plain, block(2), 7)
    assert fired == [progress, plain]
    assert getattr(state, counter) == 57
    assert list(getattr(state, seen)) == [block(1), block(2)]


def test_dedup_is_per_event() -> None:
    state = make_state(S.Ongoing)
    state, _ = fsm.apply_block(state, E.DataQueued, block(1), 10)
    state, fired = fsm.apply_block(state, E.DataSent, block(1), 10)
    assert fired == [E.DataSentProgress, E.DataSent]
    assert (state.queued, state.sent) == (10, 10)


def test_sent_after_transfer_finished_records_without_progress() -> None:
    state, fired = fsm.apply_block(make_state(S.TransferFinished), E.DataSent, block(1), 10)
    assert fired == [E.DataSent]
    assert state.sent == 0 and block(1) in state.sent_cids


def test_block_in_final_state_fires_nothing() -> None:
    state = make_state(S.Completed)
    assert fsm.apply_block(state, E.DataReceived, block(1), 10) == (state, [])


def test_block_events_only_for_block_events() -> None:
    with pytest.raises(InvalidArgumentError, match="not a block event"):
        fsm.block_events(make_state(S.Ongoing), E.Accept, block(1), 1)


# -- random event sequences -------------------------------------------------------------------

@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(list(EventCode)), st.integers(0, 3), st.integers(0, 1000)),
                max_size=40))
def test_random_event_sequences_keep_the_invariants(steps: list[tuple[EventCode, int, int]]) -> None:
    state = make_state(S.Requested)
    for event, block_no, size in steps:
        before = state.to_dict()
        if event in (E.DataReceived, E.DataSent, E.DataQueued):
            state, _ = fsm.apply_block(state, event, block(block_no), size)
            continue
        try:
            after = fsm.apply(state, event, delta=size, cid=block(block_no), message="m", **ARGS)
        except ErrInvalidTransition:
            assert state.to_dict() == before
            assert model(event, state.status) == REJECT
            continue
        assert state.to_dict() == before, "apply modified its input"
        assert after.status == model(event, state.status)
        for counter in ("sent", "received", "queued"):
            assert getattr(after, counter) >= getattr(state, counter)
        state = after
    assert state.base_cid == ROOT
