"""REST safety: what a web page, a rebinding DNS name or a heavy caller may not do.

`SecurityMiddleware` (plain ASGI, so streamed bodies pass through untouched) checks every
HTTP request before the app sees it:

* **Host.** A request must name the node by an IP literal, `localhost` (or a `.localhost`
  name), or a name listed in `api-allowed-hosts`; any other `Host` is refused (403), so a
  DNS-rebinding page (evil.example resolving to 127.0.0.1) reaches nothing.
* **Origin.** A cross-origin request that changes state (any method but GET, HEAD and
  OPTIONS) is refused (403) unless its `Origin` is in `api-cors-origin` (`"*"`: any), and so
  is one a browser marks `Sec-Fetch-Site: cross-site` without an allowed Origin. Allowed
  origins get CORS headers and preflight answers; same-origin requests (the status page)
  need nothing.
* **Token.** With `api-token` or `api-token-file` set (hoard.api.auth), every request must
  carry `Authorization: Bearer <token>` (401 otherwise; CORS preflights and the health checks
  `GET /health` and `GET /ready` excepted: probes carry no token and learn only up or down).
* **Work.** At most `REST_MAX_UPLOADS` uploads (requests whose body is data to store: `/data`,
  `/blobs`, file writes, IPFS adds and CAR imports) run at once (503 with Retry-After beyond);
  an upload's `blockSize` is 0 (the default) or at least `REST_MIN_BLOCK_SIZE`; an upload
  body that stalls for `REST_BODY_IDLE_TIMEOUT` seconds is dropped.

The server (server.py) bounds the rest: header timeout, header size, connections.
docs/security.md has the threat model.
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
import urllib.parse
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from hoard.api.auth import token_matches
from hoard.limits import REST_BODY_IDLE_TIMEOUT, REST_MAX_UPLOADS, REST_MIN_BLOCK_SIZE

__all__ = ["SecurityMiddleware", "host_allowed"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_UPLOAD_PATH = re.compile(r"^/api/(?:storage|codex)/v1/data/?$")
# every request whose body is data to store counts against the upload cap
_BODY_UPLOAD_PATH = re.compile(
    r"^/api/(?:storage|codex)/v1/(?:data|blobs|files/[0-9]+/(?:blocks|stream)|ipfs/(?:add|car))/?$")
_CORS_METHODS = "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS"
_CORS_EXPOSE = "Content-Disposition, Content-Length, Content-Range, Accept-Ranges, X-Hoard-Error"


def _host_name(host: str) -> str:
    """The name part of a Host header value (no port, no brackets, lower case, no final dot)."""
    host = host.strip().lower()
    if host.startswith("["):
        return host[1:host.find("]")] if "]" in host else host
    name, sep, port = host.rpartition(":")
    if sep and port.isdigit() and ":" not in name:
        host = name
    return host.rstrip(".")


def host_allowed(host: str, allowed: frozenset[str]) -> bool:
    """Whether a request naming `host` may be served: IP literals, localhost names, `allowed`."""
    name = _host_name(host)
    if "*" in allowed or name in allowed or name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


OPEN_PATHS = ("/health", "/ready")  # answered without the API token (health checks)

class SecurityMiddleware:
    """See the module docstring. Settings come from the node's config (`from_config`)."""

    def __init__(self, app: ASGIApp, *, allowed_hosts: list[str] | None = None,
                 cors_origins: list[str] | None = None, token: str | None = None,
                 max_uploads: int = REST_MAX_UPLOADS, min_block_size: int = REST_MIN_BLOCK_SIZE,
                 body_idle_timeout: float | None = None) -> None:
        self.app = app
        self.allowed_hosts = frozenset(_host_name(h) for h in allowed_hosts or ())
        self.cors_origins = frozenset(o.strip().rstrip("/").lower() for o in cors_origins or ())
        self.token = token
        self.max_uploads = max_uploads
        self.min_block_size = min_block_size
        self.body_idle_timeout = body_idle_timeout
        self.uploads = 0

    # -- checks -------------------------------------------------------------------------
    def _origin_allowed(self, origin: str) -> bool:
        return "*" in self.cors_origins or origin.rstrip("/").lower() in self.cors_origins

    @staticmethod
    def _same_origin(origin: str, host: str | None, scheme: str) -> bool:
        return host is not None and origin.rstrip("/").lower() == f"{scheme}://{host.strip().lower()}"

    def _block_size_problem(self, query: bytes) -> str | None:
        try:
            values = urllib.parse.parse_qs(query.decode("latin-1")).get("blockSize", [])
        except ValueError:
            return None
        for value in values:
            if value.strip().isdigit() and 0 < int(value) < self.min_block_size:
                return f"blockSize must be 0 (the default) or at least {self.min_block_size} bytes, got {int(value)}"
        return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers: dict[str, str] = {}
        for key, value in scope.get("headers", ()):
            headers.setdefault(key.decode("latin-1").lower(), value.decode("latin-1"))
        method = scope["method"]
        host = headers.get("host")
        if host is not None and not host_allowed(host, self.allowed_hosts):
            await _refuse(send, 403, "forbidden",
                          "This node does not answer to that Host name (add it to api-allowed-hosts).")
            return
        origin = headers.get("origin")
        allowed_origin = origin if origin is not None and self._origin_allowed(origin) else None
        same = origin is not None and self._same_origin(origin, host, scope.get("scheme", "http"))
        if method == "OPTIONS" and origin is not None and "access-control-request-method" in headers:
            if allowed_origin is None and not same:
                await _refuse(send, 403, "forbidden", "Cross-origin requests from this origin are not allowed.")
            else:
                await _preflight(send, origin, headers.get("access-control-request-headers"))
            return
        cross_site = headers.get("sec-fetch-site") in ("cross-site", "same-site")
        if method not in SAFE_METHODS and allowed_origin is None and not same and (origin is not None or cross_site):
            await _refuse(send, 403, "forbidden",
                          "Cross-origin requests that change state are refused (allow the origin with api-cors-origin).")
            return
        open_path = method in ("GET", "HEAD") and scope.get("path") in OPEN_PATHS
        if not open_path and not token_matches(self.token, headers.get("authorization")):
            await _refuse(send, 401, "unauthorized", "This node requires an API token (Authorization: Bearer ...).",
                          [(b"www-authenticate", b'Bearer realm="hoard"')])
            return
        if allowed_origin is not None and not same:
            send = _with_cors(send, origin or "")
        path = scope.get("path", "")
        if method == "POST" and _BODY_UPLOAD_PATH.match(path):
            if _UPLOAD_PATH.match(path):
                problem = self._block_size_problem(scope.get("query_string", b""))
                if problem is not None:
                    await _refuse(send, 400, "invalid", problem)
                    return
            if self.uploads >= self.max_uploads:
                await _refuse(send, 503, "busy", f"Too many uploads in progress (at most {self.max_uploads}); retry later.",
                              [(b"retry-after", b"1")])
                return
            self.uploads += 1
            try:
                await self.app(scope, self._timed(receive), send)
            finally:
                self.uploads -= 1
            return
        if method not in SAFE_METHODS:
            receive = self._timed(receive)
        await self.app(scope, receive, send)

    def _timed(self, receive: Receive) -> Receive:
        """`receive` that reports a disconnect when the body stalls (only while it is incomplete)."""
        done = False
        timeout = REST_BODY_IDLE_TIMEOUT if self.body_idle_timeout is None else self.body_idle_timeout

        async def timed() -> Message:
            nonlocal done
            if done:
                return await receive()
            try:
                message = await asyncio.wait_for(receive(), timeout)
            except TimeoutError:
                done = True
                return {"type": "http.disconnect"}
            if message.get("type") != "http.request" or not message.get("more_body", False):
                done = True
            return message

        return timed


