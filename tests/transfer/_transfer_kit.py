"""Shared test material for the transfer tests: peers, vouchers, a channel factory, an event driver."""

from __future__ import annotations

from dataclasses import dataclass, field

from hoard.ids.cid import CID, DAG_CBOR
from hoard.transfer import ChannelState, Event, EventCode, Status, Voucher, VoucherResult, fsm

ALICE = "12D3KooWAlice"  # any text works as a peer; real ids are base58 PeerId strings
BOB = "12D3KooWBob"
ROOT = CID.of(b"manifest", DAG_CBOR)


def block(i: int) -> CID:
    return CID.of(f"block {i}".encode())


class DealVoucher(Voucher):
    """A voucher naming a deal; `to_bytes` is the deal number as text."""

    type_id = "test/deal-voucher"

    def __init__(self, deal: str) -> None:
        self.deal = deal

    def to_bytes(self) -> bytes:
        return self.deal.encode()

    @classmethod
    def from_bytes(cls, data: bytes) -> DealVoucher:
        return cls(data.decode())

    def __eq__(self, other: object) -> bool:
        return isinstance(other, DealVoucher) and other.deal == self.deal


class DealResult(VoucherResult):
    type_id = "test/deal-result"

    def __init__(self, note: str) -> None:
        self.note = note

    def to_bytes(self) -> bytes:
        return self.note.encode()

    @classmethod
    def from_bytes(cls, data: bytes) -> DealResult:
        return cls(data.decode())

    def __eq__(self, other: object) -> bool:
        return isinstance(other, DealResult) and other.note == self.note


def make_state(status: Status = Status.Requested, *, self_peer: str = ALICE, pull: bool = False,
               transfer_id: int = 7) -> ChannelState:
    """A channel initiated by ALICE with BOB (push: ALICE sends; pull: BOB sends), in `status`."""
    sender, recipient = (BOB, ALICE) if pull else (ALICE, BOB)
    state = ChannelState.create(self_peer=self_peer, transfer_id=transfer_id, base_cid=ROOT, selector=None,
                                voucher=DealVoucher("deal-1"), initiator=ALICE, sender=sender, recipient=recipient)
    return state.evolve(status=status)


@dataclass
class Side:
    """One peer's view of a channel, driven the way the manager will drive it.

    `fire` applies an event, records what subscribers would see, and performs the cleanup
    follow-up (`CleanupComplete`) when the FSM says it is due.
    """

    state: ChannelState
    seen: list[tuple[EventCode, Status]] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    cleanups: int = 0

    @property
    def status(self) -> Status:
        return self.state.status

    def fire(self, code: EventCode, **kwargs: object) -> None:
        before = self.state.status
        self.state = fsm.apply(self.state, code, **kwargs)  # type: ignore[arg-type]
        self._notify(code)
        if fsm.follow_up(before, code) is EventCode.CleanupComplete:
            self.cleanups += 1
            self.state = fsm.apply(self.state, EventCode.CleanupComplete)
            self._notify(EventCode.CleanupComplete)

    def block(self, code: EventCode, cid: CID, size: int) -> list[EventCode]:
        self.state, fired = fsm.apply_block(self.state, code, cid, size)
        for c in fired:
            self._notify(c)
        return fired

    def _notify(self, code: EventCode) -> None:
        self.seen.append((code, self.state.status))
        self.events.append(Event.for_state(code, self.state))

    def codes(self) -> list[EventCode]:
        return [code for code, _ in self.seen]
