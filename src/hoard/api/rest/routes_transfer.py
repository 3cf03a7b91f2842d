"""Data-transfer channels over REST (hoard's addition, under the API base): what `node.transfer` offers.

* `GET /transfer/channels` — every channel the node knows, finished ones too, oldest first.
* `POST /transfer/channels` — open one (`{peer, cid, direction, selector, voucher, addrs}`).
* `GET /transfer/channels/{id}` — one channel.
* `POST /transfer/channels/{id}/pause|resume|cancel|restart` — act on it; its state after.
* `POST /transfer/channels/{id}/voucher` — send a further voucher (`{voucher}`).
* `GET /transfer/channels/{id}/wait?timeout=S` — NDJSON: the channel's events as they happen
  (`{"type": "event", "event": {...}}`), `{"type": "ping"}` while idle, and last
  `{"type": "channel", "channel": {...}}`: its state once Completed, Failed or Cancelled (or
  when `timeout` seconds passed).
* `GET /transfer/policy`, `POST /transfer/policy` (`{push, pull, peers, anyPeer}`) — which
  default-voucher transfers the node accepts.

A channel is `shapes.channel_state_json`: the summary every frontend prints (`channel_json`)
plus the CIDs behind its block counts, so the client rebuilds the node's `ChannelState`.

Every handler awaits the node's typed surface (`node.transfer.*`). A wait is a series of
`node.transfer.wait(id, on_event, timeout=PING_SECONDS)` calls, so a client that goes away
leaves at most one short wait behind on the node; events between the calls are not repeated,
and at most `MAX_QUEUED_EVENTS` events wait for a slow client (older ones are dropped: the
final state is always sent).
"""

from __future__ import annotations

import asyncio
import collections
import json
import time
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Body, Path, Query
from fastapi.responses import JSONResponse, Response, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field

from hoard.api import shapes
from hoard.api.rest.responses import errors
from hoard.errors import HoardError
from hoard.node.async_node import AsyncNode
from hoard.node.results import TransferEvent
from hoard.transfer.types import ChannelState, Status

PING_SECONDS = 10.0
MAX_QUEUED_EVENTS = 4096
NDJSON = "application/x-ndjson"
FINAL = (Status.Completed, Status.Failed, Status.Cancelled)

ChannelPath = Annotated[str, Path(description='A channel id: "<initiator>-<responder>-<transfer id>"')]


class OpenChannel(BaseModel):
    model_config = ConfigDict(strict=True)  # JSON as typed: 0 is not false

    peer: str = Field(description="The other peer's ID")
    cid: str = Field(description="A dataset's manifest CID, or a block CID")
    direction: str = Field(default="pull", pattern="^(pull|push)$")
    selector: dict[str, Any] | None = Field(default=None, description='null (everything) or {"range": [start, end]}')
    voucher: str | dict[str, Any] | None = Field(
        default=None, description='The default voucher\'s text, or {"type", "data" (base64)}')
    addrs: list[str] | None = Field(default=None, description="Dial the peer at these multiaddrs first")


class SendVoucher(BaseModel):
    model_config = ConfigDict(strict=True)  # JSON as typed: 0 is not false

    voucher: str | dict[str, Any] | None = None


class Policy(BaseModel):
    model_config = ConfigDict(strict=True)  # JSON as typed: 0 is not false

    push: bool | None = None
    pull: bool | None = None
    peers: list[str] | None = None
    anyPeer: bool = False


def _state(state: ChannelState) -> Response:
    return JSONResponse(shapes.channel_state_json(state))


