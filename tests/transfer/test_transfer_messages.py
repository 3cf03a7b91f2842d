"""Transfer messages: constructors, predicates, the CBOR wire form, and junk input."""

from __future__ import annotations

import cbor2
import pytest
from _transfer_kit import ALICE, BOB, ROOT, DealResult, DealVoucher, block
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hoard.errors import InvalidArgumentError
from hoard.transfer import (
    BlockRange,
    ChannelID,
    EncodedVoucher,
    EncodedVoucherResult,
    ErrPause,
    ErrRejected,
    ErrResume,
    MessageType,
    Request,
    Response,
    decode_message,
    encode_message,
    response_from_validation,
)
from hoard.transfer import messages as m
from hoard.transfer.selector import parse_selector

M = MessageType


def test_message_types_are_numbered_as_go() -> None:
    assert [(t.name, t.value) for t in MessageType] == [
        ("New", 0), ("Update", 1), ("Cancel", 2), ("Complete", 3), ("Voucher", 4), ("VoucherResult", 5),
        ("Restart", 6), ("RestartExistingChannelRequest", 7)]


# -- constructors and predicates -----------------------------------------------------------------

def test_new_request() -> None:
    req = m.new_request(9, DealVoucher("d"), ROOT, BlockRange(0, 4), pull=True)
    assert (req.type, req.transfer_id, req.base_cid, req.pull, req.selector) == (M.New, 9, ROOT, True, BlockRange(0, 4))
    assert req.voucher == EncodedVoucher("test/deal-voucher", b"d") and req.voucher_type == "test/deal-voucher"
    assert req.is_request and req.is_new and req.is_voucher and req.is_pull
    assert not (req.is_restart or req.is_update or req.is_cancel or req.is_paused)


def test_restart_request() -> None:
    req = m.new_request(9, DealVoucher("d"), ROOT, restart=True)
    assert req.type is M.Restart and req.is_restart and not req.is_new and not req.is_voucher and not req.pull


def test_update_cancel_voucher_requests() -> None:
    assert m.update_request(3, True).is_update and m.update_request(3, True).is_paused
    assert not m.update_request(3, False).is_paused
    assert m.cancel_request(3).is_cancel and m.cancel_request(3).transfer_id == 3
    vreq = m.voucher_request(3, DealVoucher("more"))
    assert vreq.type is M.Voucher and vreq.is_voucher and vreq.voucher == EncodedVoucher("test/deal-voucher", b"more")


def test_restart_existing_channel_request() -> None:
    chid = ChannelID(ALICE, BOB, 11)
    req = m.restart_existing_channel_request(chid)
    assert req.is_restart_existing_channel_request and req.restart_channel == chid and req.transfer_id == 11
    assert not req.is_voucher


@pytest.mark.parametrize(("make", "mtype"), [
    (m.new_response, M.New), (m.restart_response, M.Restart),
    (m.voucher_result_response, M.VoucherResult), (m.complete_response, M.Complete),
])
def test_responses_with_voucher_results(make, mtype: MessageType) -> None:  # type: ignore[no-untyped-def]
    resp = make(5, True, True, DealResult("r"))
    assert (resp.type, resp.transfer_id, resp.accepted, resp.paused) == (mtype, 5, True, True)
    assert resp.voucher_result == EncodedVoucherResult("test/deal-result", b"r")
    assert not resp.is_request and resp.is_voucher_result and not resp.empty_voucher_result
    assert resp.is_complete == (mtype is M.Complete)
    assert make(5, False, False).empty_voucher_result


def test_update_and_cancel_responses_are_not_voucher_results() -> None:
    assert m.update_response(5, True).is_update and m.update_response(5, True).is_paused
    assert m.cancel_response(5).is_cancel
    assert not m.update_response(5, False).is_voucher_result
    assert not m.cancel_response(5).is_voucher_result


def test_is_voucher_is_true_for_new_and_voucher_requests_only() -> None:
    requests = [m.new_request(1, DealVoucher("d"), ROOT), m.new_request(1, DealVoucher("d"), ROOT, restart=True),
                m.update_request(1, False), m.cancel_request(1), m.voucher_request(1, DealVoucher("d")),
                m.restart_existing_channel_request(ChannelID(ALICE, BOB, 1))]
    assert {r.type for r in requests if r.is_voucher} == {M.New, M.Voucher}


