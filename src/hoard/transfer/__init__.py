"""Data transfer, go-data-transfer v1.7 style: the sans-IO channel state machine and messages.

* `types` — `Status`, `EventCode` (numbered as Go's), `ChannelID`, `Event`, `ChannelState`;
* `vouchers` — `Voucher`/`VoucherResult` base classes, validator protocols, `TypeRegistry`;
* `errors` — `ErrPause`, `ErrResume`, `ErrRejected`, `ErrUnsupported`, `ErrChannelNotFound`, ...;
* `fsm` — the transition table, `apply`, `follow_up`, `block_events`/`apply_block`;
* `messages` — requests/responses with go-data-transfer 1.1's fields, canonical CBOR;
* `selector` — `BlockRange`, the block-range selector carried in requests.

Those are sans-IO. The manager that drives them is here too:

* `manager` — `Manager` (go-data-transfer's Manager), with `flows`, `datapath`, `session`,
  `wire` (`/hoard/transfer/1`), `plan` (which blocks move), `storage` (the node's store and
  the persisted channels) and `events` (subscribers on their own thread);
* `builtin` — `DefaultVoucher` and the `PolicyValidator` every node registers for it.

A node's manager is `node.data_transfer`. See docs/transfer.md.
"""

from hoard.transfer import fsm, messages
from hoard.transfer.builtin import (
    DefaultVoucher,
    DefaultVoucherResult,
    PolicyValidator,
    RejectionResult,
    TransferPolicy,
)
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
from hoard.transfer.manager import ChannelTransport, Manager, TransferLimits, parse_channel_id
from hoard.transfer.messages import (
    MessageType,
    Request,
    Response,
    decode_message,
    encode_message,
    response_from_validation,
)
from hoard.transfer.selector import BlockRange, Selector
from hoard.transfer.types import (
    ChannelID,
    ChannelState,
    EmptyTypeIdentifier,
    Event,
    EventCode,
    Status,
    TransferIDCounter,
    TypeIdentifier,
)
from hoard.transfer.vouchers import (
    EncodedVoucher,
    EncodedVoucherResult,
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
    "ChannelTransport",
    "CidSet",
    "DefaultVoucher",
    "DefaultVoucherResult",
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
    "Manager",
    "MessageType",
    "PolicyValidator",
    "RejectionResult",
    "Request",
    "RequestValidator",
    "Response",
    "Revalidator",
    "Selector",
    "Status",
    "TransferIDCounter",
    "TransferLimits",
    "TransferPolicy",
    "TransportConfigurer",
    "TypeIdentifier",
    "TypeRegistry",
    "Voucher",
    "VoucherResult",
    "decode_message",
    "encode_message",
    "fsm",
    "messages",
    "parse_channel_id",
    "response_from_validation",
]
