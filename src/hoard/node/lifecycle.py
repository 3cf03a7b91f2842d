"""A node's lifecycle on its worker: start (run every component), stop, close.

`start()` runs each component's `run` in one nursery, in composition order, each started
before the next; a component failing to start fails `start()` with StateError and leaves the
node stopped. `stop()` cancels them (data and sessions stay); start again works. `close()`
stops and then closes every component in reverse order.
"""

from __future__ import annotations

import logging

import trio

from hoard.errors import StateError
from hoard.node.composition import Components

log = logging.getLogger("hoard")


class Lifecycle:
    """Start/stop/close of a node's components; lives on the worker's loop."""

    def __init__(self, components: Components) -> None:
        self._components = components
        self.started = False
        self._run_scope: trio.CancelScope | None = None
        self._stopped: trio.Event | None = None
        self._closed = False

    async def start(self) -> None:
        """Start the node's components (network, maintenance, ...). Start again after stop works."""
        if self.started:
            return
        if self._closed:
            raise StateError("node is closed")
        context = self._components.context
        started = trio.Event()
        stopped = self._stopped = trio.Event()
        failure: list[BaseException] = []

        async def run_components() -> None:
            try:
                with trio.CancelScope() as scope:
                    self._run_scope = scope
                    async with trio.open_nursery() as nursery:
                        for component in self._components.ordered:
                            await nursery.start(component.run, context)
                        started.set()
                        await trio.sleep_forever()
            except BaseException as exc:  # a component failed to start or died
                if not started.is_set():
                    failure.append(exc)
                    started.set()
                else:
                    log.exception("node component failed; node stopped")
            finally:
                self.started = False
                stopped.set()

        context.worker.spawn(run_components)
        await started.wait()
        if failure:
            exc = failure[0]
            if isinstance(exc, BaseExceptionGroup) and len(exc.exceptions) == 1:
                exc = exc.exceptions[0]
            raise StateError(f"Failed to start node: {exc}") from exc
        self.started = True
        log.info("node %s started", context.identity.peer_id)

    async def stop(self) -> None:
        """Stop the components; data and sessions stay. Idempotent."""
        if not self.started or self._run_scope is None:
            return
        self._run_scope.cancel()
        assert self._stopped is not None
        await self._stopped.wait()
        self.started = False
        log.info("node %s stopped", self._components.context.identity.peer_id)

    async def close(self) -> None:
        """Stop, then close every component (reverse order). Idempotent."""
        await self.stop()
        if self._closed:
            return
        self._closed = True
        for component in reversed(self._components.ordered):
            await component.aclose()