def transfer_router(node: AsyncNode) -> APIRouter:
    """The `/transfer...` routes, bound to `node`."""
    router = APIRouter(tags=["Transfer"])
    channel_doc: dict[int | str, dict[str, Any]] = {200: {"description": "The channel's state"}}

    @router.get("/transfer/channels", operation_id="listChannels",
                summary="Every data-transfer channel of the node, finished ones too (hoard)",
                responses={200: {"description": "The channels' states, oldest first"}, **errors()})
    async def channels() -> Response:
        return JSONResponse([shapes.channel_state_json(s) for s in await node.transfer.channels()])

    @router.post("/transfer/channels", operation_id="openChannel",
                 summary="Open a data-transfer channel with a peer (hoard)",
                 responses={**channel_doc, **errors(400, 404, 409, 503)})
    async def open_channel(body: Annotated[OpenChannel, Body()]) -> Response:
        return _state(await node.transfer.open(body.peer, body.cid, body.direction, body.selector, body.voucher,
                                               body.addrs))

    @router.get("/transfer/channels/{chid}", operation_id="getChannel", summary="One channel's state (hoard)",
                responses={**channel_doc, **errors(400, 404)})
    async def channel(chid: ChannelPath) -> Response:
        return _state(await node.transfer.channel(chid))

    @router.post("/transfer/channels/{chid}/pause", operation_id="pauseChannel",
                 summary="Pause a channel (our side) (hoard)", responses={**channel_doc, **errors(400, 404, 409)})
    async def pause(chid: ChannelPath) -> Response:
        return _state(await node.transfer.pause(chid))

    @router.post("/transfer/channels/{chid}/resume", operation_id="resumeChannel",
                 summary="Resume a channel paused by our side (hoard)", responses={**channel_doc, **errors(400, 404, 409)})
    async def resume(chid: ChannelPath) -> Response:
        return _state(await node.transfer.resume(chid))

    @router.post("/transfer/channels/{chid}/cancel", operation_id="cancelChannel",
                 summary="Cancel a channel (hoard)", responses={**channel_doc, **errors(400, 404, 409)})
    async def cancel(chid: ChannelPath) -> Response:
        return _state(await node.transfer.cancel(chid))

    @router.post("/transfer/channels/{chid}/restart", operation_id="restartChannel",
                 summary="Restart an interrupted channel (hoard)", responses={**channel_doc, **errors(400, 404, 409)})
    async def restart(chid: ChannelPath) -> Response:
        return _state(await node.transfer.restart(chid))

    @router.post("/transfer/channels/{chid}/voucher", operation_id="sendVoucher",
                 summary="Send a further voucher on a channel this node opened (hoard)",
                 responses={**channel_doc, **errors(400, 404, 409)})
    async def voucher(chid: ChannelPath, body: Annotated[SendVoucher, Body()]) -> Response:
        return _state(await node.transfer.send_voucher(chid, body.voucher))

    @router.get("/transfer/channels/{chid}/wait", operation_id="waitChannel", response_class=StreamingResponse,
                summary="A channel's events as NDJSON until it ends, then its state (hoard)",
                responses={200: {"description": "`event` and `ping` lines, then one `channel` line",
                                 "content": {NDJSON: {"schema": {"type": "string"}}}}, **errors(400, 404)})
    async def wait(chid: ChannelPath, timeout: Annotated[float | None, Query(ge=0, le=1e9, description="Seconds")] = None) -> Response:
        await node.transfer.channel(chid)  # an unknown channel answers 404 before the stream starts
        return StreamingResponse(_wait(node, chid, timeout), media_type=NDJSON, headers={"Cache-Control": "no-store"})

    @router.get("/transfer/policy", operation_id="getTransferPolicy", tags=["Transfer"],
                summary="Which default-voucher transfers the node accepts (hoard)",
                responses={200: {"description": "`{push, pull, peers}` (`peers` null: any peer)"}, **errors()})
    async def get_policy() -> Response:
        return JSONResponse(shapes.policy_json(await node.transfer.policy()))

    @router.post("/transfer/policy", operation_id="setTransferPolicy",
                 summary="Change which default-voucher transfers the node accepts (persisted) (hoard)",
                 responses={200: {"description": "The policy now: `{push, pull, peers}`"}, **errors(400)})
    async def set_policy(body: Annotated[Policy, Body()]) -> Response:
        return JSONResponse(shapes.policy_json(await node.transfer.policy(body.push, body.pull, body.peers,
                                                                          body.anyPeer)))

    return router


def _line(value: dict[str, Any]) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode() + b"\n"


async def _wait(node: AsyncNode, chid: str, timeout: float | None) -> AsyncIterator[bytes]:
    """The lines of a wait (module docstring): events sent as they arrive, while slices of
    `node.transfer.wait` run."""
    loop = asyncio.get_running_loop()
    events: collections.deque[TransferEvent] = collections.deque(maxlen=MAX_QUEUED_EVENTS)
    arrived = asyncio.Event()

    def put(event: TransferEvent) -> None:  # on the loop
        events.append(event)
        arrived.set()

    def on_event(event: TransferEvent) -> None:  # on the transfer events thread
        try:
            loop.call_soon_threadsafe(put, event)
        except RuntimeError:  # the server's loop is closed
            pass

    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        left = PING_SECONDS if deadline is None else min(PING_SECONDS, max(0.0, deadline - time.monotonic()))
        waiting = asyncio.ensure_future(node.transfer.wait(chid, on_event, left))
        sent = False
        try:
            while True:
                if not events:
                    arrival = asyncio.ensure_future(arrived.wait())
                    await asyncio.wait({waiting, arrival}, return_when=asyncio.FIRST_COMPLETED)
                    arrival.cancel()
                arrived.clear()
                sent = sent or bool(events)
                while events:
                    yield _line({"type": "event", "event": shapes.transfer_event_json(events.popleft())})
                if waiting.done():
                    break
        finally:
            waiting.cancel()  # the client went away: the node's wait ends by itself within its slice
        try:
            state = waiting.result()
        except HoardError as exc:  # the stream has started: the error is its last line
            yield _line({"type": "error", "error": exc.message, "code": str(exc.code), "httpStatus": exc.http_status})
            return
        await asyncio.sleep(0)  # events handed over as the wait returned are queued before its result
        while events:
            sent = True
            yield _line({"type": "event", "event": shapes.transfer_event_json(events.popleft())})
        if state.status in FINAL or (deadline is not None and time.monotonic() >= deadline):
            yield _line({"type": "channel", "channel": shapes.channel_state_json(state)})
            return
        if not sent:
            yield _line({"type": "ping"})


__all__ = ["transfer_router"]
