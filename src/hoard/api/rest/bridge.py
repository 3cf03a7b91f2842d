"""How hoard errors become HTTP responses, and how a handler settles a dispatched call.

Handlers call the node's typed surface: `await node.list()` on the node's `AsyncNode` face
(`node.as_async()`), or `node.dispatch.<op>(...)` (wrapped with `asyncio.wrap_future`) where a
call must be dispatched at once, ahead of being awaited (pipelined uploads and downloads).

An error answers with the error's `http_status`, the message as a `text/plain` body (as Logos
does) and the stable hoard error code in the `X-Hoard-Error` header, which the CLI's REST
client uses to raise the same error class the node raised.
"""

from __future__ import annotations

import asyncio
from typing import Any

import anyio
from fastapi.responses import PlainTextResponse

from hoard.errors import HoardError

ERROR_HEADER = "X-Hoard-Error"


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
        except (Exception, asyncio.CancelledError):  # noqa: BLE001, S110 - the caller is already handling a failure
            pass


def error_response(exc: HoardError, status: int | None = None, message: str | None = None) -> PlainTextResponse:
    """The HTTP answer for a hoard error: its status, its message as text, its code in a header."""
    return PlainTextResponse(message if message is not None else exc.message, status_code=status or exc.http_status,
                             headers={ERROR_HEADER: str(exc.code)})
