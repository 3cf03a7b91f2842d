"""Data transfer in the node: the go-data-transfer manager wired to the network and the store.

`node.data_transfer` is the manager's API (Go's `Manager`, snake_case) as blocking methods
that run on the node's worker (`AsyncNode.data_transfer`: the same as coroutines); subscriber
callbacks run on the manager's events thread. The frontends (gRPC, CLI, REST) use the
JSON-shaped `transfer_*` operations below, which open channels with the built-in
`DefaultVoucher` unless given another voucher.

Wiring: the manager (`hoard.transfer.Manager`) reads and writes through a
`ContentStorage` on the node's content store (channel states in the `transfer-*` metadata
tables), opens `/hoard/transfer/1` streams through the node's host, and runs as a node service
while the node is started. Every node registers `DefaultVoucher` with a `PolicyValidator`
following the persisted `TransferPolicy` (accept everything unless configured).
"""

from __future__ import annotations

import asyncio
import base64
import functools
import sys
from collections.abc import Awaitable, Callable
from typing import Any

import trio

from hoard.errors import InvalidArgumentError
from hoard.ids.cid import CID
from hoard.ids.peer import PeerId
from hoard.node.core import api
from hoard.transfer.builtin import DefaultVoucher, DefaultVoucherResult, PolicyValidator, TransferPolicy
from hoard.transfer.manager import Manager, channel_summary, parse_channel_id
from hoard.transfer.storage import ContentStorage
from hoard.transfer.vouchers import EncodedVoucher
from hoard.transfer.wire import PROTOCOL

__all__ = ["AsyncDataTransfer", "DataTransfer", "TransferApi"]

POLICY_KEY = "policy"


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


