"""`client.transfer`: a running node's data-transfer channels over its REST API
(api/rest/routes_transfer.py), with the methods, arguments and results of `node.transfer`.

Channel states arrive whole (`shapes.channel_state_json`: the summary and the CIDs behind its
counts) and are read back into the node's `ChannelState`; `wait` reads the node's stream of
a channel's events (`on_event` is called on the calling thread, as each arrives) and returns
the channel's state once it ended (or `timeout` passed).
"""

from __future__ import annotations

import base64
import builtins
import json
import urllib.parse
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from hoard.api import shapes
from hoard.errors import InvalidArgumentError, PeerError, error_for
from hoard.ids.cid import CID
from hoard.ids.peer import PeerId
from hoard.node.results import TransferEvent
from hoard.transfer.builtin import DefaultVoucher, TransferPolicy
from hoard.transfer.selector import selector_to_node
from hoard.transfer.types import ChannelID, ChannelState
from hoard.transfer.vouchers import EncodedVoucher

if TYPE_CHECKING:
    from hoard.api.client import NodeClient


def _voucher(value: Any) -> Any:
    """A voucher argument as JSON: None, the default voucher's text, or `{"type", "data" (base64)}`."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, DefaultVoucher):
        return value.text
    if isinstance(value, dict):
        return value
    if isinstance(value, EncodedVoucher):
        return {"type": value.type_id, "data": base64.b64encode(value.data).decode("ascii")}
    raise InvalidArgumentError(f'voucher must be text or {{"type", "data"}}: {value!r}')


def _quoted(chid: str | ChannelID) -> str:
    if not isinstance(chid, (str, ChannelID)):
        raise InvalidArgumentError(f"not a channel id (<initiator>-<responder>-<id>): {chid!r}")
    return urllib.parse.quote(str(chid).strip(), safe="")


class ClientTransfer:
    """`client.transfer`: the operations of `node.transfer`, on a running node."""

    def __init__(self, client: NodeClient) -> None:
        self._client = client

    def _state(self, method: str, path: str, **kwargs: Any) -> ChannelState:
        return shapes.channel_from_json(self._client._request(method, path, **kwargs).json())

    def open(self, peer: str | PeerId, cid: str | CID, direction: str = "pull", selector: Any = None,
             voucher: Any = None, addrs: builtins.list[str] | None = None) -> ChannelState:
        """Open a data-transfer channel with `peer` for `cid`; returns its state."""
        body = {"peer": str(peer), "cid": str(cid), "direction": direction, "selector": selector_to_node(selector),
                "voucher": _voucher(voucher), "addrs": list(addrs) if addrs else None}
        return self._state("POST", "/transfer/channels", json=body)

    def channels(self) -> builtins.list[ChannelState]:
        """Every channel the node knows (finished ones too), oldest first."""
        return [shapes.channel_from_json(c) for c in self._client._request("GET", "/transfer/channels").json()]

    def channel(self, chid: str | ChannelID) -> ChannelState:
        """One channel's state ("<initiator>-<responder>-<id>")."""
        return self._state("GET", f"/transfer/channels/{_quoted(chid)}")

    def pause(self, chid: str | ChannelID) -> ChannelState:
        """Pause a channel (our side); returns its state."""
        return self._state("POST", f"/transfer/channels/{_quoted(chid)}/pause")

    def resume(self, chid: str | ChannelID) -> ChannelState:
        """Resume a channel (our side); returns its state."""
        return self._state("POST", f"/transfer/channels/{_quoted(chid)}/resume")

    def cancel(self, chid: str | ChannelID) -> ChannelState:
        """Cancel a channel; returns its state."""
        return self._state("POST", f"/transfer/channels/{_quoted(chid)}/cancel")

    def restart(self, chid: str | ChannelID) -> ChannelState:
        """Restart an interrupted channel; returns its state."""
        return self._state("POST", f"/transfer/channels/{_quoted(chid)}/restart")

    def send_voucher(self, chid: str | ChannelID, voucher: Any = None) -> ChannelState:
        """Send a further voucher on a channel we initiated; returns its state."""
        return self._state("POST", f"/transfer/channels/{_quoted(chid)}/voucher", json={"voucher": _voucher(voucher)})

    def policy(self, push: bool | None = None, pull: bool | None = None,
               peers: builtins.list[str] | None = None, any_peer: bool = False) -> TransferPolicy:
        """The default voucher's policy (push, pull, peers); arguments change it (persisted)."""
        if push is None and pull is None and peers is None and not any_peer:
            return shapes.policy_from_json(self._client._request("GET", "/transfer/policy").json())
        body = {"push": push, "pull": pull, "peers": None if peers is None else [str(p) for p in peers],
                "anyPeer": bool(any_peer)}
        return shapes.policy_from_json(self._client._request("POST", "/transfer/policy", json=body).json())

    def wait(self, chid: str | ChannelID, on_event: Callable[[TransferEvent], None] | None = None,
             timeout: float | None = None) -> ChannelState:
        """Wait until a channel is Completed, Failed or Cancelled (or `timeout` seconds passed);
        its state then. `on_event(event)` for each of its events meanwhile (calling thread)."""
        params = {} if timeout is None else {"timeout": max(0.0, float(timeout))}
        response = self._client._send_stream("GET", f"/transfer/channels/{_quoted(chid)}/wait", params=params)
        try:
            with self._client._reaching():
                for line in response.iter_lines():
                    if not line.strip():
                        continue
                    data = json.loads(line)
                    kind = data.get("type") if isinstance(data, dict) else None
                    if kind == "event" and on_event is not None:
                        on_event(shapes.transfer_event_from_json(data["event"]))
                    elif kind == "channel":
                        return shapes.channel_from_json(data["channel"])
                    elif kind == "error":
                        raise error_for(str(data.get("error")), code=data.get("code"),
                                        http_status=data.get("httpStatus"))
        except (ValueError, KeyError) as exc:
            raise PeerError(f"the node answered a bad wait stream: {exc!r}") from exc
        finally:
            response.close()
        raise PeerError("the node ended the wait before the channel's state")
