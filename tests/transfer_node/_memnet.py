"""Managers on in-memory stores, talking over in-memory byte streams, in one trio loop.

No libp2p here: `MemoryNet` gives each `Peer` a `Transport` whose streams are trio memory
stream pairs, handed to the other manager's `handle_stream` as a libp2p host would. Every
other piece is the real one: the manager, sessions, frames, the content store and
`ContentStorage` persistence (so a "restarted" peer is a new Manager on the same store).
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import trio
import trio.testing
from _dt_ops import DealResult, DealValidator, DealVoucher

from hoard.content.chunker import FixedChunker
from hoard.content.repo import ContentStore
from hoard.content.upload import Upload
from hoard.errors import PeerError
from hoard.ids.cid import CID
from hoard.ids.peer import Identity
from hoard.store import MemoryBlockStore
from hoard.transfer import ChannelState, Event, EventCode, Status
from hoard.transfer.manager import Manager, TransferLimits
from hoard.transfer.storage import ContentStorage


class MemoryStream:
    """A trio memory stream with the libp2p stream methods the manager uses."""

    def __init__(self, stream: trio.abc.HalfCloseableStream) -> None:
        self._stream = stream

    async def read(self, n: int) -> bytes:
        try:
            return await self._stream.receive_some(n)
        except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
            raise PeerError("stream reset") from exc

    async def write(self, data: bytes) -> None:
        try:
            await self._stream.send_all(data)
        except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
            raise PeerError("stream reset") from exc

    async def close(self) -> None:
        try:
            await self._stream.send_eof()
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass

    async def reset(self) -> None:
        await trio.aclose_forcefully(self._stream)


@dataclass
class Peer:
    """One node: an identity, a content store, a manager (replaceable, to model a restart)."""

    net: MemoryNet
    name: str
    content: ContentStore
    peer_id: str
    manager: Manager
    events: list[tuple[EventCode, Status, str, ChannelState]] = field(default_factory=list)
    changed: trio.Event = field(default_factory=trio.Event)
    scope: trio.CancelScope | None = None
    nursery: trio.Nursery | None = None
    stopped: trio.Event = field(default_factory=trio.Event)

    def record(self, event: Event, state: ChannelState) -> None:
        self.events.append((event.code, state.status, event.message, state))
        self.net.token.run_sync_soon(self._wake)

    def _wake(self) -> None:
        self.changed.set()
        self.changed = trio.Event()

    def codes(self, chid, progress: bool = False) -> list[EventCode]:
        block = {EventCode.DataQueued, EventCode.DataSent, EventCode.DataReceived, EventCode.DataQueuedProgress,
                 EventCode.DataSentProgress, EventCode.DataReceivedProgress}
        return [code for code, _s, _m, st in self.events
                if st.channel_id == chid and (progress or code not in block)]

    def last(self, chid) -> ChannelState | None:
        """The state of the channel's latest event delivered to subscribers."""
        for _code, _status, _message, state in reversed(self.events):
            if state.channel_id == chid:
                return state
        return None

    async def wait_for(self, chid, predicate, timeout: float = 20) -> ChannelState:
        """Wait until an event delivered for `chid` left it in a state satisfying `predicate`."""
        with trio.move_on_after(timeout):
            while True:
                changed = self.changed
                state = self.last(chid)
                if state is not None and predicate(state):
                    return state
                await changed.wait()
        seen = [(code.name, status.name, message) for code, status, message, st in self.events
                if st.channel_id == chid and code not in (EventCode.DataReceived, EventCode.DataSent,
                                                          EventCode.DataQueued, EventCode.DataReceivedProgress,
                                                          EventCode.DataSentProgress, EventCode.DataQueuedProgress)]
        raise AssertionError(f"{self.name}: the awaited state did not come in {timeout}s; events: {seen}")

    async def wait_status(self, chid, *statuses: Status, timeout: float = 20) -> ChannelState:
        return await self.wait_for(chid, lambda s: s.status in statuses, timeout)

    def upload(self, data: bytes, block_size: int = 4096) -> CID:
        upload = Upload(self.content, FixedChunker(block_size), filename="data.bin")
        upload.write(data)
        return upload.finish()


