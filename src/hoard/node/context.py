"""What every component of a node shares, passed explicitly: `NodeContext`.

The context holds the node's configuration, its repo (data dir, store, content store,
identity, writer keys), the worker every frontend dispatches to, and the node's events. It
holds no subsystem state: that belongs to the components (node/components/).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from hoard.content.repo import ContentStore
from hoard.ids.cid import CID
from hoard.ids.peer import Identity
from hoard.node.config import Config
from hoard.node.metrics import NodeCounters
from hoard.node.repo import Repo
from hoard.node.runtime import Worker

log = logging.getLogger("hoard.node")

DatasetListener = Callable[[CID], Awaitable[None]]


@dataclass
class NodeEvents:
    """Node-wide events. `dataset_stored(cid)` is emitted (on the worker's loop) whenever a
    dataset becomes stored locally (upload, fetch, transfer); the net component announces it."""

    _on_dataset: list[DatasetListener] = field(default_factory=list)

    def on_dataset_stored(self, listener: DatasetListener) -> None:
        """Call `listener(cid)` for every dataset stored from now on."""
        self._on_dataset.append(listener)

    async def dataset_stored(self, cid: CID) -> None:
        """Tell every listener that dataset `cid` is stored; a failing listener is logged."""
        for listener in self._on_dataset:
            try:
                await listener(cid)
            except Exception:
                log.exception("dataset listener failed for %s", cid)


@dataclass
class NodeContext:
    """The node's shared parts (see the module docstring)."""

    config: Config
    repo: Repo
    worker: Worker
    events: NodeEvents = field(default_factory=NodeEvents)
    counters: NodeCounters = field(default_factory=NodeCounters)  # uploads, downloads, fetches (node/metrics.py)

    @property
    def content(self) -> ContentStore:
        """The content store (datasets, sessions, quota) on the repo's block store."""
        return self.repo.content

    @property
    def identity(self) -> Identity:
        """The node's libp2p identity (its key, peer ID and signed peer record)."""
        return self.repo.identity