@pytest.mark.parametrize(("kwargs", "why"), [
    ({"type": M.New, "transfer_id": 1}, "needs a base cid and a voucher"),
    ({"type": M.Voucher, "transfer_id": 1}, "needs a voucher"),
    ({"type": M.RestartExistingChannelRequest, "transfer_id": 1}, "needs the channel id"),
    ({"type": M.Complete, "transfer_id": 1}, "type must be one of"),
    ({"type": M.Cancel, "transfer_id": -1}, "unsigned 64-bit"),
    ({"type": M.Cancel, "transfer_id": 1, "paused": 1}, "boolean"),
])
def test_bad_requests_are_refused(kwargs: dict[str, object], why: str) -> None:
    with pytest.raises(InvalidArgumentError, match=why):
        Request(**kwargs)  # type: ignore[arg-type]


def test_bad_responses_are_refused() -> None:
    with pytest.raises(InvalidArgumentError, match="type must be one of"):
        Response(M.Voucher, 1)
    with pytest.raises(InvalidArgumentError, match="type identifier"):
        Response(M.New, 1, voucher_result=EncodedVoucherResult("", b"x"))


# -- response_from_validation ----------------------------------------------------------------

@pytest.mark.parametrize(("err", "accepted", "paused"), [
    (None, True, False),
    (ErrPause(), True, True),
    (ErrPause, True, True),
    (ErrResume(), True, False),
    (ErrRejected(), False, False),
    (ValueError("no deal"), False, False),
])
def test_response_from_validation(err: object, accepted: bool, paused: bool) -> None:
    resp = response_from_validation(err, 4, is_new=True)  # type: ignore[arg-type]
    assert (resp.type, resp.accepted, resp.paused, resp.transfer_id) == (M.New, accepted, paused, 4)


def test_response_from_validation_types_and_results() -> None:
    assert response_from_validation(None, 1).type is M.VoucherResult
    assert response_from_validation(None, 1, is_restart=True, is_new=True).type is M.Restart
    carried = response_from_validation(ErrPause(result=DealResult("pay")), 1)
    assert carried.voucher_result == EncodedVoucherResult("test/deal-result", b"pay")
    explicit = response_from_validation(None, 1, DealResult("ok"))
    assert explicit.voucher_result == EncodedVoucherResult("test/deal-result", b"ok")


# -- the wire ----------------------------------------------------------------------------------

def test_request_wire_form_has_go_field_names_in_canonical_order() -> None:
    chid = ChannelID(ALICE, BOB, 3)
    req = Request(M.Restart, 3, base_cid=ROOT, paused=True, pull=True, selector=BlockRange(1, 5),
                  voucher=EncodedVoucher("vt", b"\x01\x02"), restart_channel=chid)
    node = cbor2.loads(encode_message(req))
    assert list(node) == ["IsRq", "Request", "Response"]
    assert node["IsRq"] is True and node["Response"] is None
    body = node["Request"]
    assert list(body) == ["BCid", "Part", "Paus", "Pull", "Stor", "Type", "VTyp", "Vouch", "XferID", "RestartChannel"]
    assert body["BCid"] == cbor2.CBORTag(42, b"\x00" + ROOT.binary)
    assert body == {"BCid": body["BCid"], "Type": 6, "Paus": True, "Part": False, "Pull": True,
                    "Stor": {"range": [1, 5]}, "Vouch": b"\x01\x02", "VTyp": "vt", "XferID": 3,
                    "RestartChannel": {"Initiator": ALICE, "Responder": BOB, "ID": 3}}


def test_response_wire_form() -> None:
    node = cbor2.loads(encode_message(m.complete_response(8, True, False, DealResult("x"))))
    assert node == {"IsRq": False, "Request": None,
                    "Response": {"Type": 3, "Acpt": True, "Paus": False, "XferID": 8, "VRes": b"x",
                                 "VTyp": "test/deal-result"}}
    assert list(node["Response"]) == ["Acpt", "Paus", "Type", "VRes", "VTyp", "XferID"]


def test_empty_fields_are_null_on_the_wire() -> None:
    body = cbor2.loads(encode_message(m.cancel_request(1)))["Request"]
    empty = (body["BCid"], body["Stor"], body["Vouch"], body["VTyp"], body["RestartChannel"])
    assert empty == (None, None, None, "", None)