async def _refuse(send: Send, status: int, code: str, text: str,
                  extra: list[tuple[bytes, bytes]] | None = None) -> None:
    body = text.encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"text/plain; charset=utf-8"), (b"content-length", str(len(body)).encode()),
                            (b"x-hoard-error", code.encode()), *(extra or [])]})
    await send({"type": "http.response.body", "body": body})


def _cors_headers(origin: str) -> list[tuple[bytes, bytes]]:
    return [(b"access-control-allow-origin", origin.encode("latin-1", "replace")), (b"vary", b"Origin"),
            (b"access-control-expose-headers", _CORS_EXPOSE.encode())]


async def _preflight(send: Send, origin: str, request_headers: str | None) -> None:
    headers = [*_cors_headers(origin), (b"access-control-allow-methods", _CORS_METHODS.encode()),
               (b"access-control-max-age", b"600"), (b"content-length", b"0")]
    if request_headers:
        headers.append((b"access-control-allow-headers", request_headers.encode("latin-1", "replace")[:1024]))
    await send({"type": "http.response.start", "status": 204, "headers": headers})
    await send({"type": "http.response.body", "body": b""})


def _with_cors(send: Send, origin: str) -> Send:
    async def cors_send(message: Message) -> None:
        if message["type"] == "http.response.start":
            message = dict(message)
            message["headers"] = [*message.get("headers", ()), *_cors_headers(origin)]
        await send(message)

    return cors_send

