"""Logs through the node's API: `hoard.Node` and `hoard.AsyncNode` (issue 5)."""

from __future__ import annotations

import asyncio
import stat
from pathlib import Path

import pytest

import hoard
from hoard import (
    EVENT_CREATED,
    EVENT_DATA,
    EVENT_EOS,
    EVENT_SHUTDOWN,
    Log,
    LogName,
    parse_name,
)
from hoard.errors import LogError
from hoard.node.results import LogSummary

pytestmark = pytest.mark.timeout(120)


def test_create_append_read_and_the_key_in_the_data_dir(node, node_config):
    log = node.logs.create({"SYN": "text/plain"})
    assert isinstance(log, Log) and log.mode == "ra" and log.nrecs == 0
    key = Path(node.repo()) / "keys" / f"{log.name}.pem"
    assert key.is_file() and stat.S_IMODE(key.stat().st_mode) == 0o600
    assert log.metadata.get("SYN") == b"text/plain"
    first = log.append(b"one")
    assert (first.recno, first.data) == (1, b"one")
    log.append(b"two")
    assert log.read_by_recno(-1).data == b"two"
    assert log.read_by_ts(first.ts).recno == 1
    assert node.logs.list() == [LogSummary(log.name, 2)]
    reader = node.logs.open(str(log.name), "ro")
    assert reader.read_by_recno(1).data == b"one"
    with pytest.raises(LogError) as err:
        reader.append(b"x")
    assert err.value.code == 403


def test_subscribe_through_event_next_and_callbacks(node, collector):
    log = node.logs.create()
    for i in range(1, 4):
        log.append(b"r%d" % i)
    log.subscribe_by_recno(-1, 3)  # record 3 now, then 4 and 5 as they come, then EOS
    log.append(b"r4")
    log.append(b"r5")
    events = [node.logs.event_next(timeout=30) for _ in range(4)]
    assert [(e.type, e.datum and e.datum.recno) for e in events] == [
        (EVENT_DATA, 3), (EVENT_DATA, 4), (EVENT_DATA, 5), (EVENT_EOS, None)]
    assert node.logs.event_next(timeout=0) is None
    log.multiread(1, 0, collector)
    got = collector.wait_for(6)
    assert [e.datum.data for e in got[:5]] == [b"r1", b"r2", b"r3", b"r4", b"r5"] and got[5].type == EVENT_EOS
    log.append_async(b"r6", collector, udata="six")
    created = collector.wait_for(7)[6]
    assert (created.type, created.udata, created.datum.recno) == (EVENT_CREATED, "six", 6)


def test_the_event_queue_filters_by_log(node):
    a, b = node.logs.create(), node.logs.create({"SYN": "b"})
    a.append(b"a1")
    b.append(b"b1")
    a.multiread(1, 0)
    b.multiread(1, 0)
    assert node.logs.event_next(b, timeout=30).datum.data == b"b1"
    assert node.logs.event_next(a, timeout=30).datum.data == b"a1"


def test_logs_survive_a_restart_and_the_chain_goes_on(node_config):
    with hoard.Node(node_config()) as first:
        log = first.logs.create({"SYN": "text"}, "restart-test")
        written = [log.append(b"d%d" % i) for i in range(5)]
        name = str(log.name)
    assert name == str(parse_name("restart-test"))
    with hoard.Node(node_config()) as second:
        reopened = second.logs.open(name)  # "ra": the key comes from data-dir/keys
        assert reopened.nrecs == 5
        assert [reopened.read_by_recno(i).data for i in range(1, 6)] == [b"d%d" % i for i in range(5)]
        sixth = reopened.append(b"d5")
        assert sixth.recno == 6 and sixth.prevhash == written[-1].hash
        assert second.logs.list() == [LogSummary(hoard.parse_name(name), 6)]


def test_open_errors(node, tmp_path):
    with pytest.raises(LogError) as err:
        node.logs.open("no such log")
    assert err.value.code == 404
    log = node.logs.create()
    with pytest.raises(LogError) as err:
        node.logs.open(str(log.name), "xx")
    assert err.value.code == 400
    with pytest.raises(LogError) as err:
        node.logs.open(str(log.name), "ra", signing_key=bytes(32))  # another key
    assert err.value.code == 403
    (Path(node.repo()) / "keys" / f"{log.name}.pem").unlink()
    log.close()  # while a writable handle is open its key is cached (GDP's open info), no file needed
    with pytest.raises(LogError) as err:
        node.logs.open(str(log.name), "ao")
    assert (err.value.code, err.value.gdp_stat) == (403, "SKEY_REQUIRED")
    assert node.logs.open(str(log.name), "ro").nrecs == 0


def test_parse_name(node):
    name = node.logs.parse_name("a name")
    assert isinstance(name, LogName) and name == parse_name("a name")
    assert node.logs.parse_name(str(name)) == name


def test_closing_the_node_ends_subscriptions_with_shutdown(node_config, collector):
    with hoard.Node(node_config()) as n:
        log = n.logs.create()
        log.subscribe_by_recno(0, 0, collector)  # forever
        log.append(b"x")
        assert collector.wait_for(1)[0].type == EVENT_DATA
    last = collector.wait_for(2)[1]
    assert (last.type, last.stat) == (EVENT_SHUTDOWN, 515)


def test_async_node(node_config):
    async def main():
        async with hoard.AsyncNode(node_config("async")) as anode:
            log = await anode.logs.create()
            await asyncio.get_running_loop().run_in_executor(None, log.append, b"hello")
            log.multiread(1, 0)
            first = await anode.logs.event_next(log, 30)
            end = await anode.logs.event_next(log, 30)
            reopened = await anode.logs.open(str(log.name), "ro")
            listed = await anode.logs.list()
            return first, end, reopened.nrecs, listed

    first, end, nrecs, listed = asyncio.run(main())
    assert first.datum.data == b"hello" and end.type == EVENT_EOS
    assert nrecs == 1 and listed[0].nrecs == 1
