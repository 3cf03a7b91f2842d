"""IPFS on the REST API: the trustless gateway (`/ipfs/{cid}`) and `node.ipfs` under the API base.

**Trustless gateway** (specs.ipfs.tech/http-gateways/trustless-gateway), strict mode:
`GET|HEAD /ipfs/{cid}` with `?format=raw` or `Accept: application/vnd.ipld.raw` answers the
block's bytes; with `?format=car` or `Accept: application/vnd.ipld.car` a CARv1 of the DAG
under the CID (depth-first, no duplicates, streamed; `dag-scope=all` (default) or `block`).
`format` wins over `Accept`. Headers: `Content-Type` (`application/vnd.ipld.car; version=1;
order=dfs; dups=n` for CARs), `Content-Disposition: attachment`, `X-Content-Type-Options:
nosniff`, `Cache-Control: public, max-age=29030400, immutable`, `ETag` (and 304 for a
matching `If-None-Match`). 400: a bad CID, no format asked, a path under the CID, CARv2, or
`dag-scope=entity` / `entity-bytes` (not supported); 404: the root block is not stored (this
gateway serves the local store only). A child block missing mid-DAG ends the CAR early (the
spec's streaming rule); clients verify completeness.

**The API** (`/api/storage/v1/ipfs/...`):
- `POST /ipfs/add?cid-version=0|1&raw-leaves=true|false&filename=NAME`: the body is a file
  (any Content-Type) or, with `Content-Type: application/x-tar`, a directory (the archive's
  entries, relative paths); returns the root's JSON (`shapes.ipfs_root_json`);
- `POST /ipfs/car`: the body is a CARv1/CARv2; returns `shapes.car_import_json`;
- `GET /ipfs/car/{cid}`: the CARv1 of a stored DAG (as the gateway's `format=car`);
- `POST /ipfs/fetch/{cid}`: fetch a DAG by bitswap into the store; returns the root's JSON;
- `GET /ipfs/roots`, `GET /ipfs/roots/{cid}`, `DELETE /ipfs/roots/{cid}`: the stored roots.

Uploaded bodies are spooled to a temporary directory in the node's data dir and removed after.
"""

from __future__ import annotations

import logging
import os
import tarfile
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path as FsPath
from typing import Annotated, Any

import anyio
from fastapi import APIRouter, Header, Path, Query, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse

from hoard.api import shapes
from hoard.api.rest.bridge import error_response
from hoard.api.rest.responses import errors
from hoard.content.car import encode_header, encode_section, links_of
from hoard.errors import HoardError, InvalidArgumentError, InvalidCidError, NotFoundError, QuotaExceededError
from hoard.ids.cid import CID
from hoard.node.async_node import AsyncNode

log = logging.getLogger("hoard.rest.ipfs")

RAW_TYPE = "application/vnd.ipld.raw"
CAR_TYPE = "application/vnd.ipld.car"
CAR_CONTENT_TYPE = f"{CAR_TYPE}; version=1; order=dfs; dups=n"
IMMUTABLE = "public, max-age=29030400, immutable"
TAR_TYPES = ("application/x-tar", "application/tar")

CidText = Annotated[str, Path(description="A CID (CIDv0 `Qm...` or CIDv1)",
                              examples=["QmVwbizVfPcGsYEr7p889oXoZyeL6ypZ1ZL9uDtcRJifF5"])]


def _cid(text: str) -> CID:
    try:
        return CID.parse(text)
    except InvalidCidError as exc:
        raise InvalidCidError(f"invalid CID {text[:100]!r}: {exc.message}", cid=text[:100]) from exc


def _display(cid: CID) -> str:
    return str(cid) if cid.version == 0 else cid.to_base32()


def _choose(format_: str | None, accept: str | None) -> str:
    """"raw" or "car": the `format` parameter, else the first IPLD type `Accept` names."""
    if format_ is not None:
        if format_ not in ("raw", "car"):
            raise InvalidArgumentError(f"unsupported format {format_!r}: this trustless gateway answers "
                                       "format=raw or format=car")
        return format_
    if not accept:
        raise InvalidArgumentError("this is a trustless gateway: ask for ?format=raw or ?format=car "
                                   f"(or Accept: {RAW_TYPE} / {CAR_TYPE})")
    for item in accept.split(","):
        media, *params = (p.strip() for p in item.split(";"))
        if media.lower() == RAW_TYPE:
            return "raw"
        if media.lower() == CAR_TYPE:
            for param in params:
                key, _, value = param.partition("=")
                if key.strip().lower() == "version" and value.strip() != "1":
                    raise InvalidArgumentError(f"only CARv1 is served here (asked: {item.strip()!r})")
            return "car"
    raise InvalidArgumentError(f"this trustless gateway answers {RAW_TYPE} or {CAR_TYPE}; Accept: {accept[:200]!r}")


