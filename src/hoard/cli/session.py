"""How a CLI command gets a node: an embedded one opened on the data dir."""

from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Iterator

from hoard.cli.output import Ctx
from hoard.node import Config, Node


def load_config(ctx: Ctx, extra: dict[str, Any] | None = None) -> Config:
    config = Config.from_file(ctx.config) if ctx.config else Config()
    values: dict[str, Any] = dict(extra or {})
    if ctx.data_dir:
        values["data-dir"] = ctx.data_dir
    return Config.from_dict(values, config)


@contextmanager
def embedded_node(ctx: Ctx, start: bool = False) -> Iterator[Node]:
    """An embedded node on the data dir, closed afterwards."""
    node = Node(load_config(ctx))
    try:
        if start:
            node.start()
        yield node
    finally:
        node.close()