def test_decoding_ignores_key_order_and_unknown_keys() -> None:
    body = {"XferID": 1, "Type": 2, "Paus": False, "Part": False, "Pull": False, "BCid": None, "Stor": None,
            "Vouch": None, "VTyp": "", "RestartChannel": None, "Future": 1}
    data = cbor2.dumps({"Response": None, "Request": body, "IsRq": True})
    assert decode_message(data) == m.cancel_request(1)


peers = st.text(min_size=0, max_size=20)
uint64 = st.integers(0, 2**64 - 1)
cids = st.integers(0, 1000).map(block)
selectors = st.one_of(st.none(), st.tuples(st.integers(0, 2**40), st.integers(1, 2**40)).map(
    lambda t: BlockRange(t[0], t[0] + t[1])))
vouchers = st.builds(EncodedVoucher, st.text(min_size=1, max_size=30), st.binary(max_size=200))
results = st.builds(EncodedVoucherResult, st.text(min_size=1, max_size=30), st.binary(max_size=200))
channel_ids = st.builds(ChannelID, peers, peers, uint64)

requests = st.one_of(
    st.builds(m.new_request, uint64, vouchers, cids, selectors, pull=st.booleans(), restart=st.booleans()),
    st.builds(m.update_request, uint64, st.booleans()),
    st.builds(m.cancel_request, uint64),
    st.builds(m.voucher_request, uint64, vouchers),
    st.builds(m.restart_existing_channel_request, channel_ids),
    st.builds(Request, st.sampled_from(sorted(m.REQUEST_TYPES)), uint64, base_cid=cids, paused=st.booleans(),
              partial=st.booleans(), pull=st.booleans(), selector=selectors, voucher=vouchers,
              restart_channel=channel_ids),
)
responses = st.one_of(
    *[st.builds(make, uint64, st.booleans(), st.booleans(), st.one_of(st.none(), results))
      for make in (m.new_response, m.restart_response, m.voucher_result_response, m.complete_response)],
    st.builds(m.update_response, uint64, st.booleans()),
    st.builds(m.cancel_response, uint64),
)


@settings(max_examples=400)
@given(st.one_of(requests, responses))
def test_messages_round_trip(msg: m.Message) -> None:
    data = encode_message(msg)
    assert decode_message(data) == msg
    assert encode_message(decode_message(data)) == data
    assert msg.to_bytes() == data


@settings(max_examples=200)
@given(st.one_of(requests, responses))
def test_encoding_is_canonical(msg: m.Message) -> None:
    data = encode_message(msg)
    assert cbor2.dumps(cbor2.loads(data), canonical=True) == data


# -- junk ------------------------------------------------------------------------------------

def _valid_request_node() -> dict[str, object]:
    return cbor2.loads(encode_message(m.new_request(1, DealVoucher("d"), ROOT)))


def _with(path: tuple[str, ...], value: object) -> bytes:
    node = _valid_request_node()
    target = node
    for key in path[:-1]:
        target = target[key]  # type: ignore[assignment,index]
    if value is _DELETE:
        del target[path[-1]]  # type: ignore[attr-defined]
    else:
        target[path[-1]] = value  # type: ignore[index]
    return cbor2.dumps(node)


_DELETE = object()


