"""The node: config, repo, lifecycle, the worker thread, and the request dispatch."""

from hoard.node.config import Config
from hoard.node.node import AsyncNode, Node

__all__ = ["AsyncNode", "Config", "Node"]
