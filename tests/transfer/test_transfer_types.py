"""Statuses, event codes, channel ids, channel state, errors, vouchers and registries."""

from __future__ import annotations

import json

import pytest
from _transfer_kit import ALICE, BOB, ROOT, DealResult, DealVoucher, block, make_state

from hoard import transfer
from hoard.errors import AlreadyExistsError, InvalidArgumentError, NotFoundError, TransferError
from hoard.ids.peer import Identity
from hoard.transfer import (
    BlockRange,
    ChannelID,
    ChannelState,
    CidSet,
    EncodedVoucher,
    EncodedVoucherResult,
    ErrChannelNotFound,
    ErrPause,
    ErrRejected,
    ErrResume,
    ErrUnsupported,
    Event,
    EventCode,
    RequestValidator,
    Revalidator,
    Status,
    TransferIDCounter,
    TypeRegistry,
    Voucher,
    VoucherResult,
    cidset,
    errors,
    fsm,
    selector,
    types,
    vouchers,
)
from hoard.transfer import messages as m

GO_STATUSES = ["Requested", "Ongoing", "TransferFinished", "ResponderCompleted", "Finalizing", "Completing", "Completed", "Failing", "Failed", "Cancelling", "Cancelled", "InitiatorPaused", "ResponderPaused", "BothPaused", "ResponderFinalizing", "ResponderFinalizingTransferFinished", "ChannelNotFoundError"]

GO_EVENTS = ["Open", "Accept", "Restart", "DataReceived", "DataSent", "Cancel", "Error", "CleanupComplete", "NewVoucher", "NewVoucherResult", "PauseInitiator", "ResumeInitiator", "PauseResponder", "ResumeResponder", "FinishTransfer", "ResponderCompletes", "ResponderBeginsFinalization", "BeginFinalizing", "Disconnected", "Complete", "CompleteCleanupOnRestart", "DataQueued", "DataQueuedProgress", "DataSentProgress", "DataReceivedProgress", "RequestTimedOut", "SendDataError", "ReceiveDataError", "TransferRequestQueued", "RequestCancelled"]


def test_statuses_are_numbered_in_go_iota_order() -> None:
    assert [(s.name, s.value) for s in Status] == [(name, i) for i, name in enumerate(GO_STATUSES)]
    assert Status.ChannelNotFoundError == 16


def test_event_codes_are_numbered_in_go_iota_order() -> None:
    assert [(e.name, e.value) for e in EventCode] == [(name, i) for i, name in enumerate(GO_EVENTS)]
    assert EventCode.RequestCancelled == 29


@pytest.mark.parametrize("module", [transfer, types, fsm, m, cidset, errors, selector, vouchers],
                         ids=lambda mod: mod.__name__)
def test_all_is_sorted_and_complete(module: object) -> None:
    names = module.__all__  # type: ignore[attr-defined]
    assert list(names) == sorted(names)
    for name in names:
        assert hasattr(module, name), name


# -- ChannelID ---------------------------------------------------------------------------------

def test_channel_id_string_is_init_resp_id() -> None:
    assert str(ChannelID(ALICE, BOB, 42)) == f"{ALICE}-{BOB}-42"


def test_channel_id_accepts_peer_ids_and_text_alike() -> None:
    a, b = Identity.generate().peer_id, Identity.generate().peer_id
    assert ChannelID(a, b, 1) == ChannelID(str(a), str(b), 1)
    assert hash(ChannelID(a, b, 1)) == hash(ChannelID(str(a), str(b), 1))
    assert ChannelID(a, b, 1).other_party(a) == str(b)
    assert ChannelID(a, b, 1).other_party(str(b)) == str(a)


def test_channel_id_is_frozen() -> None:
    chid = ChannelID(ALICE, BOB, 1)
    with pytest.raises(AttributeError):
        chid.id = 2  # type: ignore[misc]


@pytest.mark.parametrize("bad", [-1, 2**64, "7", 1.0, True])
def test_channel_id_transfer_id_is_uint64(bad: object) -> None:
    with pytest.raises(InvalidArgumentError):
        ChannelID(ALICE, BOB, bad)  # type: ignore[arg-type]


def test_channel_id_dict_round_trip() -> None:
    chid = ChannelID(ALICE, BOB, 2**64 - 1)
    assert ChannelID.from_dict(json.loads(json.dumps(chid.to_dict()))) == chid
    with pytest.raises(InvalidArgumentError):
        ChannelID.from_dict({"initiator": ALICE})


