"""The sans-IO request engine: the GDP doc's subscribe and multiread tables (20 records)."""

from __future__ import annotations

import hashlib

import pytest

from hoard.errors import LogError
from hoard.logs import LogName
from hoard.logs.subscriptions import (
    SUBSCRIBE,
    Plan,
    Subscription,
    SubscriptionTable,
    plan_multiread,
    plan_multiread_at,
    plan_subscribe,
    plan_subscribe_at,
    start_point,
)

N = 20


@pytest.mark.parametrize(("start", "numrecs", "plan"), [
    (1, 10, Plan(1, 10)),          # records 1-10 immediately, then terminates
    (-10, 10, Plan(11, 20)),       # records 11-20 immediately, then terminates
    (0, 0, Plan(21, None)),        # from record 21 when published, forever
    (-10, 20, Plan(11, 30)),       # 11-20 immediately, 21-30 as published, then terminates
    (1, 0, Plan(1, None)),         # 1-20 immediately, then new records in perpetuity
    (-30, 30, Plan(1, 30)),        # 1-20 immediately, then 21-30 as published
    (30, 10, Plan(30, 39)),        # "undefined": hoard waits for record 30, sends 30-39
])
def test_subscribe_table(start, numrecs, plan):
    assert plan_subscribe(start, numrecs, N) == plan


@pytest.mark.parametrize("start", [1, -10, 0, 30])
def test_subscribe_negative_numrecs_is_402(start):
    with pytest.raises(LogError) as err:
        plan_subscribe(start, -1, N)
    assert err.value.code == 402


@pytest.mark.parametrize(("start", "numrecs", "plan"), [
    (1, 10, Plan(1, 10)),
    (-10, 10, Plan(11, 20)),
    (-10, 20, Plan(11, 20)),
    (1, 0, Plan(1, 20)),
    (-30, 30, Plan(1, 20)),
])
def test_multiread_table(start, numrecs, plan):
    assert plan_multiread(start, numrecs, N) == plan


@pytest.mark.parametrize(("start", "numrecs"), [(0, 0), (0, 5), (30, 10), (21, 1)])
def test_multiread_past_the_end_is_404(start, numrecs):
    with pytest.raises(LogError) as err:
        plan_multiread(start, numrecs, N)
    assert err.value.code == 404


@pytest.mark.parametrize("start", [1, -10, 0, 30])
def test_multiread_negative_numrecs_is_402(start):
    with pytest.raises(LogError) as err:
        plan_multiread(start, -1, N)
    assert err.value.code == 402


def test_start_point_counts_back_and_clamps():
    assert [start_point(s, N) for s in (-1, -20, -21, -1000, 0, 1, 25)] == [20, 1, 1, 1, 21, 1, 25]
    assert start_point(-1, 0) == 1


def test_by_time_plans():
    assert plan_subscribe_at(21, 0) == Plan(21, None)
    assert plan_multiread_at(5, 0, N) == Plan(5, 20)
    with pytest.raises(LogError) as err:
        plan_multiread_at(None, 0, N)
    assert err.value.code == 404


def test_cursor_delivers_due_records_and_finishes():
    sub = Subscription(1, LogName(b"\x01" * 32), SUBSCRIBE, Plan(11, 30), sink=None)
    assert sub.due(20) == 20 and not sub.finished
    for _ in range(10):
        sub.advance()
    assert sub.next == 21 and sub.due(20) < sub.next
    assert sub.due(35) == 30
    for _ in range(10):
        sub.advance()
    assert sub.finished


def test_table_tracks_ready_requests_per_log():
    table = SubscriptionTable()
    a, b = LogName(hashlib.sha256(b"a").digest()), LogName(hashlib.sha256(b"b").digest())
    sa = table.add(a, SUBSCRIBE, Plan(1, None), sink=None)
    sb = table.add(b, SUBSCRIBE, Plan(1, None), sink=None)
    assert {s.rid for s in table.wait_ready(0)} == {sa.rid, sb.rid}
    assert table.wait_ready(0) == []
    table.notify(a)
    assert table.wait_ready(0) == [sa]
    assert table.remove(sa.rid) is sa and sa.cancelled
    table.notify(a)
    assert table.wait_ready(0) == []
    assert table.remove(sa.rid) is None
    table.close()
    with pytest.raises(LogError) as err:
        table.add(a, SUBSCRIBE, Plan(1, None), sink=None)
    assert err.value.code == 503
