"""The data-transfer vocabulary: statuses, event codes, channel ids, events and channel state.

Numbering and names are go-data-transfer v1.7.8's (DIGEST §3.2–3.3), so a status or event
code means the same number in hoard as in Go. The errors, vouchers, validator protocols and
registries live in sibling modules and are re-exported here.

Peers are kept as their base58 text (a `PeerId` argument is converted), so that a
`ChannelID` and a `ChannelState` are plain hashable/JSON-able values.
"""

from __future__ import annotations

import base64
import itertools
import threading
import time
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from enum import IntEnum
from typing import Any

from hoard.errors import InvalidArgumentError
from hoard.ids.cid import CID
from hoard.ids.peer import PeerId
from hoard.transfer.cidset import CidSet
from hoard.transfer.errors import (
    ErrChannelNotFound,
    ErrDisconnected,
    ErrHandlerAlreadySet,
    ErrHandlerNotSet,
    ErrIncomplete,
    ErrInvalidTransition,
    ErrPause,
    ErrRejected,
    ErrRemoved,
    ErrResume,
    ErrUnsupported,
)
from hoard.transfer.selector import BlockRange, Selector, parse_selector, selector_to_node
from hoard.transfer.vouchers import (
    EncodedVoucher,
    EncodedVoucherResult,
    Registerable,
    RequestValidator,
    Revalidator,
    TransportConfigurer,
    TypeRegistry,
    Voucher,
    VoucherResult,
)

__all__ = [
    "BlockRange",
    "ChannelID",
    "ChannelState",
    "CidSet",
    "EmptyTypeIdentifier",
    "EncodedVoucher",
    "EncodedVoucherResult",
    "ErrChannelNotFound",
    "ErrDisconnected",
    "ErrHandlerAlreadySet",
    "ErrHandlerNotSet",
    "ErrIncomplete",
    "ErrInvalidTransition",
    "ErrPause",
    "ErrRejected",
    "ErrRemoved",
    "ErrResume",
    "ErrUnsupported",
    "Event",
    "EventCode",
    "Registerable",
    "RequestValidator",
    "Revalidator",
    "Selector",
    "Status",
    "TransferIDCounter",
    "TransportConfigurer",
    "TypeIdentifier",
    "TypeRegistry",
    "Voucher",
    "VoucherResult",
]

_UINT64 = 2**64

TypeIdentifier = str
"""Go's `TypeIdentifier`: the `type_id` of a voucher or voucher result type."""

EmptyTypeIdentifier: TypeIdentifier = ""
"""Go's `EmptyTypeIdentifier`: no voucher is present (a message's voucher type when it carries none)."""


class Status(IntEnum):
    """A channel's status (Go `datatransfer.Status`, iota order)."""

    Requested = 0
    Ongoing = 1
    TransferFinished = 2
    ResponderCompleted = 3
    Finalizing = 4
    Completing = 5
    Completed = 6
    Failing = 7
    Failed = 8
    Cancelling = 9
    Cancelled = 10
    InitiatorPaused = 11
    ResponderPaused = 12
    BothPaused = 13
    ResponderFinalizing = 14
    ResponderFinalizingTransferFinished = 15
    ChannelNotFoundError = 16


class EventCode(IntEnum):
    """What happened on a channel (Go `datatransfer.EventCode`, iota order, v1.7.8)."""

    Open = 0
    Accept = 1
    Restart = 2
    DataReceived = 3
    DataSent = 4
    Cancel = 5
    Error = 6
    CleanupComplete = 7
    NewVoucher = 8
    NewVoucherResult = 9
    PauseInitiator = 10
    ResumeInitiator = 11
    PauseResponder = 12
    ResumeResponder = 13
    FinishTransfer = 14
    ResponderCompletes = 15
    ResponderBeginsFinalization = 16
    BeginFinalizing = 17
    Disconnected = 18
    Complete = 19
    CompleteCleanupOnRestart = 20
    DataQueued = 21
    DataQueuedProgress = 22
    DataSentProgress = 23
    DataReceivedProgress = 24
    RequestTimedOut = 25  # deprecated in v1.7.8; the FSM has no rule for it
    SendDataError = 26
    ReceiveDataError = 27
    TransferRequestQueued = 28
    RequestCancelled = 29


