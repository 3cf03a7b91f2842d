"""The data endpoints: upload, list, download (with ranges), delete, network fetches, exists.

Uploads and downloads stream. An upload is fed to the node in pieces of `UPLOAD_PIECE` bytes,
the next piece being received while the node stores the previous one; a download asks the
node for the next `DOWNLOAD_PIECE` bytes while the previous ones are being sent. Memory stays
at a few pieces whatever the size of the body.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
from collections.abc import AsyncGenerator
from typing import Annotated, Any

import anyio
from fastapi import APIRouter, Header, Path, Query, Request
from fastapi.responses import (
    JSONResponse,
    PlainTextResponse,
    Response,
    StreamingResponse,
)
from starlette.requests import ClientDisconnect

from hoard.api import shapes
from hoard.api.rest.bridge import error_response, settle
from hoard.api.rest.headers import (
    ByteRange,
    HeaderError,
    RangeNotSatisfiable,
    content_disposition,
    content_type,
    parse_range,
    upload_filename,
    upload_mimetype,
)
from hoard.api.rest.models import (
    DataItem,
    DataList,
    FetchStarted,
    Progress,
    VerifyResult,
)
from hoard.api.rest.responses import OCTETS, TEXT, errors
from hoard.content.chunker import MAX_BLOCK_SIZE
from hoard.errors import HoardError, InvalidArgumentError
from hoard.ids.cid import CID
from hoard.node.async_node import AsyncNode

UPLOAD_PIECE = 8 << 20  # matches the content layer's write batch: one store transaction per piece
DOWNLOAD_PIECE = 1 << 20  # measured: smaller pieces overlap reading and sending better
DRAIN_LIMIT = 64 << 20  # bytes of a refused upload read and dropped before answering

log = logging.getLogger("hoard.rest")

CidPath = Annotated[str, Path(description="A dataset's manifest CID, or a block CID", examples=[
    "zdqAuUyuXjQPjgkJ7zkiGkmBs9HhApKcMijqf45aDDDra3NJi"])]
DownloadId = Annotated[int, Path(alias="downloadId", ge=0, le=2**64 - 1,
                                 description="The downloadId returned by POST .../network")]


def data_router(node: AsyncNode) -> APIRouter:
    """The `/data...` routes, bound to `node`."""
    router = APIRouter(tags=["Data"])

    @router.post("/data", operation_id="upload", response_class=PlainTextResponse,
                 summary="Upload a file in a streaming manner; returns its manifest CID",
                 responses={200: {"description": "The manifest CID of the uploaded content", **TEXT},
                            **errors(400, 422, 507)},
                 openapi_extra={"requestBody": {"required": False, "content": {
                     "application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}}})
    async def upload(
        request: Request,
        content_type_header: Annotated[str | None, Header(
            alias="content-type", description="The content's MIME type; must be a known one")] = None,
        content_disposition_header: Annotated[str | None, Header(
            alias="content-disposition", description='Carries the filename: `attachment; filename="x.png"`')] = None,
        block_size: Annotated[int | None, Query(
            alias="blockSize", ge=0, le=MAX_BLOCK_SIZE, description="Block size in bytes (0: 65536)")] = None,
    ) -> Response:
        expect_continue = request.headers.get("expect", "").lower() == "100-continue"
        raw_sizes = request.query_params.getlist("blockSize")
        if len(raw_sizes) > 1 or any(not v.isascii() or not v.isdigit() for v in raw_sizes):
            # pydantic's lax int parsing would take "+0.0" and the last of repeated values
            return await _refuse(request, InvalidArgumentError(
                f"blockSize must be one non-negative integer, got {raw_sizes!r}"), expect_continue, status=422)
        try:
            mimetype = upload_mimetype(content_type_header)
            filename = upload_filename(content_disposition_header)
        except HeaderError as exc:
            return await _refuse(request, InvalidArgumentError(str(exc)), expect_continue, status=422)
        declared = _content_length(request)
        try:  # a declared size is reserved: the ingest's quota check answers before the body is read
            session = await node.upload_open(filename, mimetype, block_size or 0, reserve=declared or 0)
        except HoardError as exc:
            return await _refuse(request, exc, expect_continue)
        try:
            cid = await _store_body(node, request, session)
        except HoardError as exc:
            return await _refuse(request, exc, expect_continue=False)
        except ClientDisconnect:
            log.info("upload abandoned: the client disconnected")
            return Response(status_code=400)  # nobody reads it
        return PlainTextResponse(str(cid))

    @router.get("/data", operation_id="listData", response_model=DataList,
                summary="List the datasets stored by the node", responses=errors())
    async def list_data() -> dict[str, Any]:
        return {"content": shapes.datasets_json(await node.list())}

    @router.get("/data/{cid}", operation_id="downloadLocal", response_class=StreamingResponse,
                summary="Download a dataset (or block) stored locally; supports HTTP range requests",
                responses={200: {"description": "The content", **OCTETS, "headers": _DOWNLOAD_HEADERS},
                           206: {"description": "The requested byte range", **OCTETS, "headers": {
                               "Content-Range": {"schema": {"type": "string"}, "description": "bytes first-last/size"}}},
                           416: {"description": "The range selects no byte of the content", **TEXT, "headers": {
                               "Content-Range": {"schema": {"type": "string"}, "description": "bytes */size"}}},
                           **errors(400, 404)})
    async def download_local(
        cid: CidPath,
        range_header: Annotated[str | None, Header(alias="range", description="`bytes=first-last`, one range")] = None,
    ) -> Response:
        return await _download(node, cid, local=True, range_header=range_header)

    @router.head("/data/{cid}", operation_id="downloadLocalHead", response_class=Response,
                 summary="The headers of GET /data/{cid} (size, type, filename) without the content",
                 responses={200: {"description": "The content's headers", "headers": _DOWNLOAD_HEADERS},
                            206: {"description": "The requested byte range's headers"},
                            416: {"description": "The range selects no byte of the content"},
                            **errors(400, 404)})
    async def download_local_head(
        cid: CidPath,
        range_header: Annotated[str | None, Header(alias="range", description="`bytes=first-last`, one range")] = None,
    ) -> Response:
        return await _download(node, cid, local=True, range_header=range_header, head=True)

    @router.delete("/data/{cid}", operation_id="deleteLocal", status_code=204, response_class=Response,
                   summary="Delete a dataset (manifest CID) or a single block from the local store",
                   responses={204: {"description": "Deleted"}, **errors(400, 404)})
    async def delete_local(cid: CidPath) -> Response:
        await node.delete(cid)
        return Response(status_code=204)

    @router.post("/data/{cid}/network", operation_id="downloadNetwork", response_model=FetchStarted,
                 summary="Fetch a dataset into the local store in the background",
                 description="Returns once the manifest is known, with a downloadId to follow the fetch by.",
                 responses=errors(400, 404, 507))
    async def download_network(cid: CidPath) -> dict[str, Any]:
        return shapes.fetch_started_json(await node.fetch_start(cid))

    @router.get("/data/{cid}/network/stream", operation_id="downloadNetworkStream", response_class=StreamingResponse,
                summary="Download a dataset, from the network if it is not stored locally",
                responses={200: {"description": "The content", **OCTETS, "headers": _DOWNLOAD_HEADERS},
                           **errors(400, 404)})
    async def download_network_stream(cid: CidPath) -> Response:
        return await _download(node, cid, local=False, range_header=None)

    @router.get("/data/{cid}/network/manifest", operation_id="downloadNetworkManifest", response_model=DataItem,
                summary="A dataset's manifest, from the network if it is not stored locally",
                responses=errors(400, 404))
    async def download_network_manifest(cid: CidPath) -> dict[str, Any]:
        manifest = await node.download_manifest(cid)
        return {"cid": _canonical(cid), "manifest": shapes.manifest_json(manifest)}

    @router.get("/data/{cid}/network/progress/{downloadId}", operation_id="downloadProgress",
                response_model=Progress, response_model_exclude_none=True,
                summary="Progress of a background fetch",
                description='`{"active": false}` alone when the id is unknown (or was for another CID).',
                responses=errors(400))
    async def download_progress(cid: CidPath, download_id: DownloadId) -> dict[str, Any]:
        return shapes.progress_json(await node.fetch_progress(download_id, cid))

    @router.delete("/data/{cid}/network/{downloadId}", operation_id="cancelDownload", status_code=204,
                   response_class=Response, summary="Cancel a background fetch",
                   responses={204: {"description": "Cancelled"}, **errors(400, 404)})
    async def cancel_download(cid: CidPath, download_id: DownloadId) -> Response:
        await node.fetch_cancel(download_id, cid)
        return Response(status_code=204)

    @router.get("/data/{cid}/exists", operation_id="exists",
                summary="Whether a CID (dataset manifest or block) is in the local store",
                responses={200: {"description": '`{"<cid>": true|false}`', "content": {"application/json": {
                    "schema": {"type": "object", "additionalProperties": {"type": "boolean"}}}}},
                           **errors(400)})
    async def exists(cid: CidPath) -> JSONResponse:
        found = await node.exists(cid)
        return JSONResponse({_canonical(cid): bool(found)})

    @router.post("/data/{cid}/verify", operation_id="verify", response_model=VerifyResult,
                 summary="Re-read a dataset (or block) from disk and check every block against its CID (hoard)",
                 responses=errors(400, 404, 502))
    async def verify(cid: CidPath) -> dict[str, Any]:
        return shapes.verify_json(await node.verify(cid))

    return router


_DOWNLOAD_HEADERS = {
    "Content-Disposition": {"schema": {"type": "string"}, "description": 'attachment; filename="..."'},
    "Content-Length": {"schema": {"type": "integer"}, "description": "The dataset size"},
}


def _canonical(cid: str) -> str:
    from hoard.ids.cid import CID

    try:
        return str(CID.parse(cid))
    except HoardError:
        return cid


def _content_length(request: Request) -> int | None:
    value = request.headers.get("content-length")
    if value is None or not value.strip().isdigit() or len(value.strip()) > 19:
        return None
    return int(value)


async def _store_body(node: AsyncNode, request: Request, session: str) -> CID:
    """Feed the request body to upload `session` and finish it; returns the manifest CID.

    Pieces of UPLOAD_PIECE bytes go to the node one at a time (so they are stored in order),
    the next piece being received while the node stores the previous one. On any failure the
    session is cancelled, removing what it stored, before the error propagates.
    """
    pending: asyncio.Future[Any] | None = None
    try:
        buffered: list[bytes] = []
        size = 0
        async for chunk in request.stream():
            if not chunk:
                continue
            buffered.append(chunk)
            size += len(chunk)
            if size >= UPLOAD_PIECE:
                if pending is not None:
                    await asyncio.shield(pending)
                pending = asyncio.wrap_future(node.dispatch.upload_chunk(session, b"".join(buffered)))
                buffered, size = [], 0
        if pending is not None:
            await asyncio.shield(pending)
            pending = None
        if buffered:
            await node.upload_chunk(session, b"".join(buffered))
        return await node.upload_finalize(session)
    except BaseException:
        await _abandon(node, session, pending)
        raise


async def _abandon(node: AsyncNode, session: str, pending: asyncio.Future[Any] | None) -> None:
    """Cancel `session` once its last piece is stored, whatever happens to this task.

    The cancel is dispatched from a done-callback, not awaited: a request task that the server
    cancels (the client went away) while it waits must still not leave the session, and the
    pending blocks it holds, open on the node.
    """

    def cancel(_: object = None) -> concurrent.futures.Future[None] | None:
        try:
            return node.dispatch.upload_cancel(session)
        except HoardError as exc:  # the node is closing: its sessions go with it
            log.debug("cancelling upload %s: %s", session, exc)
            return None

    if pending is None or pending.done():
        cancelled = cancel()
        await settle(None if cancelled is None else asyncio.wrap_future(cancelled))
    else:
        pending.add_done_callback(cancel)
        await settle(pending)


async def _refuse(request: Request, exc: HoardError, expect_continue: bool, status: int | None = None) -> Response:
    """Answer an upload with an error.

    Up to DRAIN_LIMIT bytes of the rest of the body are read and dropped first, so a client
    still sending reads the answer instead of a reset connection; past that the answer goes
    out at once and the connection is closed. A client that asked `Expect: 100-continue` has
    not sent the body and is answered at once.
    """
    response = error_response(exc, status)
    if expect_continue:
        return response
    drained = 0
    try:
        async for chunk in request.stream():
            drained += len(chunk)
            if drained > DRAIN_LIMIT:
                response.headers["Connection"] = "close"
                break
    except (ClientDisconnect, RuntimeError):
        pass
    return response


async def _download(node: AsyncNode, cid: str, local: bool, range_header: str | None, head: bool = False) -> Response:
    opened = await node.stream_open(cid, 0, None, local)
    byte_range: ByteRange | None = None
    if range_header and local:
        try:
            byte_range = parse_range(range_header, opened.size)
        except RangeNotSatisfiable:
            await node.stream_close(opened.id)
            return PlainTextResponse("Range Not Satisfiable", status_code=416,
                                     headers={"Content-Range": f"bytes */{opened.size}"})
        if byte_range is not None and (byte_range.start, byte_range.end) != (0, opened.size):
            await node.stream_close(opened.id)
            opened = await node.stream_open(cid, byte_range.start, byte_range.length, local)
        else:
            byte_range = None
    headers = {"Content-Type": content_type(opened.mimetype),  # as stored: no charset added
               "Content-Disposition": content_disposition(opened.filename),
               "Content-Length": str(opened.length)}
    if local:
        headers["Accept-Ranges"] = "bytes"
    status = 200
    if byte_range is not None:
        status = 206
        headers["Content-Range"] = byte_range.content_range()
    if head:
        await node.stream_close(opened.id)
        return Response(status_code=status, headers=headers)
    return _NodeStreamResponse(_pieces(node, opened.id), status_code=status, headers=headers)


class _NodeStreamResponse(StreamingResponse):
    """A streaming response that always closes its body iterator, so the node's read stream
    is closed even when the client goes away mid-body (Starlette then just cancels sending)."""

    body_iterator: AsyncGenerator[bytes, None]

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            with anyio.CancelScope(shield=True):
                await self.body_iterator.aclose()


async def _pieces(node: AsyncNode, stream_id: str) -> AsyncGenerator[bytes, None]:
    """The stream's bytes, reading the next piece while the current one is sent."""
    next_piece: asyncio.Future[bytes] | None = asyncio.wrap_future(node.dispatch.stream_read(stream_id, DOWNLOAD_PIECE))
    try:
        while True:
            assert next_piece is not None
            data = await asyncio.shield(next_piece)
            next_piece = None
            if not data:
                return
            next_piece = asyncio.wrap_future(node.dispatch.stream_read(stream_id, DOWNLOAD_PIECE))
            yield data
    finally:
        await settle(next_piece)
        await settle(asyncio.wrap_future(node.dispatch.stream_close(stream_id)))
