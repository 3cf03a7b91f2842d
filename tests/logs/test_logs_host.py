"""LogHost as the remote protocol will drive it: appends with `done` callbacks, a RecordSink
per request, group commit, shutdown."""

from __future__ import annotations

import threading

import nacl.signing
import pytest
from _logs_kit import WAIT

from hoard.errors import LogError
from hoard.logs import EVENT_EOS, EVENT_SHUTDOWN, LogHost, Metadata, parse_name
from hoard.logs.metadata import PUB, encode_pub
from hoard.logs.records import ZERO_HASH, Datum, Signer
from hoard.logs.subscriptions import MULTIREAD, SUBSCRIBE

NAME = parse_name("host-test")


class ListSink:
    """A RecordSink that keeps what it is given."""

    def __init__(self) -> None:
        self.items: list[tuple] = []
        self.ended = threading.Event()
        self._cond = threading.Condition()

    def data(self, datum: Datum, trusted: bool) -> None:
        with self._cond:
            self.items.append(("data", datum.recno, trusted))
            self._cond.notify_all()

    def failure(self, recno: int, error: LogError) -> None:
        with self._cond:
            self.items.append(("failure", recno, error.code))
            self._cond.notify_all()

    def end(self, event_type: int, stat: int) -> None:
        with self._cond:
            self.items.append(("end", event_type, stat))
            self._cond.notify_all()
        self.ended.set()

    def wait_for(self, count: int) -> list[tuple]:
        with self._cond:
            assert self._cond.wait_for(lambda: len(self.items) >= count, WAIT)
            return list(self.items)


class Results:
    def __init__(self) -> None:
        self.got: list[tuple] = []
        self._cond = threading.Condition()

    def done(self, committed, error, tail) -> None:
        with self._cond:
            self.got.append((committed, error, tail))
            self._cond.notify_all()

    def wait_for(self, count: int) -> list[tuple]:
        with self._cond:
            assert self._cond.wait_for(lambda: len(self.got) >= count, WAIT)
            return list(self.got)


@pytest.fixture
def key() -> nacl.signing.SigningKey:
    return nacl.signing.SigningKey.generate()


@pytest.fixture
def host(blockstore, key):
    host = LogHost(blockstore)
    host.create(NAME, Metadata({PUB: encode_pub(bytes(key.verify_key))}))
    yield host
    host.close()


def chain(key, count: int, ts0: int = 1) -> list[Datum]:
    signer, prev, out = Signer(key), ZERO_HASH, []
    for i in range(1, count + 1):
        datum = signer.sign(NAME, i, ts0 + i, b"d%d" % i, prev)
        prev = datum.hash
        out.append(datum)
    return out


def test_queued_appends_are_committed_in_order_and_acknowledged(host, key):
    results = Results()
    records = chain(key, 300)
    for datum in records:
        host.append(NAME, datum, results.done)
    got = results.wait_for(300)
    assert [c for c, _, _ in got] == records and all(e is None for _, e, _ in got)
    assert host.nrecs(NAME) == 300
    assert host.read(NAME, -1) == records[-1]


def test_a_refusal_reports_the_hosts_chain_head(host, key):
    results = Results()
    good, bad = chain(key, 2)[0], chain(key, 2)[1]
    host.append(NAME, good, results.done)
    host.append(NAME, Datum(3, bad.ts, bad.data, bad.sig, bad.prevhash), results.done)  # a gap
    (_, error, tail) = results.wait_for(2)[1]
    assert error.code == 403 and tail.nrecs == 1 and tail.last_hash == good.hash


def test_append_to_an_unknown_log_is_404(host, key):
    results = Results()
    host.append(parse_name("unknown"), chain(key, 1)[0], results.done)
    (committed, error, tail) = results.wait_for(1)[0]
    assert committed is None and error.code == 404 and tail is None


def test_sink_gets_existing_then_live_records_then_end(host, key):
    records = chain(key, 5)
    results = Results()
    for datum in records[:3]:
        host.append(NAME, datum, results.done)
    results.wait_for(3)
    sink = ListSink()
    rid = host.subscribe(NAME, SUBSCRIBE, 1, 5, sink)
    assert sink.wait_for(3)[:3] == [("data", 1, True), ("data", 2, True), ("data", 3, True)]  # from memory
    for datum in records[3:]:
        host.append(NAME, datum, results.done)
    assert sink.wait_for(6)[3:] == [("data", 4, True), ("data", 5, True), ("end", EVENT_EOS, 202)]
    assert host.unsubscribe(rid) is False  # already ended


def test_records_read_back_from_disk_are_untrusted(blockstore, key):
    host = LogHost(blockstore, cache_bytes=0)
    host.create(NAME, Metadata({PUB: encode_pub(bytes(key.verify_key))}))
    results = Results()
    for datum in chain(key, 2):
        host.append(NAME, datum, results.done)
    results.wait_for(2)
    sink = ListSink()
    host.subscribe(NAME, MULTIREAD, 1, 0, sink)
    assert sink.wait_for(3) == [("data", 1, False), ("data", 2, False), ("end", EVENT_EOS, 202)]
    host.close()


def test_subscribe_errors_are_raised_before_anything_is_sent(host):
    sink = ListSink()
    with pytest.raises(LogError) as err:
        host.subscribe(NAME, SUBSCRIBE, 1, -1, sink)
    assert err.value.code == 402
    with pytest.raises(LogError) as err:
        host.subscribe(NAME, MULTIREAD, 1, 0, sink)  # empty log: start past the end
    assert err.value.code == 404
    with pytest.raises(LogError) as err:
        host.subscribe(parse_name("unknown"), SUBSCRIBE, 1, 0, sink)
    assert err.value.code == 404
    assert sink.items == []


def test_close_ends_requests_with_shutdown_and_refuses_appends(blockstore, key):
    host = LogHost(blockstore)
    host.create(NAME, Metadata({PUB: encode_pub(bytes(key.verify_key))}))
    sink = ListSink()
    host.subscribe(NAME, SUBSCRIBE, 0, 0, sink)
    host.close()
    assert sink.items == [("end", EVENT_SHUTDOWN, 515)]
    results = Results()
    host.append(NAME, chain(key, 1)[0], results.done)
    assert results.got[0][1].code == 503
    host.close()  # idempotent
