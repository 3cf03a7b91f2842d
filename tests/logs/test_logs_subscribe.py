"""subscribe_by_recno / multiread end to end, row by row of the GDP doc's tables (20 records).

Each row runs twice: delivered to the event queue and to a callback. "Nothing else was
delivered" is shown without sleeping: events of one request arrive in order, so an unwanted
event would show up before the next expected one (a later record appended as a sentinel, or
EOS); and a request that ended is gone from the host.
"""

from __future__ import annotations

import pytest
from _logs_kit import Collector, next_event

from hoard.errors import LogError
from hoard.logs import EVENT_DATA, EVENT_EOS, Event, Log, LogService


class Receiver:
    """Starts one request on a log and takes its events, from the queue or from a callback."""

    def __init__(self, service: LogService, log: Log, via: str) -> None:
        self.service, self.log, self.via = service, log, via
        self.collector = Collector() if via == "callback" else None
        self.seen = 0

    def kwargs(self) -> dict:
        return {"udata": "u"} if self.collector is None else {"callback": self.collector, "udata": "u"}

    def take(self, count: int) -> list[Event]:
        if self.collector is None:
            events = [next_event(self.service, self.log) for _ in range(count)]
        else:
            events = self.collector.wait_for(self.seen + count)[self.seen:self.seen + count]
        self.seen += count
        assert all(e.udata == "u" and e.log is self.log for e in events)
        return events

    def data(self, count: int) -> list[int]:
        events = self.take(count)
        assert [e.type for e in events] == [EVENT_DATA] * count, events
        return [e.datum.recno for e in events]

    def eos(self) -> None:
        (event,) = self.take(1)
        assert (event.type, event.stat, event.datum) == (EVENT_EOS, 202, None)
        assert self.service.host.active(self.log.name) == []

    def live(self) -> bool:
        return len(self.service.host.active(self.log.name)) == 1


def append(log: Log, first: int, last: int) -> None:
    for i in range(first, last + 1):
        assert log.append(b"r%d" % i).recno == i


VIA = pytest.mark.parametrize("via", ["queue", "callback"])


# -- subscribe ---------------------------------------------------------------------------
@VIA
def test_subscribe_1_10_returns_1_to_10_then_ends(service, log20, via):
    rx = Receiver(service, log20, via)
    log20.subscribe_by_recno(1, 10, **rx.kwargs())
    assert rx.data(10) == list(range(1, 11))
    rx.eos()


@VIA
def test_subscribe_minus10_10_returns_11_to_20_then_ends(service, log20, via):
    rx = Receiver(service, log20, via)
    log20.subscribe_by_recno(-10, 10, **rx.kwargs())
    assert rx.data(10) == list(range(11, 21))
    rx.eos()


@VIA
def test_subscribe_0_0_returns_new_records_forever(service, log20, via):
    rx = Receiver(service, log20, via)
    log20.subscribe_by_recno(0, 0, **rx.kwargs())
    append(log20, 21, 25)
    assert rx.data(5) == [21, 22, 23, 24, 25]  # no existing record came first
    append(log20, 26, 26)
    assert rx.data(1) == [26] and rx.live()
    assert log20.unsubscribe() == 1


@VIA
def test_subscribe_minus10_20_returns_11_to_20_then_21_to_30_as_published(service, log20, via):
    rx = Receiver(service, log20, via)
    log20.subscribe_by_recno(-10, 20, **rx.kwargs())
    assert rx.data(10) == list(range(11, 21))  # before anything is appended
    append(log20, 21, 30)
    assert rx.data(10) == list(range(21, 31))
    rx.eos()
    append(log20, 31, 31)
    assert log20.nrecs == 31


@VIA
def test_subscribe_1_0_returns_1_to_20_then_new_records_in_perpetuity(service, log20, via):
    rx = Receiver(service, log20, via)
    log20.subscribe_by_recno(1, 0, **rx.kwargs())
    assert rx.data(20) == list(range(1, 21))
    append(log20, 21, 23)
    assert rx.data(3) == [21, 22, 23] and rx.live()
    log20.unsubscribe()


@VIA
def test_subscribe_minus30_30_returns_1_to_20_then_21_to_30(service, log20, via):
    rx = Receiver(service, log20, via)
    log20.subscribe_by_recno(-30, 30, **rx.kwargs())
    assert rx.data(20) == list(range(1, 21))
    append(log20, 21, 30)
    assert rx.data(10) == list(range(21, 31))
    rx.eos()


@VIA
def test_subscribe_30_10_waits_for_record_30_then_returns_30_to_39(service, log20, via):
    rx = Receiver(service, log20, via)
    log20.subscribe_by_recno(30, 10, **rx.kwargs())
    append(log20, 21, 30)
    assert rx.data(1) == [30]  # nothing for 21..29 came before it
    append(log20, 31, 40)
    assert rx.data(9) == list(range(31, 40))
    rx.eos()


