"""castore blobs over REST (hoard's addition, under the API base): what `node.blobs` offers.

* `POST /blobs` — store the request body as a blob (streamed); `{digest, hex, size, manifest, chunks}`.
* `GET /blobs/{digest}/stat?chunks=true` — a blob's size, manifest CID and chunk list.
* `GET /blobs/{digest}` — the blob's bytes (or one chunk's, by its digest), streamed, with
  `Content-Length`.

A digest is `b3:<base64>` (as printed; its `/` may stay as is) or 64 hex digits. Every handler
awaits the node's typed surface (`node.blobs.*`), and errors answer by the hoard error mapping.

Bodies stream both ways with bounded memory: a put's body is handed to the node as it arrives,
through a `BodyFeed` that holds at most `FEED_BYTES` ahead of the node (which reads a few pieces
ahead in its own thread); a client that goes away, or a body that stalls, fails the put and
nothing of it is kept. A read sends the node's `NodeStream` pieces (≤ 1 MiB, a few MiB read
ahead), and closes that stream whether or not the client read to the end.
"""

from __future__ import annotations

import asyncio
import collections
import threading
from collections.abc import AsyncGenerator, Awaitable, Iterator
from typing import Annotated, Any, Generic, TypeVar

import anyio
from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from starlette.requests import ClientDisconnect

from hoard.api import shapes
from hoard.api.rest.bridge import settle
from hoard.api.rest.responses import OCTETS, errors
from hoard.errors import PeerError
from hoard.node.async_node import AsyncNode
from hoard.node.streams import NodeStream

T = TypeVar("T")

PIECE = 1 << 20  # body bytes joined into one piece for the node
FEED_BYTES = 8 << 20  # body bytes received ahead of the node (at least one piece)
DRAIN_BYTES = 64 << 20  # bytes of a refused body read and dropped before answering

DigestPath = Annotated[str, Path(description="A blob digest: b3:<base64> or 64 hex digits",
                                 examples=["b3:rkS0vqWeQ5s/gd+5cGM4ZDBhcm2Vyqa0MxJZGmOh2nk="])]


class BodyFeed(Generic[T]):
    """Items received on the server's loop, consumed by a node thread (`for item in feed`).

    `put` waits while `limit` bytes are queued (one item always fits), so a fast client never
    runs ahead of the node. `end()` ends the iteration; `fail(exc)` makes the consumer's next
    pull raise `exc`, which the node's call then raises (and drops what it stored).
    """

    def __init__(self, size: Any, limit: int = FEED_BYTES) -> None:
        self._loop = asyncio.get_running_loop()
        self._size = size
        self._limit = limit
        self._items: collections.deque[T] = collections.deque()
        self._queued = 0
        self._cond = threading.Condition()
        self._space = asyncio.Event()
        self._ended = False
        self._error: BaseException | None = None

    async def put(self, item: T, call: Awaitable[Any]) -> bool:
        """Queue `item` once there is room; False (nothing queued) if `call` ended meanwhile."""
        while True:
            with self._cond:
                if not self._items or self._queued + self._size(item) <= self._limit:
                    self._items.append(item)
                    self._queued += self._size(item)
                    self._cond.notify_all()
                    return True
                self._space.clear()
            space = asyncio.ensure_future(self._space.wait())
            try:
                done, _ = await asyncio.wait({space, asyncio.ensure_future(call)},
                                             return_when=asyncio.FIRST_COMPLETED)
            finally:
                space.cancel()
            if space not in done:
                return False

    def end(self) -> None:
        with self._cond:
            self._ended = True
            self._cond.notify_all()

    def fail(self, exc: BaseException) -> None:
        with self._cond:
            if not self._ended:
                self._error = exc
                self._ended = True
                self._items.clear()
                self._cond.notify_all()

    def __iter__(self) -> Iterator[T]:
        return self

    def __next__(self) -> T:
        with self._cond:
            while not self._items and not self._ended:
                self._cond.wait()
            if self._error is not None:
                raise self._error
            if not self._items:
                raise StopIteration
            item = self._items.popleft()
            self._queued -= self._size(item)
        try:
            self._loop.call_soon_threadsafe(self._space.set)
        except RuntimeError:  # the server's loop is closed
            pass
        return item


