"""`Node` (blocking) and `AsyncNode` (asyncio): the public faces of a NodeCore.

Both are generated from the `@api` coroutines of NodeCore, so they offer exactly the same
operations with the same signatures and docstrings: a `Node` method dispatches to the worker
and waits; an `AsyncNode` method dispatches and awaits the future from asyncio. Subsystems
that add operations (logs, blobs, files, transfer) add `@api` coroutines to NodeCore mixins.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import inspect
from typing import Any

from hoard.errors import StateError
from hoard.node.config import Config
from hoard.node.compose import NodeCore
from hoard.node.core import API_NAMES
from hoard.node.repo import Repo
from hoard.node.runtime import Worker


class _NodeBase:
    """Creation and teardown shared by Node and AsyncNode."""

    def __init__(self, config: Config | dict[str, Any] | str | None = None) -> None:
        self.config = Config.coerce(config)
        self._worker = Worker(name=f"hoard-{self.config.data_dir.name}")
        self._repo = Repo(self.config)
        try:
            self._worker.start()
            self._core = NodeCore(self.config, self._repo, self._worker)
        except BaseException:
            self._worker.shutdown()
            self._repo.close()
            raise
        self._closed = False

    @property
    def core(self) -> NodeCore:
        if self._closed:
            raise StateError("node is closed")
        return self._core

    def submit(self, name: str, *args: Any, **kwargs: Any) -> concurrent.futures.Future[Any]:
        """Dispatch operation `name` to the worker; returns its Future at once (the "ack").

        This is how every frontend (REST, C ABI, ...) reaches the node without blocking.
        """
        if self._closed:
            raise StateError("node is closed")
        method = getattr(self._core, name)
        return self._worker.submit(functools.partial(method, *args, **kwargs))

    def _close_sync(self) -> None:
        if self._closed:
            return
        try:
            if not self._worker.in_worker:
                self._worker.call(self._core.close)
        finally:
            self._closed = True
            self._worker.shutdown()
            self._repo.close()

    @property
    def closed(self) -> bool:
        return self._closed


def _sync_method(name: str):
    target = getattr(NodeCore, name)

    @functools.wraps(target)
    def method(self: Node, *args: Any, **kwargs: Any) -> Any:
        return self.submit(name, *args, **kwargs).result()

    method.__signature__ = inspect.signature(target)  # type: ignore[attr-defined]
    return method


def _async_method(name: str):
    target = getattr(NodeCore, name)

    @functools.wraps(target)
    async def method(self: AsyncNode, *args: Any, **kwargs: Any) -> Any:
        return await asyncio.wrap_future(self.submit(name, *args, **kwargs))

    method.__signature__ = inspect.signature(target)  # type: ignore[attr-defined]
    return method


class Node(_NodeBase):
    """A hoard node with a blocking API. `Node(config)` opens the repo (no network yet).

    `config` is a `Config`, a dict of Logos option names, a JSON string, or a path to a JSON
    file. Use `start()`/`stop()` for the network and services, `close()` (or a `with` block)
    to release everything. Methods may be called from any thread except hoard's own.
    """

    def close(self) -> None:
        """Stop the node, cancel open sessions, release the repo. Idempotent."""
        self._close_sync()

    def __enter__(self) -> Node:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class AsyncNode(_NodeBase):
    """The same operations as `Node`, as asyncio coroutines (`await node.upload_file(...)`)."""

    async def close(self) -> None:
        """Stop the node, cancel open sessions, release the repo. Idempotent."""
        await asyncio.get_running_loop().run_in_executor(None, self._close_sync)

    async def __aenter__(self) -> AsyncNode:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


def install_api(names: list[str] | None = None) -> None:
    """(Re)generate Node and AsyncNode methods from NodeCore's @api coroutines."""
    for name in names or API_NAMES:
        setattr(Node, name, _sync_method(name))
        setattr(AsyncNode, name, _async_method(name))


install_api()
