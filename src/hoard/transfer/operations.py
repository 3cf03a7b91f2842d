"""The channel operations of the data-transfer manager: opening channels and acting on them.

`Operations` is the half of the `Manager` its API calls on a channel (mixed into it; `self`
is the manager): open a push or pull channel (a `/hoard/transfer/1` stream per channel, opened
by the initiator with its New or Restart request, and the recipient's `Receiver` set up before
the request goes), send a further voucher, pause and resume, cancel, restart. Messages for a
channel without a live stream go on a short stream of their own. `Flows` (flows.py) is the
other half: what arrives on the streams.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, cast

import trio

from hoard.content.formats.logos_dataset import is_logos_manifest
from hoard.errors import HoardError, InvalidArgumentError, StateError, TransferError
from hoard.ids.cid import CID
from hoard.ids.peer import PeerId
from hoard.transfer import fsm
from hoard.transfer import messages as m
from hoard.transfer.channel import ERR_DISCONNECTED, Channel, TransferLimits
from hoard.transfer.datapath import Receiver, Sender
from hoard.transfer.errors import ErrPause
from hoard.transfer.flows import _reason
from hoard.transfer.plan import ReceivePlan
from hoard.transfer.selector import Selector, parse_selector
from hoard.transfer.session import Session, Stream, Transport
from hoard.transfer.storage import TransferStorage
from hoard.transfer.types import ChannelID, ChannelState, EventCode, Status, TransferIDCounter
from hoard.transfer.vouchers import EncodedVoucher, TypeRegistry, Voucher
from hoard.transfer.wire import encode_have

if TYPE_CHECKING:
    from hoard.transfer.manager import Manager

__all__ = ["Operations", "parse_peer"]

log = logging.getLogger("hoard.transfer")
E = EventCode
S = Status


def parse_peer(value: PeerId | str) -> str:
    """A peer as its base58 text (validated); InvalidArgumentError for anything else."""
    if isinstance(value, PeerId):
        return str(value)
    if isinstance(value, str) and value:
        return str(PeerId(value))  # validates
    raise InvalidArgumentError(f"peer must be a PeerId or its base58 text: {value!r}")


class Operations:
    """Opening channels and the API's calls on them (mixed into `Manager`; `self` is the manager)."""

    # provided by Manager (manager.py)
    peer: str
    storage: TransferStorage
    limits: TransferLimits
    _channels: dict[ChannelID, Channel]
    _ids: TransferIDCounter
    _configurers: TypeRegistry[Any]
    _nursery: trio.Nursery | None

    if TYPE_CHECKING:  # Manager's and Flows', as they define them
        def fire(self, ch: Channel, code: EventCode, **args: Any) -> None: ...
        def try_fire(self, ch: Channel, code: EventCode, **args: Any) -> bool: ...
        def _get(self, chid: ChannelID | str) -> Channel: ...
        def _require_running(self, op: str) -> tuple[Transport, trio.Nursery]: ...
        def _session(self, stream: Stream, peer: str) -> Session: ...
        def _validate(self, state: ChannelState, voucher: EncodedVoucher | None, *,
                      is_restart: bool) -> tuple[BaseException | None, Any]: ...

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
        other = parse_peer(to)
        if other == self.peer:
            raise InvalidArgumentError(f"Failed to {op}: cannot transfer with ourselves")
        encoded = EncodedVoucher.of(voucher)
        base = CID.parse(base_cid)
        if is_logos_manifest(base):  # its manifest links nothing: the channel would move one block
            raise InvalidArgumentError(
                f"Failed to {op}: {base} is a Logos dataset; data transfers move IPLD DAGs (hoard or UnixFS "
                "format), Logos datasets move by fetch (`hoard fetch`)", cid=str(base))
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
        configure = None if entry is None else entry[1]
        if configure is None:
            return
        try:
            configure(ch.state.channel_id, self._configurers.decode(voucher), ch.transport)
        except Exception:
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
        receiver = Receiver(cast("Manager", self), ch, session, plan)
        session.receiver = receiver
        session.spawn(receiver.storer)
        for frame in encode_have(have):
            session.send(frame)

    def _start_sending(self, ch: Channel, session: Session) -> None:
        session.spawn(Sender(cast("Manager", self), ch, session, frozenset(session.have)).run)

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
        except StateError:
            raise  # this node is not started: nothing was tried
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