async def feed_call(call: asyncio.Future[T], feed: BodyFeed[Any], items: AsyncGenerator[Any, None]) -> T:
    """Feed `items` to the node `call` consuming `feed`, then its result.

    The call's own error wins: a refused put answers as the node refused it (up to DRAIN_BYTES
    of the unread body are read and dropped first, so the client reads the answer rather than
    a reset). A client that disconnects (or any failure here) fails the feed, so the call ends
    and drops what it stored, before the error propagates.
    """
    try:
        try:
            async for item in items:
                if call.done() or not await feed.put(item, call):
                    break
        except ClientDisconnect:
            feed.fail(PeerError("the request body ended early"))
            raise
        feed.end()
        if call.done() and call.exception() is not None:
            await _drain(items)
        return await asyncio.shield(call)
    except BaseException:
        feed.fail(PeerError("the request ended early"))
        await settle(call)
        raise
    finally:
        await items.aclose()


async def _drain(items: AsyncGenerator[Any, None]) -> None:
    drained = 0
    try:
        async for item in items:
            drained += len(item)
            if drained > DRAIN_BYTES:
                return
    except ClientDisconnect:
        pass


async def _pieces(request: Request) -> AsyncGenerator[bytes, None]:
    """The request body in pieces of about PIECE bytes."""
    held: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        if not chunk:
            continue
        held.append(chunk)
        size += len(chunk)
        if size >= PIECE:
            yield b"".join(held)
            held, size = [], 0
    if held:
        yield b"".join(held)


class NodeStreamResponse(StreamingResponse):
    """A streaming response that always closes its body iterator (and so the node's stream),
    even when the client goes away mid-body."""

    body_iterator: AsyncGenerator[bytes, None]

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            with anyio.CancelScope(shield=True):
                await self.body_iterator.aclose()


async def _bytes(stream: NodeStream[bytes]) -> AsyncGenerator[bytes, None]:
    try:
        async for piece in stream:
            yield piece
    finally:
        await anyio.to_thread.run_sync(stream.close)  # waits for a step in flight: off the loop


def blobs_router(node: AsyncNode) -> APIRouter:
    """The `/blobs...` routes, bound to `node`."""
    router = APIRouter(tags=["Blobs"])
    stat_doc: dict[int | str, dict[str, Any]] = {
        200: {"description": "`{digest, hex, size, manifest, chunks: [{digest, hex, size}] | null}`"}}

    @router.post("/blobs", operation_id="putBlob", summary="Store the body as a castore blob (hoard)",
                 responses={**stat_doc, **errors(400, 507)},
                 openapi_extra={"requestBody": {"required": False, "content": {
                     "application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}}})
    async def put(request: Request) -> Response:
        feed: BodyFeed[bytes] = BodyFeed(len)
        call = asyncio.ensure_future(node.blobs.put(feed))
        try:
            return JSONResponse(shapes.blob_stat_json(await feed_call(call, feed, _pieces(request))))
        except ClientDisconnect:
            return Response(status_code=400)  # nobody reads it; nothing was kept

    @router.get("/blobs/{digest:path}/stat", operation_id="statBlob",
                summary="A blob's size, manifest CID and chunks (hoard)", responses={**stat_doc, **errors(400, 404)})
    async def stat(digest: DigestPath,
                   chunks: Annotated[bool, Query(description="List the blob's chunks")] = True) -> Response:
        return JSONResponse(shapes.blob_stat_json(await node.blobs.stat(digest, chunks)))

    @router.get("/blobs/{digest:path}", operation_id="readBlob", response_class=StreamingResponse,
                summary="A blob's bytes, or one chunk's by its digest (hoard)",
                responses={200: {"description": "The blob's bytes", **OCTETS, "headers": {
                    "Content-Length": {"schema": {"type": "integer"}, "description": "The blob's size"}}},
                           **errors(400, 404)})
    async def read(digest: DigestPath) -> Response:
        size = (await node.blobs.stat(digest, False)).size
        stream = await node.blobs.read(digest)
        return NodeStreamResponse(_bytes(stream), media_type="application/octet-stream",
                                  headers={"Content-Length": str(size)})

    return router


__all__ = ["BodyFeed", "NodeStreamResponse", "blobs_router", "feed_call"]
