"""Data transfer, go-data-transfer v1.7 style: the sans-IO channel state machine and messages.

* `types` — `Status`, `EventCode` (numbered as Go's), `ChannelID`, `Event`, `ChannelState`;
* `vouchers` — `Voucher`/`VoucherResult` base classes, validator protocols, `TypeRegistry`;
* `errors` — `ErrPause`, `ErrResume`, `ErrRejected`, `ErrUnsupported`, `ErrChannelNotFound`, ...;
* `fsm` — the transition table, `apply`, `follow_up`, `block_events`/`apply_block`;
* `messages` — requests/responses with go-data-transfer 1.1's fields, canonical CBOR;
* `selector` — `BlockRange`, the block-range selector carried in requests.

Nothing here does I/O; the manager (`node.data_transfer`) drives it. See docs/transfer.md.
"""

from hoard.transfer import fsm, messages
from hoard.transfer.cidset import CidSet
from hoard.transfer.errors import (
    ErrChannelNotFound,
    ErrInvalidTransition,
    ErrPause,
    ErrRejected,
    ErrResume,
    ErrUnsupported,
)
from hoard.transfer.messages import (
    MessageType,
    Request,
    Response,
    decode_message,
    encode_message,
    response_from_validation,
)
from hoard.transfer.selector import BlockRange, Selector
from hoard.transfer.types import ChannelID, ChannelState, Event, EventCode, Status, TransferIDCounter
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
    "CidSet",
    "EncodedVoucher",
    "EncodedVoucherResult",
    "ErrChannelNotFound",
    "ErrInvalidTransition",
    "ErrPause",
    "ErrRejected",
    "ErrResume",
    "ErrUnsupported",
    "Event",
    "EventCode",
    "MessageType",
    "Request",
    "RequestValidator",
    "Response",
    "Revalidator",
    "Selector",
    "Status",
    "TransferIDCounter",
    "TransportConfigurer",
    "TypeRegistry",
    "Voucher",
    "VoucherResult",
    "decode_message",
    "encode_message",
    "fsm",
    "messages",
    "response_from_validation",
]