async def car_stream(node: AsyncNode, root: CID, first: bytes, scope: str = "all") -> AsyncIterator[bytes]:
    """A CARv1 of the DAG under `root` (depth-first, each block once, each verified by the node);
    `first` is the root block, read already. A missing or bad block ends the stream early."""
    yield encode_header([root])
    yield encode_section(root, first)
    if scope == "block":
        return
    seen = {root}
    stack = list(reversed(links_of(root, first)))
    while stack:
        cid = stack.pop()
        if cid in seen:
            continue
        seen.add(cid)
        try:
            data = await node.ipfs.block(cid)
        except HoardError as exc:
            log.warning("CAR of %s ends early: %s", root, exc.message)
            return
        yield encode_section(cid, data)
        stack.extend(reversed(links_of(cid, data)))


def _headers(cid: CID, kind: str, scope: str) -> dict[str, str]:
    name = _display(cid)
    etag = f'"{name}.raw"' if kind == "raw" else f'"{name}.car.v1.dfs.n.{scope}"'
    return {"Content-Type": RAW_TYPE if kind == "raw" else CAR_CONTENT_TYPE,
            "Content-Disposition": f'attachment; filename="{name}.{"bin" if kind == "raw" else "car"}"',
            "X-Content-Type-Options": "nosniff", "Cache-Control": IMMUTABLE, "ETag": etag,
            "X-Ipfs-Path": f"/ipfs/{name}", "Vary": "Accept"}


def gateway_router(node: AsyncNode) -> APIRouter:
    """`GET|HEAD /ipfs/{cid}`: the trustless gateway over the local store."""
    router = APIRouter(tags=["IPFS gateway"])

    answers: dict[int | str, dict[str, Any]] = {
        200: {"description": "The block, or the CAR stream (HEAD: its headers)", "content": {
            RAW_TYPE: {"schema": {"type": "string", "format": "binary"}},
            CAR_TYPE: {"schema": {"type": "string", "format": "binary"}}}},
        304: {"description": "Not modified (If-None-Match)"}, **errors(400, 404)}

    # Outside the API base and its OpenAPI document (the IPFS trustless gateway spec describes it).
    @router.head("/ipfs/{cid}", operation_id="ipfsGatewayHead", summary="Trustless gateway: the headers only",
                 responses=answers, include_in_schema=False)
    @router.get("/ipfs/{cid}", operation_id="ipfsGateway", include_in_schema=False,
                summary="Trustless gateway: a block (format=raw) or a CARv1 of the DAG (format=car)", responses=answers)
    async def gateway(
        request: Request,
        cid: CidText,
        format_: Annotated[str | None, Query(alias="format", description="raw or car")] = None,
        dag_scope: Annotated[str | None, Query(alias="dag-scope", description="all (default) or block")] = None,
        entity_bytes: Annotated[str | None, Query(alias="entity-bytes", description="not supported (400)")] = None,
        car_version: Annotated[str | None, Query(alias="car-version", description="1 only")] = None,
        accept: Annotated[str | None, Header()] = None,
        if_none_match: Annotated[str | None, Header(alias="if-none-match")] = None,
    ) -> Response:
        try:
            parsed = _cid(cid)
            kind = _choose(format_, accept)
            scope = dag_scope or "all"
            if kind == "car":
                if entity_bytes is not None:
                    raise InvalidArgumentError("entity-bytes is not supported by this gateway (ask for the whole "
                                               "DAG, dag-scope=all, or its root, dag-scope=block)")
                if scope not in ("all", "block"):
                    raise InvalidArgumentError(f"dag-scope={scope} is not supported by this gateway "
                                               "(dag-scope=all or dag-scope=block)")
                if car_version not in (None, "1"):
                    raise InvalidArgumentError(f"car-version={car_version} is not supported: CARv1 only")
            elif dag_scope is not None or entity_bytes is not None:
                raise InvalidArgumentError("dag-scope and entity-bytes apply to format=car only")
            headers = _headers(parsed, kind, scope)
            etags = [t.strip() for t in (if_none_match or "").split(",")]
            if headers["ETag"] in etags and await node.ipfs.has(parsed):
                return Response(status_code=304, headers={k: v for k, v in headers.items()
                                                          if k in ("ETag", "Cache-Control", "Vary")})
            if request.method == "HEAD":
                if not await node.ipfs.has(parsed):
                    raise NotFoundError(f"{_display(parsed)} is not stored on this node", cid=str(parsed))
                if kind == "raw":
                    headers["Content-Length"] = str(len(await node.ipfs.block(parsed)))
                return Response(status_code=200, headers=headers)
            first = await node.ipfs.block(parsed)  # 404 before any byte of the body
        except HoardError as exc:
            return error_response(exc)
        if kind == "raw":
            return Response(first, status_code=200, headers=headers, media_type=RAW_TYPE)
        return StreamingResponse(car_stream(node, parsed, first, scope), status_code=200, headers=headers,
                                 media_type=CAR_CONTENT_TYPE)

    @router.api_route("/ipfs/{cid}/{path:path}", methods=["GET", "HEAD"], include_in_schema=False)
    async def gateway_path(cid: str, path: str) -> Response:
        return error_response(InvalidArgumentError(
            f"paths under a CID (/ipfs/{cid[:100]}/{path[:100]}) are not supported by this gateway: ask for the CID"))

    return router


