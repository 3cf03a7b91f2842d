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

import base64
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import trio

from hoard.errors import HoardError, InvalidArgumentError, StateError, TransferError
from hoard.ids.cid import CID
from hoard.ids.peer import PeerId
from hoard.transfer import fsm
from hoard.transfer import messages as m
from hoard.transfer.builtin import RejectionResult
from hoard.transfer.datapath import Receiver, Sender
from hoard.transfer.errors import ErrChannelNotFound, ErrInvalidTransition, ErrPause, ErrRejected, ErrResume
from hoard.transfer.events import EventDispatcher, Subscriber, Unsubscribe
from hoard.transfer.plan import ReceivePlan
from hoard.transfer.selector import Selector, parse_selector, selector_to_node
from hoard.transfer.session import Session, Stream, Transport
from hoard.transfer.storage import TransferStorage
from hoard.transfer.types import ChannelID, ChannelState, Event, EventCode, Status, TransferIDCounter
from hoard.transfer.vouchers import EncodedVoucher, EncodedVoucherResult, TypeRegistry, Voucher, VoucherResult
from hoard.transfer.wire import (
    BLOCK, DONE, ERROR, HAVE, MSG, TOTAL, TransferProtocolError, decode_block, decode_error, decode_have,
    decode_total, encode_error, encode_have,
)

__all__ = ["ERR_DISCONNECTED", "Channel", "ChannelTransport", "Manager", "TransferLimits", "channel_summary",
           "parse_channel_id"]

log = logging.getLogger("hoard.transfer")
E = EventCode
S = Status

ERR_DISCONNECTED = "other peer appears to have hung up. restart Channel"  # Go's ErrDisconnected
MAX_HAVE_TOTAL = 1 << 22  # CIDs a do-not-send list may hold


@dataclass(frozen=True)
class TransferLimits:
    """Sizes and times of the data path."""

    batch_bytes: int = 4 << 20  # blocks per store read (sender) and per store commit (recipient)
    max_in_flight: int = 8 << 20  # data bytes queued on a stream and not yet written
    checkpoint_bytes: int = 16 << 20  # a sender persists its progress this often
    linger: float = 10.0  # how long a finished stream waits for the peer to close its side
    cancel_timeout: float = 30.0  # how long a Cancel message may take to go out


class ChannelTransport:
    """What a transport configurer (`register_transport_configurer`) may set for one channel.

    `rate_limit`: bytes per second this node sends on the channel (None: as fast as it can).
    """

    def __init__(self, chid: ChannelID) -> None:
        self.chid = chid
        self.rate_limit: float | None = None


class Channel:
    """One channel as the manager drives it: its state, its stream, a wake-up for waiters."""

    def __init__(self, state: ChannelState) -> None:
        self.state = state
        self.session: Session | None = None
        self.changed = trio.Event()
        self.transport = ChannelTransport(state.channel_id)
        self.saved = {"s": len(state.sent_cids), "q": len(state.queued_cids)}

    @property
    def is_initiator(self) -> bool:
        return self.state.initiator == self.state.self_peer

    @property
    def is_sender(self) -> bool:
        return self.state.sender == self.state.self_peer


def parse_channel_id(value: ChannelID | str) -> ChannelID:
    """A ChannelID, or its text `"<initiator>-<responder>-<id>"`."""
    if isinstance(value, ChannelID):
        return value
    if isinstance(value, str):
        parts = value.strip().split("-")
        if len(parts) == 3 and parts[0] and parts[1] and parts[2].isdigit():
            return ChannelID(parts[0], parts[1], int(parts[2]))
    raise InvalidArgumentError(f"not a channel id (<initiator>-<responder>-<id>): {value!r}")


