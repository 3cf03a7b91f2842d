"""What the manager does with what arrives on its streams: go-data-transfer's flows (DIGEST §3.6).

`Flows` is the `SessionHandler` half of the `Manager`: frames in order from each session,
requests on the responder (New, Restart, Update, Cancel, Voucher), responses on the initiator,
revalidation, and the end of the data on both sides. Each step is the Go flow's, in order; the
events go through the manager's `fire` (FSM, persistence, subscribers, cleanup).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import trio

from hoard.errors import HoardError, InvalidArgumentError, TransferError
from hoard.ids.cid import CID
from hoard.ratelog import violation
from hoard.transfer import fsm
from hoard.transfer import messages as m
from hoard.transfer.builtin import RejectionResult
from hoard.transfer.channel import ERR_DISCONNECTED, Channel
from hoard.transfer.datapath import Receiver
from hoard.transfer.errors import ErrChannelNotFound, ErrPause, ErrRejected, ErrResume
from hoard.transfer.session import Session
from hoard.transfer.types import ChannelID, ChannelState, EventCode, Status
from hoard.transfer.validation import ValidatorAdapter
from hoard.transfer.vouchers import EncodedVoucher
from hoard.transfer.wire import (
    BLOCK,
    DONE,
    ERROR,
    HAVE,
    MSG,
    TOTAL,
    TransferProtocolError,
    decode_block,
    decode_error,
    decode_have,
    decode_total,
    encode_error,
)

__all__ = ["Flows"]

log = logging.getLogger("hoard.transfer")
E = EventCode
S = Status

MAX_HAVE_TOTAL = 1 << 22  # CIDs a do-not-send list may hold


def _rejection(err: BaseException | None, result: Any) -> Any:
    """The result to send: the validator's, else the reason of a rejection."""
    if result is not None or err is None or isinstance(err, (ErrPause, ErrResume)):
        return result
    reason = err.message if isinstance(err, HoardError) else str(err) or type(err).__name__
    return RejectionResult(reason)


def _reason(err: BaseException | None) -> str:
    if err is None:
        return ""
    return err.message if isinstance(err, HoardError) else str(err) or type(err).__name__