class MemoryNet:
    """Peers whose managers run in `nursery` and reach each other through memory streams."""

    def __init__(self, nursery: trio.Nursery, limits: TransferLimits | None = None) -> None:
        self.nursery = nursery
        self.limits = limits or TransferLimits(batch_bytes=64 << 10, max_in_flight=128 << 10,
                                               checkpoint_bytes=64 << 10, linger=2.0)
        self.peers: dict[str, Peer] = {}
        self.token = trio.lowlevel.current_trio_token()
        self.reachable: set[str] = set()

    def transport(self, source: Peer) -> MemoryTransport:
        return MemoryTransport(self, source)

    async def add(self, name: str, content: ContentStore | None = None, peer_id: str | None = None) -> Peer:
        content = content or ContentStore(MemoryBlockStore(), 1 << 34, 3600)
        peer_id = peer_id or str(Identity.generate().peer_id)
        manager = Manager(peer_id, ContentStorage(content), limits=self.limits)
        manager.load()
        peer = Peer(self, name, content, peer_id, manager)
        manager.subscribe_to_events(peer.record)
        await self._run(peer)
        self.peers[peer_id] = peer
        return peer

    async def _run(self, peer: Peer) -> None:
        async def serve(task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
            try:
                with trio.CancelScope() as scope:
                    peer.scope = scope
                    async with trio.open_nursery() as nursery:  # the "host": runs the stream handlers
                        peer.nursery = nursery
                        await nursery.start(peer.manager.run, self.transport(peer))
                        task_status.started()
            finally:
                peer.stopped.set()

        await self.nursery.start(serve)
        self.reachable.add(peer.peer_id)

    async def crash(self, peer: Peer) -> None:
        """Stop a peer's manager at once (its streams die, as in a killed process)."""
        self.reachable.discard(peer.peer_id)
        assert peer.scope is not None
        peer.scope.cancel()
        await peer.stopped.wait()
        peer.manager.close()

    async def restart(self, peer: Peer) -> Peer:
        """A new manager on the crashed peer's store (as a node started again on its data dir):
        the content store is opened again on the same blocks, so its crash recovery runs."""
        del self.peers[peer.peer_id]
        old = peer.content
        content = ContentStore(old.single, old.quota, old.block_ttl)
        return await self.add(peer.name, content, peer.peer_id)


class MemoryTransport:
    def __init__(self, net: MemoryNet, source: Peer) -> None:
        self.net = net
        self.source = source

    async def open_stream(self, peer: str) -> MemoryStream:
        target = self.net.peers.get(peer)
        if target is None or peer not in self.net.reachable:
            raise PeerError(f"cannot open a stream to {peer}: unreachable")
        ours, theirs = trio.testing.memory_stream_pair()
        assert target.nursery is not None
        target.nursery.start_soon(target.manager.handle_stream, MemoryStream(theirs), self.source.peer_id)
        return MemoryStream(ours)


@asynccontextmanager
async def memory_net(limits: TransferLimits | None = None) -> AsyncIterator[MemoryNet]:
    async with trio.open_nursery() as nursery:
        net = MemoryNet(nursery, limits)
        try:
            yield net
        finally:
            for peer in net.peers.values():
                peer.manager.close()
            nursery.cancel_scope.cancel()


def random_data(n: int) -> bytes:
    return os.urandom(n)


def trio_test(timeout: float = 30.0):
    """Run an async test under `trio.run`, failing it after `timeout` seconds."""
    import functools

    def wrap(fn):
        @functools.wraps(fn)
        def runner(*args, **kwargs):
            async def main():
                with trio.fail_after(timeout):
                    await fn(*args, **kwargs)

            trio.run(main)

        return runner

    return wrap


def setup_deals(*peers: Peer, validator: DealValidator | None = None, rate: float | None = None,
                revalidator=None) -> DealValidator:
    validator = validator or DealValidator()
    for peer in peers:
        peer.manager.register_voucher_type(DealVoucher, validator)
        peer.manager.register_voucher_result_type(DealResult)
        if rate:
            peer.manager.register_transport_configurer(DealVoucher, lambda chid, v, t: setattr(t, "rate_limit", rate))
        if revalidator is not None:
            peer.manager.register_revalidator(DealVoucher, revalidator)
    return validator
