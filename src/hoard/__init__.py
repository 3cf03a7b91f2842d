"""hoard: a peer-to-peer data plane for Python.

Embed a node (`hoard.Node`, or `hoard.AsyncNode` for asyncio), run it as a daemon
(`hoard node start`), or link it from C (`hoard capi build`). Errors are in `hoard.errors`.
"""

from hoard import errors
from hoard.errors import HoardError
from hoard.ids import CID, PeerId
from hoard.logs import (
    EVENT_CREATED, EVENT_DATA, EVENT_EOS, EVENT_FAILURE, EVENT_MISSING, EVENT_SHUTDOWN, EVENT_SUCCESS, Datum, Event,
    Log, LogName, parse_name,
)
from hoard.node import AsyncNode, Config, Node
from hoard.node.info import version as _version

__version__ = _version().lstrip("v")

__all__ = sorted([
    "AsyncNode", "CID", "Config", "Datum", "EVENT_CREATED", "EVENT_DATA", "EVENT_EOS", "EVENT_FAILURE",
    "EVENT_MISSING", "EVENT_SHUTDOWN", "EVENT_SUCCESS", "Event", "HoardError", "Log", "LogName", "Node", "PeerId",
    "errors", "parse_name",
])
