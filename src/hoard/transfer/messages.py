"""Data-transfer messages: go-data-transfer 1.1's requests and responses, in canonical CBOR.

One message on the wire is the CBOR map

    {"IsRq": bool, "Request": <request> | null, "Response": <response> | null}

    request  = {"BCid": CID | null, "Type": uint, "Paus": bool, "Part": bool, "Pull": bool,
                "Stor": selector | null, "Vouch": bytes | null, "VTyp": text, "XferID": uint,
                "RestartChannel": {"Initiator": text, "Responder": text, "ID": uint} | null}
    response = {"Type": uint, "Acpt": bool, "Paus": bool, "XferID": uint,
                "VRes": bytes | null, "VTyp": text}

with Go's field names (message/message1_1). Encoding is canonical (dag-cbor key order: shorter
keys first, then bytewise), CIDs are CBOR tag 42 over a 0x00 byte and the binary CID, as
dag-cbor writes links. Where hoard differs from Go's bytes, it says so:

* `Vouch`/`VRes` carry the voucher's `to_bytes()` as a byte string (Go embeds the voucher's
  own CBOR); `VTyp` is its `type_id`. Both are set or both empty.
* `Stor` is hoard's block-range selector (`hoard.transfer.selector`), not an IPLD selector.
* Peers in `RestartChannel` are base58 text; an absent channel is null (Go writes a zero one).
* A RestartExistingChannelRequest also carries the channel's transfer id in `XferID`.

`decode_message` accepts any CBOR that has this shape (key order free, unknown keys ignored);
everything else raises InvalidArgumentError.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from enum import IntEnum
from typing import Any, Final

import cbor2

from hoard.errors import HoardError, InvalidArgumentError
from hoard.ids.cid import CID
from hoard.limits import TRANSFER_MAX_PEER_TEXT, TRANSFER_MAX_TYPE_ID
from hoard.transfer.errors import ErrPause, ErrResume
from hoard.transfer.selector import (
    BlockRange,
    Selector,
    parse_selector,
    selector_to_node,
)
from hoard.transfer.types import ChannelID
from hoard.transfer.vouchers import (
    EncodedVoucher,
    EncodedVoucherResult,
    Voucher,
    VoucherResult,
)

__all__ = [
    "MAX_MESSAGE_SIZE",
    "Message",
    "MessageType",
    "Request",
    "Response",
    "cancel_request",
    "cancel_response",
    "complete_response",
    "decode_message",
    "encode_message",
    "new_request",
    "new_response",
    "response_from_validation",
    "restart_existing_channel_request",
    "restart_response",
    "update_request",
    "update_response",
    "voucher_request",
    "voucher_result_response",
]

MAX_MESSAGE_SIZE: Final = 1 << 20
"""Largest encoded message, in bytes, that is sent or accepted."""

_UINT64 = 2**64
_CID_TAG = 42


class MessageType(IntEnum):
    """Go's `types.MessageType` (uint64)."""

    New = 0
    Update = 1
    Cancel = 2
    Complete = 3
    Voucher = 4
    VoucherResult = 5
    Restart = 6
    RestartExistingChannelRequest = 7


M = MessageType
REQUEST_TYPES: Final = frozenset({M.New, M.Update, M.Cancel, M.Voucher, M.Restart, M.RestartExistingChannelRequest})
RESPONSE_TYPES: Final = frozenset({M.New, M.Update, M.Cancel, M.Complete, M.VoucherResult, M.Restart})


