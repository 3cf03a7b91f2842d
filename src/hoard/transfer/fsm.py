"""The channel state machine, sans-IO: go-data-transfer v1.7's `channels_fsm.go` as a table.

`TRANSITIONS` maps each event code to its rules, `{source: target}`. A source is a `Status`
or `ANY`; a target is a `Status` (Go `To`), `Stay.NO_CHANGE` (Go `ToNoChange`: the state is
kept and its entry action runs again) or `Stay.JUST_RECORD` (Go `ToJustRecord`: the state is
kept, nothing runs). Resolution: the rule for the channel's own status wins over the `ANY`
rule; an event with neither is rejected with `ErrInvalidTransition` and the state is
unchanged. The final states (Completed, Failed, Cancelled) accept no event at all, as Go's
state machine stops at them.

`ACTIONS` maps event codes to what they do to the channel besides its status (counters,
message, vouchers, seen CIDs), Go's per-event `Action`.

**Cleanup is the driver's job.** Entering Cancelling, Failing or Completing (or re-entering
one through a `NO_CHANGE` rule, e.g. `CompleteCleanupOnRestart`) means: clean the transport
channel up, unprotect the peer, then apply `CleanupComplete`. `apply` does not fire it by
itself, so that subscribers see the intermediate state and the driver can do the I/O first;
`follow_up(previous_status, event)` says when it is due:

    before = state.status
    state = apply(state, code, ...)
    notify(Event.for_state(code, state), state)
    if follow_up(before, code) is EventCode.CleanupComplete:
        cleanup(state.channel_id)
        state = apply(state, EventCode.CleanupComplete)
        notify(Event.for_state(EventCode.CleanupComplete, state), state)

Block progress (Go's `fireProgressEvent`) is `block_events`/`apply_block`: for a queued, sent
or received block the `*Progress` event (with the byte delta) is due only the first time the
block's CID is seen on the channel, and comes before the plain event.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import Enum
from types import MappingProxyType
from typing import Any, Final, NamedTuple

from hoard.errors import InvalidArgumentError
from hoard.ids.cid import CID
from hoard.transfer.errors import ErrInvalidTransition
from hoard.transfer.types import ChannelState, EventCode, Status
from hoard.transfer.vouchers import EncodedVoucher, EncodedVoucherResult, Voucher, VoucherResult

__all__ = [
    "ACTIONS",
    "ANY",
    "CLEANUP_STATES",
    "FINAL_STATES",
    "From",
    "JUST_RECORD",
    "NO_CHANGE",
    "PendingEvent",
    "Rule",
    "Stay",
    "TRANSFERRING_STATES",
    "TRANSITIONS",
    "apply",
    "apply_block",
    "block_events",
    "follow_up",
    "is_cleaning_up",
    "is_terminated",
    "rule_for",
]

S = Status
E = EventCode


class From(Enum):
    """A rule source that is not a single status."""

    ANY = "any"


ANY: Final = From.ANY


class Stay(Enum):
    """A rule target that keeps the status."""

    NO_CHANGE = "no change"  # Go ToNoChange: the status's entry action runs again
    JUST_RECORD = "just record"  # Go ToJustRecord: nothing runs


NO_CHANGE: Final = Stay.NO_CHANGE
JUST_RECORD: Final = Stay.JUST_RECORD

TRANSFERRING_STATES: Final = frozenset({
    S.Requested, S.Ongoing, S.InitiatorPaused, S.ResponderPaused, S.BothPaused,
    S.ResponderCompleted, S.ResponderFinalizing,
})
"""Where data may flow: the *Progress events are allowed only here."""

FINAL_STATES: Final = frozenset({S.Completed, S.Failed, S.Cancelled})
"""Terminal: no event is accepted once a channel is here."""

CLEANUP_STATES: Final = frozenset({S.Cancelling, S.Failing, S.Completing})
"""Entering one of these means cleanup, then `CleanupComplete`."""


def _each(states: frozenset[Status], target: Status | Stay) -> dict[Status | From, Status | Stay]:
    return {state: target for state in states}


_TABLE: dict[EventCode, dict[Status | From, Status | Stay]] = {
    E.Open: {ANY: S.Requested},
    E.Accept: {S.Requested: S.Ongoing},
    E.TransferRequestQueued: {ANY: JUST_RECORD},
    E.Restart: {ANY: JUST_RECORD},
    E.Cancel: {ANY: S.Cancelling},
    E.Error: {ANY: S.Failing},
    E.DataReceived: {ANY: NO_CHANGE},
    E.DataReceivedProgress: _each(TRANSFERRING_STATES, NO_CHANGE),
    E.DataSent: _each(TRANSFERRING_STATES | {S.TransferFinished}, NO_CHANGE),
    E.DataSentProgress: _each(TRANSFERRING_STATES, NO_CHANGE),
    E.DataQueued: _each(TRANSFERRING_STATES | {S.TransferFinished}, NO_CHANGE),
    E.DataQueuedProgress: _each(TRANSFERRING_STATES, NO_CHANGE),
    E.Disconnected: {ANY: NO_CHANGE},
    E.SendDataError: {ANY: NO_CHANGE},
    E.ReceiveDataError: {ANY: NO_CHANGE},
    E.RequestCancelled: {ANY: NO_CHANGE},
    E.NewVoucher: {ANY: NO_CHANGE},
    E.NewVoucherResult: {ANY: NO_CHANGE},
    E.PauseInitiator: {
        S.Requested: S.InitiatorPaused, S.Ongoing: S.InitiatorPaused,
        S.ResponderPaused: S.BothPaused,
        ANY: JUST_RECORD,
    },
    E.PauseResponder: {
        S.Requested: S.ResponderPaused, S.Ongoing: S.ResponderPaused,
        S.InitiatorPaused: S.BothPaused,
        ANY: JUST_RECORD,
    },
    E.ResumeInitiator: {
        S.InitiatorPaused: S.Ongoing,
        S.BothPaused: S.ResponderPaused,
        ANY: JUST_RECORD,
    },
    E.ResumeResponder: {
        S.ResponderPaused: S.Ongoing,
        S.BothPaused: S.InitiatorPaused,
        S.Finalizing: S.Completing,
        ANY: JUST_RECORD,
    },
    E.FinishTransfer: {
        ANY: S.TransferFinished,
        S.Failing: JUST_RECORD, S.Cancelling: JUST_RECORD,
        S.ResponderCompleted: S.Completing,
        S.ResponderFinalizing: S.ResponderFinalizingTransferFinished,
    },
    E.ResponderBeginsFinalization: {
        ANY: S.ResponderFinalizing,
        S.Failing: JUST_RECORD, S.Cancelling: JUST_RECORD,
        S.TransferFinished: S.ResponderFinalizingTransferFinished,
    },
    E.ResponderCompletes: {
        ANY: S.ResponderCompleted,
        S.Failing: JUST_RECORD, S.Cancelling: JUST_RECORD,
        S.ResponderPaused: S.ResponderFinalizing,
        S.TransferFinished: S.Completing,
        S.ResponderFinalizing: S.ResponderCompleted,
        S.ResponderFinalizingTransferFinished: S.Completing,
    },
    E.BeginFinalizing: {ANY: S.Finalizing},
    E.Complete: {ANY: S.Completing},
    E.CleanupComplete: {S.Cancelling: S.Cancelled, S.Failing: S.Failed, S.Completing: S.Completed},
    E.CompleteCleanupOnRestart: {ANY: NO_CHANGE},
    # E.RequestTimedOut: no rule (deprecated in v1.7.8, replaced by RequestCancelled)
}

TRANSITIONS: Final[Mapping[EventCode, Mapping[Status | From, Status | Stay]]] = MappingProxyType(
    {event: MappingProxyType(rules) for event, rules in _TABLE.items()}
)


@dataclass(frozen=True)
class Rule:
    """One row of the table: `event` from `source` goes to `target`."""

    event: EventCode
    source: Status | From
    target: Status | Stay

    def destination(self, current: Status) -> Status:
        """The status after applying this rule to a channel in `current`."""
        return current if isinstance(self.target, Stay) else self.target

    @property
    def runs_entry_action(self) -> bool:
        """Whether the destination's entry action (cleanup, for cleanup states) runs."""
        return self.target is not JUST_RECORD