# -- Event, counter ------------------------------------------------------------------------------

def test_event_for_state_carries_the_channel_message() -> None:
    state = fsm.apply(make_state(Status.Ongoing), EventCode.Error, message="boom")
    event = Event.for_state(EventCode.Error, state)
    assert (event.code, event.message) == (EventCode.Error, "boom")
    assert event.timestamp.tzinfo is not None


def test_transfer_ids_start_at_the_clock_and_increase() -> None:
    counter = TransferIDCounter(start=1000)
    assert [counter.next() for _ in range(3)] == [1001, 1002, 1003]
    live = TransferIDCounter()
    assert live.next() < live.next()


# -- ChannelState ----------------------------------------------------------------------------

def test_create_push_and_pull_roles() -> None:
    push = make_state(self_peer=ALICE)
    assert (push.initiator, push.responder, push.sender, push.recipient) == (ALICE, BOB, ALICE, BOB)
    assert not push.is_pull and push.other_peer == BOB
    assert push.channel_id == ChannelID(ALICE, BOB, 7)
    pull = make_state(self_peer=BOB, pull=True)
    assert (pull.initiator, pull.responder, pull.sender, pull.recipient) == (ALICE, BOB, BOB, ALICE)
    assert pull.is_pull and pull.other_peer == ALICE
    assert pull.status is Status.Requested and pull.vouchers == (EncodedVoucher("test/deal-voucher", b"deal-1"),)


def test_create_rejects_an_initiator_outside_the_transfer() -> None:
    with pytest.raises(InvalidArgumentError):
        ChannelState.create(self_peer=ALICE, transfer_id=1, base_cid=ROOT, selector=None,
                            voucher=DealVoucher("d"), initiator="carol", sender=ALICE, recipient=BOB)


def test_state_to_dict_is_json_and_round_trips() -> None:
    state = make_state(Status.Ongoing).evolve(selector=BlockRange(2, 9), total_size=1 << 40)
    state = fsm.apply(state, EventCode.NewVoucherResult, voucher_result=DealResult("ok"))
    for i in range(3):
        state, _ = fsm.apply_block(state, EventCode.DataReceived, block(i), 100)
        state, _ = fsm.apply_block(state, EventCode.DataSent, block(i + 10), 100)
        state, _ = fsm.apply_block(state, EventCode.DataQueued, block(i + 20), 100)
    state = fsm.apply(state, EventCode.Disconnected, message="line noise")
    text = json.dumps(state.to_dict())
    again = ChannelState.from_dict(json.loads(text))
    assert again == state
    assert again.to_dict() == state.to_dict()
    assert list(again.received_cids) == [block(0), block(1), block(2)]
    assert state.to_dict()["status"] == Status.Ongoing.value
    assert state.to_dict()["selector"] == {"range": [2, 9]}


def test_state_from_dict_reads_cids_in_any_text_form() -> None:
    data = make_state().to_dict()
    data["received_cids"] = [str(block(1)), "f" + block(2).binary.hex()]
    assert list(ChannelState.from_dict(data).received_cids) == [block(1), block(2)]


@pytest.mark.parametrize(("key", "value"), [
    ("status", 99), ("status", "Ongoing"), ("sent", -1), ("base_cid", "not-a-cid"), ("vouchers", "x"),
    ("vouchers", [{"type": "t", "data": "!!!"}]), ("received_cids", ["junk"]), ("selector", {"range": [3, 1]}),
    ("initiator", 5),
])
def test_state_from_dict_rejects_junk(key: str, value: object) -> None:
    data = make_state().to_dict()
    data[key] = value
    with pytest.raises(InvalidArgumentError):
        ChannelState.from_dict(data)


def test_state_from_dict_rejects_missing_fields_and_non_objects() -> None:
    data = make_state().to_dict()
    del data["queued"]
    with pytest.raises(InvalidArgumentError, match="queued"):
        ChannelState.from_dict(data)
    with pytest.raises(InvalidArgumentError):
        ChannelState.from_dict([1, 2])


# -- CidSet --------------------------------------------------------------------------------