def _check_uint64(value: Any, what: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value < _UINT64:
        raise InvalidArgumentError(f"{what} must be an unsigned 64-bit integer: {value!r:.100}")
    return value


def _check_bool(value: Any, what: str) -> bool:
    if not isinstance(value, bool):
        raise InvalidArgumentError(f"{what} must be a boolean: {value!r:.100}")
    return value


def _check_type(value: Any, allowed: frozenset[MessageType], what: str) -> MessageType:
    if isinstance(value, int) and not isinstance(value, bool) and value in MessageType._value2member_map_:
        mtype = MessageType(value)
        if mtype in allowed:
            return mtype
    names = ", ".join(t.name for t in sorted(allowed))
    raise InvalidArgumentError(f"{what} type must be one of {names}: {value!r:.100}")


@dataclass(frozen=True)
class Request:
    """A request, sent by the initiator (Go's `transferRequest1_1`)."""

    type: MessageType
    transfer_id: int
    base_cid: CID | None = None
    paused: bool = False
    partial: bool = False
    pull: bool = False
    selector: Selector = None
    voucher: EncodedVoucher | None = None
    restart_channel: ChannelID | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "type", _check_type(self.type, REQUEST_TYPES, "request"))
        _check_uint64(self.transfer_id, "transfer id")
        for name in ("paused", "partial", "pull"):
            _check_bool(getattr(self, name), name)
        if self.base_cid is not None and not isinstance(self.base_cid, CID):
            raise InvalidArgumentError(f"base cid must be a CID: {self.base_cid!r}")
        if self.selector is not None and not isinstance(self.selector, BlockRange):
            object.__setattr__(self, "selector", parse_selector(self.selector))
        if self.voucher is not None:
            object.__setattr__(self, "voucher", EncodedVoucher.of(self.voucher))
            if not self.voucher.type_id:
                raise InvalidArgumentError("a voucher needs a type identifier")
        if self.restart_channel is not None and not isinstance(self.restart_channel, ChannelID):
            raise InvalidArgumentError(f"restart channel must be a ChannelID: {self.restart_channel!r}")
        if self.type in (M.New, M.Restart):
            if self.base_cid is None or self.voucher is None:
                raise InvalidArgumentError(f"a {self.type.name} request needs a base cid and a voucher")
        elif self.type is M.Voucher and self.voucher is None:
            raise InvalidArgumentError("a Voucher request needs a voucher")
        elif self.type is M.RestartExistingChannelRequest and self.restart_channel is None:
            raise InvalidArgumentError("a RestartExistingChannelRequest needs the channel id")

    @property
    def is_request(self) -> bool:
        return True

    @property
    def voucher_type(self) -> str:
        """The voucher's type identifier, "" when there is none (Go's `VoucherType()`)."""
        return "" if self.voucher is None else self.voucher.type_id

    @property
    def is_new(self) -> bool:
        return self.type is M.New

    @property
    def is_restart(self) -> bool:
        return self.type is M.Restart

    @property
    def is_update(self) -> bool:
        return self.type is M.Update

    @property
    def is_cancel(self) -> bool:
        return self.type is M.Cancel

    @property
    def is_paused(self) -> bool:
        return self.paused

    @property
    def is_pull(self) -> bool:
        return self.pull

    @property
    def is_voucher(self) -> bool:
        """True for New *and* Voucher requests: both carry a voucher to validate."""
        return self.type in (M.New, M.Voucher)

    @property
    def is_restart_existing_channel_request(self) -> bool:
        return self.type is M.RestartExistingChannelRequest

    def to_bytes(self) -> bytes:
        return encode_message(self)


@dataclass(frozen=True)
class Response:
    """A response, sent by the responder (Go's `transferResponse1_1`)."""

    type: MessageType
    transfer_id: int
    accepted: bool = False
    paused: bool = False
    voucher_result: EncodedVoucherResult | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "type", _check_type(self.type, RESPONSE_TYPES, "response"))
        _check_uint64(self.transfer_id, "transfer id")
        _check_bool(self.accepted, "accepted")
        _check_bool(self.paused, "paused")
        if self.voucher_result is not None:
            object.__setattr__(self, "voucher_result", EncodedVoucherResult.of(self.voucher_result))
            if not self.voucher_result.type_id:
                raise InvalidArgumentError("a voucher result needs a type identifier")

    @property
    def is_request(self) -> bool:
        return False

    @property
    def voucher_result_type(self) -> str:
        return "" if self.voucher_result is None else self.voucher_result.type_id

    @property
    def is_new(self) -> bool:
        return self.type is M.New

    @property
    def is_restart(self) -> bool:
        return self.type is M.Restart

    @property
    def is_update(self) -> bool:
        return self.type is M.Update

    @property
    def is_cancel(self) -> bool:
        return self.type is M.Cancel

    @property
    def is_complete(self) -> bool:
        return self.type is M.Complete

    @property
    def is_paused(self) -> bool:
        return self.paused

    @property
    def is_voucher_result(self) -> bool:
        """True for New, Restart, VoucherResult and Complete responses (Go's `IsVoucherResult`)."""
        return self.type in (M.New, M.Restart, M.VoucherResult, M.Complete)

    @property
    def empty_voucher_result(self) -> bool:
        return self.voucher_result is None

    def to_bytes(self) -> bytes:
        return encode_message(self)