def channel_summary(state: ChannelState) -> dict[str, Any]:
    """A compact JSON view of a channel (CID lists as counts), for the APIs and the CLI."""
    def encoded(items: tuple[Any, ...]) -> list[dict[str, str]]:
        return [{"type": v.type_id, "data": base64.b64encode(v.data).decode()} for v in items]

    return {
        "id": str(state.channel_id), "initiator": state.initiator, "responder": state.responder,
        "transferId": state.transfer_id, "status": state.status.name, "statusCode": int(state.status),
        "isPull": state.is_pull, "baseCid": str(state.base_cid), "selector": selector_to_node(state.selector),
        "sender": state.sender, "recipient": state.recipient, "selfPeer": state.self_peer,
        "totalSize": state.total_size, "sent": state.sent, "received": state.received, "queued": state.queued,
        "message": state.message, "vouchers": encoded(state.vouchers),
        "voucherResults": encoded(state.voucher_results), "receivedBlocks": len(state.received_cids),
        "sentBlocks": len(state.sent_cids), "queuedBlocks": len(state.queued_cids),
    }


def _peer(value: PeerId | str) -> str:
    if isinstance(value, PeerId):
        return str(value)
    if isinstance(value, str) and value:
        return str(PeerId(value))  # validates
    raise InvalidArgumentError(f"peer must be a PeerId or its base58 text: {value!r}")


def _rejection(err: BaseException | None, result: Any) -> Any:
    """The result to send: the validator's, else the reason of a rejection."""
    if result is not None or err is None or isinstance(err, (ErrPause, ErrResume)):
        return result
    reason = err.message if isinstance(err, HoardError) else str(err) or type(err).__name__
    return RejectionResult(reason)


