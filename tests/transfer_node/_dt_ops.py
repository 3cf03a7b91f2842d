"""Data-transfer operations run inside a node process of the harness (`tests/harness/node_main.py`),
and the test voucher types they register (the in-process tests, `_memnet`, use them too).

The harness's `dt` op calls `<name>(node, *args)` from here. This module holds what a test
needs inside the node: a test voucher type with a configurable validator, a revalidator that
asks for a payment every N bytes, an optional send-rate limit (a transport configurer), and an
event recorder that tests read and wait on. Results are JSON-able.
"""

from __future__ import annotations

import threading
from typing import Any

from hoard.errors import TransferError
from hoard.transfer import ErrPause, ErrResume, EventCode, Status, Voucher, VoucherResult
from hoard.transfer.manager import channel_summary, parse_channel_id

BLOCK_EVENTS = {EventCode.DataQueued, EventCode.DataSent, EventCode.DataReceived, EventCode.DataQueuedProgress,
                EventCode.DataSentProgress, EventCode.DataReceivedProgress}
FINAL = {Status.Completed, Status.Failed, Status.Cancelled}


class DealVoucher(Voucher):
    type_id = "test/deal"

    def __init__(self, deal: str) -> None:
        self.deal = deal

    def to_bytes(self) -> bytes:
        return self.deal.encode()

    @classmethod
    def from_bytes(cls, data: bytes) -> DealVoucher:
        return cls(data.decode())


class DealResult(VoucherResult):
    type_id = "test/deal-result"

    def __init__(self, note: str) -> None:
        self.note = note

    def to_bytes(self) -> bytes:
        return self.note.encode()

    @classmethod
    def from_bytes(cls, data: bytes) -> DealResult:
        return cls(data.decode())


class DealValidator:
    """Accepts the deals in `accept`, accepts those in `pause` paused, rejects the others."""

    def __init__(self, accept=("deal-1",), pause=()) -> None:
        self.accept, self.pause = set(accept), set(pause)

    def _check(self, voucher: DealVoucher) -> DealResult:
        if voucher.deal in self.pause:
            raise ErrPause(result=DealResult("pay first"))
        if voucher.deal not in self.accept:
            raise TransferError(f"no such deal: {voucher.deal}")
        return DealResult(f"deal {voucher.deal} accepted")

    def validate_push(self, is_restart, chid, sender, voucher, base_cid, selector):
        return self._check(voucher)

    def validate_pull(self, is_restart, chid, receiver, voucher, base_cid, selector):
        return self._check(voucher)


class Payments:
    """Pause every `interval` bytes until a payment voucher arrives."""

    def __init__(self, interval: int) -> None:
        self.interval = interval
        self.owed: dict = {}
        self.waiting: set = set()
        self.vouchers: list[str] = []  # the payments received, in order

    def revalidate(self, chid, voucher):
        self.vouchers.append(voucher.deal)
        self.owed[chid] = self.owed.get(chid, 0) - self.interval
        self.waiting.discard(chid)
        raise ErrResume(result=DealResult(f"received {voucher.deal}"))

    def _progress(self, chid, nbytes):
        self.owed[chid] = self.owed.get(chid, 0) + nbytes
        if self.owed[chid] >= self.interval and chid not in self.waiting:
            self.waiting.add(chid)
            raise ErrPause(result=DealResult("payment due"))
        return True, None

    on_pull_data_sent = _progress
    on_push_data_received = _progress

    def on_complete(self, chid):
        return True, None


class Recorder:
    """Every event of this node, with a condition to wait on."""

    def __init__(self) -> None:
        self.events: list[tuple[str, EventCode, Status, str, int, int]] = []
        self.cond = threading.Condition()
        self.actions: list[Any] = []

    def __call__(self, event, state) -> None:
        with self.cond:
            self.events.append((str(state.channel_id), event.code, state.status, event.message, state.received,
                                state.sent))
            self.cond.notify_all()
        for action in list(self.actions):
            action(event, state)

    def wait(self, predicate, timeout: float) -> Any:
        with self.cond:
            if not self.cond.wait_for(predicate, timeout):
                raise TimeoutError("the awaited transfer event did not come")


