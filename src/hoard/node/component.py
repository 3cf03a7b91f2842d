"""The component protocol: how one subsystem of a node is plugged in.

A node is a short, ordered list of components (node/composition.py). Each one owns its state
and follows this protocol:

* `name` — a short identifier ("data", "net", "logs", ...);
* `protocols` — the libp2p protocols it serves, as `{protocol id: stream handler}`; the net
  component installs every component's handlers on its host before the host starts;
* `run(context, task_status)` — what it runs while the node is started (a loop, a server, or
  nothing): it calls `task_status.started()` once it is ready and runs until cancelled by
  `stop()`; components start in list order, so one may rely on those before it;
* `aclose()` — releases what it owns when the node closes (in reverse list order); idempotent.

Dependencies between components are constructor arguments (`FetchComponent(context, net)`),
never base classes or shared attributes, so a type checker and a reader can follow them.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any, Protocol

import trio

if TYPE_CHECKING:
    from hoard.node.context import NodeContext

StreamHandler = Callable[[Any], Awaitable[None]]
"""A libp2p stream handler: called with each new stream of its protocol."""


class Component(Protocol):
    """One subsystem of a node (see the module docstring)."""

    name: str
    protocols: Mapping[str, StreamHandler]

    async def run(self, context: NodeContext, task_status: trio.TaskStatus[None]) -> None:
        """Run while the node is started; `task_status.started()` once ready."""
        ...

    async def aclose(self) -> None:
        """Release what the component owns (the node is closing). Idempotent."""
        ...


async def idle(task_status: trio.TaskStatus[None]) -> None:
    """The `run` of a component with nothing to run: ready at once, then wait to be cancelled."""
    task_status.started()
    await trio.sleep_forever()