class Manager:
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
        self._ids = TransferIDCounter()
        self._events = EventDispatcher()
        self._transport: Transport | None = None
        self._nursery: trio.Nursery | None = None

    # -- lifecycle ------------------------------------------------------------------------
    def load(self) -> int:
        """Read the persisted channels (before `run`). Returns how many."""
        for state in self.storage.load_channels():
            self._channels[state.channel_id] = Channel(state)
        return len(self._channels)

    async def run(self, transport: Transport, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Serve and open transfers through `transport` until cancelled (while the network runs)."""
        self._transport = transport
        try:
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                task_status.started()
                await trio.sleep_forever()
        finally:
            self._nursery = None
            self._transport = None
            for ch in self._channels.values():
                ch.session = None

    async def handle_stream(self, stream: Stream, peer: PeerId | str) -> None:
        """Serve a `/hoard/transfer/1` stream a peer opened (the protocol handler)."""
        if self._nursery is None:
            await stream.reset()
            return
        await self._session(stream, str(peer)).run()

    def close(self) -> None:
        """Stop delivering events (after the node stopped). Idempotent."""
        self._events.close()

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
        """Validate requests carrying `voucher_cls` with `validator` (a RequestValidator)."""
        if not (callable(getattr(validator, "validate_push", None)) and callable(getattr(validator, "validate_pull", None))):
            raise InvalidArgumentError(f"{validator!r} is not a RequestValidator (validate_push, validate_pull)")
        self._validators.register(voucher_cls, validator)

    def register_revalidator(self, voucher_cls: type[Voucher], revalidator: Any) -> None:
        """Revalidate running channels with vouchers of `voucher_cls` (a Revalidator)."""
        for name in ("revalidate", "on_pull_data_sent", "on_push_data_received", "on_complete"):
            if not callable(getattr(revalidator, name, None)):
                raise InvalidArgumentError(f"{revalidator!r} is not a Revalidator (it lacks {name})")
        self._revalidators.register(voucher_cls, revalidator)

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
                self._events.publish(Event.for_state(pending.code, ch.state), ch.state)

    def _changed(self, ch: Channel, code: EventCode) -> None:
        self.persist(ch)
        if self._events.active:
            self._events.publish(Event.for_state(code, ch.state), ch.state)
        woken, ch.changed = ch.changed, trio.Event()
        woken.set()

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

    # -- opening --------------------------------------------------------------------------
    async def open_push_data_channel(self, to: PeerId | str, voucher: Voucher | EncodedVoucher,
                                     base_cid: CID | str, selector: Selector | dict[str, Any] = None) -> ChannelID:
        """Send `base_cid` (the blocks `selector` chooses) to `to`, who validates `voucher`."""
        return await self._open(to, voucher, base_cid, selector, pull=False)

    async def open_pull_data_channel(self, to: PeerId | str, voucher: Voucher | EncodedVoucher,
                                     base_cid: CID | str, selector: Selector | dict[str, Any] = None) -> ChannelID:
        """Ask `to` for `base_cid` (the blocks `selector` chooses); `to` validates `voucher`."""
        return await self._open(to, voucher, base_cid, selector, pull=True)

    async def _open(self, to: PeerId | str, voucher: Voucher | EncodedVoucher, base_cid: CID | str,
                    selector: Any, *, pull: bool) -> ChannelID:
        op = "open a pull channel" if pull else "open a push channel"
        self._require_running(op)
        other = _peer(to)
        if other == self.peer:
            raise InvalidArgumentError(f"Failed to {op}: cannot transfer with ourselves")
        encoded = EncodedVoucher.of(voucher)
        base = CID.parse(base_cid)
        selector = parse_selector(selector)
        if not pull and not (await trio.to_thread.run_sync(self.storage.has_many, [base]))[0]:
            raise InvalidArgumentError(f"Failed to {op}: {base} is not in the local store", cid=str(base))
        chid = ChannelID(self.peer, other, self._ids.next())
        state = ChannelState.create(self_peer=self.peer, transfer_id=chid.id, base_cid=base, selector=selector,
                                    voucher=encoded, initiator=self.peer, sender=other if pull else self.peer,
                                    recipient=self.peer if pull else other)
        ch = self._channels[chid] = Channel(state)
        self.fire(ch, E.Open)
        self._configure(ch, encoded)
        request = m.new_request(chid.id, encoded, base, selector, pull=pull)
        try:
            session = await self._open_session(ch)
        except HoardError as exc:
            self.try_fire(ch, E.Error, message=f"Unable to send request: {exc.message}")
            raise type(exc)(f"Failed to {op}: {exc.message}", chid=str(chid)) from exc
        if pull:
            await self._start_receiving(ch, session)
        session.send_message(request)
        return chid

    async def _open_session(self, ch: Channel) -> Session:
        transport, nursery = self._require_running("open a transfer stream")
        stream = await transport.open_stream(ch.state.other_peer)
        session = self._session(stream, ch.state.other_peer)
        await self._attach(ch, session)
        await nursery.start(session.run)
        return session

    async def _attach(self, ch: Channel, session: Session) -> None:
        """Make `session` the channel's stream, ending (and storing the data of) the previous one."""
        old = ch.session
        if old is not None and old is not session:
            old.abort("the channel moved to a new stream")
            await old.wait_ended()
        ch.session = session
        session.channel = ch

    def _configure(self, ch: Channel, voucher: EncodedVoucher) -> None:
        entry = self._configurers.lookup(voucher.type_id)
        if entry is None:
            return
        try:
            entry[1](ch.state.channel_id, self._configurers.decode(voucher), ch.transport)
        except Exception:  # noqa: BLE001 - a configurer's failure does not stop the channel
            log.exception("transport configurer for %s failed", voucher.type_id)

    async def _start_receiving(self, ch: Channel, session: Session) -> None:
        """Set up the recipient's side of `session` and tell the sender what not to send."""
        plan = ReceivePlan(ch.state.base_cid, ch.state.selector)
        received = list(ch.state.received_cids)
        storage = self.storage

        def prepare() -> list[CID]:
            plan.expand_local(storage.get_many)
            held = storage.has_many(received) if received else []
            return [cid for cid, have in zip(received, held) if have]

        have = await trio.to_thread.run_sync(prepare)
        receiver = Receiver(self, ch, session, plan)
        session.receiver = receiver  # type: ignore[attr-defined]
        session.spawn(receiver.storer)
        for frame in encode_have(have):
            session.send(frame)

    def _start_sending(self, ch: Channel, session: Session) -> None:
        session.spawn(Sender(self, ch, session, frozenset(session.have)).run)

    # -- sending messages -----------------------------------------------------------------
    async def _deliver(self, ch: Channel, message: m.Message) -> None:
        """Send a message on the channel's stream, else on a stream of its own (PeerError if none opens)."""
        session = ch.session
        if session is not None and session.open_for_sending:
            session.send_message(message)
            return
        await self._send_alone(ch.state.other_peer, message)

    async def _send_alone(self, peer: str, message: m.Message) -> None:
        transport, nursery = self._require_running("send a transfer message")
        stream = await transport.open_stream(peer)
        session = self._session(stream, peer)
        session.send_message(message)
        session.finish()
        nursery.start_soon(session.run)

    async def _deliver_or_disconnect(self, ch: Channel, message: m.Message) -> None:
        try:
            await self._deliver(ch, message)
        except HoardError as exc:
            self.try_fire(ch, E.Disconnected, message=f"{ERR_DISCONNECTED}: {exc.message}")
            raise

    # -- the API on a channel -------------------------------------------------------------
    async def send_voucher(self, chid: ChannelID | str, voucher: Voucher | EncodedVoucher) -> None:
        """Send a further voucher (revalidation, finalization). Initiator only."""
        ch = self._get(chid)
        if not ch.is_initiator:
            raise InvalidArgumentError("cannot send voucher for request we did not initiate")
        encoded = EncodedVoucher.of(voucher)
        fsm.rule_for(ch.state.status, E.NewVoucher)
        await self._deliver_or_disconnect(ch, m.voucher_request(ch.state.transfer_id, encoded))
        self.fire(ch, E.NewVoucher, voucher=encoded)

    async def pause_data_transfer_channel(self, chid: ChannelID | str) -> None:
        """Pause our side: the other peer is told (Update paused); the sender stops sending."""
        await self._pause_or_resume(self._get(chid), paused=True)

    async def resume_data_transfer_channel(self, chid: ChannelID | str) -> None:
        """Resume our side (Update not paused)."""
        await self._pause_or_resume(self._get(chid), paused=False)

    async def _pause_or_resume(self, ch: Channel, *, paused: bool) -> None:
        tid = ch.state.transfer_id
        if ch.is_initiator:
            code = E.PauseInitiator if paused else E.ResumeInitiator
            message: m.Message = m.update_request(tid, paused)
        else:
            code = E.PauseResponder if paused else E.ResumeResponder
            message = m.update_response(tid, paused)
        fsm.rule_for(ch.state.status, code)
        await self._deliver_or_disconnect(ch, message)
        self.fire(ch, code)

    async def close_data_transfer_channel(self, chid: ChannelID | str) -> None:
        """Cancel the channel: tell the other peer (in the background) and end it here."""
        ch = self._get(chid)
        fsm.rule_for(ch.state.status, E.Cancel)
        tid = ch.state.transfer_id
        message = m.cancel_request(tid) if ch.is_initiator else m.cancel_response(tid)
        session = ch.session
        if session is not None and session.open_for_sending:
            session.send_message(message)
        elif self._nursery is not None:
            self._nursery.start_soon(self._cancel_alone, ch.state.other_peer, message)
        self.fire(ch, E.Cancel)

    async def _cancel_alone(self, peer: str, message: m.Message) -> None:
        with trio.move_on_after(self.limits.cancel_timeout):
            try:
                await self._send_alone(peer, message)
            except HoardError as exc:
                log.info("could not tell %s about a cancelled channel: %s", peer, exc.message)

    async def restart_data_transfer_channel(self, chid: ChannelID | str) -> None:
        """Resume an interrupted channel without resending what the recipient has (DIGEST §3.6)."""
        ch = self._get(chid)
        status = ch.state.status
        if fsm.is_terminated(status):
            return
        if fsm.is_cleaning_up(status):
            self.fire(ch, E.CompleteCleanupOnRestart)
            return
        self._require_running("restart a channel")
        if ch.is_initiator:
            await self._restart_as_initiator(ch)
            return
        err, _result = self._validate(ch.state, ch.state.voucher, is_restart=True)
        if err is not None and not isinstance(err, ErrPause):
            raise TransferError(f"failed to restart channel, validation error: {_reason(err)}", chid=str(chid))
        await self._send_alone(ch.state.other_peer, m.restart_existing_channel_request(ch.state.channel_id))

    async def _restart_as_initiator(self, ch: Channel) -> None:
        state = ch.state
        request = m.new_request(state.transfer_id, state.voucher, state.base_cid, state.selector,  # type: ignore[arg-type]
                                pull=state.is_pull, restart=True)
        try:
            session = await self._open_session(ch)
        except HoardError as exc:
            self.try_fire(ch, E.Disconnected, message=f"{ERR_DISCONNECTED}: {exc.message}")
            raise
        self._configure(ch, state.voucher)  # type: ignore[arg-type]
        if state.is_pull:
            await self._start_receiving(ch, session)
        session.send_message(request)

    # -- validation -----------------------------------------------------------------------
    def _validate(self, state: ChannelState, voucher: EncodedVoucher | None, *,
                  is_restart: bool) -> tuple[BaseException | None, Any]:
        """Run the validator for `voucher` on a request for `state`'s channel: (error or None, result)."""
        try:
            if voucher is None:
                raise InvalidArgumentError("the request has no voucher")
            entry = self._validators.lookup(voucher.type_id)
            if entry is None:
                raise InvalidArgumentError(f"unknown voucher type: {voucher.type_id!r}", type_id=voucher.type_id)
            decoded = self._validators.decode(voucher)
            validator = entry[1]
            chid = state.channel_id
            if state.is_pull:
                result = validator.validate_pull(is_restart, chid, state.initiator, decoded, state.base_cid,
                                                 state.selector)
            else:
                result = validator.validate_push(is_restart, chid, state.initiator, decoded, state.base_cid,
                                                 state.selector)
            return None, result
        except Exception as exc:  # noqa: BLE001 - any error rejects; ErrPause/ErrResume accept
            return exc, getattr(exc, "result", None)

    # -- the session handler --------------------------------------------------------------
    async def frame_received(self, session: Session, kind: int, body: bytes) -> None:
        if kind == MSG:
            await self._on_message(session, m.decode_message(body[1:]))
        elif kind == BLOCK:
            receiver = getattr(session, "receiver", None)
            if receiver is None:
                raise TransferProtocolError("a block on a stream that receives none")
            await receiver.block(*decode_block(body))
        elif kind == HAVE:
            session.have.extend(decode_have(body))
            if len(session.have) > MAX_HAVE_TOTAL:
                raise TransferProtocolError("do-not-send list too long")
        elif kind == TOTAL:
            size, _blocks = decode_total(body)
            if session.channel is not None and session.channel.session is session:
                self.set_total_size(session.channel, size)
        elif kind == DONE:
            await self._on_done(session)
        elif kind == ERROR:
            ch = session.channel
            if ch is not None and ch.session is session and ch.state.status is not S.Failing:
                self.try_fire(ch, E.Error, message=decode_error(body))
        else:
            raise TransferProtocolError(f"unknown frame kind {kind}")

    async def remote_closed(self, session: Session) -> None:
        pass  # session_ended decides whether the channel lost its peer

    def data_written(self, session: Session, blocks: list[tuple[CID, int]]) -> None:
        ch = session.channel
        if ch is not None:
            for cid, size in blocks:
                self.block_event(ch, E.DataSent, cid, size)

    async def session_ended(self, session: Session, error: BaseException | None) -> None:
        receiver = getattr(session, "receiver", None)
        if receiver is not None:
            await receiver.close()
        ch = session.channel
        if ch is None or ch.session is not session:
            return
        ch.session = None
        if session.stopped:
            return
        if self.is_live(ch):
            detail = "" if error is None else f": {error}"
            self.try_fire(ch, E.Disconnected, message=ERR_DISCONNECTED + detail)

    def transport_failed(self, ch: Channel, session: Session | None, text: str) -> None:
        """The data transport failed: tell the other peer (ERROR) and fail the channel."""
        if session is not None and ch.session is session:
            session.send(encode_error(text))
        if self.is_live(ch):
            self.try_fire(ch, E.Error, message=text)
        elif session is not None:
            session.finish()

    # -- messages received ----------------------------------------------------------------
    async def _on_message(self, session: Session, message: m.Message) -> None:
        if isinstance(message, m.Request):
            if message.is_new:
                await self._on_new_request(session, message)
            elif message.is_restart:
                await self._on_restart_request(session, message)
            elif message.is_restart_existing_channel_request:
                self._on_restart_existing(session, message)
            else:
                ch = self._channels.get(ChannelID(session.peer, self.peer, message.transfer_id))
                if ch is None:
                    log.info("request for unknown channel %s from %s", message.transfer_id, session.peer)
                    return
                await self._on_request(ch, message)
        else:
            ch = self._channels.get(ChannelID(self.peer, session.peer, message.transfer_id))
            if ch is None:
                log.info("response for unknown channel %s from %s", message.transfer_id, session.peer)
                return
            await self._on_response(ch, session, message)

    async def _on_new_request(self, session: Session, request: m.Request) -> None:
        """Responder: validate a New request; accept (create the channel) or reject."""
        chid = ChannelID(session.peer, self.peer, request.transfer_id)
        pull = request.is_pull
        state = ChannelState.create(self_peer=self.peer, transfer_id=request.transfer_id,
                                    base_cid=request.base_cid, selector=request.selector,  # type: ignore[arg-type]
                                    voucher=request.voucher, initiator=session.peer,  # type: ignore[arg-type]
                                    sender=self.peer if pull else session.peer,
                                    recipient=session.peer if pull else self.peer)
        if chid in self._channels or session.channel is not None:
            err, result = TransferError("a channel with this id exists already"), None
        else:
            err, result = self._validate(state, request.voucher, is_restart=False)
        response = m.response_from_validation(err, request.transfer_id, _rejection(err, result), is_new=True)
        if not response.accepted:
            log.info("rejected %s request %s from %s: %s", "pull" if pull else "push", chid, session.peer,
                     _reason(err))
            session.send_message(response)
            session.finish()
            return
        ch = self._channels[chid] = Channel(state)
        await self._attach(ch, session)
        self.fire(ch, E.Open)
        if response.voucher_result is not None:
            self.fire(ch, E.NewVoucherResult, voucher_result=response.voucher_result)
        self.fire(ch, E.Accept)
        self._configure(ch, request.voucher)  # type: ignore[arg-type]
        if response.paused:
            self.fire(ch, E.PauseResponder)
        await self._accepted(ch, session, response)

    async def _accepted(self, ch: Channel, session: Session, response: m.Response) -> None:
        """Responder: answer an accepted New/Restart request and start the data."""
        if ch.is_sender:
            session.send_message(response)
            self._start_sending(ch, session)
        else:
            await self._start_receiving(ch, session)
            session.send_message(response)

    async def _on_restart_request(self, session: Session, request: m.Request) -> None:
        """Responder: the initiator restarts a channel; it must match the stored one exactly."""
        chid = ChannelID(session.peer, self.peer, request.transfer_id)
        ch = self._channels.get(chid)
        err: BaseException | None
        result: Any = None
        if ch is None:
            err = ErrChannelNotFound(f"channel not found: {chid}")
        elif fsm.is_terminated(ch.state.status):
            err = TransferError("channel is already terminated")
        elif request.base_cid != ch.state.base_cid:
            err = TransferError("restart request base cid does not match the channel")
        elif request.voucher != ch.state.voucher:
            err = TransferError("restart request voucher differs from the channel's voucher")
        elif request.is_pull != ch.state.is_pull:
            err = TransferError("restart request direction does not match the channel")
        else:
            err, result = self._validate(ch.state, request.voucher, is_restart=True)
        response = m.response_from_validation(err, request.transfer_id, _rejection(err, result), is_restart=True)
        if ch is None or not response.accepted:
            log.info("refused restart of %s from %s: %s", chid, session.peer, _reason(err))
            session.send_message(response)
            session.finish()
            return
        await self._attach(ch, session)
        self.fire(ch, E.Restart)
        self._configure(ch, ch.state.voucher)  # type: ignore[arg-type]
        if response.paused:
            self.fire(ch, E.PauseResponder)
        await self._accepted(ch, session, response)

    def _on_restart_existing(self, session: Session, request: m.Request) -> None:
        """Initiator: the responder asks us to restart a channel we opened."""
        chid = request.restart_channel
        ch = self._channels.get(chid) if chid is not None else None
        if ch is None or not ch.is_initiator or ch.state.other_peer != session.peer \
                or fsm.is_terminated(ch.state.status) or self._nursery is None:
            log.info("ignored a restart request for %s from %s", chid, session.peer)
            return
        self._nursery.start_soon(self._restart_requested, ch)

    async def _restart_requested(self, ch: Channel) -> None:
        try:
            await self._restart_as_initiator(ch)
        except HoardError as exc:
            log.info("restarting %s at the responder's request failed: %s", ch.state.channel_id, exc.message)

    async def _on_response(self, ch: Channel, session: Session, response: m.Response) -> None:
        """Initiator: a response from the responder (Go's OnResponseReceived)."""
        if response.is_cancel:
            self.try_fire(ch, E.Cancel)
            return
        if response.is_voucher_result:
            if not response.empty_voucher_result:
                self.try_fire(ch, E.NewVoucherResult, voucher_result=response.voucher_result)
            if not response.accepted:
                self.try_fire(ch, E.Error, message=self._rejected_message(response))
                return
            if response.is_new:
                self.try_fire(ch, E.Accept)
            if response.is_restart:
                self.try_fire(ch, E.Restart)
        if response.is_complete and response.accepted:
            if not response.paused:
                self.try_fire(ch, E.ResponderCompletes)
                return
            self.try_fire(ch, E.ResponderBeginsFinalization)
        self.try_fire(ch, E.PauseResponder if response.paused else E.ResumeResponder)
        if (response.is_new or response.is_restart) and ch.is_sender and ch.session is session and self.is_live(ch):
            self._start_sending(ch, session)

    def _rejected_message(self, response: m.Response) -> str:
        text = str(ErrRejected())
        result = response.voucher_result
        if result is not None and result.type_id == RejectionResult.type_id:
            text += f": {RejectionResult.from_bytes(result.data).text}"
        return text

    async def _on_request(self, ch: Channel, request: m.Request) -> None:
        """Responder: Update, Cancel or Voucher on an existing channel."""
        if request.is_cancel:
            self.try_fire(ch, E.Cancel)
        elif request.type is m.MessageType.Voucher:
            await self._on_voucher(ch, request)
        elif request.is_update:
            self.try_fire(ch, E.PauseInitiator if request.is_paused else E.ResumeInitiator)

    async def _on_voucher(self, ch: Channel, request: m.Request) -> None:
        """Responder: revalidate a new voucher; answer, then pause, resume or fail."""
        voucher = request.voucher
        assert voucher is not None
        err: BaseException | None = None
        result: Any = None
        entry = self._revalidators.lookup(voucher.type_id)
        if entry is None:
            err = InvalidArgumentError(f"unknown voucher type: {voucher.type_id!r}")
        elif not self.try_fire(ch, E.NewVoucher, voucher=voucher):
            return
        else:
            try:
                result = entry[1].revalidate(ch.state.channel_id, self._revalidators.decode(voucher))
            except Exception as exc:  # noqa: BLE001 - ErrPause/ErrResume signal, others reject
                err, result = exc, getattr(exc, "result", None)
        await self._answer_revalidation(ch, err, result, final=ch.state.status is S.Finalizing)

    def revalidate_progress(self, ch: Channel, hook: str, nbytes: int) -> None:
        """Responder: ask the revalidators about more data (`on_pull_data_sent`/`on_push_data_received`)."""
        if not len(self._revalidators):
            return
        for type_id in self._revalidators:
            _cls, revalidator = self._revalidators.lookup(type_id)  # type: ignore[misc]
            err: BaseException | None = None
            try:
                handled, result = getattr(revalidator, hook)(ch.state.channel_id, nbytes)
            except Exception as exc:  # noqa: BLE001 - ErrPause signals, others fail the channel
                handled, err, result = True, exc, getattr(exc, "result", None)
            if handled:
                if err is not None or result is not None:
                    self._answer_now(ch, err, result)
                return

    def _answer_now(self, ch: Channel, err: BaseException | None, result: Any) -> None:
        session = ch.session
        response = m.response_from_validation(err, ch.state.transfer_id, _rejection(err, result))
        if session is not None:
            session.send_message(response)
        self._after_revalidation(ch, err, response)

    async def _answer_revalidation(self, ch: Channel, err: BaseException | None, result: Any, *,
                                   final: bool) -> None:
        result = _rejection(err, result)
        if final:
            accepted = err is None or isinstance(err, (ErrPause, ErrResume))
            response = m.complete_response(ch.state.transfer_id, accepted, isinstance(err, ErrPause), result)
        else:
            response = m.response_from_validation(err, ch.state.transfer_id, result)
        try:
            await self._deliver(ch, response)
        except HoardError as exc:
            log.info("channel %s: could not answer a voucher: %s", ch.state.channel_id, exc.message)
        self._after_revalidation(ch, err, response)

    def _after_revalidation(self, ch: Channel, err: BaseException | None, response: m.Response) -> None:
        if response.voucher_result is not None:
            self.try_fire(ch, E.NewVoucherResult, voucher_result=response.voucher_result)
        if isinstance(err, ErrPause):
            self.try_fire(ch, E.PauseResponder)
        elif isinstance(err, ErrResume):
            self.try_fire(ch, E.ResumeResponder)
        elif err is not None:
            self.try_fire(ch, E.Error, message=_reason(err))

    # -- the end of the data --------------------------------------------------------------
    async def _on_done(self, session: Session) -> None:
        """Recipient: the sender sent every selected block."""
        ch = session.channel
        receiver: Receiver | None = getattr(session, "receiver", None)
        if ch is None or receiver is None:
            raise TransferProtocolError("DONE on a stream that receives nothing")
        if ch.session is not session or not self.is_live(ch):
            return
        if not await receiver.drain():
            return
        missing = await trio.to_thread.run_sync(receiver.plan.missing, self.storage.has_many)
        if missing:
            self.transport_failed(ch, session, f"the sender finished but {len(missing)} block(s) are missing, "
                                               f"e.g. {missing[0]}")
            return
        if receiver.plan.is_dataset and ch.state.selector is None:
            base = ch.state.base_cid
            try:
                await trio.to_thread.run_sync(self.storage.commit_dataset, base)
            except HoardError as exc:
                self.transport_failed(ch, session, f"cannot commit dataset {base}: {exc.message}")
                return
            if self._on_dataset is not None:
                await self._on_dataset(base)
        if ch.is_initiator:
            self.try_fire(ch, E.FinishTransfer)
        else:
            self._responder_finished(ch, session)

    async def sender_finished(self, ch: Channel, session: Session) -> None:
        """Sender: every block was written (DONE is queued)."""
        if ch.is_initiator:
            self.try_fire(ch, E.FinishTransfer)
        else:
            self._responder_finished(ch, session)

    def _responder_finished(self, ch: Channel, session: Session) -> None:
        """Responder, transport finished: ask on_complete, send Complete, then Complete/BeginFinalizing/Error."""
        err: BaseException | None = None
        result: Any = None
        for type_id in self._revalidators:
            _cls, revalidator = self._revalidators.lookup(type_id)  # type: ignore[misc]
            try:
                handled, result = revalidator.on_complete(ch.state.channel_id)
            except Exception as exc:  # noqa: BLE001 - ErrPause asks for a final voucher
                handled, err, result = True, exc, getattr(exc, "result", None)
            if handled:
                break
            result = None
        accepted = err is None or isinstance(err, (ErrPause, ErrResume))
        paused = isinstance(err, ErrPause)
        session.send_message(m.complete_response(ch.state.transfer_id, accepted, paused, _rejection(err, result)))
        if not accepted:
            self.try_fire(ch, E.Error, message=_reason(err))
        elif paused:
            self.try_fire(ch, E.BeginFinalizing)
        else:
            self.try_fire(ch, E.Complete)


def _reason(err: BaseException | None) -> str:
    if err is None:
        return ""
    return err.message if isinstance(err, HoardError) else str(err) or type(err).__name__
