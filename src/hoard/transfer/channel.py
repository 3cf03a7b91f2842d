"""A channel as the manager drives it, and the small values around it (limits, ids, JSON views)."""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import trio

from hoard.errors import InvalidArgumentError
from hoard.limits import TRANSFER_MAX_FINISHED_CHANNELS, TRANSFER_SEND_BUDGET
from hoard.transfer.selector import selector_to_node
from hoard.transfer.types import ChannelID, ChannelState

if TYPE_CHECKING:
    from hoard.transfer.session import Session

__all__ = ["ERR_DISCONNECTED", "Channel", "ChannelTransport", "TransferLimits", "channel_summary", "parse_channel_id"]

ERR_DISCONNECTED = "other peer appears to have hung up. restart Channel"  # Go's ErrDisconnected


@dataclass(frozen=True)
class TransferLimits:
    """Sizes and times of the data path."""

    batch_bytes: int = 4 << 20  # blocks per store read (sender) and per store commit (recipient)
    max_in_flight: int = 8 << 20  # data bytes queued on a stream and not yet written
    checkpoint_bytes: int = 16 << 20  # a sender persists its progress this often
    linger: float = 10.0  # how long a finished stream waits for the peer to close its side
    cancel_timeout: float = 30.0  # how long a Cancel message may take to go out
    max_finished: int = TRANSFER_MAX_FINISHED_CHANNELS  # finished channels kept (the oldest are forgotten)
    send_budget: int = TRANSFER_SEND_BUDGET  # bytes all sending channels together hold (read, not yet written)


class ChannelTransport:
    """What a transport configurer (`register_transport_configurer`) may set for one channel.

    `rate_limit`: bytes per second this node sends on the channel (None: as fast as it can).
    """

    def __init__(self, chid: ChannelID) -> None:
        self.chid = chid
        self.rate_limit: float | None = None


class Channel:
    """One channel as the manager drives it: its state, its stream, a wake-up for waiters."""

    def __init__(self, state: ChannelState) -> None:
        self.state = state
        self.session: Session | None = None
        self.changed = trio.Event()
        self.transport = ChannelTransport(state.channel_id)
        self.saved = {"s": len(state.sent_cids), "q": len(state.queued_cids)}

    @property
    def is_initiator(self) -> bool:
        return self.state.initiator == self.state.self_peer

    @property
    def is_sender(self) -> bool:
        return self.state.sender == self.state.self_peer


def parse_channel_id(value: ChannelID | str) -> ChannelID:
    """A ChannelID, or its text `"<initiator>-<responder>-<id>"`."""
    if isinstance(value, ChannelID):
        return value
    if isinstance(value, str):
        parts = value.strip().split("-")
        if len(parts) == 3 and parts[0] and parts[1] and parts[2].isdigit():
            return ChannelID(parts[0], parts[1], int(parts[2]))
    raise InvalidArgumentError(f"not a channel id (<initiator>-<responder>-<id>): {value!r}")


def channel_summary(state: ChannelState) -> dict[str, Any]:
    """A compact JSON view of a channel (CID lists as counts), for the APIs and the CLI."""
    def encoded(items: tuple[Any, ...]) -> list[dict[str, str]]:
        return [{"type": v.type_id, "data": base64.b64encode(v.data).decode()} for v in items]

    return {
        "id": str(state.channel_id), "initiator": state.initiator, "responder": state.responder,
        "transferId": state.transfer_id, "status": state.status.name, "statusCode": int(state.status),
        "isPull": state.is_pull, "baseCid": str(state.base_cid), "selector": selector_to_node(state.selector),
        "sender": state.sender, "recipient": state.recipient, "selfPeer": state.self_peer,
        "totalSize": state.total_size, "sent": state.sent, "received": state.received, "queued": state.queued,
        "message": state.message, "vouchers": encoded(state.vouchers),
        "voucherResults": encoded(state.voucher_results), "receivedBlocks": len(state.received_cids),
        "sentBlocks": len(state.sent_cids), "queuedBlocks": len(state.queued_cids),
    }
