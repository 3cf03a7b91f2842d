"""The server side of `/hoard/blocks/1`: answer want-lists with blocks from a local source.

A source is a `BlockStore` (its `get`), or a callable `get(cid) -> bytes | None`, plain or
async. Each stream is served in order: read one WANT, write one reply per CID (BLOCK, or
DONT_HAVE for a missing or oversized block, or when the source raises), then read the next WANT. Replies are written in
joined runs of up to `FLUSH_BYTES`, so yamux sends full frames. The server does not verify
blocks: the client verifies every block against its CID.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

import trio

from hoard.ids.cid import CID
from hoard.ids.peer import PeerId
from hoard.ratelog import violation
from hoard.store.base import BlockStore
from hoard.store.blobs import BlobStore

from .exchange import BlockSource as ExchangeSource
from .fetch import BlockFetcher, BlockStream
from .wire import (
    BLOCKS_PROTOCOL,
    MAX_BLOCK_SIZE,
    MAX_WANT,
    FrameReader,
    ProtocolError,
    decode_want,
    encode_block,
    encode_dont_have,
)

__all__ = ["BlockServer", "BlockSource", "HoardBlocks", "ServerStats"]

logger = logging.getLogger(__name__)

BlockSource = BlockStore | BlobStore | Callable[[CID], "bytes | None"] | Callable[[CID], Awaitable["bytes | None"]]
FLUSH_BYTES = 1 << 20
_MAX_WANT_FRAME = 1 + 4 + 2 + MAX_WANT * 65


@dataclass
class ServerStats:
    """Counters since the server was created."""

    streams: int = 0           # streams served
    active: int = 0            # streams being served now
    blocks_sent: int = 0
    bytes_sent: int = 0
    dont_have: int = 0
    protocol_errors: int = 0


def _getter(source: BlockSource) -> Callable[[CID], Awaitable[bytes | None]]:
    get = source.get if isinstance(source, (BlockStore, BlobStore)) else source
    if inspect.iscoroutinefunction(get):
        return get

    async def sync_get(cid: CID) -> bytes | None:
        return get(cid)  # type: ignore[return-value]

    return sync_get


class BlockServer:
    """Serves `/hoard/blocks/1` streams from a block source. Register `handle` on the host."""

    def __init__(self, source: BlockSource) -> None:
        self._get = _getter(source)
        self.stats = ServerStats()

    def set_source(self, source: BlockSource | None) -> None:
        """Serve from `source` from now on (None: answer DONT_HAVE to everything)."""
        self._get = _getter(source if source is not None else _nothing)

    async def handle(self, stream: object) -> None:
        """Serve one stream until the client closes it; reset it on any error."""
        peer = PeerId(stream.muxed_conn.peer_id)  # type: ignore[attr-defined]
        self.stats.streams += 1
        self.stats.active += 1
        reader = FrameReader(stream, _MAX_WANT_FRAME)  # type: ignore[arg-type]
        try:
            while True:
                body = await reader.next_body()
                if body is None:
                    break
                req_id, cids = decode_want(body)
                await self._answer(stream, req_id, cids)
            await stream.close()  # type: ignore[attr-defined]
        except ProtocolError as exc:
            self.stats.protocol_errors += 1
            violation(logger, peer, "broke %s: %s; stream reset", BLOCKS_PROTOCOL, exc.message)
            await _reset(stream)
        except trio.Cancelled:
            await _reset(stream)
            raise
        except Exception as exc:  # noqa: BLE001 - the peer went away
            logger.debug("block stream from %s ended: %r", peer, exc)
            await _reset(stream)
        finally:
            self.stats.active -= 1

    async def _answer(self, stream: object, req_id: int, cids: list[CID]) -> None:
        parts: list[bytes] = []
        pending = 0
        for cid in cids:
            try:
                data = await self._get(cid)
            except Exception as exc:  # noqa: BLE001 - a failing source answers "don't have", not ending the stream
                logger.warning("block source failed for %s: %r; answered DONT_HAVE", cid, exc)
                data = None
            if data is None or len(data) > MAX_BLOCK_SIZE:
                if data is not None:
                    logger.warning("block %s is %d bytes, over the %d-byte wire limit; answered DONT_HAVE",
                                   cid, len(data), MAX_BLOCK_SIZE)
                parts.append(encode_dont_have(req_id, cid.binary))
                self.stats.dont_have += 1
                continue
            parts.extend(encode_block(req_id, cid.binary, data))
            pending += len(data)
            self.stats.blocks_sent += 1
            self.stats.bytes_sent += len(data)
            if pending >= FLUSH_BYTES:
                await stream.write(b"".join(parts))  # type: ignore[attr-defined]
                parts.clear()
                pending = 0
        if parts:
            await stream.write(b"".join(parts))  # type: ignore[attr-defined]


def _nothing(cid: CID) -> bytes | None:
    return None


class HoardBlocks:
    """`/hoard/blocks/1` as a `BlockExchange` (net/exchange.py): a thin adapter over the
    network's `BlockFetcher` (multi-peer windows, penalties) and `BlockServer`.

    `find` is the provider lookup (the DHT's: `Network.find_providers`)."""

    protocols: tuple[str, ...] = (BLOCKS_PROTOCOL,)

    def __init__(self, fetcher: BlockFetcher, server: BlockServer,
                 find: Callable[[CID, int], Awaitable[list[PeerId]]]) -> None:
        self.fetcher = fetcher
        self.server = server
        self._find = find

    async def find_providers(self, cid: CID, limit: int = 20, timeout: float = 5.0) -> list[PeerId]:
        with trio.move_on_after(timeout):
            return (await self._find(cid, limit))[:limit]
        return []

    def fetch(self, cids: Sequence[CID], providers: Sequence[PeerId], nursery: trio.Nursery) -> BlockStream:
        return self.fetcher.fetch(cids, providers, nursery)

    def serve(self, source: ExchangeSource | None) -> None:
        self.server.set_source(source)


async def _reset(stream: object) -> None:
    with trio.CancelScope(shield=True):
        try:
            await stream.reset()  # type: ignore[attr-defined]
        except Exception:  # noqa: BLE001, S110 - already gone
            pass
