"""The data side of a channel: the sender's loop and the recipient's checks and batched stores.

**Sender** (`Sender.run`, a task of the channel's session): build the `SendPlan`, announce
its size (TOTAL), then for each block not on the do-not-send list, while the channel may send
(`Ongoing`): fire DataQueued (and, on a responder, the revalidators' `on_pull_data_sent`),
queue the BLOCK frame, and fire DataSent once the stream took it. Store reads run in a thread,
one batch ahead. When every block was written: DONE, then the manager's completion step.

**Recipient** (`Receiver`): each BLOCK is checked against the `ReceivePlan` and queued; a
storer task verifies each batch of `batch_bytes` against the CIDs (in its thread: BLAKE3
releases the GIL), stores it, then counts its blocks (DataReceived; on a responder,
`on_push_data_received`), one batch in the store while the next fills. A batch and the record
of its CIDs commit together (`TransferStorage.store_blocks`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import trio

from hoard.errors import HoardError, NotFoundError
from hoard.ids.cid import CID
from hoard.transfer.plan import PlannedBlock, ReceivePlan, SendPlan, build_send_plan
from hoard.transfer.types import EventCode
from hoard.transfer.wire import encode_block, encode_done, encode_total

if TYPE_CHECKING:
    from hoard.transfer.manager import Channel, Manager
    from hoard.transfer.session import Session

__all__ = ["Receiver", "SendBudget", "Sender"]

log = logging.getLogger("hoard.transfer")
E = EventCode
ITEM_BYTES = 256 << 10  # BLOCK frames per queued write item
SETTLE_INTERVAL = 0.02  # how often a sender waiting for send budget gives back what its stream wrote


class SendBudget:
    """The bytes every sender of one manager may hold at once: blocks read from the store and
    queued on streams, not yet written (`TransferLimits.send_budget`).

    A sender takes a batch's bytes before reading it (waiting while the budget is spent) and gives
    them back as they leave memory (written to its stream, or when it stops), so channels whose
    peers never read hold at most the budget together; the others wait for room rather than the
    node growing without bound.
    """

    def __init__(self, total: int) -> None:
        self.total = max(total, 1)
        self.used = 0
        self._changed = trio.Event()

    async def acquire(self, nbytes: int, settle: Callable[[], None] | None = None) -> int:
        """Take `nbytes` (at most the whole budget), waiting for room; returns what was taken.

        `settle` gives back what the caller holds and no longer needs (its bytes written since);
        it is called while waiting too, since the caller's own writes free room without anyone
        releasing it (the sender waiting here is the one that would)."""
        nbytes = min(max(nbytes, 0), self.total)
        while True:
            if settle is not None:
                settle()
            if self.used + nbytes <= self.total:
                break
            with trio.move_on_after(SETTLE_INTERVAL):
                await self._changed.wait()
        self.used += nbytes
        return nbytes

    def release(self, nbytes: int) -> None:
        if nbytes > 0:
            self.used = max(self.used - nbytes, 0)
            self._changed.set()
            self._changed = trio.Event()


class Sender:
    """Sends one channel's blocks on one session, skipping `skip` (the recipient's do-not-send list)."""

    def __init__(self, manager: Manager, channel: Channel, session: Session, skip: frozenset[CID]) -> None:
        self.manager = manager
        self.channel = channel
        self.session = session
        self.skip = skip
        self._budget: SendBudget = manager.send_budget
        self._held = 0  # budget bytes this sender holds
        self._loaded = 0  # bytes read from the store and not yet handed to the session
        self._stopped = False

    def _settle(self) -> None:
        """Give back the budget of bytes no longer in memory (written to the stream)."""
        now = self._loaded + self.session.in_flight
        if self._held > now:
            self._budget.release(self._held - now)
            self._held = now

    def _stop(self) -> None:
        """The sender is done: give back everything it holds (safe to call twice)."""
        self._stopped = True
        self._budget.release(self._held)
        self._held = self._loaded = 0

    async def run(self) -> None:
        try:
            await self._run()
        finally:
            self._stop()

    async def _run(self) -> None:
        m, ch, session = self.manager, self.channel, self.session
        state = ch.state
        try:
            plan = await trio.to_thread.run_sync(build_send_plan, m.storage.get_many, state.base_cid, state.selector)
        except HoardError as exc:
            m.transport_failed(ch, session, f"cannot send {state.base_cid}: {exc.message}")
            return
        m.set_total_size(ch, plan.total_size)
        session.send(encode_total(plan.total_size, len(plan.blocks)))
        batches_in, batches_out = trio.open_memory_channel[Any](1)
        session.spawn(self._load, plan, batches_in)
        responder = state.responder == m.peer
        limits = m.limits
        out = _Outgoing(session)
        paced_from = trio.current_time()
        paced_bytes = 0
        unsaved = 0
        async with batches_out:
            async for batch in batches_out:
                if isinstance(batch, HoardError):
                    m.transport_failed(ch, session, f"cannot send {state.base_cid}: {batch.message}")
                    return
                for cid, data in batch:
                    if not m.sending_allowed(ch, session) and (
                            not await out.flush() or not await m.may_send(ch, session)):
                        return
                    size = len(data)
                    self._loaded -= size
                    m.block_event(ch, E.DataQueued, cid, size)
                    if responder:
                        m.revalidate_progress(ch, "on_pull_data_sent", size)
                    out.add(cid, data)
                    rate = ch.transport.rate_limit
                    if out.nbytes >= ITEM_BYTES or rate:
                        if not await out.flush():
                            return
                        self._settle()
                    unsaved += size
                    if unsaved >= limits.checkpoint_bytes:
                        m.persist(ch)
                        unsaved = 0
                    if rate:
                        paced_bytes += size
                        delay = paced_from + paced_bytes / rate - trio.current_time()
                        if delay > 0:
                            await trio.sleep(delay)
                    else:
                        paced_from, paced_bytes = trio.current_time(), 0
        if not await out.flush():
            return
        await session.wait_written()
        # A channel paused on its last block ends only once resumed (as a paused graphsync response).
        if await m.may_send(ch, session):
            session.send(encode_done())
            m.persist(ch)
            await m.sender_finished(ch, session)

    async def _load(self, plan: SendPlan, out: trio.MemorySendChannel[Any]) -> None:
        """Read the blocks to send from the store, one batch ahead of the sender."""
        get_many = self.manager.storage.get_many
        async with out:
            try:
                for batch in plan.batches(self.skip, self.manager.limits.batch_bytes):
                    nbytes = sum(b.size for b in batch)
                    taken = await self._budget.acquire(nbytes, self._settle)
                    if self._stopped:
                        self._budget.release(taken)
                        return
                    self._held += taken
                    self._loaded += nbytes
                    try:
                        loaded: Any = await trio.to_thread.run_sync(_read, get_many, batch)
                    except HoardError as exc:
                        await out.send(exc)
                        return
                    await out.send(loaded)
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                return  # the sender stopped
            finally:
                if self._stopped:
                    self._stop()  # what it took after the sender stopped


def _read(get_many: Any, batch: list[PlannedBlock]) -> list[tuple[CID, bytes]]:
    need = [b.cid for b in batch if b.data is None]
    found = iter(get_many(need)) if need else iter(())
    out = []
    for block in batch:
        data = block.data if block.data is not None else next(found)
        if data is None:
            raise NotFoundError(f"block {block.cid} not found in local store", cid=str(block.cid))
        out.append((block.cid, data))
    return out


class _Outgoing:
    """BLOCK frames gathered into one queued item of about ITEM_BYTES (fewer task switches per block)."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self.parts: list[bytes] = []
        self.blocks: list[tuple[CID, int]] = []
        self.nbytes = 0

    def add(self, cid: CID, data: bytes) -> None:
        self.parts.extend(encode_block(cid, data))
        self.blocks.append((cid, len(data)))
        self.nbytes += len(data)

    async def flush(self) -> bool:
        """Queue what was gathered; False when the session is ending."""
        if not self.blocks:
            return True
        parts, blocks, nbytes = tuple(self.parts), self.blocks, self.nbytes
        self.parts, self.blocks, self.nbytes = [], [], 0
        try:
            await self.session.send_data(parts, nbytes, blocks)
        except HoardError:
            return False  # the session is ending; the manager reports why
        return True


