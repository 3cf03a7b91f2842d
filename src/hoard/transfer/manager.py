"""The data-transfer manager: go-data-transfer v1.7's `Manager`, driving the channel FSM over hoard streams.

```python
manager = Manager(self_peer, storage)          # storage: TransferStorage (the node's ContentStorage)
manager.load()                                  # channels persisted by an earlier run
manager.register_voucher_type(DealVoucher, validator)
async with trio.open_nursery() as nursery:      # while the network runs (the node does this)
    await nursery.start(manager.run, transport)
    chid = await manager.open_pull_data_channel(peer, DealVoucher("42"), manifest_cid)
```

Everything here runs on one trio loop (the node's worker); the node's `data_transfer` facade
makes it a blocking, thread-safe API. Flows follow DIGEST §3.6, step by step; each channel's
events go through `hoard.transfer.fsm` (cleanup and `CleanupComplete` included), are
persisted, and are published to subscribers on the `EventDispatcher` thread.

Wire and data: one `/hoard/transfer/1` stream per channel (`Session`), opened by the initiator
with its New or Restart request; messages flow both ways on it and the blocks flow from
sender to recipient (`datapath`). Messages for a channel without a live stream (pause,
cancel, a voucher, RestartExistingChannelRequest) go on a short stream of their own.
"""

from __future__ import annotations

import collections
import functools
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import trio

from hoard.errors import HoardError, InvalidArgumentError, StateError, TransferError
from hoard.framing import ProtocolError
from hoard.ids.cid import CID
from hoard.ids.peer import PeerId
from hoard.limits import (
    TRANSFER_MAX_CHANNELS,
    TRANSFER_MAX_CHANNELS_PER_PEER,
    TRANSFER_MAX_STREAMS,
    TRANSFER_MAX_STREAMS_PER_PEER,
)
from hoard.ratelog import violation
from hoard.transfer import fsm
from hoard.transfer.builtin import RejectionResult
from hoard.transfer.channel import (
    ERR_DISCONNECTED,
    Channel,
    ChannelTransport,
    TransferLimits,
    channel_summary,
    parse_channel_id,
)
from hoard.transfer.datapath import SendBudget
from hoard.transfer.errors import ErrChannelNotFound, ErrInvalidTransition
from hoard.transfer.events import EventDispatcher, Subscriber, Unsubscribe
from hoard.transfer.flows import Flows
from hoard.transfer.operations import Operations
from hoard.transfer.session import Session, Stream, Transport
from hoard.transfer.storage import TransferStorage
from hoard.transfer.types import (
    ChannelID,
    ChannelState,
    EventCode,
    Status,
    TransferIDCounter,
)
from hoard.transfer.validation import RevalidatorAdapter, ValidatorAdapter
from hoard.transfer.vouchers import (
    EncodedVoucher,
    EncodedVoucherResult,
    TypeRegistry,
    Voucher,
    VoucherResult,
)
from hoard.transfer.wire import PROTOCOL

__all__ = ["ERR_DISCONNECTED", "Channel", "ChannelTransport", "Manager", "TransferLimits", "channel_summary",
           "parse_channel_id"]

log = logging.getLogger("hoard.transfer")
E = EventCode
S = Status

