"""How REST handlers reach the node, and how hoard errors become HTTP responses.

`NodeBridge(node)` wraps a `hoard.Node` or `hoard.AsyncNode`: `await bridge.list()` dispatches
the node operation to its worker and awaits the worker's future from asyncio, exactly what an
`AsyncNode` method does, so the server works the same for either kind of node.

An error answers with the error's `http_status`, the message as a `text/plain` body (as Logos
does) and the stable hoard error code in the `X-Hoard-Error` header, which the CLI's REST
client uses to raise the same error class the node raised.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
from fastapi.responses import PlainTextResponse

from hoard.errors import HoardError

ERROR_HEADER = "X-Hoard-Error"


class NodeBridge:
    """Async access to a node's operations from the asyncio loop of the HTTP server."""

    def __init__(self, node: Any) -> None:
        self._node = node

    def submit(self, name: str, *args: Any, **kwargs: Any) -> asyncio.Future[Any]:
        """Dispatch `name(*args)` to the worker now; await the returned future later."""
        return asyncio.wrap_future(self._node.submit(name, *args, **kwargs))

    def has(self, name: str) -> bool:
        """Whether the node offers operation `name` (e.g. `connect` once the network exists)."""
        return callable(getattr(type(self._node), name, None))

    def __getattr__(self, name: str) -> Callable[..., Awaitable[Any]]:
        if name.startswith("_"):
            raise AttributeError(name)

        async def call(*args: Any, **kwargs: Any) -> Any:
            return await self.submit(name, *args, **kwargs)

        call.__name__ = name
        return call


async def settle(future: asyncio.Future[Any] | None) -> None:
    """Wait for a dispatched call whose result no longer matters, even while being cancelled.

    Await dispatched calls with `asyncio.shield(future)` where the awaiting task may be
    cancelled, so the future here still tracks the call on the worker.
    """
    if future is None:
        return
    with anyio.CancelScope(shield=True):
        try:
            await future
        except (Exception, asyncio.CancelledError):  # noqa: BLE001 - the caller is already handling a failure
            pass


def error_response(exc: HoardError, status: int | None = None, message: str | None = None) -> PlainTextResponse:
    """The HTTP answer for a hoard error: its status, its message as text, its code in a header."""
    return PlainTextResponse(message if message is not None else exc.message, status_code=status or exc.http_status,
                             headers={ERROR_HEADER: str(exc.code)})
