"""Operating a node over HTTP: `/health`, `/ready`, `/metrics`, and `GET <base>/peers`.

* `GET /health` — liveness: 200 `ok` while the process serves HTTP.
* `GET /ready` — readiness: 200 `ready` once the node is started and its network is up, else
  503 with the reason.
* `GET /metrics` — Prometheus's text format, from a registry of this node's own (never the
  process-global one): what `hoard.node.observability.samples` reads from the node at scrape
  time. The scrape runs on a thread, so node calls never block the server's loop.
* `GET <base>/peers` (hoard's addition) — the connected peers with addresses, direction,
  latency (one ping now) and agent.
"""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, FastAPI
from fastapi.responses import JSONResponse, PlainTextResponse, Response

from hoard.api import shapes
from hoard.api.rest.responses import TEXT, errors
from hoard.node.async_node import AsyncNode

PROMETHEUS_TEXT = "text/plain; version=0.0.4; charset=utf-8"


def ops_router(node: AsyncNode) -> APIRouter:
    """`/health`, `/ready` and `/metrics` (mounted at the root, outside the OpenAPI document)."""
    from prometheus_client import CollectorRegistry, generate_latest

    from hoard.node.observability import NodeCollector

    router = APIRouter(include_in_schema=False)
    registry = CollectorRegistry(auto_describe=False)
    registry.register(NodeCollector(node))

    @router.get("/health")
    async def health() -> Response:
        return PlainTextResponse("ok", headers={"Cache-Control": "no-store"})

    @router.get("/ready")
    async def ready() -> Response:
        reason = _not_ready(node)
        if reason:
            return PlainTextResponse(f"not ready: {reason}", status_code=503, headers={"Cache-Control": "no-store"})
        return PlainTextResponse("ready", headers={"Cache-Control": "no-store"})

    @router.get("/metrics")
    async def metrics() -> Response:
        body = await asyncio.to_thread(generate_latest, registry)
        return Response(body, media_type=PROMETHEUS_TEXT, headers={"Cache-Control": "no-store"})

    return router


DOCS_ASSETS = "/docs/assets"


def install_docs(app: FastAPI) -> None:
    """`/docs`: Swagger UI from the assets of the swagger-ui-bundle-v2 package, served by the node
    under /docs/assets (nothing is loaded from a CDN, so the page works offline)."""
    from fastapi.openapi.docs import get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
    from fastapi.staticfiles import StaticFiles
    from swagger_ui_bundle import swagger_ui_path  # type: ignore[import-untyped]

    app.mount(DOCS_ASSETS, StaticFiles(directory=swagger_ui_path), name="swagger-ui-assets")

    @app.get("/docs", include_in_schema=False)
    async def docs() -> Response:
        return get_swagger_ui_html(openapi_url="/openapi.json", title=f"{app.title} - docs",
                                   swagger_js_url=f"{DOCS_ASSETS}/swagger-ui-bundle.js",
                                   swagger_css_url=f"{DOCS_ASSETS}/swagger-ui.css",
                                   swagger_favicon_url=f"{DOCS_ASSETS}/favicon-32x32.png",
                                   oauth2_redirect_url="/docs/oauth2-redirect")

    @app.get("/docs/oauth2-redirect", include_in_schema=False)
    async def oauth2_redirect() -> Response:
        return get_swagger_ui_oauth2_redirect_html()


def peers_router(node: AsyncNode) -> APIRouter:
    """`GET /peers` and `POST /data/{cid}/keep` (hoard's additions, under the API base)."""
    router = APIRouter()

    @router.get("/peers", operation_id="listPeers", tags=["Node"],
                summary="Connected peers: addresses, direction, latency (ms) and agent (hoard)",
                responses={200: {"description": "The connected peers, as a JSON array"}, **errors()})
    async def peers() -> Any:
        return JSONResponse([shapes.connected_peer_json(p) for p in await node.net.peer_list()])

    @router.post("/data/{cid}/keep", operation_id="keepData", tags=["Data"], response_class=PlainTextResponse,
                 summary="Store cached (fetched) data for good: no expiry, as an upload (hoard)",
                 responses={200: {"description": "Kept", **TEXT}, **errors(400, 404)})
    async def keep(cid: str) -> Response:
        await node.keep(cid)
        return PlainTextResponse("")

    return router


def _not_ready(node: AsyncNode) -> str | None:
    if node.closed:
        return "the node is closed"
    if not node.started:
        return "the node is not started"
    if node.components.net.network is None:
        return "the network is not up"
    return None


__all__ = ["DOCS_ASSETS", "PROMETHEUS_TEXT", "install_docs", "ops_router", "peers_router"]