@pytest.mark.parametrize(("data", "why"), [
    (b"", "not CBOR"),
    (b"\xff", "not CBOR"),
    (encode_message(m.cancel_request(1)) + b"\x00", "trailing bytes"),
    (cbor2.dumps([1, 2]), "message must be a map"),
    (cbor2.dumps({"Request": None}), "lacks IsRq"),
    (cbor2.dumps({"IsRq": 1, "Request": None, "Response": None}), "IsRq must be a boolean"),
    (cbor2.dumps({"IsRq": False, "Request": None, "Response": None}), "Response must be a map"),
    (cbor2.dumps({"IsRq": True, "Request": {}, "Response": {}}), "a request with a Response"),
    (_with(("Request", "Type"), 3), "Request type must be one of"),
    (_with(("Request", "Type"), 99), "Request type must be one of"),
    (_with(("Request", "XferID"), -1), "Request.XferID"),
    (_with(("Request", "XferID"), 2**64), "Request.XferID"),
    (_with(("Request", "Paus"), 0), "Request.Paus must be a boolean"),
    (_with(("Request", "BCid"), b"\x00" + ROOT.binary), "Request.BCid must be a CID"),
    (_with(("Request", "BCid"), cbor2.CBORTag(42, ROOT.binary)), "Request.BCid must be a CID"),
    (_with(("Request", "BCid"), cbor2.CBORTag(42, b"\x00\x01\x02")), "not a hoard CID"),
    (_with(("Request", "VTyp"), ""), "Vouch and VTyp must be set together"),
    (_with(("Request", "Vouch"), "text"), "Request.Vouch must be a byte string"),
    (_with(("Request", "Stor"), {"range": [5, 2]}), "empty block range"),
    (_with(("Request", "Stor"), {"all": True}), "selector must be null"),
    (_with(("Request", "RestartChannel"), {"Initiator": ALICE}), "RestartChannel lacks Responder"),
    (_with(("Request", "Vouch"), _DELETE), "Request lacks Vouch"),
    (_with(("Request", "Vouch"), None), "Vouch and VTyp"),
    (b"\x5a\xff\xff\xff\xff", "not CBOR"),
])
def test_junk_is_refused_with_a_clear_message(data: bytes, why: str) -> None:
    with pytest.raises(InvalidArgumentError, match=why) as info:
        decode_message(data)
    assert str(info.value).startswith("invalid transfer message")


def test_oversized_messages_are_refused_both_ways() -> None:
    with pytest.raises(InvalidArgumentError, match="too large"):
        decode_message(b"\x00" * (m.MAX_MESSAGE_SIZE + 1))
    with pytest.raises(InvalidArgumentError, match="at most"):  # a voucher is bounded well below a message
        encode_message(m.voucher_request(1, EncodedVoucher("big", b"x" * m.MAX_MESSAGE_SIZE)))


def test_decode_wants_bytes() -> None:
    with pytest.raises(InvalidArgumentError):
        decode_message("text")  # type: ignore[arg-type]


@settings(max_examples=500, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=300))
def test_random_bytes_decode_or_raise_invalid_argument(data: bytes) -> None:
    try:
        decode_message(data)
    except InvalidArgumentError:
        pass


cbor_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-2**70, 2**70), st.text(max_size=10), st.binary(max_size=40),
              st.floats(allow_nan=False)),
    lambda inner: st.one_of(st.lists(inner, max_size=4),
                            st.dictionaries(st.sampled_from(["IsRq", "Request", "Response", "Type", "XferID",
                                                             "BCid", "Vouch", "VTyp", "VRes", "Stor", "x"]),
                                            inner, max_size=6),
                            st.builds(cbor2.CBORTag, st.sampled_from([42, 1, 258]), inner)),
    max_leaves=20,
)


@settings(max_examples=500, suppress_health_check=[HealthCheck.too_slow])
@given(cbor_values)
def test_random_cbor_decodes_or_raises_invalid_argument(value: object) -> None:
    try:
        data = cbor2.dumps(value)
    except Exception:  # noqa: BLE001 - a value cbor2 cannot encode is no message to decode
        return
    try:
        decode_message(data)
    except InvalidArgumentError:
        pass


@settings(max_examples=300)
@given(st.one_of(requests, responses), st.data())
def test_corrupted_messages_decode_or_raise_invalid_argument(msg: m.Message, data: st.DataObject) -> None:
    raw = bytearray(encode_message(msg))
    i = data.draw(st.integers(0, len(raw) - 1))
    raw[i] = data.draw(st.integers(0, 255))
    try:
        decode_message(bytes(raw))
    except InvalidArgumentError:
        pass


def test_selector_forms() -> None:
    assert parse_selector(None) is None
    assert parse_selector({"range": [0, 1]}) == BlockRange(0, 1)
    assert 3 in BlockRange(2, 4) and 4 not in BlockRange(2, 4) and len(BlockRange(2, 4)) == 2
    for bad in ({"range": [1]}, {"range": [-1, 3]}, {"range": [0, True]}, {"range": "0-3"}, [0, 3], {"range": [2, 2]}):
        with pytest.raises(InvalidArgumentError):
            parse_selector(bad)