def test_cid_set_versions_are_independent_values() -> None:
    empty = CidSet()
    one = empty.with_cid(block(1))
    two = one.with_cid(block(2))
    fork = one.with_cid(block(3))  # adding to an older version must not disturb `two`
    assert list(empty) == [] and list(one) == [block(1)]
    assert list(two) == [block(1), block(2)] and list(fork) == [block(1), block(3)]
    assert block(3) not in two and block(2) not in fork
    assert two.with_cid(block(1)) is two
    assert CidSet([block(1), block(1), block(2)]) == two
    assert len(two) == 2


# -- errors ----------------------------------------------------------------------------------

@pytest.mark.parametrize(("cls", "message"), [
    (ErrPause, "pause channel"), (ErrResume, "resume channel"), (ErrRejected, "response rejected"),
    (ErrUnsupported, "unsupported"), (ErrChannelNotFound, "channel not found"),
])
def test_errors_carry_go_messages_and_are_transfer_errors(cls: type[Exception], message: str) -> None:
    assert str(cls()) == message
    assert issubclass(cls, TransferError)


def test_channel_not_found_is_also_not_found() -> None:
    assert issubclass(ErrChannelNotFound, NotFoundError)
    assert ErrChannelNotFound().http_status == 404


def test_pause_can_carry_a_voucher_result() -> None:
    err = ErrPause(result=DealResult("pay more"))
    assert err.result == DealResult("pay more") and str(err) == "pause channel"


# -- vouchers and registries ---------------------------------------------------------------------

def test_encoded_voucher_of_a_voucher() -> None:
    assert EncodedVoucher.of(DealVoucher("d9")) == EncodedVoucher("test/deal-voucher", b"d9")
    assert EncodedVoucherResult.of(DealResult("r")) == EncodedVoucherResult("test/deal-result", b"r")


def test_registry_rejects_duplicate_identifiers() -> None:
    registry: TypeRegistry[object] = TypeRegistry(Voucher, "voucher type")
    registry.register(DealVoucher, "validator")

    class SameName(DealVoucher):
        pass

    with pytest.raises(AlreadyExistsError, match="identifier already registered: test/deal-voucher"):
        registry.register(SameName, "another")
    assert registry.lookup("test/deal-voucher") == (DealVoucher, "validator")


def test_registry_accepts_only_its_kind_with_a_type_id() -> None:
    registry: TypeRegistry[object] = TypeRegistry(Voucher, "voucher type")
    with pytest.raises(InvalidArgumentError):
        registry.register(DealResult)  # a result is not a voucher

    class Nameless(Voucher):
        def to_bytes(self) -> bytes:
            return b""

        @classmethod
        def from_bytes(cls, data: bytes) -> Nameless:
            return cls()

    with pytest.raises(InvalidArgumentError, match="type_id"):
        registry.register(Nameless)


def test_registry_decodes_and_reports_unknown_or_bad_bytes() -> None:
    registry: TypeRegistry[None] = TypeRegistry(VoucherResult, "voucher result type")
    registry.register(DealResult)
    assert registry.decode(EncodedVoucherResult("test/deal-result", b"ok")) == DealResult("ok")
    with pytest.raises(InvalidArgumentError, match="unknown voucher result type"):
        registry.decode(EncodedVoucherResult("other", b""))
    with pytest.raises(InvalidArgumentError, match="cannot decode"):
        registry.decode(EncodedVoucherResult("test/deal-result", b"\xff"))


class _Validator:
    def validate_push(self, is_restart, chid, sender, voucher, base_cid, selector):  # type: ignore[no-untyped-def]
        return None

    def validate_pull(self, is_restart, chid, receiver, voucher, base_cid, selector):  # type: ignore[no-untyped-def]
        raise ErrPause


class _Revalidator:
    def revalidate(self, chid, voucher):  # type: ignore[no-untyped-def]
        return None

    def on_pull_data_sent(self, chid, additional_bytes_sent):  # type: ignore[no-untyped-def]
        return False, None

    def on_push_data_received(self, chid, additional_bytes_received):  # type: ignore[no-untyped-def]
        return False, None

    def on_complete(self, chid):  # type: ignore[no-untyped-def]
        return True, DealResult("settle")


def test_validator_protocols_are_structural() -> None:
    assert isinstance(_Validator(), RequestValidator)
    assert isinstance(_Revalidator(), Revalidator)
    assert not isinstance(_Revalidator(), RequestValidator)