@pytest.mark.parametrize("start", [1, -10, 0, 30])
def test_subscribe_negative_numrecs_is_402_bad_option(service, log20, start):
    with pytest.raises(LogError) as err:
        log20.subscribe_by_recno(start, -1)
    assert err.value.code == 402
    assert service.host.active() == []


def test_subscribe_on_an_empty_log_from_1_waits_for_record_1(service):
    log = service.log_create()
    log.subscribe_by_recno(1, 2)
    append(log, 1, 2)
    assert [next_event(service, log).datum.recno for _ in range(2)] == [1, 2]
    assert next_event(service, log).type == EVENT_EOS


# -- multiread ---------------------------------------------------------------------------
@VIA
def test_multiread_1_10_returns_1_to_10_then_ends(service, log20, via):
    rx = Receiver(service, log20, via)
    log20.multiread(1, 10, **rx.kwargs())
    assert rx.data(10) == list(range(1, 11))
    rx.eos()


@VIA
def test_multiread_minus10_10_returns_11_to_20(service, log20, via):
    rx = Receiver(service, log20, via)
    log20.multiread(-10, 10, **rx.kwargs())
    assert rx.data(10) == list(range(11, 21))
    rx.eos()


@VIA
def test_multiread_minus10_20_returns_only_existing_11_to_20(service, log20, via):
    rx = Receiver(service, log20, via)
    log20.multiread(-10, 20, **rx.kwargs())
    assert rx.data(10) == list(range(11, 21))
    rx.eos()  # ended without waiting for records 21-30


@VIA
def test_multiread_1_0_returns_1_to_20(service, log20, via):
    rx = Receiver(service, log20, via)
    log20.multiread(1, 0, **rx.kwargs())
    assert rx.data(20) == list(range(1, 21))
    rx.eos()


@VIA
def test_multiread_minus30_30_returns_1_to_20(service, log20, via):
    rx = Receiver(service, log20, via)
    log20.multiread(-30, 30, **rx.kwargs())
    assert rx.data(20) == list(range(1, 21))
    rx.eos()


@pytest.mark.parametrize(("start", "numrecs"), [(0, 0), (0, 5), (30, 10), (21, 1)])
def test_multiread_past_the_end_is_404(service, log20, start, numrecs):
    with pytest.raises(LogError) as err:
        log20.multiread(start, numrecs)
    assert err.value.code == 404
    assert service.host.active() == []


@pytest.mark.parametrize("start", [1, -10, 0, 30])
def test_multiread_negative_numrecs_is_402_bad_option(service, log20, start):
    with pytest.raises(LogError) as err:
        log20.multiread(start, -1)
    assert err.value.code == 402


def test_multiread_is_a_snapshot(service, log20):
    log20.multiread(1, 0)
    append(log20, 21, 22)  # may land while 1..20 are being sent
    events = [next_event(service, log20) for _ in range(21)]
    assert [e.datum.recno for e in events[:20]] == list(range(1, 21))
    assert events[20].type == EVENT_EOS


# -- by timestamp ------------------------------------------------------------------------
def test_subscribe_by_ts_starts_at_the_first_record_at_or_after(service, log20):
    ts11 = log20.read_by_recno(11).ts
    log20.subscribe_by_ts(ts11, 10)
    assert [next_event(service, log20).datum.recno for _ in range(10)] == list(range(11, 21))
    assert next_event(service, log20).type == EVENT_EOS
    log20.subscribe_by_ts(ts11 - 1, 1)  # between records 10 and 11
    assert next_event(service, log20).datum.recno == 11


def test_subscribe_by_ts_past_the_last_record_returns_new_records(service, log20):
    log20.subscribe_by_ts(log20.read_by_recno(-1).ts + 1, 2)
    append(log20, 21, 22)
    assert [next_event(service, log20).datum.recno for _ in range(2)] == [21, 22]
    assert next_event(service, log20).type == EVENT_EOS


def test_multiread_by_ts(service, log20):
    log20.multiread_by_ts(log20.read_by_recno(5).ts, 0)
    assert [next_event(service, log20).datum.recno for _ in range(16)] == list(range(5, 21))
    assert next_event(service, log20).type == EVENT_EOS
    with pytest.raises(LogError) as err:
        log20.multiread_by_ts(log20.read_by_recno(-1).ts + 1, 0)
    assert err.value.code == 404
    with pytest.raises(LogError) as err:
        log20.multiread_by_ts(0, -1)
    assert err.value.code == 402