def rule_for(status: Status, event: EventCode) -> Rule:
    """The rule that applies to `event` in `status`; raises ErrInvalidTransition if none does."""
    if status in FINAL_STATES:
        raise ErrInvalidTransition(status, event)
    rules = TRANSITIONS.get(event)
    if rules is not None:
        if status in rules:
            return Rule(event, status, rules[status])
        if ANY in rules:
            return Rule(event, ANY, rules[ANY])
    raise ErrInvalidTransition(status, event)


class _Args(NamedTuple):
    delta: int
    message: str | None
    cid: CID | None
    voucher: EncodedVoucher | None
    voucher_result: EncodedVoucherResult | None


Action = Callable[[ChannelState, _Args], dict[str, Any]]


def _clear_message(state: ChannelState, args: _Args) -> dict[str, Any]:
    return {"message": ""}


def _set_message(state: ChannelState, args: _Args) -> dict[str, Any]:
    return {"message": args.message or ""}


def _counter(name: str) -> Action:
    def add(state: ChannelState, args: _Args) -> dict[str, Any]:
        return {name: getattr(state, name) + args.delta}
    return add


def _seen(name: str) -> Action:
    def record(state: ChannelState, args: _Args) -> dict[str, Any]:
        if args.cid is None:
            return {}
        cids = getattr(state, name)
        updated = cids.with_cid(args.cid)
        return {} if updated is cids else {name: updated}
    return record


