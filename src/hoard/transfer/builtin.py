"""hoard's built-in voucher, its results, and the policy validator every node registers for it.

The CLI and the gRPC API open transfers with `DefaultVoucher` unless told otherwise. The
validator for it, `PolicyValidator`, follows the node's `TransferPolicy`: by default pulls
are accepted (a peer takes data this node serves anyway) and **pushes are refused** (a push
stores a peer's data here); an operator accepts pushes explicitly (`hoard transfer policy
--push accept`, persisted), and may refuse pulls or accept only a list of peers. A refused request is answered with a `RejectionResult` naming the reason.

`RejectionResult` is also how any validator's reason travels: when a validator (or
revalidator) rejects with an error and no voucher result of its own, the manager answers with
a `RejectionResult` carrying the error text, and the initiator's channel fails with Go's
"response rejected" (the reason is the channel's last voucher result).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from hoard.content.manifest import escape_text
from hoard.errors import InvalidArgumentError, TransferError
from hoard.ids.cid import CID
from hoard.ids.peer import PeerId
from hoard.transfer.selector import Selector
from hoard.transfer.types import ChannelID
from hoard.transfer.vouchers import Voucher, VoucherResult

log = logging.getLogger("hoard.transfer")

__all__ = ["DefaultVoucher", "DefaultVoucherResult", "PolicyValidator", "RejectionResult", "TransferPolicy"]


class _Text:
    """A voucher (result) whose encoding is one UTF-8 text."""

    def __init__(self, text: str = "") -> None:
        if not isinstance(text, str):
            raise InvalidArgumentError(f"{type(self).__name__} text must be a string: {text!r}")
        self.text = text

    def to_bytes(self) -> bytes:
        return self.text.encode()

    @classmethod
    def from_bytes(cls, data: bytes) -> Any:
        return cls(bytes(data).decode())

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and other.text == self.text

    def __hash__(self) -> int:
        return hash((type(self), self.text))

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.text!r})"


class DefaultVoucher(_Text, Voucher):
    """The built-in voucher: an optional note (free text, e.g. who asks and why)."""

    type_id = "hoard/transfer/voucher/1"


class DefaultVoucherResult(_Text, VoucherResult):
    """The built-in validator's answer to an accepted request."""

    type_id = "hoard/transfer/voucher-result/1"


class RejectionResult(_Text, VoucherResult):
    """Why a request (or a voucher) was rejected."""

    type_id = "hoard/transfer/rejection/1"


@dataclass(frozen=True)
class TransferPolicy:
    """Which requests with the default voucher a node accepts.

    `push`/`pull`: accept requests that send us data / take data from us. `peers`: None for
    any peer, else the only peers accepted (peer-ID text). Pushes are refused unless an
    operator turns them on: accepting them lets any peer store data on this node.
    """

    push: bool = False
    pull: bool = True
    peers: frozenset[str] | None = None

    def to_json(self) -> dict[str, Any]:
        return {"push": self.push, "pull": self.pull, "peers": None if self.peers is None else sorted(self.peers)}

    @classmethod
    def from_json(cls, data: Any) -> TransferPolicy:
        if data is None:
            return cls()
        if not isinstance(data, dict):
            raise InvalidArgumentError(f"transfer policy must be an object: {data!r}")
        peers = data.get("peers")
        if peers is not None and (not isinstance(peers, list) or not all(isinstance(p, str) for p in peers)):
            raise InvalidArgumentError(f"transfer policy peers must be a list of peer IDs: {peers!r:.200}")
        for peer in peers or ():
            _check_peer(peer)
        for key in ("push", "pull"):
            if not isinstance(data.get(key, False), bool):
                raise InvalidArgumentError(f"transfer policy {key} must be true or false")
        return cls(bool(data.get("push", False)), bool(data.get("pull", True)),
                   None if peers is None else frozenset(peers))

    @classmethod
    def from_stored(cls, data: Any) -> TransferPolicy:
        """The policy a node stored, read leniently so that it never stops the node from starting:
        peers that are not valid peer IDs are dropped, and a policy that is still invalid is
        replaced by the default (pulls from anyone, pushes refused); each with a warning."""
        try:
            return cls.from_json(data)
        except InvalidArgumentError as exc:
            problem = exc.message
        if isinstance(data, dict) and isinstance(data.get("peers"), list):
            kept = [p for p in data["peers"] if isinstance(p, str) and _valid_peer(p)]
            dropped = len(data["peers"]) - len(kept)
            try:
                policy = cls.from_json({**data, "peers": kept})
            except InvalidArgumentError as exc:
                problem = exc.message
            else:
                log.warning("the stored transfer policy names %d invalid peer ID(s): dropped (%s)", dropped,
                            escape_text(problem))
                return policy
        log.warning("the stored transfer policy is invalid (%s): using the default (pulls accepted, pushes refused)",
                    escape_text(problem))
        return cls()


def _valid_peer(text: str) -> bool:
    try:
        _check_peer(text)
    except Exception:  # noqa: BLE001 - any failure to parse is an invalid peer ID
        return False
    return True


def _check_peer(text: str) -> None:
    """A peer ID's bytes are a multihash: identity (an inlined key) or sha2-256."""
    raw = PeerId(text).to_bytes()
    if not ((len(raw) > 2 and raw[0] == 0x00 and raw[1] == len(raw) - 2)
            or (len(raw) == 34 and raw[:2] == b"\x12\x20")):
        raise InvalidArgumentError(f"invalid peer id in the transfer policy: {text!r:.80}", peer_id=text[:80])


class PolicyValidator:
    """The `RequestValidator` for `DefaultVoucher`: applies the node's current `TransferPolicy`."""

    def __init__(self, policy: TransferPolicy | None = None) -> None:
        self.policy = policy or TransferPolicy()

    def _check(self, allowed: bool, kind: str, peer: str) -> DefaultVoucherResult:
        if not allowed:
            raise TransferError(f"this node does not accept {kind} transfers")
        if self.policy.peers is not None and peer not in self.policy.peers:
            raise TransferError(f"this node does not accept transfers from {peer}")
        return DefaultVoucherResult("accepted")

    def validate_push(self, is_restart: bool, chid: ChannelID, sender: str, voucher: Voucher,
                      base_cid: CID, selector: Selector) -> VoucherResult | None:
        return self._check(self.policy.push, "push", sender)

    def validate_pull(self, is_restart: bool, chid: ChannelID, receiver: str, voucher: Voucher,
                      base_cid: CID, selector: Selector) -> VoucherResult | None:
        return self._check(self.policy.pull, "pull", receiver)
