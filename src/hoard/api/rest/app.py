"""The REST application: Logos Storage / Codex paths over a hoard node, with its OpenAPI document.

Routes live under `/api/storage/v1` (Logos) and again under `/api/codex/v1` (Codex), the alias
being left out of the OpenAPI document so each operation is described once. `/` is the
status page, `/docs` the interactive API docs, `/openapi.json` the document. The layer is thin:
handlers validate, await the node's `AsyncNode` face and map hoard errors by `http_status`.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, cast

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import PlainTextResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from hoard.api.auth import load_token
from hoard.api.rest.bridge import error_response
from hoard.api.rest.page import page_router
from hoard.api.rest.routes_blobs import blobs_router
from hoard.api.rest.routes_data import data_router
from hoard.api.rest.routes_files import files_router
from hoard.api.rest.routes_ipfs import gateway_router, ipfs_router
from hoard.api.rest.routes_logs import logs_router
from hoard.api.rest.routes_node import node_router
from hoard.api.rest.routes_ops import install_docs, ops_router, peers_router
from hoard.api.rest.routes_transfer import transfer_router
from hoard.api.rest.security import SecurityMiddleware
from hoard.errors import HoardError, InvalidArgumentError
from hoard.node.info import version

if TYPE_CHECKING:
    from hoard.node.async_node import AsyncNode
    from hoard.node.node import NodeBase

BASE = "/api/storage/v1"
ALIASES = ("/api/codex/v1",)

log = logging.getLogger("hoard.rest")

DESCRIPTION = """\
The REST API of a hoard node: the paths, payloads and status codes of the Logos Storage
(formerly Codex) REST API. Every path is also served under `/api/codex/v1`.

Errors answer with a `text/plain` message and the hoard error code in the `X-Hoard-Error`
header. Hoard's additions: `POST /data/{cid}/verify`, `HEAD /data/{cid}`, HTTP range requests
on `GET /data/{cid}`, and the extra manifest fields `blockCount`, `chunker`, `digest`.
"""


def create_app(node: NodeBase | None) -> FastAPI:
    """The ASGI app serving `node` (a `hoard.Node` or `hoard.AsyncNode`, started or not); with None,
    an app for its OpenAPI document only."""
    # handlers await the node's typed surface; with None (the document only) no handler runs
    bridge = cast("AsyncNode", None) if node is None else node.as_async()
    app = FastAPI(title="hoard REST API", version=version(), description=DESCRIPTION, docs_url=None, redoc_url=None)
    install_docs(app)  # /docs: Swagger UI with its assets served locally (routes_ops.py)
    routers = [data_router(bridge), node_router(bridge), peers_router(bridge), ipfs_router(bridge),
               logs_router(bridge), transfer_router(bridge), blobs_router(bridge), files_router(bridge)]
    for router in routers:
        app.include_router(router, prefix=BASE)
    for alias in ALIASES:
        for router in routers:
            app.include_router(router, prefix=alias, include_in_schema=False)
    app.include_router(page_router(bridge, BASE))
    app.include_router(gateway_router(bridge))  # /ipfs/{cid}: the trustless gateway (routes_ipfs.py)
    if bridge is not None:
        app.include_router(ops_router(bridge))  # /health, /ready, /metrics
    _install_error_handlers(app)
    config = getattr(node, "config", None)  # Host, Origin, token and upload bounds: security.py
    app.add_middleware(SecurityMiddleware, allowed_hosts=list(getattr(config, "api_allowed_hosts", None) or ()),
                       cors_origins=list(getattr(config, "api_cors_origin", None) or ()), token=load_token(config))
    app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]
    return app


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(HoardError)
    async def hoard_error(_request: Request, exc: HoardError) -> Response:
        return error_response(exc)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(_request: Request, exc: RequestValidationError) -> Response:
        problems = "; ".join(f"{'.'.join(str(p) for p in err.get('loc', ())[1:]) or 'request'}: {err.get('msg')}"
                             for err in exc.errors())
        return error_response(InvalidArgumentError(f"invalid request: {problems}"))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_request: Request, exc: StarletteHTTPException) -> Response:
        return PlainTextResponse(str(exc.detail), status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(Exception)
    async def internal_error(request: Request, exc: Exception) -> Response:
        log.exception("REST %s %s failed", request.method, request.url.path)
        return PlainTextResponse(f"internal error: {type(exc).__name__}: {exc}", status_code=500,
                                 headers={"X-Hoard-Error": "error"})


def _openapi(app: FastAPI) -> dict[str, Any]:
    """FastAPI's document, with request validation described as what it is here: a 400.

    FastAPI adds a `422 Validation Error` (JSON) to every operation with parameters; hoard
    answers invalid parameters with 400 and a text message (as Logos does), which every
    operation already documents, so those entries and their schemas are dropped.
    """
    if app.openapi_schema:
        return app.openapi_schema
    schema = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
    for path_item in schema.get("paths", {}).values():
        for operation in path_item.values():
            responses = operation.get("responses", {})
            ref = str(responses.get("422", {}).get("content", {}).get("application/json", {}).get("schema", {}))
            if "HTTPValidationError" in ref:
                del responses["422"]
    components = schema.get("components", {}).get("schemas", {})
    for name in ("HTTPValidationError", "ValidationError"):
        components.pop(name, None)
    app.openapi_schema = schema
    return schema