def _new_voucher(state: ChannelState, args: _Args) -> dict[str, Any]:
    if args.voucher is None:
        raise InvalidArgumentError("NewVoucher needs a voucher")
    return {"vouchers": state.vouchers + (args.voucher,)}


def _new_voucher_result(state: ChannelState, args: _Args) -> dict[str, Any]:
    if args.voucher_result is None:
        raise InvalidArgumentError("NewVoucherResult needs a voucher result")
    return {"voucher_results": state.voucher_results + (args.voucher_result,)}


ACTIONS: Final[Mapping[EventCode, Action]] = MappingProxyType({
    E.TransferRequestQueued: _clear_message,
    E.Restart: _clear_message,
    E.Error: _set_message,
    E.Disconnected: _set_message,
    E.SendDataError: _set_message,
    E.ReceiveDataError: _set_message,
    E.RequestCancelled: _set_message,
    E.DataReceivedProgress: _counter("received"),
    E.DataSentProgress: _counter("sent"),
    E.DataQueuedProgress: _counter("queued"),
    E.DataReceived: _seen("received_cids"),
    E.DataSent: _seen("sent_cids"),
    E.DataQueued: _seen("queued_cids"),
    E.NewVoucher: _new_voucher,
    E.NewVoucherResult: _new_voucher_result,
})
"""What each event does besides moving the status (events not listed only move it)."""


def _event_code(code: EventCode | int) -> EventCode:
    if type(code) is EventCode:
        return code
    try:
        return EventCode(code)
    except ValueError:
        raise InvalidArgumentError(f"not an event code: {code!r}") from None


def apply(state: ChannelState, event_code: EventCode | int, *, delta: int = 0, message: str | None = None,
          cid: CID | None = None, voucher: Voucher | EncodedVoucher | None = None,
          voucher_result: VoucherResult | EncodedVoucherResult | None = None) -> ChannelState:
    """The channel state after `event_code`; `state` itself is never modified.

    Arguments an event does not use are ignored: `delta` (bytes) for the *Progress events,
    `message` for Error/Disconnected/SendDataError/ReceiveDataError/RequestCancelled,
    `cid` for DataReceived/DataSent/DataQueued (recorded in the channel's seen set),
    `voucher`/`voucher_result` for NewVoucher/NewVoucherResult.
    Raises ErrInvalidTransition when no rule allows the event, InvalidArgumentError for bad
    arguments; in both cases nothing changed.
    """
    code = _event_code(event_code)
    rule = rule_for(state.status, code)
    if not isinstance(delta, int) or isinstance(delta, bool) or delta < 0:
        raise InvalidArgumentError(f"delta must be a non-negative integer: {delta!r}")
    if message is not None and not isinstance(message, str):
        raise InvalidArgumentError(f"message must be a string: {message!r}")
    if cid is not None and not isinstance(cid, CID):
        raise InvalidArgumentError(f"cid must be a CID: {cid!r}")
    args = _Args(
        delta, message, cid,
        None if voucher is None else EncodedVoucher.of(voucher),
        None if voucher_result is None else EncodedVoucherResult.of(voucher_result),
    )
    action = ACTIONS.get(code)
    changes = action(state, args) if action is not None else {}
    destination = rule.destination(state.status)
    if destination is not state.status:
        changes["status"] = destination
    return _evolve(state, changes) if changes else state