RECORDER = Recorder()


def setup(node, accept=("deal-1",), pause=(), interval=None, rate=None) -> bool:
    """Register the test voucher type (validator, result type, revalidator, rate limit) and record events."""
    dt = node.data_transfer
    dt.register_voucher_type(DealVoucher, DealValidator(list(accept), list(pause)))
    dt.register_voucher_result_type(DealResult)
    if interval:
        dt.register_revalidator(DealVoucher, Payments(interval))
    if rate:
        dt.register_transport_configurer(DealVoucher, lambda chid, voucher, transport: setattr(
            transport, "rate_limit", rate))
    dt.subscribe_to_events(RECORDER)
    return True


def pay_when_asked(node) -> bool:
    """As initiator: answer every pause the responder asks for with a new payment voucher."""
    paid: dict[str, int] = {}

    def action(event, state) -> None:
        if event.code is EventCode.PauseResponder and state.initiator == state.self_peer:
            key = str(state.channel_id)
            paid[key] = paid.get(key, 0) + 1
            node.data_transfer.send_voucher(state.channel_id, DealVoucher(f"payment-{paid[key]}"))

    RECORDER.actions.append(action)
    return True


def open(node, direction: str, peer: str, cid: str, deal: str = "deal-1", selector=None) -> str:
    dt = node.data_transfer
    opener = dt.open_pull_data_channel if direction == "pull" else dt.open_push_data_channel
    return str(opener(peer, DealVoucher(deal), cid, selector))


def state(node, chid: str) -> dict:
    summary = channel_summary(node.data_transfer.channel_state(chid))
    summary["receivedCids"] = [str(c) for c in node.data_transfer.channel_state(chid).received_cids]
    return summary


def wait(node, chid: str, statuses: list[str], timeout: float = 60) -> dict:
    """Wait until an event left the channel in one of `statuses` (names); its state then."""
    wanted = {Status[name] for name in statuses}
    RECORDER.wait(lambda: any(c == chid and s in wanted for c, _e, s, *_ in RECORDER.events), timeout)
    return state(node, chid)


def wait_event(node, chid: str, code: str, count: int = 1, timeout: float = 60) -> int:
    """Wait for the `count`th event `code` on the channel; returns the bytes received by then."""
    wanted = EventCode[code]

    def seen() -> list:
        return [e for e in RECORDER.events if e[0] == chid and e[1] is wanted]

    RECORDER.wait(lambda: len(seen()) >= count, timeout)
    return seen()[count - 1][4]


def wait_received(node, chid: str, nbytes: int, timeout: float = 60) -> int:
    RECORDER.wait(lambda: any(c == chid and r >= nbytes for c, _e, _s, _m, r, _t in RECORDER.events), timeout)
    return nbytes


def events(node, chid: str, progress: bool = False) -> list[list[str]]:
    """The channel's events so far: [code, status, message] (block events only with `progress`)."""
    with RECORDER.cond:
        return [[e.name, s.name, m] for c, e, s, m, _r, _t in RECORDER.events
                if c == chid and (progress or e not in BLOCK_EVENTS)]


def call(node, method: str, chid: str, *args) -> dict:
    """A `node.data_transfer` method on a channel (pause/resume/close/restart/send_voucher)."""
    target = getattr(node.data_transfer, method)
    if method == "send_voucher":
        target(parse_channel_id(chid), DealVoucher(args[0]))
    else:
        target(parse_channel_id(chid))
    return state(node, chid)


def has(node, cids: list[str]) -> list[bool]:
    return [node.exists(c) for c in cids]


def blocks(node, cid: str) -> list[str]:
    """The data block CIDs of a stored dataset, in order."""
    from hoard.ids.cid import CID

    content = node.components.context.content
    return [str(c) for c, _ in content.iter_blocks(content.manifest(CID.parse(cid)))]
