"""Awaiting the worker from the caller's event loop, whichever it is: asyncio or trio.

`AsyncNode` dispatches each operation to the node's worker thread, which hands back a
`concurrent.futures.Future`. `wait_future` awaits that future from the running loop without a
thread: under asyncio through `asyncio.wrap_future`, under trio by waking the waiting task
from the future's done-callback (`TrioToken.run_sync_soon`). `run_sync_in_thread` runs a
blocking call (closing a node) off the loop, with the loop's own thread helper.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
from collections.abc import Callable
from typing import TypeVar

import sniffio

T = TypeVar("T")


async def wait_future(future: concurrent.futures.Future[T]) -> T:
    """The result of `future`, awaited under asyncio or trio. Cancelling the wait cancels the
    future if its work has not started (work already running on the worker completes)."""
    if sniffio.current_async_library() == "trio":
        return await _wait_trio(future)
    return await asyncio.wrap_future(future)


async def _wait_trio(future: concurrent.futures.Future[T]) -> T:
    import trio

    if not future.done():
        done = trio.Event()
        token = trio.lowlevel.current_trio_token()

        def wake(_: concurrent.futures.Future[T]) -> None:
            try:
                token.run_sync_soon(done.set)
            except trio.RunFinishedError:  # the waiting loop has ended: nobody to wake
                pass

        future.add_done_callback(wake)
        try:
            await done.wait()
        except trio.Cancelled:
            future.cancel()
            raise
    return future.result()


async def run_sync_in_thread(fn: Callable[[], T]) -> T:
    """Run the blocking `fn()` in a thread of the running loop (asyncio or trio) and await it."""
    if sniffio.current_async_library() == "trio":
        import trio

        return await trio.to_thread.run_sync(fn)
    return await asyncio.get_running_loop().run_in_executor(None, fn)
