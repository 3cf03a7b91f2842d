"""Node and debug endpoints: space, spr, peerid, connect, debug info, log level, peer debug."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response

from hoard.api import shapes
from hoard.api.rest.bridge import error_response
from hoard.api.rest.models import DebugInfo, PeerIdRead, PeerRecord, Space, SPRRead
from hoard.api.rest.responses import TEXT, errors
from hoard.errors import InvalidArgumentError, PeerError, StateError
from hoard.ids.peer import PeerId
from hoard.node.async_node import AsyncNode

PeerIdPath = Annotated[str, Path(alias="peerId", description="A libp2p peer id",
                                 examples=["12D3KooWLGBfWYyTD9ykkWQF1qbYpTcGLYvbnrTQ5W4vcXr9qDdH"])]


def node_router(node: AsyncNode) -> APIRouter:
    """The node and debug routes, bound to `node`."""
    router = APIRouter()

    @router.get("/space", operation_id="space", tags=["Node"], response_model=Space,
                summary="Storage space: blocks, quota, used and reserved bytes", responses=errors())
    async def space() -> dict[str, Any]:
        return shapes.space_json(await node.space())

    @router.get("/spr", operation_id="getSPR", tags=["Node"], summary="The node's signed peer record",
                description="JSON `{spr}`, or the bare record when the client prefers text/plain.",
                responses={200: {"description": "The SPR", "content": {
                    "application/json": {"schema": {"$ref": "#/components/schemas/SPRRead"}},
                    "text/plain": {"schema": {"type": "string"}}}}, **errors(503)})
    async def spr(request: Request) -> Response:
        record = await node.spr()
        if not record:
            return error_response(StateError("Failed to get SPR: no SPR record found."), 503)
        if _prefers_text(request):
            return PlainTextResponse(record)
        return JSONResponse(SPRRead(spr=record).model_dump())

    @router.get("/peerid", operation_id="getPeerId", tags=["Node"], summary="The node's libp2p peer id",
                description="JSON `{id}`, or the bare id when the client prefers text/plain.",
                responses={200: {"description": "The peer id", "content": {
                    "application/json": {"schema": {"$ref": "#/components/schemas/PeerIdRead"}},
                    "text/plain": {"schema": {"type": "string"}}}}, **errors()})
    async def peerid(request: Request) -> Response:
        peer = str(await node.peer_id())
        if _prefers_text(request):
            return PlainTextResponse(peer)
        return JSONResponse(PeerIdRead(id=peer).model_dump())

    @router.get("/connect/{peerId}", operation_id="connectPeer", tags=["Node"], response_class=PlainTextResponse,
                summary="Connect to a peer, at the given addresses or found through the DHT",
                responses={200: {"description": "Successfully connected to peer", **TEXT}, **errors(400, 503)})
    async def connect(peer_id: PeerIdPath, addrs: Annotated[list[str] | None, Query(
            description="Multiaddresses to dial the peer at (repeat the parameter for several)")] = None) -> Response:
        parsed = _peer_id(peer_id)
        try:
            await node.connect(parsed, list(addrs or []))
        except PeerError as exc:
            return error_response(exc, 400, f"Unable to dial peer: {exc.message}")
        return PlainTextResponse("Successfully connected to peer")

    @router.get("/debug/info", operation_id="getDebugInfo", tags=["Debug"], response_model=DebugInfo,
                summary="Node information: id, addresses, SPR, routing table, repo, version", responses=errors())
    async def debug_info() -> dict[str, Any]:
        info = shapes.debug_json(await node.debug())
        return {**info, "libp2pPubKey": _public_key_hex(info["id"]), "repo": await node.repo(),
                "storage": {"version": await node.version(), "revision": await node.revision()}}

    @router.post("/debug/chronicles/loglevel", operation_id="setDebugLogLevel", tags=["Debug"],
                 response_class=PlainTextResponse, summary="Set the log level at run time",
                 responses={200: {"description": "Log level set", **TEXT}, **errors(400)})
    async def log_level(level: Annotated[str | None, Query(
            description="TRACE, DEBUG, INFO, NOTICE, WARN, ERROR or FATAL")] = None) -> Response:
        if not level:
            raise InvalidArgumentError("Missing log level")
        await node.log_level(level)
        return PlainTextResponse("")

    @router.get("/debug/peer/{peerId}", operation_id="getPeerInfo", tags=["Debug"], response_model=PeerRecord,
                summary="What the node knows of a peer: id, sequence number, addresses",
                responses=errors(400, 404, 503))
    async def peer_debug(peer_id: PeerIdPath) -> Any:
        parsed = _peer_id(peer_id)
        try:
            return shapes.peer_json(await node.peer_debug(parsed))
        except PeerError as exc:  # the node does not know the peer
            return error_response(exc, 404)

    return router


def _peer_id(text: str) -> str:
    """The peer id, checked: base58 of a multihash (InvalidArgumentError otherwise)."""
    import multihash  # type: ignore[import-untyped]

    peer = PeerId(text)
    try:
        multihash.decode(peer.to_bytes())
    except Exception as exc:
        raise InvalidArgumentError(f"invalid peer id: {text!r}", peer_id=text) from exc
    return str(peer)


def _public_key_hex(peer: str) -> str:
    """The node's libp2p public key (hex), recovered from its peer id ("" if it does not embed one)."""
    try:
        key = PeerId(peer).libp2p.extract_public_key()
    except Exception:  # noqa: BLE001 - a peer id that does not inline its key
        return ""
    return key.to_bytes().hex() if key is not None else ""


def _prefers_text(request: Request) -> bool:
    """Whether Accept ranks text/plain above application/json (JSON is the default)."""
    best: dict[str, float] = {}
    for part in request.headers.get("accept", "").split(","):
        media, _, params = part.strip().partition(";")
        quality = 1.0
        for param in params.split(";"):
            key, _, value = param.strip().partition("=")
            if key == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        best[media.strip().lower()] = max(quality, best.get(media.strip().lower(), 0.0))
    text, json_ = best.get("text/plain", 0.0), best.get("application/json", 0.0)
    return text > json_
