"""The client side of `/hoard/blocks/1`: fetch an ordered list of blocks from several peers.

`BlockFetcher.fetch(cids, providers, nursery)` starts a `BlockStream`, an async iterator of
`(CID, bytes)` in the order of `cids`, yielding each block as soon as it and all before it
have arrived, so a download streams while it fetches.

How a fetch behaves (guaranteed):

- Every block is verified against its CID before it is yielded. A peer that sends a block that
  does not match, or breaks the protocol, is dropped at once, logged at WARNING by name and
  recorded in `PeerPenalties` (banned for `ban_seconds`); its unanswered blocks are asked of
  the other peers.
- A peer whose connection fails, or that has requests outstanding and sends nothing for
  `request_timeout` seconds, is dropped (recorded, not banned) and its blocks asked elsewhere.
- A block that every remaining peer answers DONT_HAVE fails the fetch with `NotFoundError`;
  running out of peers fails it with `PeerError`. The error is raised by the iterator; a fetch
  closed (or whose network stopped) before its end raises `CancelledError` there.
- Memory is bounded: a block is requested only if it lies within `window_blocks` of the next
  block to yield and the bytes held (received, not yet yielded) plus the bytes estimated in
  flight stay under `window_bytes` (a soft bound: the estimate is the largest block seen).
  Before the first block arrives its size is unknown: one full batch (`batch_blocks`, or
  `window_bytes / MAX_BLOCK_SIZE` blocks if more) goes out, at most `batch_blocks` blocks of
  the largest possible size; the window then grows to the byte budget of the sizes seen.
  A slow consumer therefore slows the fetch instead of filling memory.

Throughput: each peer gets want-lists of `batch_blocks` CIDs, up to `batches_per_peer` of them
outstanding, all on one stream; faster peers free their slots sooner and so take more blocks.
"""

from __future__ import annotations

import bisect
import logging
import math
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Self

import trio

from hoard.errors import (
    CancelledError,
    HoardError,
    IntegrityError,
    NotFoundError,
    PeerError,
)
from hoard.ids.cid import CID
from hoard.ids.peer import PeerId
from hoard.ratelog import violation

from .wire import MAX_BLOCK_SIZE, MAX_WANT, BlockChannel, ChannelOpener, ProtocolError