Message = Request | Response


# -- constructors (Go's message package) -------------------------------------------------------
def new_request(transfer_id: int, voucher: Voucher | EncodedVoucher, base_cid: CID, selector: Selector = None,
                *, pull: bool = False, restart: bool = False) -> Request:
    """Open a channel (type New), or re-open one after a restart (type Restart)."""
    return Request(M.Restart if restart else M.New, transfer_id, base_cid=base_cid, pull=pull,
                   selector=selector, voucher=EncodedVoucher.of(voucher))


def restart_existing_channel_request(chid: ChannelID) -> Request:
    """Ask the initiator to restart `chid` (sent by a responder that restarts)."""
    return Request(M.RestartExistingChannelRequest, chid.id, restart_channel=chid)


def update_request(transfer_id: int, paused: bool) -> Request:
    """Pause (`paused=True`) or resume the initiator's side."""
    return Request(M.Update, transfer_id, paused=paused)


def cancel_request(transfer_id: int) -> Request:
    return Request(M.Cancel, transfer_id)


def voucher_request(transfer_id: int, voucher: Voucher | EncodedVoucher) -> Request:
    """A further voucher on a running channel (revalidation, finalization)."""
    return Request(M.Voucher, transfer_id, voucher=EncodedVoucher.of(voucher))


def _result(value: VoucherResult | EncodedVoucherResult | None) -> EncodedVoucherResult | None:
    return None if value is None else EncodedVoucherResult.of(value)


def new_response(transfer_id: int, accepted: bool, paused: bool,
                 voucher_result: VoucherResult | EncodedVoucherResult | None = None) -> Response:
    return Response(M.New, transfer_id, accepted, paused, _result(voucher_result))


def restart_response(transfer_id: int, accepted: bool, paused: bool,
                     voucher_result: VoucherResult | EncodedVoucherResult | None = None) -> Response:
    return Response(M.Restart, transfer_id, accepted, paused, _result(voucher_result))


def voucher_result_response(transfer_id: int, accepted: bool, paused: bool,
                            voucher_result: VoucherResult | EncodedVoucherResult | None = None) -> Response:
    return Response(M.VoucherResult, transfer_id, accepted, paused, _result(voucher_result))


def complete_response(transfer_id: int, accepted: bool, paused: bool,
                      voucher_result: VoucherResult | EncodedVoucherResult | None = None) -> Response:
    """The responder is done; `paused` means it awaits a final voucher (finalization)."""
    return Response(M.Complete, transfer_id, accepted, paused, _result(voucher_result))


def update_response(transfer_id: int, paused: bool) -> Response:
    """Pause (`paused=True`) or resume the responder's side."""
    return Response(M.Update, transfer_id, accepted=True, paused=paused)


def cancel_response(transfer_id: int) -> Response:
    return Response(M.Cancel, transfer_id)


def _is(err: BaseException | type[BaseException] | None, cls: type[BaseException]) -> bool:
    return isinstance(err, cls) or (isinstance(err, type) and issubclass(err, cls))