def _peer(value: PeerId | str, what: str) -> str:
    if isinstance(value, PeerId):
        return str(value)
    if isinstance(value, str):
        return value
    raise InvalidArgumentError(f"{what} must be a PeerId or its base58 text: {value!r}")


def _cid_text(cid: CID) -> str:
    """The multibase base64url text form ("u..."): a valid CID string, and fast both ways."""
    if cid.version == 0:
        return str(cid)  # a CIDv0 is never multibase-encoded: "Qm..."
    return "u" + base64.urlsafe_b64encode(cid.binary).decode().rstrip("=")  # multibase base64url has no padding


def _cid_from_text(text: Any) -> CID:
    if isinstance(text, str) and text.startswith("u") and len(text) == 49:
        try:
            return CID(base64.urlsafe_b64decode(text[1:]))
        except ValueError:
            pass
    return CID.parse(text)


def _uint64(value: Any, what: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value < _UINT64:
        raise InvalidArgumentError(f"{what} must be an unsigned 64-bit integer: {value!r}")
    return int(value)


@dataclass(frozen=True)
class ChannelID:
    """Identifies a channel: the initiator, the responder and the initiator's transfer id.

    `str()` is Go's `"<initiator>-<responder>-<id>"`.
    """

    initiator: str
    responder: str
    id: int

    def __init__(self, initiator: PeerId | str, responder: PeerId | str, id: int) -> None:
        object.__setattr__(self, "initiator", _peer(initiator, "initiator"))
        object.__setattr__(self, "responder", _peer(responder, "responder"))
        object.__setattr__(self, "id", _uint64(id, "transfer id"))

    def __str__(self) -> str:
        return f"{self.initiator}-{self.responder}-{self.id}"

    def other_party(self, this_peer: PeerId | str) -> str:
        """The peer on the other side from `this_peer`."""
        return self.responder if _peer(this_peer, "peer") == self.initiator else self.initiator

    def to_dict(self) -> dict[str, Any]:
        return {"initiator": self.initiator, "responder": self.responder, "id": self.id}

    @classmethod
    def from_dict(cls, data: Any) -> ChannelID:
        if not isinstance(data, dict):
            raise InvalidArgumentError(f"channel id must be an object: {data!r}")
        try:
            return cls(data["initiator"], data["responder"], data["id"])
        except KeyError as exc:
            raise InvalidArgumentError(f"channel id lacks {exc.args[0]!r}") from exc


class TransferIDCounter:
    """Transfer ids as Go makes them: start at the current UnixNano, add one per request."""

    def __init__(self, start: int | None = None) -> None:
        self._counter = itertools.count((time.time_ns() if start is None else start) + 1)
        self._lock = threading.Lock()

    def next(self) -> int:
        """A new transfer id, larger than every earlier one from this counter."""
        with self._lock:
            return next(self._counter) % _UINT64


@dataclass(frozen=True)
class Event:
    """One thing that happened on a channel: its code, the channel's message, and when."""

    code: EventCode
    message: str = ""
    timestamp: datetime = field(default_factory=lambda: datetime.now(UTC))

    @classmethod
    def for_state(cls, code: EventCode, state: ChannelState, timestamp: datetime | None = None) -> Event:
        """The event subscribers see after `code` was applied and gave `state` (Go's dispatch)."""
        return cls(EventCode(code), state.message, timestamp or datetime.now(UTC))


@dataclass(frozen=True)
class ChannelState:
    """Everything known about one channel (Go's `internal.ChannelState`). Immutable.

    The FSM (`hoard.transfer.fsm.apply`) returns a new state per event. Vouchers and voucher
    results are kept encoded (type id + bytes), first voucher first; decode them with the
    manager's `TypeRegistry`. `received_cids`, `sent_cids` and `queued_cids` are the
    de-duplication sets of the progress events (received CIDs in arrival order).
    """

    transfer_id: int
    initiator: str
    responder: str
    base_cid: CID
    sender: str
    recipient: str
    self_peer: str
    selector: Selector = None
    vouchers: tuple[EncodedVoucher, ...] = ()
    voucher_results: tuple[EncodedVoucherResult, ...] = ()
    total_size: int = 0
    status: Status = Status.Requested
    sent: int = 0
    received: int = 0
    queued: int = 0
    message: str = ""
    received_cids: CidSet = field(default_factory=CidSet)
    sent_cids: CidSet = field(default_factory=CidSet)
    queued_cids: CidSet = field(default_factory=CidSet)

    def __post_init__(self) -> None:
        for name in ("initiator", "responder", "sender", "recipient", "self_peer"):
            value = getattr(self, name)
            if not isinstance(value, str):
                object.__setattr__(self, name, _peer(value, name))
        if not isinstance(self.base_cid, CID):
            raise InvalidArgumentError(f"base_cid must be a CID: {self.base_cid!r}")
        if type(self.status) is not Status:
            if self.status not in Status._value2member_map_:
                raise InvalidArgumentError(f"not a channel Status: {self.status!r}")
            object.__setattr__(self, "status", Status(self.status))
        if self.selector is not None and not isinstance(self.selector, BlockRange):
            object.__setattr__(self, "selector", parse_selector(self.selector))
        if type(self.vouchers) is not tuple:
            object.__setattr__(self, "vouchers", tuple(EncodedVoucher.of(v) for v in self.vouchers))
        if type(self.voucher_results) is not tuple:
            object.__setattr__(self, "voucher_results",
                               tuple(EncodedVoucherResult.of(v) for v in self.voucher_results))

    @classmethod
    def create(cls, *, self_peer: PeerId | str, transfer_id: int, base_cid: CID, selector: Selector,
               voucher: Voucher | EncodedVoucher, initiator: PeerId | str, sender: PeerId | str,
               recipient: PeerId | str) -> ChannelState:
        """A new channel in `Requested`, as Go's `CreateNew` (the responder is the non-initiator)."""
        initiator = _peer(initiator, "initiator")
        sender, recipient = _peer(sender, "sender"), _peer(recipient, "recipient")
        if initiator not in (sender, recipient):
            raise InvalidArgumentError("the initiator must be the sender or the recipient")
        return cls(
            transfer_id=_uint64(transfer_id, "transfer id"),
            initiator=initiator,
            responder=recipient if sender == initiator else sender,
            base_cid=base_cid,
            sender=sender,
            recipient=recipient,
            self_peer=_peer(self_peer, "self peer"),
            selector=parse_selector(selector),
            vouchers=(EncodedVoucher.of(voucher),),
        )

    # -- Go's accessors ------------------------------------------------------------------
    @property
    def channel_id(self) -> ChannelID:
        return ChannelID(self.initiator, self.responder, self.transfer_id)

    @property
    def is_pull(self) -> bool:
        """True when the initiator receives the data."""
        return self.initiator == self.recipient

    @property
    def other_peer(self) -> str:
        """The counterparty of `self_peer`."""
        return self.recipient if self.sender == self.self_peer else self.sender

    @property
    def voucher(self) -> EncodedVoucher | None:
        """The voucher the channel was opened with."""
        return self.vouchers[0] if self.vouchers else None

    @property
    def last_voucher(self) -> EncodedVoucher | None:
        return self.vouchers[-1] if self.vouchers else None

    @property
    def last_voucher_result(self) -> EncodedVoucherResult | None:
        return self.voucher_results[-1] if self.voucher_results else None

    def evolve(self, **changes: Any) -> ChannelState:
        """A copy with `changes` applied (`dataclasses.replace`)."""
        return replace(self, **changes)

    # -- persistence ---------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """A JSON-able view; `from_dict(to_dict())` gives an equal state."""
        def encoded(items: tuple[EncodedVoucher, ...] | tuple[EncodedVoucherResult, ...]) -> list[dict[str, str]]:
            return [{"type": v.type_id, "data": base64.b64encode(v.data).decode()} for v in items]

        return {
            "transfer_id": self.transfer_id,
            "initiator": self.initiator,
            "responder": self.responder,
            "base_cid": str(self.base_cid),
            "selector": selector_to_node(self.selector),
            "sender": self.sender,
            "recipient": self.recipient,
            "self_peer": self.self_peer,
            "vouchers": encoded(self.vouchers),
            "voucher_results": encoded(self.voucher_results),
            "total_size": self.total_size,
            "status": int(self.status),
            "sent": self.sent,
            "received": self.received,
            "queued": self.queued,
            "message": self.message,
            "received_cids": [_cid_text(c) for c in self.received_cids],
            "sent_cids": [_cid_text(c) for c in self.sent_cids],
            "queued_cids": [_cid_text(c) for c in self.queued_cids],
        }

    @classmethod
    def from_dict(cls, data: Any) -> ChannelState:
        """Rebuild a state from `to_dict()` output; malformed input raises InvalidArgumentError."""
        if not isinstance(data, dict):
            raise InvalidArgumentError(f"channel state must be an object, got {type(data).__name__}")
        try:
            def text(key: str) -> str:
                value = data[key]
                if not isinstance(value, str):
                    raise InvalidArgumentError(f"channel state {key} must be a string: {value!r}")
                return value

            def encoded(key: str, kind: type[EncodedVoucher | EncodedVoucherResult]) -> tuple[Any, ...]:
                items = data[key]
                if not isinstance(items, list):
                    raise InvalidArgumentError(f"channel state {key} must be a list")
                out = []
                for item in items:
                    if not isinstance(item, dict) or not isinstance(item.get("data"), str) \
                            or not isinstance(item.get("type"), str):
                        raise InvalidArgumentError(f"channel state {key} entry is malformed: {item!r}")
                    out.append(kind(item["type"], base64.b64decode(item["data"], validate=True)))
                return tuple(out)

            def cids(key: str) -> CidSet:
                items = data[key]
                if not isinstance(items, list):
                    raise InvalidArgumentError(f"channel state {key} must be a list")
                return CidSet(_cid_from_text(text_cid) for text_cid in items)

            status = data["status"]
            if not isinstance(status, int) or isinstance(status, bool) or status not in Status._value2member_map_:
                raise InvalidArgumentError(f"channel state status is not a Status: {status!r}")
            return cls(
                transfer_id=_uint64(data["transfer_id"], "transfer_id"),
                initiator=text("initiator"),
                responder=text("responder"),
                base_cid=CID.parse(text("base_cid")),
                selector=parse_selector(data["selector"]),
                sender=text("sender"),
                recipient=text("recipient"),
                self_peer=text("self_peer"),
                vouchers=encoded("vouchers", EncodedVoucher),
                voucher_results=encoded("voucher_results", EncodedVoucherResult),
                total_size=_uint64(data["total_size"], "total_size"),
                status=Status(status),
                sent=_uint64(data["sent"], "sent"),
                received=_uint64(data["received"], "received"),
                queued=_uint64(data["queued"], "queued"),
                message=text("message"),
                received_cids=cids("received_cids"),
                sent_cids=cids("sent_cids"),
                queued_cids=cids("queued_cids"),
            )
        except KeyError as exc:
            raise InvalidArgumentError(f"channel state lacks {exc.args[0]!r}") from exc
        except ValueError as exc:  # bad base64 (binascii.Error)
            raise InvalidArgumentError(f"malformed channel state: {exc}") from exc