class Manager(Operations, Flows):
    """The data-transfer manager of one node (see the module docstring)."""

    def __init__(self, self_peer: PeerId | str, storage: TransferStorage, *, limits: TransferLimits | None = None,
                 on_dataset: Callable[[CID], Awaitable[None]] | None = None) -> None:
        self.peer = str(self_peer)
        self.storage = storage
        self.limits = limits or TransferLimits()
        self._on_dataset = on_dataset
        self._validators: TypeRegistry[Any] = TypeRegistry(Voucher, "voucher type")
        self._revalidators: TypeRegistry[Any] = TypeRegistry(Voucher, "revalidator voucher type")
        self._results: TypeRegistry[Any] = TypeRegistry(VoucherResult, "voucher result type")
        self._configurers: TypeRegistry[Any] = TypeRegistry(Voucher, "transport configurer voucher type")
        self._results.register(RejectionResult)
        self._channels: dict[ChannelID, Channel] = {}
        self._finished: collections.OrderedDict[ChannelID, None] = collections.OrderedDict()  # oldest first
        self.send_budget = SendBudget(self.limits.send_budget)  # shared by every Sender
        self._ids = TransferIDCounter()
        self._events = EventDispatcher()
        self._transport: Transport | None = None
        self._nursery: trio.Nursery | None = None
        self._streams_by_peer: dict[str, int] = {}
        self._ready_funcs: list[Callable[[BaseException | None], None]] = []
        self._ready: tuple[BaseException | None] | None = None  # (error,) once start has settled
        self._run_scope: trio.CancelScope | None = None
        self._run_done: trio.Event | None = None

    # -- lifecycle ------------------------------------------------------------------------
    def load(self) -> int:
        """Read the persisted channels (before `run`). Returns how many."""
        for state in self.storage.load_channels():  # the finished ones last, oldest first
            self._channels[state.channel_id] = Channel(state)
            if fsm.is_terminated(state.status):
                self._finished[state.channel_id] = None
        self._forget_old()
        return len(self._channels)

    def _forget_old(self) -> None:
        """Keep the newest `limits.max_finished` finished channels; forget older ones (memory and
        store), so that channel lists stay bounded however many transfers a node has done."""
        while len(self._finished) > max(self.limits.max_finished, 0):
            chid, _ = self._finished.popitem(last=False)
            self._channels.pop(chid, None)
            try:
                self.storage.forget_channel(chid)
            except Exception as exc:  # noqa: BLE001 - kept on disk; the next load drops it again
                log.warning("channel %s: forgetting it failed: %r", chid, exc)

    async def run(self, transport: Transport, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Serve and open transfers through `transport` until cancelled (while the network runs)."""
        self._transport = transport
        try:
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                task_status.started()
                self._set_ready(None)
                await trio.sleep_forever()
        finally:
            self._nursery = None
            self._transport = None
            for ch in self._channels.values():
                ch.session = None

    async def handle_stream(self, stream: Stream, peer: PeerId | str) -> None:
        """Serve a `/hoard/transfer/1` stream a peer opened (the protocol handler).

        A peer may have TRANSFER_MAX_STREAMS_PER_PEER streams open at once (all peers
        TRANSFER_MAX_STREAMS); one beyond is reset at once.
        """
        peer = str(peer)
        streams = self._streams_by_peer.get(peer, 0)
        if self._nursery is None or streams >= TRANSFER_MAX_STREAMS_PER_PEER or \
                sum(self._streams_by_peer.values()) >= TRANSFER_MAX_STREAMS:
            if self._nursery is not None:
                violation(log, peer, "too many %s streams (%d open from this peer); stream reset", PROTOCOL, streams)
            await stream.reset()
            return
        self._streams_by_peer[peer] = streams + 1
        try:
            session = self._session(stream, peer)
            await session.run()
            if isinstance(session.error, ProtocolError):
                violation(log, peer, "broke %s: %s; stream reset", PROTOCOL, session.error.message)
        finally:
            left = self._streams_by_peer.pop(peer, 1) - 1
            if left > 0:
                self._streams_by_peer[peer] = left

    def _validate(self, state: ChannelState, voucher: EncodedVoucher | None, *,
                  is_restart: bool) -> tuple[BaseException | None, Any]:
        """Refuse a new channel past TRANSFER_MAX_CHANNELS_PER_PEER open channels from its peer
        (or TRANSFER_MAX_CHANNELS in all), before its voucher is even decoded."""
        if not is_restart:
            peer = state.initiator
            open_ = [ch for ch in self._channels.values() if not ch.is_initiator and self.is_live(ch)]
            mine = sum(1 for ch in open_ if ch.state.other_peer == peer)
            if mine >= TRANSFER_MAX_CHANNELS_PER_PEER:
                return TransferError(f"too many open channels from {peer} (at most {TRANSFER_MAX_CHANNELS_PER_PEER})"), None
            if len(open_) >= TRANSFER_MAX_CHANNELS:
                return TransferError(f"this node has too many open channels (at most {TRANSFER_MAX_CHANNELS})"), None
        return super()._validate(state, voucher, is_restart=is_restart)

    # go-data-transfer's Start / OnReady / Stop -------------------------------------------
    async def start(self, transport: Transport, nursery: trio.Nursery) -> None:
        """Go's `Start`: run the manager over `transport` in `nursery` until `stop` (or until
        the nursery is cancelled); returns once it serves. Ready listeners are called with
        None, or with the error if it cannot start (which is raised too). A second start while
        running is StateError."""
        if self._run_scope is not None:
            raise StateError("the data-transfer manager is already started")
        scope, done = trio.CancelScope(), trio.Event()
        self._run_scope, self._run_done = scope, done

        async def serve(task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
            try:
                with scope:
                    await self.run(transport, task_status)
            finally:
                self._run_scope = None
                done.set()

        try:
            await nursery.start(serve)
        except Exception as exc:
            self._set_ready(exc)
            raise

    def on_ready(self, ready: Callable[[BaseException | None], None]) -> None:
        """Go's `OnReady(ReadyFunc)`: call `ready(error)` once, when the manager has started
        (error None) or failed to; at once if that has already happened."""
        if not callable(ready):
            raise InvalidArgumentError(f"a ready function must be callable: {ready!r}")
        if self._ready is not None:
            ready(self._ready[0])
        else:
            self._ready_funcs.append(ready)

    def _set_ready(self, error: BaseException | None) -> None:
        if self._ready is not None:
            return
        self._ready = (error,)
        funcs, self._ready_funcs = self._ready_funcs, []
        for fn in funcs:
            try:
                fn(error)
            except Exception:  # a listener's failure is its own
                log.exception("data-transfer ready function failed")

    async def stop(self) -> None:
        """Go's `Stop`: end processing — every channel's stream is dropped (the channels stay
        persisted and can be restarted) and the manager stops serving. Waits until it has;
        a no-op when not running. Events keep flowing until `close`."""
        scope, done = self._run_scope, self._run_done
        if scope is None or done is None:
            return
        scope.cancel()
        await done.wait()

    def close(self) -> None:
        """Stop delivering events (after the node stopped) and wait for the storage's background
        flush, if one runs (before the node closes its store). Idempotent."""
        self._events.close()
        wait_synced = getattr(self.storage, "wait_synced", None)
        if wait_synced is not None:
            wait_synced()

    @property
    def running(self) -> bool:
        return self._nursery is not None

    def _require_running(self, op: str) -> tuple[Transport, trio.Nursery]:
        if self._transport is None or self._nursery is None:
            raise StateError(f"Failed to {op}: the node is not started (no network)")
        return self._transport, self._nursery

    def _session(self, stream: Stream, peer: str) -> Session:
        return Session(stream, peer, self, max_in_flight=self.limits.max_in_flight, linger=self.limits.linger)

    # -- registration ---------------------------------------------------------------------
    def register_voucher_type(self, voucher_cls: type[Voucher], validator: Any) -> None:
        """Validate requests carrying `voucher_cls` with `validator` (a RequestValidator in the
        seed's four-argument form or the later six-argument one: validation.py)."""
        self._validators.register(voucher_cls, ValidatorAdapter(validator))

    def register_revalidator(self, voucher_cls: type[Voucher], revalidator: Any) -> None:
        """Revalidate running channels with vouchers of `voucher_cls` (a Revalidator: validation.py)."""
        self._revalidators.register(voucher_cls, RevalidatorAdapter(revalidator))

    def register_voucher_result_type(self, result_cls: type[VoucherResult]) -> None:
        """Make results of `result_cls` decodable (`decode_voucher_result`)."""
        self._results.register(result_cls)

    def register_transport_configurer(self, voucher_cls: type[Voucher],
                                      configurer: Callable[[ChannelID, Voucher, ChannelTransport], None]) -> None:
        """Run `configurer(chid, voucher, transport)` for each channel opened or accepted with `voucher_cls`."""
        if not callable(configurer):
            raise InvalidArgumentError(f"transport configurer must be callable: {configurer!r}")
        self._configurers.register(voucher_cls, configurer)

    def decode_voucher(self, encoded: EncodedVoucher) -> Voucher:
        """A voucher object from its encoding, with any registry that knows its type."""
        for registry in (self._validators, self._revalidators, self._configurers):
            if encoded.type_id in registry:
                return registry.decode(encoded)  # type: ignore[return-value]
        raise InvalidArgumentError(f"unknown voucher type: {encoded.type_id!r}", type_id=encoded.type_id)

    def decode_voucher_result(self, encoded: EncodedVoucherResult) -> VoucherResult:
        """A voucher result object from its encoding (its type must be registered)."""
        return self._results.decode(encoded)  # type: ignore[return-value]

    # -- queries --------------------------------------------------------------------------
    def subscribe_to_events(self, subscriber: Subscriber) -> Unsubscribe:
        """Call `subscriber(event, channel_state)` for every event, on the events thread."""
        return self._events.subscribe(subscriber)

    def channel_state(self, chid: ChannelID | str) -> ChannelState:
        """The channel's current state; ErrChannelNotFound when unknown."""
        return self._get(chid).state

    def transfer_channel_status(self, chid: ChannelID | str) -> Status:
        """The channel's status; `Status.ChannelNotFoundError` when unknown (as Go)."""
        ch = self._channels.get(parse_channel_id(chid))
        return S.ChannelNotFoundError if ch is None else ch.state.status

    def in_progress_channels(self) -> dict[ChannelID, ChannelState]:
        """Every channel this node knows, finished ones included (as Go's InProgressChannels)."""
        return {chid: ch.state for chid, ch in self._channels.items()}

    def _get(self, chid: ChannelID | str) -> Channel:
        ch = self._channels.get(parse_channel_id(chid))
        if ch is None:
            raise ErrChannelNotFound(f"channel not found: {chid}", chid=str(chid))
        return ch

    # -- events ---------------------------------------------------------------------------
    def fire(self, ch: Channel, code: EventCode, **args: Any) -> None:
        """Apply an event (ErrInvalidTransition if the FSM refuses it); persist, publish, clean up."""
        before = ch.state.status
        ch.state = fsm.apply(ch.state, code, **args)
        self._changed(ch, code)
        if fsm.follow_up(before, code) is E.CleanupComplete:
            self._cleanup(ch)
            if not self._settle_received(ch):
                ch.state = fsm.apply(ch.state, E.CleanupComplete)
                self._changed(ch, E.CleanupComplete)

    def try_fire(self, ch: Channel, code: EventCode, **args: Any) -> bool:
        """`fire`, logging (not raising) a refused transition, as Go's state machine does."""
        try:
            self.fire(ch, code, **args)
            return True
        except ErrInvalidTransition as exc:
            log.debug("channel %s: %s", ch.state.channel_id, exc.message)
            return False

    def block_event(self, ch: Channel, code: EventCode, cid: CID, size: int) -> None:
        """A block queued/sent/received: the *Progress event (first time only), then the plain one."""
        for pending in fsm.block_events(ch.state, code, cid, size):
            try:
                ch.state = fsm.apply(ch.state, pending.code, delta=pending.delta, cid=pending.cid)
            except ErrInvalidTransition:
                continue
            if self._events.active:
                self._events.publish(pending.code, ch.state)

    def _changed(self, ch: Channel, code: EventCode) -> None:
        self.persist(ch)
        if self._events.active:
            self._events.publish(code, ch.state)
        woken, ch.changed = ch.changed, trio.Event()
        woken.set()
        chid = ch.state.channel_id
        if fsm.is_terminated(ch.state.status) and chid not in self._finished and self._channels.get(chid) is ch:
            self._finished[chid] = None
            self._forget_old()

    def persist(self, ch: Channel) -> None:
        """Save the channel's state (and the sent/queued CIDs recorded since the last save)."""
        state = ch.state
        appends = {}
        for kind, cids in (("s", state.sent_cids), ("q", state.queued_cids)):
            if len(cids) > ch.saved[kind]:
                appends[kind] = list(cids)[ch.saved[kind]:]
        try:
            self.storage.save_channel(state, appends)
        except Exception as exc:  # noqa: BLE001 - the transfer goes on; the record is behind
            log.warning("channel %s: persisting its state failed: %r", state.channel_id, exc)
            return
        ch.saved = {"s": len(state.sent_cids), "q": len(state.queued_cids)}

    def set_total_size(self, ch: Channel, total: int) -> None:
        if ch.state.total_size != total:
            ch.state = ch.state.evolve(total_size=total)
            self.persist(ch)

    def _cleanup(self, ch: Channel) -> None:
        """Entering Cancelling/Failing/Completing: end the channel's stream once queued frames are out."""
        if ch.session is not None:
            ch.session.finish()

    def _settle_received(self, ch: Channel) -> bool:
        """Cleanup of a recipient: its received blocks are kept (Completing) or reclaimed (Failing,
        Cancelling) by `storage.end_channel`. When there are some and the manager runs, that
        happens in a thread and CleanupComplete follows it (True); else at once (False)."""
        if ch.state.recipient != self.peer:
            return False
        chid, keep = ch.state.channel_id, ch.state.status is S.Completing
        nursery = self._nursery
        if nursery is not None and self.storage.holds_blocks(chid):
            nursery.start_soon(self._settle_then_complete, ch, keep)
            return True
        try:
            self.storage.end_channel(chid, keep=keep)
        except HoardError as exc:  # the blocks stay pending: load or expiry settles them later
            log.warning("channel %s: settling its received blocks failed: %s", chid, exc.message)
        return False

    async def _settle_then_complete(self, ch: Channel, keep: bool) -> None:
        chid = ch.state.channel_id
        try:
            await trio.to_thread.run_sync(functools.partial(self.storage.end_channel, chid, keep=keep))
        except HoardError as exc:
            log.warning("channel %s: settling its received blocks failed: %s", chid, exc.message)
        if fsm.is_cleaning_up(ch.state.status):  # unless an event moved it on meanwhile
            self.fire(ch, E.CleanupComplete)

    def is_live(self, ch: Channel) -> bool:
        status = ch.state.status
        return not fsm.is_terminated(status) and not fsm.is_cleaning_up(status)

    def sending_allowed(self, ch: Channel, session: Session) -> bool:
        """Whether the channel may send on `session` right now (Ongoing, the stream open)."""
        return ch.state.status is S.Ongoing and ch.session is session and session.open_for_sending

    async def may_send(self, ch: Channel, session: Session) -> bool:
        """Wait until the channel may send (Ongoing); False once it never will on this session."""
        while True:
            if ch.session is not session or not session.open_for_sending or not self.is_live(ch):
                return False
            if ch.state.status is S.Ongoing:
                return True
            await ch.changed.wait()