def response_from_validation(err: BaseException | type[BaseException] | None, transfer_id: int,
                             voucher_result: VoucherResult | EncodedVoucherResult | None = None,
                             *, is_new: bool = False, is_restart: bool = False) -> Response:
    """The response to a (re)validation outcome (Go's `impl/utils.go` `response`).

    accepted = `err` is None, ErrPause or ErrResume; paused = `err` is ErrPause. The result
    is `voucher_result`, else the `.result` an ErrPause/ErrResume carries. The type is
    Restart, New or VoucherResult, by `is_restart`/`is_new`.
    """
    accepted = err is None or _is(err, ErrPause) or _is(err, ErrResume)
    paused = _is(err, ErrPause)
    if voucher_result is None and isinstance(err, BaseException):
        voucher_result = getattr(err, "result", None)
    mtype = M.Restart if is_restart else M.New if is_new else M.VoucherResult
    return Response(mtype, transfer_id, accepted, paused, _result(voucher_result))


# -- wire ----------------------------------------------------------------------------------------
def _cid_node(cid: CID | None) -> cbor2.CBORTag | None:
    return None if cid is None else cbor2.CBORTag(_CID_TAG, b"\x00" + cid.binary)


def _request_node(msg: Request) -> dict[str, Any]:
    chid = msg.restart_channel
    return {
        "BCid": _cid_node(msg.base_cid),
        "Type": int(msg.type),
        "Paus": msg.paused,
        "Part": msg.partial,
        "Pull": msg.pull,
        "Stor": selector_to_node(msg.selector),
        "Vouch": None if msg.voucher is None else msg.voucher.data,
        "VTyp": msg.voucher_type,
        "XferID": msg.transfer_id,
        "RestartChannel": None if chid is None else
        {"Initiator": chid.initiator, "Responder": chid.responder, "ID": chid.id},
    }


def _response_node(msg: Response) -> dict[str, Any]:
    return {
        "Type": int(msg.type),
        "Acpt": msg.accepted,
        "Paus": msg.paused,
        "XferID": msg.transfer_id,
        "VRes": None if msg.voucher_result is None else msg.voucher_result.data,
        "VTyp": msg.voucher_result_type,
    }


def encode_message(msg: Message) -> bytes:
    """The canonical CBOR bytes of `msg`; raises InvalidArgumentError past MAX_MESSAGE_SIZE."""
    if isinstance(msg, Request):
        node = {"IsRq": True, "Request": _request_node(msg), "Response": None}
    elif isinstance(msg, Response):
        node = {"IsRq": False, "Request": None, "Response": _response_node(msg)}
    else:
        raise InvalidArgumentError(f"not a transfer message: {msg!r}")
    data = cbor2.dumps(node, canonical=True)
    if len(data) > MAX_MESSAGE_SIZE:
        raise InvalidArgumentError(f"transfer message too large: {len(data)} bytes (limit {MAX_MESSAGE_SIZE})")
    return data


class _Fields:
    """Typed access to one CBOR map of the message, with errors naming the field."""

    def __init__(self, node: Any, where: str) -> None:
        if not isinstance(node, dict):
            raise InvalidArgumentError(f"invalid transfer message: {where} must be a map, got {type(node).__name__}")
        self.node = node
        self.where = where

    def get(self, key: str) -> Any:
        if key not in self.node:
            raise InvalidArgumentError(f"invalid transfer message: {self.where} lacks {key}")
        return self.node[key]

    def name(self, key: str) -> str:
        return f"invalid transfer message: {self.where}.{key}"

    def uint(self, key: str) -> int:
        return _check_uint64(self.get(key), self.name(key))

    def bool(self, key: str) -> bool:
        return _check_bool(self.get(key), self.name(key))

    def text(self, key: str, limit: int) -> str:
        value = self.get(key)
        if not isinstance(value, str):
            raise InvalidArgumentError(f"{self.name(key)} must be a text string: {value!r:.100}")
        if len(value) > limit:
            raise InvalidArgumentError(f"{self.name(key)} is {len(value)} characters (at most {limit})")
        return value

    def optional_bytes(self, key: str) -> bytes | None:
        value = self.get(key)
        if value is not None and not isinstance(value, bytes):
            raise InvalidArgumentError(f"{self.name(key)} must be a byte string or null: {value!r:.100}")
        return value

    def optional_cid(self, key: str) -> CID | None:
        value = self.get(key)
        if value is None:
            return None
        if not (isinstance(value, cbor2.CBORTag) and value.tag == _CID_TAG and isinstance(value.value, bytes)
                and value.value[:1] == b"\x00"):
            raise InvalidArgumentError(f"{self.name(key)} must be a CID (tag 42) or null: {value!r:.100}")
        return CID(value.value[1:])