class Flows:
    """The message and data flows of a `Manager` (mixed into it; `self` is the manager)."""

    # provided by Manager
    peer: str
    storage: Any
    limits: Any
    _channels: dict[ChannelID, Channel]
    _validators: Any
    _revalidators: Any
    _nursery: trio.Nursery | None
    _on_dataset: Any

    if TYPE_CHECKING:  # Manager's, as it defines them (manager.py)
        def fire(self, ch: Channel, code: EventCode, **args: Any) -> None: ...
        def try_fire(self, ch: Channel, code: EventCode, **args: Any) -> bool: ...
        def block_event(self, ch: Channel, code: EventCode, cid: CID, size: int) -> None: ...
        def set_total_size(self, ch: Channel, total: int) -> None: ...
        def is_live(self, ch: Channel) -> bool: ...
        async def may_send(self, ch: Channel, session: Session) -> bool: ...
        def _configure(self, ch: Channel, voucher: EncodedVoucher) -> None: ...
        def _start_sending(self, ch: Channel, session: Session) -> None: ...
        async def _attach(self, ch: Channel, session: Session) -> None: ...
        async def _start_receiving(self, ch: Channel, session: Session) -> None: ...
        async def _restart_as_initiator(self, ch: Channel) -> None: ...
        async def _deliver(self, ch: Channel, message: m.Message) -> None: ...

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
        except Exception as exc:  # noqa: BLE001 - any error rejects
            return exc, getattr(exc, "result", None)
        adapter: ValidatorAdapter = entry[1]  # the seed's or the later form, detected at registration
        return adapter.validate(state.is_pull, is_restart, state.channel_id, state.initiator, decoded,
                                state.base_cid, state.selector)

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
            ch = session.channel
            if ch is not None and ch.session is session:
                self.set_total_size(ch, size)
                if ch.state.recipient == self.peer and self.is_live(ch):
                    await self._reserve(ch, session, size)
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

    async def _reserve(self, ch: Channel, session: Session, total: int) -> None:
        """Recipient: keep room for the announced `total` less the expected blocks stored already
        (what this channel received before, or had); fail the channel if it does not fit."""
        receiver: Receiver | None = getattr(session, "receiver", None)
        expected = {} if receiver is None else dict(receiver.plan.expected)
        sized = [(c, n) for c, n in expected.items() if n is not None]
        structure = [c for c, n in expected.items() if n is None]  # the base and index nodes: a few
        storage, chid = self.storage, ch.state.channel_id

        def reserve() -> None:
            present = storage.has_many([c for c, _ in sized]) if sized else []
            stored = sum(n for (_c, n), have in zip(sized, present) if have)
            stored += sum(len(d) for d in storage.get_many(structure) if d is not None) if structure else 0
            storage.reserve(chid, total - stored)

        try:
            await trio.to_thread.run_sync(reserve)
        except HoardError as exc:
            self.transport_failed(ch, session, f"cannot receive the rest of {ch.state.base_cid}: {exc.message}")

    async def session_ended(self, session: Session, error: BaseException | None) -> None:
        receiver = getattr(session, "receiver", None)
        if receiver is not None:
            await receiver.close()
            if session.channel is not None:  # what was kept for the rest of its data is released
                try:
                    await trio.to_thread.run_sync(self.storage.reserve, session.channel.state.channel_id, 0)
                except HoardError as exc:
                    log.info("channel %s: releasing its reservation failed: %s",
                             session.channel.state.channel_id, exc.message)
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
                    violation(log, session.peer, "request for unknown channel %s", message.transfer_id, level=logging.INFO)
                    return
                await self._on_request(ch, message)
        else:
            ch = self._channels.get(ChannelID(self.peer, session.peer, message.transfer_id))
            if ch is None:
                violation(log, session.peer, "response for unknown channel %s", message.transfer_id, level=logging.INFO)
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
        err: BaseException | None
        if chid in self._channels or session.channel is not None:
            err, result = TransferError("a channel with this id exists already"), None
        else:
            err, result = self._validate(state, request.voucher, is_restart=False)
        response = m.response_from_validation(err, request.transfer_id, _rejection(err, result), is_new=True)
        if not response.accepted:
            violation(log, session.peer, "rejected %s request %s: %s", "pull" if pull else "push", chid, _reason(err),
                      level=logging.INFO)
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
        elif fsm.is_terminated(ch.state.status) or fsm.is_cleaning_up(ch.state.status):
            if fsm.is_cleaning_up(ch.state.status):  # persisted mid-cleanup: finish it now
                self.try_fire(ch, E.CompleteCleanupOnRestart)
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
            violation(log, session.peer, "refused restart of %s: %s", chid, _reason(err), level=logging.INFO)
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
            violation(log, session.peer, "ignored a restart request for %s", chid, level=logging.INFO)
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
        """Go's text, "response rejected", and nothing more: the reason, if the responder gave
        one, is the voucher result just recorded (a `RejectionResult`)."""
        return str(ErrRejected())

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
                decoded = self._revalidators.decode(voucher)
            except Exception as exc:  # noqa: BLE001 - an undecodable voucher rejects
                err, result = exc, None
            else:
                err, result = entry[1].revalidate(ch.state.channel_id, decoded)
        await self._answer_revalidation(ch, err, result, final=ch.state.status is S.Finalizing)

    def revalidate_progress(self, ch: Channel, hook: str, nbytes: int) -> None:
        """Responder: ask the revalidators about more data (`on_pull_data_sent`/`on_push_data_received`)."""
        if not len(self._revalidators):
            return
        for type_id in self._revalidators:
            _cls, revalidator = self._revalidators.lookup(type_id)
            handled, err, result = revalidator.hook(hook, ch.state.channel_id, nbytes)
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
        """Recipient: the sender sent every selected block.

        The initiator finishes before it reads on (the responder's Complete comes after).
        The responder of a push finishes in a task of the session, so that the stream is still
        read meanwhile: paused by a revalidator at the end, it waits there for the voucher.
        """
        ch = session.channel
        receiver: Receiver | None = getattr(session, "receiver", None)
        if ch is None or receiver is None or receiver.done:
            raise TransferProtocolError("DONE on a stream that receives nothing (or twice)")
        receiver.done = True
        if ch.session is not session or not self.is_live(ch):
            return
        if ch.is_initiator:
            await self._finish_receiving(ch, session, receiver)
        else:
            session.spawn(self._finish_receiving, ch, session, receiver)

    async def _finish_receiving(self, ch: Channel, session: Session, receiver: Receiver) -> None:
        if not await receiver.drain():
            return
        missing = await trio.to_thread.run_sync(receiver.plan.missing, self.storage.has_many, ch.state.received_cids)
        if missing:
            self.transport_failed(ch, session, f"the sender finished but {len(missing)} block(s) are missing, "
                                               f"e.g. {missing[0]}")
            return
        if receiver.plan.is_dataset and ch.state.selector is None:
            base = ch.state.base_cid
            try:
                await trio.to_thread.run_sync(self.storage.commit_dataset, ch.state.channel_id, base)
            except HoardError as exc:
                self.transport_failed(ch, session, f"cannot commit dataset {base}: {exc.message}")
                return
            if self._on_dataset is not None:
                await self._on_dataset(base)
        if ch.is_initiator:
            self.try_fire(ch, E.FinishTransfer)
        elif await self.may_send(ch, session):  # as a paused graphsync request, a paused push does not end
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
            _cls, revalidator = self._revalidators.lookup(type_id)
            handled, err, result = revalidator.hook("on_complete", ch.state.channel_id)
            if handled:
                break
            err = result = None
        accepted = err is None or isinstance(err, (ErrPause, ErrResume))
        paused = isinstance(err, ErrPause)
        session.send_message(m.complete_response(ch.state.transfer_id, accepted, paused, _rejection(err, result)))
        if not accepted:
            self.try_fire(ch, E.Error, message=_reason(err))
        elif paused:
            self.try_fire(ch, E.BeginFinalizing)
        else:
            self.try_fire(ch, E.Complete)
