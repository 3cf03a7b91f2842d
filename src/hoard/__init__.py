"""hoard: a peer-to-peer data plane for Python.

Embed a node (`hoard.Node`, or `hoard.AsyncNode` for asyncio), run it as a daemon
(`hoard node start`), or link it from C (`hoard capi build`). Errors are in `hoard.errors`.

`import hoard` is cheap: the names below are imported on first use (PEP 562), and the
network stack (py-libp2p) only when a node's network starts.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from hoard import errors
from hoard.errors import HoardError

if TYPE_CHECKING:
    from hoard.ids import CID, PeerId
    from hoard.logs import (
        EVENT_CREATED,
        EVENT_DATA,
        EVENT_EOS,
        EVENT_FAILURE,
        EVENT_MISSING,
        EVENT_SHUTDOWN,
        EVENT_SUCCESS,
        Datum,
        Event,
        Log,
        LogName,
        parse_name,
    )
    from hoard.node import AsyncNode, Config, Node

_LAZY: dict[str, str] = {
    "CID": "hoard.ids", "PeerId": "hoard.ids",
    "EVENT_CREATED": "hoard.logs", "EVENT_DATA": "hoard.logs", "EVENT_EOS": "hoard.logs",
    "EVENT_FAILURE": "hoard.logs", "EVENT_MISSING": "hoard.logs", "EVENT_SHUTDOWN": "hoard.logs",
    "EVENT_SUCCESS": "hoard.logs", "Datum": "hoard.logs", "Event": "hoard.logs", "Log": "hoard.logs",
    "LogName": "hoard.logs", "parse_name": "hoard.logs",
    "AsyncNode": "hoard.node", "Config": "hoard.node", "Node": "hoard.node",
}


def __getattr__(name: str) -> Any:
    if name == "__version__":
        from hoard.node.info import version
        value: Any = version().lstrip("v")
    elif name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
    else:
        raise AttributeError(f"module 'hoard' has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY, "__version__"})


__all__ = [  # plain sorted(), as tests/test_public_api.py checks
    "AsyncNode",
    "CID",
    "Config",
    "Datum",
    "EVENT_CREATED",
    "EVENT_DATA",
    "EVENT_EOS",
    "EVENT_FAILURE",
    "EVENT_MISSING",
    "EVENT_SHUTDOWN",
    "EVENT_SUCCESS",
    "Event",
    "HoardError",
    "Log",
    "LogName",
    "Node",
    "PeerId",
    "errors",
    "parse_name",
]