__all__ = ["BlockFetcher", "BlockStream", "FetchLimits", "PeerPenalties"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class FetchLimits:
    """How much a fetch keeps in flight, and how long it waits for a peer."""

    window_blocks: int = 1024
    window_bytes: int = 32 << 20
    batch_blocks: int = 32
    batches_per_peer: int = 4
    request_timeout: float = 10.0
    open_timeout: float = 10.0

    def __post_init__(self) -> None:
        if not 1 <= self.batch_blocks <= MAX_WANT:
            raise ValueError(f"batch_blocks must be 1..{MAX_WANT}")
        if self.window_blocks < 1 or self.window_bytes < 1 or self.batches_per_peer < 1:
            raise ValueError("fetch windows must be positive")


@dataclass
class PenaltyRecord:
    bad_blocks: int = 0
    failures: int = 0
    last_reason: str = ""
    banned_until: float = 0.0


class PeerPenalties:
    """What peers did wrong during fetches, shared by all fetches of a node."""

    def __init__(self, ban_seconds: float = 600.0) -> None:
        self.ban_seconds = ban_seconds
        self._records: dict[PeerId, PenaltyRecord] = {}

    def record(self, peer_id: PeerId, reason: str, *, bad: bool) -> None:
        """Note a failure; `bad` (a bad block or a protocol violation) also bans the peer."""
        rec = self._records.setdefault(peer_id, PenaltyRecord())
        rec.last_reason = reason
        if bad:
            rec.bad_blocks += 1
            rec.banned_until = time.time() + self.ban_seconds
            logger.info("peer %s banned for %gs: %s", peer_id, self.ban_seconds, reason)
        else:
            rec.failures += 1

    def is_banned(self, peer_id: PeerId) -> bool:
        rec = self._records.get(peer_id)
        return rec is not None and rec.banned_until > time.time()

    def get(self, peer_id: PeerId) -> PenaltyRecord | None:
        return self._records.get(peer_id)

    def snapshot(self) -> dict[str, dict[str, Any]]:
        """`{peerId: {badBlocks, failures, lastReason, banned}}`."""
        now = time.time()
        return {str(p): {"badBlocks": r.bad_blocks, "failures": r.failures, "lastReason": r.last_reason,
                         "banned": r.banned_until > now} for p, r in self._records.items()}


@dataclass
class _Batch:
    req_id: int
    indices: list[int]
    pos: int = 0  # replies received so far


@dataclass
class _Peer:
    peer_id: PeerId
    channel: BlockChannel | None = None
    pending: deque[_Batch] = field(default_factory=deque)
    scope: trio.CancelScope | None = None
    failure: tuple[str, bool] | None = None  # (reason, bad)
    blocks: int = 0
    bytes: int = 0
    lot: trio.lowlevel.ParkingLot = field(default_factory=trio.lowlevel.ParkingLot)  # its receiver waits here

    def outstanding(self) -> list[int]:
        return [i for b in self.pending for i in b.indices[b.pos:]]


class BlockStream:
    """Blocks of one fetch, in order: `async for cid, data in stream`. Close it when done early
    (`await stream.aclose()`, or use `async with`); closing cancels the fetch."""

    def __init__(self, cids: Sequence[CID], providers: Iterable[PeerId], opener: ChannelOpener,
                 limits: FetchLimits, penalties: PeerPenalties,
                 discover: Callable[[], Awaitable[list[PeerId]]] | None = None) -> None:
        self._cids = list(cids)
        self._discover = discover
        self._n = len(self._cids)
        self._opener = opener
        self._limits = limits
        self._penalties = penalties
        self._initial = list(dict.fromkeys(providers))
        self._peers: dict[PeerId, _Peer] = {}
        self._received: dict[int, bytes] = {}
        self._got = 0                    # distinct blocks received (yielded or buffered)
        self._next_yield = 0
        self._next_new = 0               # lowest index never requested
        self._retry: list[int] = []      # sorted indices to request again
        self._excluded: dict[int, set[PeerId]] = {}  # DONT_HAVE answers per index
        self._inflight = 0
        self._buffered_bytes = 0
        self._largest = 0
        self._req = 0
        self._error: HoardError | None = None
        # Who waits where: the consumer for the next block (_ready), senders for room in the
        # window or in their pipeline (_room), run() for the end (_end), each receiver for a
        # request to answer (_Peer.lot). Targeted wake-ups keep the per-block cost small.
        self._ready = trio.lowlevel.ParkingLot()
        self._room = trio.lowlevel.ParkingLot()
        self._end = trio.lowlevel.ParkingLot()
        self._scope = trio.CancelScope()
        self._nursery: trio.Nursery | None = None
        self._finished = trio.Event()
        self.started = time.monotonic()

    # -- consumer side ------------------------------------------------------------------
    def __aiter__(self) -> BlockStream:
        return self

    async def __anext__(self) -> tuple[CID, bytes]:
        while True:
            if self._error is not None:
                raise self._error
            if self._next_yield >= self._n:
                raise StopAsyncIteration
            data = self._received.pop(self._next_yield, None)
            if data is not None:
                cid = self._cids[self._next_yield]
                self._next_yield += 1
                self._buffered_bytes -= len(data)
                self._room.unpark_all()
                return cid, data
            if self._finished.is_set():  # closed, or the network stopped, before this block came
                raise CancelledError("the fetch was closed before it finished", fetched=self._next_yield)
            await self._ready.park()

    async def aclose(self) -> None:
        """Stop fetching and release the peers. Idempotent."""
        self._scope.cancel()
        if not self._finished.is_set():
            with trio.CancelScope(shield=True):
                with trio.move_on_after(5):
                    await self._finished.wait()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def add_providers(self, peers: Iterable[PeerId]) -> None:
        """Draw from more peers while the fetch runs."""
        for peer_id in peers:
            if peer_id not in self._peers and self._nursery is not None and not self._penalties.is_banned(peer_id):
                self._start_peer(peer_id)

    def stats(self) -> dict[str, Any]:
        """`{blocks, bytes, seconds, peers: {peerId: {blocks, bytes, state}}}` so far."""
        peers = {str(p.peer_id): {"blocks": p.blocks, "bytes": p.bytes,
                                  "state": "dropped: " + p.failure[0] if p.failure else "active"}
                 for p in self._peers.values()}
        return {"blocks": self._next_yield, "bytes": sum(p.bytes for p in self._peers.values()),
                "seconds": time.monotonic() - self.started, "peers": peers}

    # -- running ------------------------------------------------------------------------
    async def run(self) -> None:
        """Fetch until every block is received, the fetch fails, or the stream is closed."""
        try:
            with self._scope:
                if self._discover is not None and not self._initial and self._n:
                    self._initial = list(dict.fromkeys(await self._discover()))
                await self._run_peers()
        except Exception as exc:  # never let one fetch take the network down
            logger.exception("fetch failed unexpectedly")
            self._fail(exc if isinstance(exc, HoardError) else PeerError(f"fetch failed: {exc!r}"))
        finally:
            self._nursery = None
            self._finished.set()
            self._wake_all()

    async def _run_peers(self) -> None:
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            peers = [p for p in self._initial if not self._penalties.is_banned(p)]
            if self._n and not peers:
                self._fail(PeerError("no providers to fetch from" if not self._initial
                                     else "every provider is banned for sending bad blocks"))
            for peer_id in peers:
                self._start_peer(peer_id)
            while not self._all_done():
                await self._end.park()
            if self._error is not None:
                nursery.cancel_scope.cancel()

    def _start_peer(self, peer_id: PeerId) -> None:
        peer = _Peer(peer_id)
        self._peers[peer_id] = peer
        assert self._nursery is not None
        self._nursery.start_soon(self._peer_task, peer)

    def _wake_all(self) -> None:
        for lot in (self._ready, self._room, self._end, *(p.lot for p in self._peers.values())):
            lot.unpark_all()

    def _all_done(self) -> bool:
        return self._got >= self._n or self._error is not None

    def _fail(self, error: HoardError) -> None:
        if self._error is None:
            self._error = error
        self._wake_all()

    def _live(self) -> list[_Peer]:
        return [p for p in self._peers.values() if p.failure is None]

    # -- one peer -----------------------------------------------------------------------
    async def _peer_task(self, peer: _Peer) -> None:
        try:
            try:
                with trio.fail_after(self._limits.open_timeout):
                    peer.channel = await self._opener.open(peer.peer_id)
            except Exception as exc:  # noqa: BLE001 - PeerError, TooSlowError, or anything the opener raised
                peer.failure = (f"cannot open a block stream: {exc or 'timed out'}", False)
            else:
                async with trio.open_nursery() as nursery:
                    peer.scope = nursery.cancel_scope
                    nursery.start_soon(self._sender, peer)
                    await self._receiver(peer)
                    nursery.cancel_scope.cancel()
        finally:
            with trio.CancelScope(shield=True):
                if peer.channel is not None:
                    if peer.failure is None and not peer.pending:
                        await peer.channel.aclose()
                    else:
                        await peer.channel.abort()
            if peer.failure is not None:
                self._drop(peer)

    def _peer_failed(self, peer: _Peer, reason: str, *, bad: bool = False) -> None:
        if peer.failure is None:
            peer.failure = (reason, bad)
        if peer.scope is not None:
            peer.scope.cancel()

    def _drop(self, peer: _Peer) -> None:
        """Take a failed peer out: record it, and hand its unanswered blocks to the others."""
        reason, bad = peer.failure or ("dropped", False)
        self._penalties.record(peer.peer_id, reason, bad=bad)
        if not bad:
            logger.info("dropped peer %s from a fetch: %s", peer.peer_id, reason)
        for index in peer.outstanding():
            self._requeue(index)
        peer.pending.clear()
        self._check_stuck()
        self._room.unpark_all()

    def _requeue(self, index: int) -> None:
        self._inflight -= 1
        if index >= self._next_yield and index not in self._received:
            bisect.insort(self._retry, index)

    def _check_stuck(self) -> None:
        if self._got >= self._n or self._error is not None:
            return
        live = {p.peer_id for p in self._live()}
        if not live:
            self._fail(PeerError(f"no providers left; {self._n - self._got} of {self._n} blocks not fetched",
                                 missing=self._n - self._got))
            return
        for index in self._retry:
            if live <= self._excluded.get(index, set()):
                self._fail(NotFoundError(f"block {self._cids[index]} not found on any provider",
                                         cid=str(self._cids[index])))
                return

    def _take(self, peer: _Peer) -> list[int]:
        """Up to `batch_blocks` indices for this peer within the window, removed from the queues."""
        limits = self._limits
        if self._largest:
            budget = limits.window_bytes - self._buffered_bytes - self._inflight * self._largest
            count = min(limits.batch_blocks, budget // self._largest)
        else:  # no size known yet: one full batch in flight (bounded by batch_blocks * MAX_BLOCK_SIZE)
            first = max(limits.window_bytes // MAX_BLOCK_SIZE, limits.batch_blocks)
            count = min(limits.batch_blocks, first - self._inflight)
        if count <= 0:
            head = self._retry[0] if self._retry else None
            if head == self._next_yield and peer.peer_id not in self._excluded.get(head, ()):
                count = 1  # the block the consumer waits for always goes out, or the fetch could stall
            elif self._inflight or self._buffered_bytes:
                return []
            else:
                count = 1  # a block larger than the whole window still gets fetched, alone
        taken: list[int] = []
        if self._retry:
            keep = []
            for index in self._retry:
                if len(taken) < count and peer.peer_id not in self._excluded.get(index, ()):
                    taken.append(index)
                else:
                    keep.append(index)
            self._retry = keep
        limit = min(self._n, self._next_yield + limits.window_blocks)
        while len(taken) < count and self._next_new < limit:
            taken.append(self._next_new)
            self._next_new += 1
        self._inflight += len(taken)
        return taken

    async def _sender(self, peer: _Peer) -> None:
        assert peer.channel is not None
        while True:
            while True:
                if self._all_done():
                    return
                if len(peer.pending) < self._limits.batches_per_peer:
                    indices = self._take(peer)
                    if indices:
                        break
                await self._room.park()
            self._req = (self._req + 1) & 0xFFFFFFFF
            peer.pending.append(_Batch(self._req, indices))
            peer.lot.unpark_all()
            try:
                await peer.channel.send_want(self._req, [self._cids[i] for i in indices])
            except PeerError as exc:
                self._peer_failed(peer, exc.message)
                return

    async def _receiver(self, peer: _Peer) -> None:
        timeout = self._limits.request_timeout
        with trio.CancelScope() as deadline:  # one scope, its deadline moved as replies come
            await self._receive_loop(peer, deadline, timeout)
        if deadline.cancelled_caught:
            self._peer_failed(peer, f"stalled: nothing for {timeout:g}s with blocks requested")

    async def _receive_loop(self, peer: _Peer, deadline: trio.CancelScope, timeout: float) -> None:
        assert peer.channel is not None
        slack = min(0.5, timeout / 4)  # the deadline moves at most every `slack` seconds
        while True:
            if not peer.pending:
                deadline.deadline = math.inf
                while not peer.pending:
                    if self._all_done():
                        return
                    await peer.lot.park()
            now = trio.current_time()
            if deadline.deadline == math.inf or deadline.deadline - now < timeout - slack:
                deadline.deadline = now + timeout
            try:
                reply = await peer.channel.receive()
            except ProtocolError as exc:
                self._bad_peer(peer, f"broke the protocol: {exc.message}")
                return
            except PeerError as exc:
                self._peer_failed(peer, exc.message)
                return
            batch = peer.pending[0]
            index = batch.indices[batch.pos]
            cid = self._cids[index]
            if reply.req_id != batch.req_id or reply.cid != cid.binary:
                self._bad_peer(peer, f"broke the protocol: a reply for another block than {cid}")
                return
            batch.pos += 1
            if batch.pos == len(batch.indices):
                peer.pending.popleft()
                self._room.unpark_all()
            if reply.data is None:
                self._excluded.setdefault(index, set()).add(peer.peer_id)
                self._requeue(index)
                self._check_stuck()
                self._room.unpark_all()
                continue
            try:
                cid.verify(reply.data)
            except IntegrityError as exc:
                self._requeue(index)
                actual = str(exc.fields.get("actual", "?"))[:16]
                self._bad_peer(peer, f"sent a bad block {cid} (its content hashes to {cid.hash_name} {actual}...)")
                return
            self._deliver(peer, index, reply.data)

    def _bad_peer(self, peer: _Peer, reason: str) -> None:
        violation(logger, peer.peer_id, "%s; dropped from the fetch and penalised", reason)
        self._peer_failed(peer, reason, bad=True)

    def _deliver(self, peer: _Peer, index: int, data: bytes) -> None:
        self._inflight -= 1
        peer.blocks += 1
        peer.bytes += len(data)
        if index < self._next_yield or index in self._received:
            return  # a duplicate
        self._received[index] = data
        self._buffered_bytes += len(data)
        self._largest = max(self._largest, len(data))
        self._got += 1
        self._excluded.pop(index, None)
        if index == self._next_yield:
            self._ready.unpark_all()
        if self._got >= self._n:
            self._wake_all()


class BlockFetcher:
    """Starts fetches over a `ChannelOpener`, sharing limits and the penalty record."""

    def __init__(self, opener: ChannelOpener, limits: FetchLimits | None = None,
                 penalties: PeerPenalties | None = None) -> None:
        self.opener = opener
        self.limits = limits or FetchLimits()
        self.penalties = penalties or PeerPenalties()

    def fetch(self, cids: Sequence[CID], providers: Iterable[PeerId], nursery: trio.Nursery,
              limits: FetchLimits | None = None,
              discover: Callable[[], Awaitable[list[PeerId]]] | None = None) -> BlockStream:
        """Start fetching `cids` from `providers` in `nursery`; iterate the result for the blocks.
        With no providers, `discover()` is awaited (inside the fetch) to find some."""
        stream = BlockStream(cids, providers, self.opener, limits or self.limits, self.penalties, discover)
        nursery.start_soon(stream.run)
        return stream