async def _spool(request: Request, dest: FsPath, limit: int) -> int:
    """Write the request body to `dest`; returns its size. A body larger than `limit` (the free
    quota: its blocks could not be stored) is refused with 507 before it fills the disk."""
    size = 0
    with open(dest, "xb") as f:  # noqa: ASYNC230 - a new local file; big writes go to a thread
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise QuotaExceededError(f"storage quota exceeded: the body is larger than the {limit} bytes free",
                                         available=limit)
            if len(chunk) > 256 << 10:
                await anyio.to_thread.run_sync(f.write, chunk)
            else:
                f.write(chunk)
    return size


def _untar(archive: FsPath, dest: FsPath) -> None:
    """Extract a tar archive into `dest` (refusing absolute paths, `..`, devices: tarfile's data filter)."""
    dest.mkdir()
    try:
        with tarfile.open(archive, "r:*") as tar:
            tar.extractall(dest, filter="data")
    except (tarfile.TarError, OSError) as exc:
        raise InvalidArgumentError(f"the body is not a usable tar archive: {exc}") from exc


def _bool(value: str | None, name: str) -> bool:
    if value is None or value.lower() in ("false", "0", "no"):
        return False
    if value.lower() in ("true", "1", "yes"):
        return True
    raise InvalidArgumentError(f"{name} must be true or false, got {value!r}")


