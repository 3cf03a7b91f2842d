"""How a CLI command gets a node: the REST API of a running node, or an embedded one.

`open_node(ctx)` picks, in order:
1. `--api URL`: the node at that URL;
2. a node running on the data dir: the `api` address its `node.json` records, when the
   process that wrote it is alive;
3. otherwise an embedded node opened on the data dir (and closed afterwards).

Both kinds offer the same methods, namespaces (`logs`, `transfer`, `net`, `blobs`, `files`) and
typed results (`hoard.Node` / `hoard.api.client.NodeClient`), so commands do not care which they
got: this is the CLI's one choice between a running node and an embedded one.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from hoard.cli.output import Ctx
from hoard.node.config import Config

if TYPE_CHECKING:
    from hoard.node import Node


def load_config(ctx: Ctx, extra: dict[str, Any] | None = None) -> Config:
    config = Config.from_file(ctx.config) if ctx.config else Config()
    values: dict[str, Any] = dict(extra or {})
    if ctx.data_dir:
        values["data-dir"] = ctx.data_dir
    return Config.from_dict(values, config)


def running_api(ctx: Ctx) -> str | None:
    """The REST address of a node running on the data dir, or None."""
    info = running_info(ctx)
    return str(info["api"]) if info else None


def running_info(ctx: Ctx) -> dict[str, Any] | None:
    """What the node running on the data dir wrote to node.json (None when none runs)."""
    from hoard.node.repo import read_runtime_info

    info = read_runtime_info(load_config(ctx).data_dir)
    if not info or not info.get("api") or not _alive(info.get("pid")):
        return None
    return info


def _alive(pid: Any) -> bool:
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@contextmanager
def open_node(ctx: Ctx, start: bool = False) -> Iterator[Any]:
    """A node for one command: remote if one runs (or `--api` says where), else embedded.

    `start` starts an embedded node (for commands that need the network); a running node is
    already started.
    """
    url = ctx.api or running_api(ctx)
    if url:
        from hoard.api.auth import load_token
        from hoard.api.client import NodeClient

        with NodeClient(url, load_token(load_config(ctx))) as remote:
            yield remote
    else:
        with embedded_node(ctx, start) as node:
            yield node


@contextmanager
def embedded_node(ctx: Ctx, start: bool = False) -> Iterator[Node]:
    """An embedded node on the data dir, closed afterwards."""
    from hoard.node import Node

    node = Node(load_config(ctx))
    try:
        if start:
            node.start()
        yield node
    finally:
        node.close()
