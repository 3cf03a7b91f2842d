"""The node: config, repo, its components, the worker thread, and the typed facades."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from hoard.node.config import Config

if TYPE_CHECKING:
    from hoard.node.async_node import AsyncNode
    from hoard.node.node import Node

__all__ = ["AsyncNode", "Config", "Node"]


def __getattr__(name: str) -> Any:
    """`Node` and `AsyncNode` load on first use, so `hoard.node.config`/`.repo` stay cheap to import."""
    if name == "Node":
        from hoard.node.node import Node

        return Node
    if name == "AsyncNode":
        from hoard.node.async_node import AsyncNode

        return AsyncNode
    raise AttributeError(f"module 'hoard.node' has no attribute {name!r}")
