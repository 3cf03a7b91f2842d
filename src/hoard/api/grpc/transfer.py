"""`hoard.v1.TransferService` over a node: data-transfer channels for clients in any language.

Thin, as the other servicers: validate, call the node's `transfer_*` operations (or
`node.data_transfer` for the event stream), map errors. `TransferClient` is the matching
client (the CLI uses the REST routes, through `NodeClient.transfer`). proto/hoard/v1/transfer.proto
has the contract.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, Self

import grpc

from hoard.api import shapes
from hoard.api.grpc.protos import load
from hoard.api.grpc.status import status_on_error
from hoard.api.grpc.streams import StreamQueue
from hoard.errors import HoardError, TransferError
from hoard.transfer import ChannelState, EventCode, Status
from hoard.transfer.manager import parse_channel_id

if TYPE_CHECKING:
    from hoard.node.node import NodeBase

messages, services = load("hoard/v1/transfer.proto")

SERVICE_NAME = "hoard.v1.TransferService"
BLOCK_EVENTS = frozenset({EventCode.DataQueued, EventCode.DataSent, EventCode.DataReceived,
                          EventCode.DataQueuedProgress, EventCode.DataSentProgress, EventCode.DataReceivedProgress})
FINAL = frozenset({Status.Completed, Status.Failed, Status.Cancelled})
EVENT_BYTES = 1024  # what one queued event is counted as (its channel state, vouchers included, is bounded)


def channel_message(state: ChannelState) -> Any:
    """A `Channel` message for a channel's state (its JSON view: `hoard.api.shapes.channel_json`)."""
    summary = shapes.channel_json(state)
    def vouchers(items: list[dict[str, str]]) -> list[Any]:
        return [messages.Voucher(type=v["type"], data=base64.b64decode(v["data"])) for v in items]

    out = messages.Channel(
        channel_id=summary["id"], initiator=summary["initiator"], responder=summary["responder"],
        transfer_id=summary["transferId"], status=summary["status"], status_code=summary["statusCode"],
        is_pull=summary["isPull"], base_cid=summary["baseCid"], sender=summary["sender"],
        recipient=summary["recipient"], self_peer=summary["selfPeer"], total_size=summary["totalSize"],
        sent=summary["sent"], received=summary["received"], queued=summary["queued"], message=summary["message"],
        vouchers=vouchers(summary["vouchers"]), voucher_results=vouchers(summary["voucherResults"]),
        received_blocks=summary["receivedBlocks"], sent_blocks=summary["sentBlocks"],
        queued_blocks=summary["queuedBlocks"],
    )
    if summary["selector"] is not None:
        start, end = summary["selector"]["range"]
        out.range.CopyFrom(messages.BlockRange(start=start, end=end))
    return out


def _voucher(message: Any, note: str, present: bool) -> Any:
    if present:
        return {"type": message.type, "data": base64.b64encode(message.data).decode()}
    return note


if TYPE_CHECKING:  # the generated base, loaded at run time, only answers UNIMPLEMENTED
    _Servicer = object
else:
    _Servicer = services.TransferServiceServicer


class TransferServicer(_Servicer):
    """TransferService backed by a `hoard.Node` (`transfer_*` and `data_transfer`)."""

    def __init__(self, node: NodeBase) -> None:
        self.node = node.as_sync()  # gRPC handlers run on gRPC's threads: the blocking face

    def _open(self, request: Any, context: grpc.ServicerContext, direction: str) -> Any:
        with status_on_error(context, f"Open{direction.title()}"):
            selector = {"range": [request.range.start, request.range.end]} if request.HasField("range") else None
            summary = self.node.transfer.open(request.peer, request.cid, direction, selector,
                                              _voucher(request.voucher, request.note, request.HasField("voucher")),
                                              list(request.addrs) or None)
            return channel_message(summary)

    def OpenPull(self, request: Any, context: grpc.ServicerContext) -> Any:
        return self._open(request, context, "pull")

    def OpenPush(self, request: Any, context: grpc.ServicerContext) -> Any:
        return self._open(request, context, "push")

    def SendVoucher(self, request: Any, context: grpc.ServicerContext) -> Any:
        with status_on_error(context, "SendVoucher"):
            voucher = _voucher(request.voucher, request.note, request.HasField("voucher"))
            return channel_message(self.node.transfer.send_voucher(request.channel_id, voucher))

    def _on_channel(self, op: str, request: Any, context: grpc.ServicerContext) -> Any:
        with status_on_error(context, op):
            return channel_message(getattr(self.node.transfer, op.lower())(request.channel_id))

    def Pause(self, request: Any, context: grpc.ServicerContext) -> Any:
        return self._on_channel("Pause", request, context)

    def Resume(self, request: Any, context: grpc.ServicerContext) -> Any:
        return self._on_channel("Resume", request, context)

    def Cancel(self, request: Any, context: grpc.ServicerContext) -> Any:
        return self._on_channel("Cancel", request, context)

    def Restart(self, request: Any, context: grpc.ServicerContext) -> Any:
        return self._on_channel("Restart", request, context)

    def GetChannel(self, request: Any, context: grpc.ServicerContext) -> Any:
        with status_on_error(context, "GetChannel"):
            return channel_message(self.node.transfer.channel(request.channel_id))

    def ListChannels(self, request: Any, context: grpc.ServicerContext) -> Any:
        with status_on_error(context, "ListChannels"):
            return messages.ListChannelsResponse(channels=[channel_message(c) for c in self.node.transfer.channels()])

    def Events(self, request: Any, context: grpc.ServicerContext) -> Iterator[Any]:
        with status_on_error(context, "Events"):
            wanted = parse_channel_id(request.channel_id) if request.channel_id else None
            events: StreamQueue[tuple[Any, Any]] = StreamQueue(context, "Events")

            def on_event(event: Any, state: Any) -> None:
                if (wanted is None or state.channel_id == wanted) and \
                        (request.include_blocks or event.code not in BLOCK_EVENTS):
                    events.put((event, state), EVENT_BYTES)  # a client that does not read is ended

            unsubscribe = self.node.data_transfer.subscribe_to_events(on_event)
            try:
                if wanted is not None and request.end_when_done:
                    state = self.node.data_transfer.channel_state(wanted)
                    if state.status in FINAL:
                        return
                for event, state in events:
                    yield messages.TransferEvent(code=int(event.code), name=event.code.name, message=event.message,
                                                 timestamp_ns=int(event.timestamp.timestamp() * 1e9),
                                                 channel=channel_message(state))
                    if request.end_when_done and wanted is not None and state.status in FINAL:
                        return
            finally:
                events.close()
                unsubscribe()

    def Policy(self, request: Any, context: grpc.ServicerContext) -> Any:
        with status_on_error(context, "Policy"):
            kwargs: dict[str, Any] = {}
            if request.HasField("push"):
                kwargs["push"] = request.push
            if request.HasField("pull"):
                kwargs["pull"] = request.pull
            if request.set_peers:
                if request.peers:
                    kwargs["peers"] = list(request.peers)
                else:
                    kwargs["any_peer"] = True
            policy = self.node.transfer.policy(**kwargs)
            return messages.PolicyResponse(push=policy.push, pull=policy.pull, peers=sorted(policy.peers or ()),
                                           any_peer=policy.peers is None)


