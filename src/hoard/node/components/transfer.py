"""The transfer component: the go-data-transfer manager wired to the network and the store.

The manager (`hoard.transfer.Manager`, Go's `Manager` in snake_case) reads and writes through a
`ContentStorage` on the node's content store (channel states in the `transfer-*` metadata
tables), opens `/hoard/transfer/1` streams through the node's host, and runs while the node is
started. Every node registers `DefaultVoucher` with a `PolicyValidator` following the persisted
`TransferPolicy`: pulls accepted from any peer and pushes refused, unless the operator changed it
(`hoard transfer policy`); a stored policy naming invalid peers drops them with a warning. The JSON-shaped operations below
(`open`, `channels`, ...) open channels with `DefaultVoucher` unless given another voucher.
"""

from __future__ import annotations

import base64
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import trio

from hoard.errors import InvalidArgumentError
from hoard.ids.cid import CID
from hoard.ids.peer import PeerId
from hoard.node.component import StreamHandler
from hoard.node.components.net import NetComponent
from hoard.node.context import NodeContext
from hoard.node.results import TransferEvent
from hoard.transfer.builtin import DefaultVoucher, DefaultVoucherResult, PolicyValidator, TransferPolicy
from hoard.transfer.manager import Manager, parse_channel_id
from hoard.transfer.storage import ContentStorage
from hoard.transfer.types import ChannelID, ChannelState, Event, Status
from hoard.transfer.vouchers import EncodedVoucher
from hoard.transfer.wire import PROTOCOL

POLICY_KEY = "policy"
FINAL = (Status.Completed, Status.Failed, Status.Cancelled)


class NodeTransport:
    """`hoard.transfer.Transport` over the node's libp2p host."""

    def __init__(self, network: Any) -> None:
        self.network = network

    async def open_stream(self, peer: str) -> Any:
        peer_id = PeerId(peer)
        host = self.network.host
        if not host.is_connected(peer_id) and not host.known_addrs(peer_id):
            await self.network.connect(peer_id)  # find it in the DHT
        return await host.open_stream(peer_id, PROTOCOL)


def _voucher(value: Any) -> Any:
    """A voucher argument of the JSON operations: None/text (DefaultVoucher) or {"type", "data": base64}."""
    if value is None:
        return DefaultVoucher("")
    if isinstance(value, str):
        return DefaultVoucher(value)
    if isinstance(value, dict) and isinstance(value.get("type"), str):
        try:
            data = base64.b64decode(value.get("data") or "", validate=True)
        except ValueError as exc:
            raise InvalidArgumentError(f"voucher data must be base64: {exc}") from exc
        return EncodedVoucher(value["type"], data)
    if isinstance(value, (DefaultVoucher, EncodedVoucher)):
        return value
    raise InvalidArgumentError(f'voucher must be text or {{"type", "data"}}: {value!r}')


log = logging.getLogger("hoard.node.transfer")
_last_status: dict[str, str] = {}  # channel id -> the status last logged (a channel's data events are not logged)


def _log_state_change(event: Event, state: ChannelState) -> None:
    """DEBUG: a channel's status changed (INFO when it completed, failed or was cancelled)."""
    chid, status = str(state.channel_id), state.status.name
    if _last_status.get(chid) == status:
        return
    _last_status[chid] = status
    final = status in ("Completed", "Failed", "Cancelled")
    if final:
        _last_status.pop(chid, None)
    log.log(logging.INFO if final else logging.DEBUG, "transfer channel %s: %s (%s)", chid, status, event.code.name)


