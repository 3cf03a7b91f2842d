"""The node: config, repo, lifecycle, the worker thread, and the request dispatch."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from hoard.node.config import Config

if TYPE_CHECKING:
    from hoard.node.node import AsyncNode, Node

__all__ = ["AsyncNode", "Config", "Node"]


def __getattr__(name: str) -> Any:
    """`Node` and `AsyncNode` load on first use, so `hoard.node.config`/`.repo` stay cheap to import."""
    if name in ("AsyncNode", "Node"):
        from hoard.node import node

        return getattr(node, name)
    raise AttributeError(f"module 'hoard.node' has no attribute {name!r}")