def ipfs_router(node: AsyncNode) -> APIRouter:
    """`/ipfs/...` under the API base: add, CAR import/export, fetch, the stored roots."""
    router = APIRouter(prefix="/ipfs", tags=["IPFS"])

    def spool_dir() -> tempfile.TemporaryDirectory[str]:
        base = FsPath(node.config.data_dir)
        return tempfile.TemporaryDirectory(dir=base if base.is_dir() else None, prefix=".ipfs-upload-")

    @router.post("/add", operation_id="ipfsAdd", summary="Add a file (or a tar of a directory) as UnixFS",
                 responses={200: {"description": "The root's catalog entry"}, **errors(400, 507)},
                 openapi_extra={"requestBody": {"required": True, "content": {
                     "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
                     "application/x-tar": {"schema": {"type": "string", "format": "binary"}}}}})
    async def add(
        request: Request,
        cid_version: Annotated[int, Query(alias="cid-version", ge=0, le=1,
                                          description="0: kubo's default (dag-pb leaves); 1 with raw-leaves")] = 0,
        raw_leaves: Annotated[str | None, Query(alias="raw-leaves", description="true: raw leaves (CIDv1)")] = None,
        filename: Annotated[str | None, Query(description="The name recorded for it")] = None,
        pin: Annotated[str | None, Query(description="false: cached (expires after block-ttl); default true")] = None,
        content_type: Annotated[str | None, Header(alias="content-type")] = None,
    ) -> Response:
        try:
            raw = _bool(raw_leaves, "raw-leaves")
            pinned = True if pin is None else _bool(pin, "pin")
            is_tar = (content_type or "").split(";")[0].strip().lower() in TAR_TYPES
            with spool_dir() as tmp:
                body = FsPath(tmp) / "body"
                await _spool(request, body, (await node.space()).free_bytes)
                target = body
                if is_tar:
                    target = FsPath(tmp) / (os.path.basename(filename or "") or "dir")
                    await anyio.to_thread.run_sync(_untar, body, target)
                    await anyio.to_thread.run_sync(os.unlink, body)
                entry = await node.ipfs.add(str(target), cid_version, raw, filename or "", pinned)
        except HoardError as exc:
            return error_response(exc)
        return JSONResponse(shapes.ipfs_root_json(entry))

    @router.post("/car", operation_id="ipfsCarImport", summary="Import a CARv1/CARv2 (every block verified)",
                 responses={200: {"description": "What was stored"}, **errors(400, 404, 502, 507)},
                 openapi_extra={"requestBody": {"required": True, "content": {
                     CAR_TYPE: {"schema": {"type": "string", "format": "binary"}},
                     "application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}}})
    async def car_import(
        request: Request,
        pin: Annotated[str | None, Query(description="false: cached (expires after block-ttl); default true")] = None,
    ) -> Response:
        try:
            pinned = True if pin is None else _bool(pin, "pin")
            with spool_dir() as tmp:
                body = FsPath(tmp) / "import.car"
                free = (await node.space()).free_bytes
                await _spool(request, body, free + free // 8 + (1 << 20))  # + CAR framing (CIDs, lengths)
                result = await node.ipfs.car_import(str(body), pinned)
        except HoardError as exc:
            return error_response(exc)
        return JSONResponse(shapes.car_import_json(result))

    @router.get("/car/{cid}", operation_id="ipfsCarExport", summary="The CARv1 of a stored DAG",
                responses={200: {"description": "The CAR stream", "content": {
                    CAR_TYPE: {"schema": {"type": "string", "format": "binary"}}}}, **errors(400, 404)})
    async def car_export(cid: CidText) -> Response:
        try:
            parsed = _cid(cid)
            first = await node.ipfs.block(parsed)
        except HoardError as exc:
            return error_response(exc)
        return StreamingResponse(car_stream(node, parsed, first), headers=_headers(parsed, "car", "all"),
                                 media_type=CAR_CONTENT_TYPE)

    @router.post("/fetch/{cid}", operation_id="ipfsFetch", summary="Fetch a DAG by bitswap into the store",
                 responses={200: {"description": "The root's catalog entry"}, **errors(400, 404, 409, 502, 503)})
    async def fetch(cid: CidText, pin: Annotated[str | None, Query(description="true: pin it")] = None) -> Response:
        try:
            entry = await node.ipfs.fetch(_cid(cid), _bool(pin, "pin"))
        except HoardError as exc:
            return error_response(exc)
        return JSONResponse(shapes.ipfs_root_json(entry))

    @router.get("/roots", operation_id="ipfsRoots", summary="The stored IPFS roots")
    async def roots() -> list[dict[str, Any]]:
        return [shapes.ipfs_root_json(e) for e in await node.ipfs.list()]

    @router.get("/roots/{cid}", operation_id="ipfsRoot", summary="A stored IPFS root",
                responses=errors(400, 404))
    async def root(cid: CidText) -> Response:
        try:
            return JSONResponse(shapes.ipfs_root_json(await node.ipfs.stat(_cid(cid))))
        except HoardError as exc:
            return error_response(exc)

    @router.delete("/roots/{cid}", operation_id="ipfsRemove", status_code=204,
                   summary="Remove a stored root (its blocks nobody else holds are deleted)",
                   responses=errors(400, 404))
    async def remove(cid: CidText) -> Response:
        try:
            await node.ipfs.remove(_cid(cid))
        except HoardError as exc:
            return error_response(exc)
        return Response(status_code=204)

    return router


__all__ = ["car_stream", "gateway_router", "ipfs_router"]