class TransferComponent:
    """The data-transfer manager and the JSON-shaped `transfer_*` operations; serves
    `/hoard/transfer/1` and runs the manager while the node is started (after the network)."""

    name = "transfer"

    def __init__(self, context: NodeContext, net: NetComponent) -> None:
        self._net = net
        self.storage = ContentStorage(context.content)
        self.manager = Manager(str(context.identity.peer_id), self.storage, on_dataset=context.events.dataset_stored)
        self.manager.load()
        self._policy = PolicyValidator(TransferPolicy.from_stored(self.storage.get_config(POLICY_KEY)))
        self.manager.register_voucher_type(DefaultVoucher, self._policy)
        self.manager.register_voucher_result_type(DefaultVoucherResult)
        self.manager.subscribe_to_events(_log_state_change)
        self.protocols: Mapping[str, StreamHandler] = {PROTOCOL: self._serve_transfer_stream}

    async def run(self, context: NodeContext, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        await self.manager.run(NodeTransport(self._net.require("run data transfers")), task_status)

    async def aclose(self) -> None:
        self.manager.close()

    async def _serve_transfer_stream(self, stream: Any) -> None:
        await self.manager.handle_stream(stream, PeerId(stream.muxed_conn.peer_id))

    # -- channel operations (DefaultVoucher unless told otherwise) ----------------------
    async def open(self, peer: str | PeerId, cid: str | CID, direction: str = "pull", selector: Any = None,
                   voucher: Any = None, addrs: list[str] | None = None) -> ChannelState:
        """Open a data-transfer channel with `peer` for `cid`; returns its state (`id` names it).

        `direction` "pull" (the peer sends us the data) or "push" (we send it); `selector` None
        (everything) or `{"range": [start, end]}` (blocks start..end-1); `voucher` None or text
        (a DefaultVoucher) or `{"type", "data": base64}`; `addrs` dials the peer first.
        """
        if direction not in ("pull", "push"):
            raise InvalidArgumentError(f'direction must be "pull" or "push": {direction!r}')
        if addrs:
            await self._net.connect(str(peer), addrs)
        manager = self.manager
        opener = manager.open_pull_data_channel if direction == "pull" else manager.open_push_data_channel
        chid = await opener(str(peer), _voucher(voucher), CID.parse(cid), selector)
        return manager.channel_state(chid)

    async def channels(self) -> list[ChannelState]:
        """Every channel this node knows (finished ones too), oldest first."""
        states = self.manager.in_progress_channels().values()
        return sorted(states, key=lambda s: s.transfer_id)

    async def channel(self, chid: str | ChannelID) -> ChannelState:
        """One channel's state (its id: "<initiator>-<responder>-<id>")."""
        return self.manager.channel_state(chid)

    async def _then_state(self, op: Callable[[Any], Awaitable[None]], chid: str | ChannelID) -> ChannelState:
        await op(parse_channel_id(chid))
        return self.manager.channel_state(chid)

    async def pause(self, chid: str | ChannelID) -> ChannelState:
        """Pause a channel (our side); returns its state."""
        return await self._then_state(self.manager.pause_data_transfer_channel, chid)

    async def resume(self, chid: str | ChannelID) -> ChannelState:
        """Resume a channel (our side); returns its state."""
        return await self._then_state(self.manager.resume_data_transfer_channel, chid)

    async def cancel(self, chid: str | ChannelID) -> ChannelState:
        """Cancel a channel; returns its state."""
        return await self._then_state(self.manager.close_data_transfer_channel, chid)

    async def restart(self, chid: str | ChannelID) -> ChannelState:
        """Restart an interrupted channel; returns its state."""
        return await self._then_state(self.manager.restart_data_transfer_channel, chid)

    async def send_voucher(self, chid: str | ChannelID, voucher: Any = None) -> ChannelState:
        """Send a further voucher on a channel we initiated; returns its state."""
        await self.manager.send_voucher(parse_channel_id(chid), _voucher(voucher))
        return self.manager.channel_state(chid)

    async def wait(self, chid: str | ChannelID, on_event: Callable[[TransferEvent], None] | None = None,
                   timeout: float | None = None) -> ChannelState:
        """Wait until the channel is Completed, Failed or Cancelled, or `timeout` seconds passed;
        returns its state then. `on_event(event)` is called for each of its events meanwhile, on
        the transfer events thread (it must not call the node and wait)."""
        wanted = parse_channel_id(chid)
        self.manager.channel_state(wanted)  # ErrChannelNotFound for an unknown channel
        token = trio.lowlevel.current_trio_token()
        finished = trio.Event()

        def wake() -> None:
            try:
                token.run_sync_soon(finished.set)
            except trio.RunFinishedError:  # the node closed meanwhile
                pass

        def subscriber(event: Event, state: ChannelState) -> None:
            if state.channel_id != wanted:
                return
            if on_event is not None:
                on_event(TransferEvent(wanted, event.code, state.status, state.message, event.timestamp))
            if state.status in FINAL:
                wake()

        unsubscribe = self.manager.subscribe_to_events(subscriber)
        try:
            if self.manager.channel_state(wanted).status not in FINAL:
                with trio.move_on_after(float("inf") if timeout is None else max(0.0, timeout)):
                    await finished.wait()
            return self.manager.channel_state(wanted)
        finally:
            unsubscribe()

    async def policy(self, push: bool | None = None, pull: bool | None = None,
               peers: list[str] | None = None, any_peer: bool = False) -> TransferPolicy:
        """The default voucher's policy (push, pull, peers); arguments change it (persisted).

        `push`/`pull`: accept pushes to us / pulls from us; `peers`: accept only these peers;
        `any_peer=True`: accept every peer again.
        """
        policy = self._policy.policy
        data = policy.to_json()
        for key, value in (("push", push), ("pull", pull)):
            if value is not None:
                data[key] = value
        if any_peer:
            data["peers"] = None
        elif peers is not None:
            data["peers"] = [str(PeerId(p)) for p in peers]
        updated = TransferPolicy.from_json(data)
        if updated != policy:
            await trio.to_thread.run_sync(self.storage.put_config, POLICY_KEY, updated.to_json())
            self._policy.policy = updated
        return updated
