"""Remote logs over `/hoard/logs/1`: two started nodes in this process (A hosts, B opens).

The same semantics as a local log: numbering, signing at the writer, verification at the host
and at the reader, subscribe and multiread plans, events, and EVENT_SHUTDOWN when the stream
to the host ends. Real node processes are in test_logs_node_processes.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest

import hoard
from hoard import EVENT_CREATED, EVENT_DATA, EVENT_EOS, EVENT_FAILURE, EVENT_SHUTDOWN
from hoard.errors import LogError
from hoard.logs.metadata import Metadata
from hoard.logs.remote import RemoteLogBackend, check_binding, provider_key
from hoard.logs.wire import INITIAL_CREDIT, MAX_RECORD_DATA

pytestmark = pytest.mark.timeout(180)


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    root = tmp_path_factory.mktemp("pair")
    config = {"listen-addrs": ["/ip4/127.0.0.1/tcp/0"]}
    a = hoard.Node({"data-dir": str(root / "a"), **config})
    b = hoard.Node({"data-dir": str(root / "b"), **config})
    try:
        a.start()
        b.start()
        b.connect(a.peer_id(), list(a.debug().addrs))
        yield a, b
    finally:
        b.close()
        a.close()


def key_of(node, log):
    return str(Path(node.repo()) / "keys" / f"{log.name}.pem")


def hosted(a, n=0, **metadata):
    log = a.logs.create(metadata or None)
    for i in range(1, n + 1):
        log.append(b"r%d" % i)
    return log


def test_open_read_and_append_from_another_node(pair):
    a, b = pair
    log = hosted(a, 2, SYN="remote")
    remote = b.logs.open(str(log.name), "ra", signing_key=key_of(a, log))
    assert isinstance(remote.backend, RemoteLogBackend)
    assert remote.metadata == log.metadata and remote.public_key == log.public_key and remote.nrecs == 2
    assert remote.read_by_recno(-1).data == b"r2"
    assert remote.read_by_ts(log.read_by_recno(2).ts).recno == 2
    third = remote.append(b"from b")  # signed at B, verified and committed at A
    assert third.recno == 3 and third.prevhash == log.read_by_recno(2).hash
    assert log.read_by_recno(3) == third
    assert b.logs.list() == []  # B hosts nothing
    reader = b.logs.open(str(log.name), "ro")
    with pytest.raises(LogError) as err:
        reader.append(b"x")
    assert err.value.code == 403


def test_pipelined_appends_and_their_events(pair, collector):
    a, b = pair
    log = hosted(a)
    remote = b.logs.open(str(log.name), "ao", signing_key=key_of(a, log))
    for i in range(500):
        remote.append_async(b"p%d" % i, collector, udata=i)
    events = collector.wait_for(500)
    assert all(e.type == EVENT_CREATED for e in events)
    assert sorted(e.datum.recno for e in events) == list(range(1, 501))
    assert log.nrecs == 500 and log.read_by_recno(500).data == b"p499"


def test_remote_subscribe_and_multiread_follow_the_gdp_tables(pair, collector):
    a, b = pair
    log = hosted(a, 20)
    remote = b.logs.open(str(log.name), "ro")
    remote.multiread(-10, 10, collector, udata="m")
    got = collector.wait_for(11)
    assert [e.datum.recno for e in got[:10]] == list(range(11, 21)) and got[10].type == EVENT_EOS
    remote.subscribe_by_recno(-10, 20, collector, udata="s")  # 11-20 now, then 21-30 as appended
    got = collector.wait_for(21)[11:]
    assert [e.datum.recno for e in got] == list(range(11, 21))
    for i in range(21, 31):
        log.append(b"r%d" % i)
    got = collector.wait_for(32)[21:]
    assert [e.datum.recno for e in got[:10]] == list(range(21, 31)) and got[10].type == EVENT_EOS
    assert all(e.udata == "s" for e in got)
    with pytest.raises(LogError) as err:
        remote.subscribe_by_recno(1, -1, collector)
    assert err.value.code == 402
    with pytest.raises(LogError) as err:
        remote.multiread(40, 1, collector)
    assert err.value.code == 404
    with pytest.raises(LogError) as err:
        remote.read_by_recno(0)
    assert err.value.code == 404
    remote.subscribe_by_ts(log.read_by_recno(25).ts, 2, collector, udata="ts")  # by timestamp: 25, 26, EOS
    got = collector.wait_for(35)[32:]
    assert [(e.udata, e.datum and e.datum.recno) for e in got] == [("ts", 25), ("ts", 26), ("ts", None)]


def test_unsubscribe_stops_a_remote_subscription(pair, collector):
    a, b = pair
    log = hosted(a, 1)
    remote = b.logs.open(str(log.name), "ro")
    remote.subscribe_by_recno(1, 0, collector)
    assert collector.wait_for(1)[0].datum.recno == 1
    assert remote.unsubscribe() == 1
    log.append(b"after")
    remote.multiread(1, 0, collector)  # sent after UNSUBSCRIBE on the same stream
    got = collector.wait_for(4)[1:]
    assert [e.type for e in got] == [EVENT_DATA, EVENT_DATA, EVENT_EOS]
    assert collector.queue.empty()  # nothing from the unsubscribed request
    assert a.components.logs.service.host.active(log.name) == []  # the host ended it (in order, before the multiread)


def test_a_multiread_larger_than_the_flow_control_window_arrives_whole(pair, collector):
    a, b = pair
    log = hosted(a)
    big = b"x" * (64 << 10)
    for i in range(0, 3 * INITIAL_CREDIT // len(big), 16):
        batch = [big[:-8] + b"%08d" % j for j in range(i, i + 16)]
        for data in batch:
            log.append_async(data)
        log.flush()
    count = log.nrecs
    assert count * len(big) > 2 * INITIAL_CREDIT
    remote = b.logs.open(str(log.name), "ro")
    remote.multiread(1, 0, collector)
    got = collector.wait_for(count + 1, timeout=120)
    assert [e.datum.recno for e in got[:count]] == list(range(1, count + 1))
    assert got[count - 1].datum.data.endswith(b"%08d" % (count - 1)) and got[count].type == EVENT_EOS


def test_records_over_the_wire_limit(pair, collector):
    a, b = pair
    log = hosted(a)
    log.append(b"y" * (MAX_RECORD_DATA + 1))  # fine locally: the limit is the wire's
    remote = b.logs.open(str(log.name), "ra", signing_key=key_of(a, log))
    remote.append_async(b"x" * (MAX_RECORD_DATA + 1), collector)
    event = collector.wait_for(1)[0]
    assert (event.type, event.stat) == (EVENT_FAILURE, 413)  # refused at the client, nothing sent
    assert remote.append(b"small").recno == 2  # the writer goes on from the host's chain
    with pytest.raises(LogError) as err:
        remote.read_by_recno(1)
    assert err.value.code == 413
    remote.multiread(1, 0, collector)
    got = collector.wait_for(4)[1:]
    assert [(e.type, e.stat) for e in got] == [(EVENT_FAILURE, 413), (EVENT_DATA, 205), (EVENT_EOS, 202)]
    assert remote.read_by_recno(2).data == b"small"  # the stream is still up


def test_unknown_logs_and_missing_keys(pair):
    a, b = pair
    with pytest.raises(LogError) as err:
        b.logs.open("nobody hosts this")
    assert err.value.code == 404
    log = hosted(a)
    with pytest.raises(LogError) as err:
        b.logs.open(str(log.name), "ra")  # B has no key for it
    assert (err.value.code, err.value.gdp_stat) == (403, "SKEY_REQUIRED")


def test_the_metadata_must_name_the_log():
    md = Metadata({"SYN": "x", "PUB": b"\x03\x04\x01\x00" + b"k" * 44})
    from hoard.logs.metadata import metadata_name
    from hoard.logs.names import parse_name

    check_binding(metadata_name(md), md)
    with pytest.raises(LogError) as err:
        check_binding(parse_name("another"), md)
    assert err.value.code == 502
    named = Metadata(md).add("XID", "the name")
    check_binding(parse_name("the name"), named)
    assert str(provider_key(parse_name("x"))) != str(provider_key(parse_name("y")))


def test_stopping_the_client_node_ends_its_remote_subscriptions(tmp_path, collector):
    config = {"listen-addrs": ["/ip4/127.0.0.1/tcp/0"]}
    with hoard.Node({"data-dir": str(tmp_path / "a"), **config}) as a, \
            hoard.Node({"data-dir": str(tmp_path / "b"), **config}) as b:
        a.start()
        b.start()
        b.connect(a.peer_id(), list(a.debug().addrs))
        log = hosted(a, 1)
        remote = b.logs.open(str(log.name), "ro")
        remote.subscribe_by_recno(1, 0, collector)
        assert collector.wait_for(1)[0].datum.recno == 1
        a.close()  # the host goes away
        shutdown = collector.wait_for(2)[1]
        assert (shutdown.type, shutdown.stat) == (EVENT_SHUTDOWN, 515)
        with pytest.raises(LogError) as err:
            remote.read_by_recno(1)
        assert err.value.code == 503


def test_requests_made_back_to_back_on_one_remote_handle(pair, collector):
    """Each multiread ends (on the stream's thread) while the next is being made on the same
    handle: making a request must not hold a lock that ending one needs."""
    a, b = pair
    log = hosted(a, 3)
    remote = b.logs.open(str(log.name), "ro")
    for i in range(50):
        remote.multiread(1, 0, collector, udata=i)
    got = collector.wait_for(200)
    assert [e.udata for e in got if e.type == EVENT_EOS] == list(range(50))