def add(server: grpc.Server, node: Any) -> None:
    services.add_TransferServiceServicer_to_server(TransferServicer(node), server)


class TransferClient:
    """The transfer service of a running node at `address` (host:port). Close it after use.

    Methods return `Channel` messages (or lists of them); `events` yields `TransferEvent`s.
    """

    def __init__(self, address: str, token: str | None = None) -> None:
        from hoard.api.grpc.client import with_token

        self.address = address
        self._channel = with_token(grpc.insecure_channel(address), token)  # token: the node's api-token
        self._stub = services.TransferServiceStub(self._channel)

    def close(self) -> None:
        self._channel.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _error(self, exc: grpc.RpcError) -> HoardError:
        from hoard.api.grpc.client import error_from_rpc

        if exc.code() == grpc.StatusCode.ABORTED:
            return TransferError(exc.details() or "transfer error")
        return error_from_rpc(exc, self.address)

    def _call(self, method: Any, request: Any) -> Any:
        try:
            return method(request)
        except grpc.RpcError as exc:
            raise self._error(exc) from None

    def open(self, direction: str, peer: str, cid: str, *, start: int | None = None, end: int | None = None,
             note: str = "", voucher: tuple[str, bytes] | None = None, addrs: list[str] | None = None) -> Any:
        request = messages.OpenRequest(peer=peer, cid=cid, note=note, addrs=addrs or [])
        if start is not None or end is not None:
            request.range.CopyFrom(messages.BlockRange(start=start or 0, end=end if end is not None else 2**63 - 1))
        if voucher is not None:
            request.voucher.CopyFrom(messages.Voucher(type=voucher[0], data=voucher[1]))
        method = self._stub.OpenPull if direction == "pull" else self._stub.OpenPush
        return self._call(method, request)

    def channel(self, op: str, channel_id: str) -> Any:
        """`op` one of Pause, Resume, Cancel, Restart, GetChannel."""
        return self._call(getattr(self._stub, op), messages.ChannelRequest(channel_id=channel_id))

    def send_voucher(self, channel_id: str, note: str = "", voucher: tuple[str, bytes] | None = None) -> Any:
        request = messages.SendVoucherRequest(channel_id=channel_id, note=note)
        if voucher is not None:
            request.voucher.CopyFrom(messages.Voucher(type=voucher[0], data=voucher[1]))
        return self._call(self._stub.SendVoucher, request)

    def list(self) -> list[Any]:
        return list(self._call(self._stub.ListChannels, messages.ListChannelsRequest()).channels)

    def policy(self, **fields: Any) -> Any:
        return self._call(self._stub.Policy, messages.PolicyRequest(**fields))

    def events(self, channel_id: str = "", *, include_blocks: bool = False, end_when_done: bool = False) -> Iterator[Any]:
        """TransferEvent messages (closing the iterator cancels the stream)."""
        responses = self._stub.Events(messages.EventsRequest(channel_id=channel_id, include_blocks=include_blocks,
                                                             end_when_done=end_when_done))
        try:
            yield from responses
        except grpc.RpcError as exc:
            if exc.code() != grpc.StatusCode.CANCELLED:
                raise self._error(exc) from None
        finally:
            responses.cancel()