class TransferService:
    """Runs the manager while the node is started (after the network service)."""

    name = "transfer"

    async def run(self, core: Any, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        await core.transfer_manager.run(NodeTransport(core.network), task_status)


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


class TransferApi:
    """`node.data_transfer` and the `transfer_*` operations."""

    transfer_manager: Manager

    def init_subsystem(self) -> None:
        core: Any = self
        storage = ContentStorage(core.content)
        self.transfer_manager = Manager(str(core.identity.peer_id), storage, on_dataset=core.announce)
        self.transfer_manager.load()
        self._transfer_policy = PolicyValidator(TransferPolicy.from_json(storage.get_config(POLICY_KEY)))
        self.transfer_manager.register_voucher_type(DefaultVoucher, self._transfer_policy)
        self.transfer_manager.register_voucher_result_type(DefaultVoucherResult)
        core.protocol_handlers[PROTOCOL] = self._serve_transfer_stream
        core.services.append(TransferService())
        _install_frontends()

    async def close_subsystem(self) -> None:
        self.transfer_manager.close()

    async def _serve_transfer_stream(self, stream: Any) -> None:
        await self.transfer_manager.handle_stream(stream, PeerId(stream.muxed_conn.peer_id))

    # -- JSON operations for the frontends -------------------------------------------
    @api
    async def transfer_open(self, peer: str, cid: str, direction: str = "pull", selector: Any = None,
                            voucher: Any = None, addrs: list[str] | None = None) -> dict[str, Any]:
        """Open a data-transfer channel with `peer` for `cid`; returns its state (`id` names it).

        `direction` "pull" (the peer sends us the data) or "push" (we send it); `selector` None
        (everything) or `{"range": [start, end]}` (blocks start..end-1); `voucher` None or text
        (a DefaultVoucher) or `{"type", "data": base64}`; `addrs` dials the peer first.
        """
        if direction not in ("pull", "push"):
            raise InvalidArgumentError(f'direction must be "pull" or "push": {direction!r}')
        if addrs:
            await self.connect(peer, addrs)  # type: ignore[attr-defined]
        manager = self.transfer_manager
        opener = manager.open_pull_data_channel if direction == "pull" else manager.open_push_data_channel
        chid = await opener(peer, _voucher(voucher), CID.parse(cid), selector)
        return channel_summary(manager.channel_state(chid))

    @api
    async def transfer_channels(self) -> list[dict[str, Any]]:
        """Every channel this node knows (finished ones too), oldest first."""
        states = self.transfer_manager.in_progress_channels().values()
        return [channel_summary(s) for s in sorted(states, key=lambda s: s.transfer_id)]

    @api
    async def transfer_channel(self, chid: str) -> dict[str, Any]:
        """One channel's state ("<initiator>-<responder>-<id>")."""
        return channel_summary(self.transfer_manager.channel_state(chid))

    async def _then_state(self, op: Callable[[Any], Awaitable[None]], chid: str) -> dict[str, Any]:
        await op(parse_channel_id(chid))
        return channel_summary(self.transfer_manager.channel_state(chid))

    @api
    async def transfer_pause(self, chid: str) -> dict[str, Any]:
        """Pause a channel (our side); returns its state."""
        return await self._then_state(self.transfer_manager.pause_data_transfer_channel, chid)

    @api
    async def transfer_resume(self, chid: str) -> dict[str, Any]:
        """Resume a channel (our side); returns its state."""
        return await self._then_state(self.transfer_manager.resume_data_transfer_channel, chid)

    @api
    async def transfer_cancel(self, chid: str) -> dict[str, Any]:
        """Cancel a channel; returns its state."""
        return await self._then_state(self.transfer_manager.close_data_transfer_channel, chid)

    @api
    async def transfer_restart(self, chid: str) -> dict[str, Any]:
        """Restart an interrupted channel; returns its state."""
        return await self._then_state(self.transfer_manager.restart_data_transfer_channel, chid)

    @api
    async def transfer_send_voucher(self, chid: str, voucher: Any = None) -> dict[str, Any]:
        """Send a further voucher on a channel we initiated; returns its state."""
        await self.transfer_manager.send_voucher(parse_channel_id(chid), _voucher(voucher))
        return channel_summary(self.transfer_manager.channel_state(chid))

    @api
    async def transfer_policy(self, push: bool | None = None, pull: bool | None = None,
                              peers: list[str] | None = None, any_peer: bool = False) -> dict[str, Any]:
        """The default voucher's policy `{push, pull, peers}`; arguments change it (persisted).

        `push`/`pull`: accept pushes to us / pulls from us; `peers`: accept only these peers;
        `any_peer=True`: accept every peer again.
        """
        policy = self._transfer_policy.policy
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
            storage: ContentStorage = self.transfer_manager.storage  # type: ignore[assignment]
            await trio.to_thread.run_sync(storage.put_config, POLICY_KEY, updated.to_json())
            self._transfer_policy.policy = updated
        return updated.to_json()


# -- node.data_transfer ------------------------------------------------------------------

_SYNC_METHODS = ("register_voucher_type", "register_revalidator", "register_voucher_result_type",
                 "register_transport_configurer", "transfer_channel_status", "channel_state",
                 "in_progress_channels", "subscribe_to_events", "decode_voucher", "decode_voucher_result")
_ASYNC_METHODS = ("open_push_data_channel", "open_pull_data_channel", "send_voucher",
                  "close_data_transfer_channel", "pause_data_transfer_channel", "resume_data_transfer_channel",
                  "restart_data_transfer_channel")


def _on_worker(manager: Manager, name: str) -> Callable[..., Awaitable[Any]]:
    method = getattr(manager, name)
    if name in _ASYNC_METHODS:
        return method

    async def call(*args: Any, **kwargs: Any) -> Any:
        return method(*args, **kwargs)

    return call


class DataTransfer:
    """`node.data_transfer`: the transfer manager's API, blocking (go-data-transfer's `Manager`).

    Call it from any thread except hoard's own worker (validators and revalidators run there,
    so they must not call it; subscribers run on the events thread and may). Methods:
    `register_voucher_type(voucher_cls, validator)`, `register_revalidator(voucher_cls,
    revalidator)`, `register_voucher_result_type(cls)`, `register_transport_configurer(voucher_cls,
    fn)`, `open_push_data_channel(to, voucher, base_cid, selector=None) -> ChannelID`,
    `open_pull_data_channel(...)`, `send_voucher(chid, voucher)`,
    `close_data_transfer_channel(chid)`, `pause_data_transfer_channel(chid)`,
    `resume_data_transfer_channel(chid)`, `restart_data_transfer_channel(chid)`,
    `transfer_channel_status(chid) -> Status`, `channel_state(chid) -> ChannelState`,
    `subscribe_to_events(fn) -> unsubscribe`, `in_progress_channels() -> {ChannelID: ChannelState}`,
    and `decode_voucher` / `decode_voucher_result` for the encoded ones a state holds.
    """

    def __init__(self, node: Any) -> None:
        self._node = node

    def __getattr__(self, name: str) -> Any:
        if name not in _SYNC_METHODS and name not in _ASYNC_METHODS:
            raise AttributeError(name)
        manager: Manager = self._node.core.transfer_manager
        worker = self._node._worker

        @functools.wraps(getattr(Manager, name))
        def method(*args: Any, **kwargs: Any) -> Any:
            return worker.call(functools.partial(_on_worker(manager, name), *args, **kwargs))

        return method

    def __dir__(self) -> list[str]:
        return sorted({*super().__dir__(), *_SYNC_METHODS, *_ASYNC_METHODS})


class AsyncDataTransfer(DataTransfer):
    """`AsyncNode.data_transfer`: the same methods as `DataTransfer`, as asyncio coroutines."""

    def __getattr__(self, name: str) -> Any:
        if name not in _SYNC_METHODS and name not in _ASYNC_METHODS:
            raise AttributeError(name)
        manager: Manager = self._node.core.transfer_manager
        worker = self._node._worker

        @functools.wraps(getattr(Manager, name))
        async def method(*args: Any, **kwargs: Any) -> Any:
            future = worker.submit(functools.partial(_on_worker(manager, name), *args, **kwargs))
            return await asyncio.wrap_future(future)

        return method


def _install_frontends() -> None:
    """Give `hoard.Node` and `hoard.AsyncNode` their `data_transfer` property (once)."""
    module = sys.modules.get("hoard.node.node")
    if module is None or isinstance(getattr(module.Node, "data_transfer", None), property):
        return
    module.Node.data_transfer = property(DataTransfer, doc=DataTransfer.__doc__)
    module.AsyncNode.data_transfer = property(AsyncDataTransfer, doc=AsyncDataTransfer.__doc__)