def _encoded(fields: _Fields, data_key: str, kind: type[EncodedVoucher | EncodedVoucherResult]) -> Any:
    data = fields.optional_bytes(data_key)
    type_id = fields.text("VTyp", TRANSFER_MAX_TYPE_ID)
    if (data is None) != (type_id == ""):
        raise InvalidArgumentError(f"invalid transfer message: {fields.where}.{data_key} and VTyp must be set together")
    return None if data is None else kind(type_id, data)


def _decode_request(node: Any) -> Request:
    f = _Fields(node, "Request")
    chid_node = f.get("RestartChannel")
    chid = None
    if chid_node is not None:
        c = _Fields(chid_node, "Request.RestartChannel")
        chid = ChannelID(c.text("Initiator", TRANSFER_MAX_PEER_TEXT), c.text("Responder", TRANSFER_MAX_PEER_TEXT),
                         c.uint("ID"))
    return Request(
        type=_check_type(f.get("Type"), REQUEST_TYPES, "invalid transfer message: Request"),
        transfer_id=f.uint("XferID"),
        base_cid=f.optional_cid("BCid"),
        paused=f.bool("Paus"),
        partial=f.bool("Part"),
        pull=f.bool("Pull"),
        selector=parse_selector(f.get("Stor")),
        voucher=_encoded(f, "Vouch", EncodedVoucher),
        restart_channel=chid,
    )


def _decode_response(node: Any) -> Response:
    f = _Fields(node, "Response")
    return Response(
        type=_check_type(f.get("Type"), RESPONSE_TYPES, "invalid transfer message: Response"),
        transfer_id=f.uint("XferID"),
        accepted=f.bool("Acpt"),
        paused=f.bool("Paus"),
        voucher_result=_encoded(f, "VRes", EncodedVoucherResult),
    )


def decode_message(data: bytes | bytearray | memoryview) -> Message:
    """Parse one message; anything but exactly one well-formed message raises InvalidArgumentError."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise InvalidArgumentError(f"transfer message must be bytes, got {type(data).__name__}")
    data = bytes(data)
    if len(data) > MAX_MESSAGE_SIZE:
        raise InvalidArgumentError(f"transfer message too large: {len(data)} bytes (limit {MAX_MESSAGE_SIZE})")
    stream = io.BytesIO(data)
    try:
        node = cbor2.CBORDecoder(stream, allow_indefinite=False, allow_duplicate_keys=False, max_depth=8).decode()
    except (cbor2.CBORError, ValueError, TypeError, OverflowError, RecursionError) as exc:
        raise InvalidArgumentError(f"invalid transfer message: not CBOR ({exc})") from exc
    if stream.tell() != len(data):
        raise InvalidArgumentError(f"invalid transfer message: {len(data) - stream.tell()} trailing bytes")
    try:
        top = _Fields(node, "message")
        if top.bool("IsRq"):
            if top.get("Response") is not None:
                raise InvalidArgumentError("invalid transfer message: a request with a Response")
            return _decode_request(top.get("Request"))
        if top.get("Request") is not None:
            raise InvalidArgumentError("invalid transfer message: a response with a Request")
        return _decode_response(top.get("Response"))
    except HoardError as exc:  # a nested value check (CID, selector, peer) names no message part
        if isinstance(exc, InvalidArgumentError) and exc.message.startswith("invalid transfer message"):
            raise
        raise InvalidArgumentError(f"invalid transfer message: {exc.message}") from exc
