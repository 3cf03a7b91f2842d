"""A bitswap fetch: want-lists to providers, verified blocks back, yielded in request order.

Guarantees (the same as `/hoard/blocks/1`'s fetch, see net/exchange.py):

- every yielded block is the one its CID names: bitswap.py computes each received block's CID
  from its bytes (the hash of the data under the sender's prefix) and hands it only to the
  sessions that want exactly that CID;
- wants go out as want-block with send-dont-have (1.2.0), spread over the providers, at most
  `per_peer` outstanding at one peer and only for CIDs within `window_blocks` of the next one to
  yield, so memory stays bounded by a slow consumer;
- a DONT_HAVE moves the CID to another provider; a CID every remaining provider lacks fails the
  fetch with NotFoundError; a provider that has wants outstanding and sends nothing for
  `request_timeout` seconds, or whose stream fails, is dropped and its wants asked elsewhere;
  no provider left is a PeerError. Errors are raised by the iterator;
- closing the stream (or leaving the nursery) cancels the wants still outstanding.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Self

import trio

from hoard.errors import (
    CancelledError,
    HoardError,
    InvalidArgumentError,
    NotFoundError,
    PeerError,
)
from hoard.ids.cid import CID
from hoard.ids.peer import PeerId

from .message import Want

if TYPE_CHECKING:
    from .bitswap import Bitswap

__all__ = ["FetchLimits", "Session"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class FetchLimits:
    window_blocks: int = 512
    per_peer: int = 128
    request_timeout: float = 15.0

    def __post_init__(self) -> None:
        if self.window_blocks < 1 or self.per_peer < 1 or not self.request_timeout > 0:
            raise InvalidArgumentError(f"invalid bitswap fetch limits: {self}")


@dataclass(eq=False)
class _Provider:
    peer_id: PeerId
    outstanding: set[CID] = field(default_factory=set)
    last_heard: float = 0.0


class Session:
    """An async iterator of `(CID, bytes)`; made by `Bitswap.fetch`."""

    def __init__(self, bitswap: Bitswap, cids: Sequence[CID], providers: Sequence[PeerId],
                 limits: FetchLimits) -> None:
        self._bitswap = bitswap
        self._limits = limits
        self._order = list(cids)
        self._first: dict[CID, int] = {}
        self._uses: dict[CID, int] = {}
        for i, cid in enumerate(self._order):
            self._first.setdefault(cid, i)
            self._uses[cid] = self._uses.get(cid, 0) + 1
        self._queue: deque[CID] = deque(self._first)  # unique CIDs, in order of first use
        self._assigned: dict[CID, _Provider] = {}
        self._lacking: dict[CID, set[PeerId]] = {}
        self._results: dict[CID, bytes] = {}
        self._done: set[CID] = set()
        now = trio.current_time()
        self._providers = {p: _Provider(p, last_heard=now) for p in dict.fromkeys(providers)}
        self._next = 0
        self._error: HoardError | None = None
        self._closed = False
        self._finished = trio.Event()
        self._wake = trio.Event()
        self._ready = trio.Event()

    # -- consumer -----------------------------------------------------------------------
    def __aiter__(self) -> Session:
        return self

    async def __anext__(self) -> tuple[CID, bytes]:
        while True:
            if self._next >= len(self._order):
                raise StopAsyncIteration
            cid = self._order[self._next]
            data = self._results.get(cid)
            if data is not None:
                self._next += 1
                self._uses[cid] -= 1
                if not self._uses[cid]:
                    del self._results[cid]
                self._wake.set()
                return cid, data
            if self._error is not None:
                raise self._error
            if self._closed:
                raise CancelledError("the bitswap fetch was closed")
            await self._ready.wait()
            self._ready = trio.Event()

    async def aclose(self) -> None:
        self._closed = True
        self._wake.set()
        self._ready.set()
        await self._finished.wait()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    # -- events from Bitswap ------------------------------------------------------------
    def on_block(self, peer_id: PeerId, cid: CID, data: bytes) -> None:
        sender = self._providers.get(peer_id)
        if sender is not None:
            sender.last_heard = trio.current_time()
        if cid in self._done:
            return
        self._done.add(cid)
        self._results[cid] = data
        owner = self._assigned.pop(cid, None)
        if owner is not None:
            owner.outstanding.discard(cid)
            if owner.peer_id != peer_id:  # someone else answered first: withdraw our want
                self._cancel_later(owner.peer_id, [cid])
        # a CID still queued stays there and is skipped when its turn comes (no O(n) removal)
        self._ready.set()
        self._wake.set()

    def on_presence(self, peer_id: PeerId, cid: CID, have: bool) -> None:
        provider = self._providers.get(peer_id)
        if provider is None:
            return
        provider.last_heard = trio.current_time()
        if have or cid in self._done:
            return
        self._lacking.setdefault(cid, set()).add(peer_id)
        if self._assigned.get(cid) is provider:
            del self._assigned[cid]
            provider.outstanding.discard(cid)
            self._queue.appendleft(cid)
            self._wake.set()

    # -- the fetch loop -----------------------------------------------------------------
    async def run(self) -> None:
        unique = list(self._first)
        self._bitswap._register(self, unique)
        try:
            if not self._providers and unique:
                raise PeerError("no providers to fetch from")
            while not self._closed and len(self._done) < len(unique):
                batches = self._assign()
                for provider, cids in batches.items():
                    await self._send(provider, cids)
                self._check_stuck()
                timeout = self._limits.request_timeout / 4
                with trio.move_on_after(timeout):
                    await self._wake.wait()
                self._wake = trio.Event()
        except HoardError as exc:
            self._error = exc
        finally:
            self._bitswap._unregister(self, unique)
            for provider in self._providers.values():
                if provider.outstanding:
                    self._cancel_later(provider.peer_id, list(provider.outstanding))
            self._ready.set()
            self._finished.set()

    def _assign(self) -> dict[_Provider, list[CID]]:
        batches: dict[_Provider, list[CID]] = {}
        horizon = self._next + self._limits.window_blocks
        skipped: list[CID] = []
        while self._queue and self._first[self._queue[0]] < horizon:
            cid = self._queue.popleft()
            if cid in self._done or cid in self._assigned:
                continue
            lacking = self._lacking.get(cid, set())
            candidates = [p for p in self._providers.values() if p.peer_id not in lacking]
            if not candidates:
                raise NotFoundError(f"no provider has block {cid}", cid=str(cid))
            best = min(candidates, key=lambda p: len(p.outstanding))
            if len(best.outstanding) >= self._limits.per_peer:
                skipped.append(cid)
                break
            best.outstanding.add(cid)
            if not best.outstanding - {cid}:
                best.last_heard = trio.current_time()  # the wait for this peer starts now
            self._assigned[cid] = best
            batches.setdefault(best, []).append(cid)
        self._queue.extendleft(reversed(skipped))
        return batches

    async def _send(self, provider: _Provider, cids: list[CID]) -> None:
        try:
            await self._bitswap.send_wants(provider.peer_id, [Want(c, send_dont_have=True) for c in cids])
        except PeerError as exc:
            self._drop(provider, str(exc))

    def _check_stuck(self) -> None:
        now = trio.current_time()
        for provider in list(self._providers.values()):
            if provider.outstanding and now - provider.last_heard > self._limits.request_timeout:
                self._drop(provider, f"no answer in {self._limits.request_timeout:g} s")

    def _drop(self, provider: _Provider, reason: str) -> None:
        logger.info("bitswap fetch: dropping provider %s: %s", provider.peer_id, reason)
        del self._providers[provider.peer_id]
        for cid in sorted(provider.outstanding, key=lambda c: self._first[c], reverse=True):
            self._assigned.pop(cid, None)
            self._queue.appendleft(cid)
        provider.outstanding.clear()
        if not self._providers:
            raise PeerError(f"no provider left to fetch from (last: {provider.peer_id}: {reason})")
        self._wake.set()

    def _cancel_later(self, peer_id: PeerId, cids: list[CID]) -> None:
        nursery = self._bitswap._nursery
        if nursery is not None and cids:
            nursery.start_soon(self._cancel, peer_id, cids)

    async def _cancel(self, peer_id: PeerId, cids: list[CID]) -> None:
        try:
            await self._bitswap.send_wants(peer_id, [Want(c, cancel=True) for c in cids])
        except PeerError:
            pass

    @property
    def progress(self) -> tuple[int, int]:
        return self._next, len(self._order)