class Receiver:
    """The recipient's side of one session: check, store, then count the blocks that arrive.

    The manifest and index nodes are verified as they arrive (the plan grows from them); data
    blocks are verified by the storer, in its thread (BLAKE3 releases the GIL), just before it
    stores them. A block is counted (DataReceived, and `on_push_data_received` on a push's
    responder) once it is verified and stored, as graphsync reports a block once it has loaded
    and stored it.
    """

    def __init__(self, manager: Manager, channel: Channel, session: Session, plan: ReceivePlan) -> None:
        self.manager = manager
        self.channel = channel
        self.session = session
        self.plan = plan
        self.failed = False
        self._pending: list[tuple[CID, bytes | memoryview, bool]] = []  # (cid, data, verified)
        self._pending_bytes = 0
        self._batches_in, self._batches_out = trio.open_memory_channel[list[Any]](1)
        self._outstanding = 0
        self._idle = trio.Event()
        self._idle.set()
        self._closed = False
        self.done = False  # the sender's DONE arrived

    @property
    def active(self) -> bool:
        return not self.failed and self.channel.session is self.session and self.manager.is_live(self.channel)

    async def block(self, cid: CID, data: bytes | memoryview) -> None:
        """One BLOCK frame: check it against the plan, queue it for storing."""
        if not self.active:
            return  # the channel ended or failed: drain what is still in flight
        structure = self.plan.is_structure(cid)
        try:
            if structure:
                cid.verify(data)
            self.plan.accept(cid, data)
        except HoardError as exc:
            self.manager.transport_failed(self.channel, self.session, exc.message)
            return
        self._pending.append((cid, data, structure))
        self._pending_bytes += len(data)
        if self._pending_bytes >= self.manager.limits.batch_bytes or structure:
            await self._queue()  # structure at once: what it names is all the sender sends next

    async def _queue(self) -> None:
        batch, self._pending, self._pending_bytes = self._pending, [], 0
        if not batch or self.failed:
            return
        self._outstanding += 1
        if self._idle.is_set():
            self._idle = trio.Event()
        await self._batches_in.send(batch)

    def _store(self, batch: list[tuple[CID, bytes | memoryview, bool]]) -> None:
        """Verify and store a batch (in a thread). IntegrityError stores none of it."""
        for cid, data, verified in batch:
            if not verified:
                cid.verify(data)
        self.manager.storage.store_blocks(self.channel.state.channel_id, [(cid, data) for cid, data, _ in batch])

    def _count(self, batch: list[tuple[CID, bytes | memoryview, bool]]) -> None:
        m, ch = self.manager, self.channel
        responder = ch.state.responder == m.peer
        for cid, data, _verified in batch:
            new = cid not in ch.state.received_cids
            m.block_event(ch, E.DataReceived, cid, len(data))
            if new and responder and m.is_live(ch):
                m.revalidate_progress(ch, "on_push_data_received", len(data))

    async def storer(self) -> None:
        """Verify, store and count queued batches, in order (a task of the session)."""
        m, ch = self.manager, self.channel
        async for batch in self._batches_out:
            if not self.failed:
                try:
                    await trio.to_thread.run_sync(self._store, batch)
                except HoardError as exc:
                    self.failed = True
                    m.transport_failed(ch, self.session, f"cannot store received blocks: {exc.message}")
                else:
                    self._count(batch)
            self._outstanding -= 1
            if self._outstanding == 0:
                self._idle.set()

    async def drain(self) -> bool:
        """Store everything received so far; False if storing failed."""
        await self._queue()
        await self._idle.wait()
        return not self.failed

    async def close(self) -> None:
        """The session ended: store (and count) the blocks not stored yet. Idempotent."""
        if self._closed:
            return
        self._closed = True
        leftover: list[tuple[CID, bytes | memoryview, bool]] = []
        while True:
            try:
                leftover.extend(self._batches_out.receive_nowait())
            except (trio.WouldBlock, trio.EndOfChannel, trio.ClosedResourceError):
                break
        leftover.extend(self._pending)
        self._pending = []
        if leftover and not self.failed:
            try:
                await trio.to_thread.run_sync(self._store, leftover)
            except HoardError as exc:
                log.warning("channel %s: storing the last received blocks failed: %s",
                            self.channel.state.channel_id, exc.message)
            else:
                self._count(leftover)