def _evolve(state: ChannelState, changes: dict[str, Any]) -> ChannelState:
    """`dataclasses.replace` without re-validating: every action's changes are well-typed already.

    This is the per-block hot path (four events per block on a sender), where `replace` and
    `__post_init__` cost more than the rest of the transfer's bookkeeping together.
    """
    new = object.__new__(ChannelState)
    fields = new.__dict__
    fields.update(state.__dict__)
    fields.update(changes)
    return new


def follow_up(previous_status: Status, event_code: EventCode | int) -> EventCode | None:
    """The event the driver owes after applying `event_code` to a channel in `previous_status`.

    `CleanupComplete` (after cleaning up) when the event moved the channel into, or re-ran,
    Cancelling/Failing/Completing; otherwise None.
    """
    rule = rule_for(previous_status, _event_code(event_code))
    if rule.runs_entry_action and rule.destination(previous_status) in CLEANUP_STATES:
        return E.CleanupComplete
    return None


def is_terminated(status: Status) -> bool:
    """True for the final states (Go `IsChannelTerminated`)."""
    return status in FINAL_STATES


def is_cleaning_up(status: Status) -> bool:
    """True for Cancelling, Failing and Completing (Go `IsChannelCleaningUp`)."""
    return status in CLEANUP_STATES


class PendingEvent(NamedTuple):
    """An event to apply: `apply(state, ev.code, delta=ev.delta, cid=ev.cid)`."""

    code: EventCode
    delta: int = 0
    cid: CID | None = None


_PROGRESS: Final = MappingProxyType({
    E.DataReceived: (E.DataReceivedProgress, "received_cids"),
    E.DataSent: (E.DataSentProgress, "sent_cids"),
    E.DataQueued: (E.DataQueuedProgress, "queued_cids"),
})


def block_events(state: ChannelState, event_code: EventCode | int, cid: CID, delta: int) -> list[PendingEvent]:
    """The events for one block queued/sent/received (`event_code` DataQueued/DataSent/DataReceived).

    `[Progress(delta), plain(cid)]` the first time `cid` is seen for that event on this
    channel, `[plain(cid)]` after that (Go's `fireProgressEvent`).
    """
    code = _event_code(event_code)
    if code not in _PROGRESS:
        raise InvalidArgumentError(f"not a block event (DataQueued, DataSent, DataReceived): {code.name}")
    if not isinstance(cid, CID):
        raise InvalidArgumentError(f"cid must be a CID: {cid!r}")
    progress, seen_name = _PROGRESS[code]
    plain = PendingEvent(code, cid=cid)
    if cid in getattr(state, seen_name):
        return [plain]
    return [PendingEvent(progress, delta=delta), plain]


def apply_block(state: ChannelState, event_code: EventCode | int, cid: CID,
                delta: int) -> tuple[ChannelState, list[EventCode]]:
    """Apply `block_events` in order; returns the new state and the codes that took effect.

    An event the table rejects is skipped and the next still applies (Go's state machine
    drops an invalid event and goes on): in TransferFinished a DataSent is recorded but its
    DataSentProgress is not. Subscribers should be told of each returned code.
    """
    fired: list[EventCode] = []
    for pending in block_events(state, event_code, cid, delta):
        try:
            state = apply(state, pending.code, delta=pending.delta, cid=pending.cid)
        except ErrInvalidTransition:
            continue
        fired.append(pending.code)
    return state, fired
