"""The block-exchange seam: what `/hoard/blocks/1` and `/ipfs/bitswap/1.2.0` both offer the node.

A `BlockExchange` can
- find providers of a CID (`find_providers`),
- fetch a set of CIDs from providers as a stream of verified blocks (`fetch`): an async
  iterator of `(CID, bytes)` in the order the CIDs were given, each block checked against its
  CID (its own multihash) before it is yielded; a block no provider has raises NotFoundError,
  running out of providers raises PeerError;
- serve blocks from a local source to peers that ask (`serve`).

Fetch, ingest and the node use only this interface; `fetch_dag` walks a DAG (dag-pb, dag-cbor,
raw) through any exchange, level by level, so a UnixFS file or a hoard dataset comes over either
protocol the same way.
"""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Protocol, Self, runtime_checkable

import trio

from hoard.content.car import links_of
from hoard.errors import NotFoundError, PeerError
from hoard.ids.cid import CID
from hoard.ids.peer import PeerId

__all__ = ["BlockExchange", "BlockSource", "BlockStream", "as_getter", "fetch_dag"]

#: Where served blocks come from: `get(cid) -> bytes | None` (None: not here), plain or async.
BlockSource = Callable[[CID], "bytes | None"] | Callable[[CID], Awaitable["bytes | None"]]


def as_getter(source: BlockSource) -> Callable[[CID], Awaitable[bytes | None]]:
    """The source as an async `get`; a plain callable is called directly (it must not block long)."""
    if inspect.iscoroutinefunction(source):
        return source

    async def get(cid: CID) -> bytes | None:
        result = source(cid)
        if inspect.isawaitable(result):
            return await result
        return result

    return get


@runtime_checkable
class BlockStream(Protocol):
    """Verified blocks in request order; close it to stop the fetch early."""

    def __aiter__(self) -> AsyncIterator[tuple[CID, bytes]]: ...

    async def aclose(self) -> None: ...

    async def __aenter__(self) -> Self: ...

    async def __aexit__(self, *exc: object) -> None: ...


@runtime_checkable
class BlockExchange(Protocol):
    #: The libp2p protocol ids this exchange speaks.
    protocols: tuple[str, ...]

    async def find_providers(self, cid: CID, limit: int = 20, timeout: float = 5.0) -> list[PeerId]:
        """Peers that say they have `cid` (at most `limit`, within `timeout` seconds)."""
        ...

    def fetch(self, cids: Sequence[CID], providers: Sequence[PeerId], nursery: trio.Nursery) -> BlockStream:
        """Start fetching `cids` from `providers`; the stream yields them verified, in order."""
        ...

    def serve(self, source: BlockSource | None) -> None:
        """Answer peers' wants from `source` (None: stop serving)."""
        ...


async def fetch_dag(exchange: BlockExchange, root: CID, providers: Sequence[PeerId], nursery: trio.Nursery,
                    have: Callable[[CID], bytes | None] | None = None,
                    ) -> AsyncIterator[tuple[CID, bytes]]:
    """Every block of the DAG under `root`, fetched level by level through `exchange` (blocks
    `have` already returns are verified and walked, not fetched). Each block is yielded once.

    Blocks are yielded as the exchange delivers them (a level's blocks in link order), so memory
    is the exchange's window plus the CIDs of the next level, whatever the DAG's size.
    The fetches run in the caller's `nursery` (an async generator must not yield inside a
    nursery of its own: trio would deliver its cancellations to the consumer)."""
    seen: set[CID] = {root}
    level = [root]
    while level:
        present = {cid for cid in level if have is not None and have(cid) is not None}
        wanted = [cid for cid in level if cid not in present]
        stream = exchange.fetch(wanted, providers, nursery) if wanted else None
        next_level: list[CID] = []
        try:
            blocks = aiter(stream) if stream is not None else None
            for cid in level:
                data: bytes
                if cid in present:
                    assert have is not None
                    local = have(cid)
                    if local is None:  # deleted meanwhile
                        raise NotFoundError(f"block {cid} left the store during a DAG walk", cid=str(cid))
                    cid.verify(local)
                    data = local
                else:
                    assert blocks is not None
                    got, data = await anext(blocks)
                    if got != cid:
                        raise PeerError(f"the exchange delivered {got} where {cid} was due")
                yield cid, data
                for child in links_of(cid, data):
                    if child not in seen:
                        seen.add(child)
                        next_level.append(child)
        finally:
            if stream is not None:
                await stream.aclose()
        level = next_level
