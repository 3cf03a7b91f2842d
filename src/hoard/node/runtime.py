"""The worker: one thread running a trio event loop, to which every frontend dispatches.

`Worker.submit(async_fn, *args)` schedules a task on the loop from any thread and returns a
`concurrent.futures.Future` at once (the "ack" of the Logos lifecycle); the result arrives
when the task finishes. Tasks run in the worker's nursery, so nothing runs detached, and
`shutdown()` cancels what is left and joins the thread. Blocking work inside a task goes
through `trio.to_thread.run_sync` so it does not stall the loop.
"""

from __future__ import annotations

import concurrent.futures
import threading
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import trio

from hoard.errors import StateError

T = TypeVar("T")


class Worker:
    """A thread owning a trio loop. Start once; `shutdown()` is idempotent."""

    def __init__(self, name: str = "hoard-worker") -> None:
        self.name = name
        self._thread: threading.Thread | None = None
        self._token: trio.lowlevel.TrioToken | None = None
        self._nursery: trio.Nursery | None = None
        self._stop: trio.Event | None = None
        self._ready = threading.Event()
        self._failure: BaseException | None = None
        self._closed = False

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
        self._thread.start()
        self._ready.wait()
        if self._failure is not None:
            raise StateError(f"worker failed to start: {self._failure}") from self._failure

    def _run(self) -> None:
        try:
            trio.run(self._main)
        except BaseException as exc:  # noqa: BLE001 - recorded for start() and logged by callers
            self._failure = exc
            self._ready.set()

    async def _main(self) -> None:
        self._token = trio.lowlevel.current_trio_token()
        self._stop = trio.Event()
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            self._ready.set()
            await self._stop.wait()
            nursery.cancel_scope.cancel()

    @property
    def in_worker(self) -> bool:
        return threading.current_thread() is self._thread

    def submit(self, fn: Callable[..., Awaitable[T]], *args: Any) -> concurrent.futures.Future[T]:
        """Run `fn(*args)` on the loop; returns a Future for its result."""
        if self._closed or self._token is None:
            raise StateError("node is closed")
        future: concurrent.futures.Future[T] = concurrent.futures.Future()

        async def task() -> None:
            if not future.set_running_or_notify_cancel():
                return
            try:
                result = await fn(*args)
            except BaseException as exc:
                if isinstance(exc, (KeyboardInterrupt, SystemExit)):
                    raise
                if isinstance(exc, trio.Cancelled):
                    future.set_exception(StateError("node shut down before the request finished"))
                    raise
                future.set_exception(exc)
            else:
                future.set_result(result)

        def launch() -> None:
            try:
                if self._nursery is None:
                    raise RuntimeError("no nursery")
                self._nursery.start_soon(task)
            except RuntimeError:  # the loop is shutting down: never leave the future unresolved
                if future.set_running_or_notify_cancel():
                    future.set_exception(StateError("node is closed"))

        try:
            self._token.run_sync_soon(launch)
        except trio.RunFinishedError as exc:
            raise StateError("node is closed") from exc
        return future

    def call(self, fn: Callable[..., Awaitable[T]], *args: Any) -> T:
        """Submit and wait. Must not be called from the worker thread itself."""
        if self.in_worker:
            raise StateError("blocking call from the worker thread would deadlock")
        return self.submit(fn, *args).result()

    def spawn(self, fn: Callable[..., Awaitable[Any]], *args: Any) -> None:
        """Start a background task in the worker's nursery (worker thread only)."""
        assert self._nursery is not None
        self._nursery.start_soon(fn, *args)

    def shutdown(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._token is not None and self._stop is not None:
            try:
                self._token.run_sync_soon(self._stop.set)
            except trio.RunFinishedError:
                pass
        if self._thread is not None and not self.in_worker:
            self._thread.join(timeout=30)
