"""hugo files over REST (hoard's addition, under the API base): what `node.files` offers.

* `POST /files/{ino}/blocks?index=N&crc32=C` — write the body as one block at `index` (create
  or overwrite), or append it without `index`; with `crc32` the body's CRC32 (IEEE) must match
  (412, nothing written). `{ino, indices, version}`.
* `POST /files/{ino}/stream` — append blocks in order as one new version; the body is the
  blocks, each a 4-byte big-endian length then its bytes, streamed. `{ino, indices, version}`.
* `GET /files/{ino}/blocks?start=S&end=E&version=K` — the blocks with S <= index <= E (both
  optional) as they were at version K (default: the latest), in index order, streamed as
  frames (`hoard.api.client_files`): per block `B`, index (u64), CRC32 (u32), length (u32), its
  bytes; an error met after the stream began is a last `E` frame whose bytes are
  `{error, code, httpStatus}` (JSON).
* `GET /files/{ino}/stat?version=K` — `{ino, version, latest, blocks, size, nextIndex, time}`.

Every handler awaits the node's typed surface (`node.files.*`). Memory stays bounded: a block
is at most 32 MiB (hugo's message size), a stream write's blocks are handed to the node as they
arrive (routes_blobs.BodyFeed, at most a few blocks ahead), and a read sends the node's
`NodeStream` as it is pulled. A stream write the client abandons leaves the file unchanged.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from starlette.requests import ClientDisconnect

from hoard.api import shapes
from hoard.api.client_files import BODY_FRAME, FRAMES, FrameParser, block_frame, error_frame
from hoard.api.rest.responses import error, errors
from hoard.api.rest.routes_blobs import BodyFeed, NodeStreamResponse, feed_call
from hoard.errors import HoardError, InvalidArgumentError
from hoard.files.model import FileBlock
from hoard.limits import MAX_FILE_BLOCK_BYTES
from hoard.node.async_node import AsyncNode
from hoard.node.streams import NodeStream

U64_MAX = (1 << 64) - 1

InoPath = Annotated[int, Path(ge=0, le=U64_MAX, description="The file's inode number")]
U64Query = Annotated[int | None, Query(ge=0, le=U64_MAX)]


def _crc_errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """The error responses of a block write: those listed, and 412 for a CRC32 that does not match."""
    return {**errors(*statuses), 412: {**error(400), "description": "The block's CRC32 is not the one given"}}


def _too_big(size: int | str) -> InvalidArgumentError:
    return InvalidArgumentError(f"block of {size} bytes exceeds the maximum file block size {MAX_FILE_BLOCK_BYTES}",
                                max=MAX_FILE_BLOCK_BYTES)


async def _one_block(request: Request) -> bytes:
    """The body, one block: refused past MAX_FILE_BLOCK_BYTES before more of it is read."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_FILE_BLOCK_BYTES:
        raise _too_big(int(declared))
    body = bytearray()
    async for piece in request.stream():
        body += piece
        if len(body) > MAX_FILE_BLOCK_BYTES:
            raise _too_big(f"more than {MAX_FILE_BLOCK_BYTES}")
    return bytes(body)


async def _blocks(request: Request) -> AsyncGenerator[bytes, None]:
    """The blocks of a stream-write body (4-byte big-endian length, then the block), as they arrive."""
    parser = FrameParser(BODY_FRAME, MAX_FILE_BLOCK_BYTES)
    async for piece in request.stream():
        for _header, block in parser.feed(piece):
            yield block
    parser.end()


async def _frames(stream: NodeStream[FileBlock]) -> AsyncGenerator[bytes, None]:
    try:
        async for block in stream:
            yield block_frame(block)
    except HoardError as exc:  # the stream has started: the error is its last frame
        yield error_frame(exc)
    finally:
        await asyncio.to_thread(stream.close)  # waits for a step in flight: off the loop


def files_router(node: AsyncNode) -> APIRouter:
    """The `/files...` routes, bound to `node`."""
    router = APIRouter(tags=["Files"])
    write_doc: dict[int | str, dict[str, Any]] = {200: {"description": "`{ino, indices, version}`"}}
    binary = {"schema": {"type": "string", "format": "binary"}}

    @router.post("/files/{ino}/blocks", operation_id="writeFileBlock",
                 summary="Write one block of a file at an index, or append it (hoard)",
                 responses={**write_doc, **_crc_errors(400, 507)},
                 openapi_extra={"requestBody": {"required": False, "content": {"application/octet-stream": binary}}})
    async def write(ino: InoPath, request: Request, index: U64Query = None,
                    crc32: Annotated[int | None, Query(ge=0, le=(1 << 32) - 1,
                                                       description="The block's CRC32 (IEEE)")] = None) -> Response:
        data = await _one_block(request)
        return JSONResponse(shapes.file_write_json(await node.files.write(ino, data, index, crc32)))

    @router.post("/files/{ino}/stream", operation_id="streamWriteFile",
                 summary="Append blocks to a file in order, as one new version (hoard)",
                 responses={**write_doc, **errors(400, 507)},
                 openapi_extra={"requestBody": {"required": False, "content": {"application/octet-stream": {
                     "schema": {"type": "string", "format": "binary",
                                "description": "Blocks: each a 4-byte big-endian length, then its bytes"}}}}})
    async def stream_write(ino: InoPath, request: Request) -> Response:
        feed: BodyFeed[bytes] = BodyFeed(len)
        call = asyncio.ensure_future(node.files.stream_write(ino, feed))
        try:
            return JSONResponse(shapes.file_write_json(await feed_call(call, feed, _blocks(request))))
        except ClientDisconnect:
            return Response(status_code=400)  # nobody reads it; the file is unchanged

    @router.get("/files/{ino}/blocks", operation_id="readFile", response_class=StreamingResponse,
                summary="A file's blocks in index order, at a version, as frames (hoard)",
                responses={200: {"description": "`B` frames (index, crc32, length, bytes), maybe a last `E` frame",
                                 "content": {FRAMES: binary}}, **errors(400, 404)})
    async def read(ino: InoPath, start: U64Query = None, end: U64Query = None,
                   version: U64Query = None) -> Response:
        stream = await node.files.read(ino, start, end, version)
        return NodeStreamResponse(_frames(stream), media_type=FRAMES, headers={"Cache-Control": "no-store"})

    @router.get("/files/{ino}/stat", operation_id="statFile",
                summary="A file at a version: blocks, bytes, next index, time (hoard)",
                responses={200: {"description": "`{ino, version, latest, blocks, size, nextIndex, time}`"},
                           **errors(400, 404)})
    async def stat(ino: InoPath, version: U64Query = None) -> Response:
        return JSONResponse(shapes.file_info_json(await node.files.stat(ino, version)))

    return router


__all__ = ["files_router"]
