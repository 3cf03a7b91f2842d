"""Helpers for network tests: real py-libp2p hosts on 127.0.0.1, several per trio loop."""

from __future__ import annotations

import functools
import inspect
import random
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

import trio

from hoard.ids.cid import CID
from hoard.ids.peer import Identity
from hoard.net import FetchLimits, Network, NetworkConfig
from hoard.store import MemoryBlockStore

LOOPBACK = ["/ip4/127.0.0.1/tcp/0"]


def trio_test(timeout: float = 60.0) -> Callable:
    """Run an async test function under `trio.run`, failing it after `timeout` seconds."""

    def wrap(fn: Callable) -> Callable:
        @functools.wraps(fn)
        def runner(*args: Any, **kwargs: Any) -> None:
            async def main() -> None:
                with trio.fail_after(timeout):
                    await fn(*args, **kwargs)

            trio.run(main)

        runner.__signature__ = inspect.signature(fn)  # keep pytest fixtures working
        return runner

    return wrap


def make_blocks(count: int, size: int = 65536, seed: int = 1) -> list[tuple[CID, bytes]]:
    """`count` deterministic random blocks of `size` bytes with their CIDs."""
    rng = random.Random(seed)
    out = []
    for _ in range(count):
        data = rng.randbytes(size)
        out.append((CID.of(data), data))
    return out


def store_with(blocks: list[tuple[CID, bytes]]) -> MemoryBlockStore:
    store = MemoryBlockStore()
    store.put_many(blocks)
    return store


FAST = NetworkConfig(dial_timeout=5.0, bootstrap_timeout=5.0,
                     fetch=FetchLimits(request_timeout=3.0, open_timeout=5.0))


@asynccontextmanager
async def networks(*sources: Any, config: NetworkConfig = FAST, **kwargs: Any) -> AsyncIterator[list[Network]]:
    """Run one Network per block source (None for none), all on this trio loop."""
    async with AsyncExitStack() as stack:
        nets = []
        for source in sources:
            net = Network(Identity.generate(), LOOPBACK, block_source=source, config=config, **kwargs)
            await stack.enter_async_context(net.run())
            nets.append(net)
        yield nets


async def connect(a: Network, b: Network) -> None:
    await a.connect(b.peer_id, b.addrs)


async def collect(stream: Any) -> list[tuple[CID, bytes]]:
    async with stream:
        return [item async for item in stream]
