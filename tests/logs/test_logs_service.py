"""LogService and Log: create/open, modes and keys, reads, async events, filters,
unsubscribe, shutdown, tampering and persistence."""

from __future__ import annotations

import stat
import threading
from pathlib import Path

import nacl.signing
import pytest
from _logs_kit import Collector, TickClock, next_event
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from hoard.errors import LogError, StateError
from hoard.logs import (
    CID,
    CTM,
    EVENT_CREATED,
    EVENT_DATA,
    EVENT_EOS,
    EVENT_FAILURE,
    EVENT_MISSING,
    EVENT_SHUTDOWN,
    PUB,
    XID,
    Datum,
    LogName,
    LogService,
    parse_name,
)
from hoard.logs.metadata import decode_pub, metadata_name, parse_ctm
from hoard.logs.store import TABLE_RECORDS
from hoard.store import Batch, open_blockstore


def status(call) -> LogError:
    with pytest.raises(LogError) as err:
        call()
    return err.value


# -- create ------------------------------------------------------------------------------
def test_create_names_the_log_by_its_metadata_and_adds_ctm_cid_pub(service, keydir):
    log = service.log_create({"SYN": "text/plain"})
    md = log.metadata
    assert [entry_id for entry_id, _ in md] == [0x0053594E, CTM, CID, PUB]
    assert log.name == metadata_name(md)
    assert parse_ctm(md.get(CTM)) > 0
    assert b"@" in md.get(CID)
    assert decode_pub(md.get(PUB)) == log.public_key
    assert log.nrecs == 0 and log.mode == "ra"
    assert len(str(log.name)) == 43


def test_create_keeps_the_writer_key_in_keydir_mode_0600(service, keydir):
    log = service.log_create()
    path = keydir / f"{log.name}.pem"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")
    assert [p.name for p in keydir.iterdir()] == [path.name]  # no temporary file left


def test_create_under_a_name_adds_xid_and_409_when_it_exists(service, keydir):
    log = service.log_create(name="sensors/kitchen")
    assert log.name == parse_name("sensors/kitchen")
    assert log.metadata.get(XID) == b"sensors/kitchen"
    assert status(lambda: service.log_create(name="sensors/kitchen")).code == 409
    assert len(list(keydir.iterdir())) == 1  # the refused create left no key behind


def test_create_refuses_a_caller_pub_400(service):
    assert status(lambda: service.log_create({PUB: b"mine"})).code == 400


# -- open, modes, keys ---------------------------------------------------------------------
def test_open_unknown_log_is_404(service):
    assert status(lambda: service.log_open("no such log")).code == 404


def test_open_with_a_bad_mode_is_400(service, log20):
    assert status(lambda: service.log_open(log20.name, "rw")).code == 400


def test_open_the_zero_name_is_400(service):
    assert status(lambda: service.log_open(LogName(bytes(32)), "ro")).code == 400


def test_ro_handle_refuses_appends_403_readonly(service, log20):
    ro = service.log_open(str(log20.name), "ro")
    err = status(lambda: ro.append(b"x"))
    assert (err.code, err.gdp_stat) == (403, "READONLY")
    assert status(lambda: ro.append_async(b"x")).code == 403
    assert ro.read_by_recno(-1).data == b"r20"


def test_ao_handle_refuses_reads_403(service, log20):
    ao = service.log_open(log20.name, "ao")
    assert ao.append(b"r21").recno == 21
    assert status(lambda: ao.read_by_recno(1)).code == 403
    assert status(lambda: ao.subscribe_by_recno(1, 0)).code == 403


def test_opening_for_append_without_the_key_is_403_skey_required(blockstore, log20, tmp_path):
    with LogService(blockstore, tmp_path / "empty") as other:
        err = status(lambda: other.log_open(log20.name, "ra"))
        assert (err.code, err.gdp_stat) == (403, "SKEY_REQUIRED")
        assert other.log_open(log20.name, "ro").read_by_recno(1).data == b"r1"


def test_opening_with_the_wrong_key_is_403(service, log20):
    err = status(lambda: service.log_open(log20.name, "ra", signing_key=nacl.signing.SigningKey.generate()))
    assert err.code == 403


@pytest.mark.parametrize("form", ["nacl", "cryptography", "seed", "pem", "path"])
def test_the_signing_key_can_be_given_at_open(blockstore, tmp_path, form):
    with LogService(blockstore, tmp_path / "a") as creator:
        name = creator.log_create().name
    path = tmp_path / "a" / f"{name}.pem"
    pem = path.read_bytes()
    from hoard.logs.keys import coerce_signing_key
    nkey = coerce_signing_key(pem)
    given = {"nacl": nkey, "cryptography": Ed25519PrivateKey.from_private_bytes(bytes(nkey)),
             "seed": bytes(nkey), "pem": pem, "path": path}[form]
    with LogService(blockstore, tmp_path / "b") as writer:
        log = writer.log_open(name, "ao", signing_key=given)
        assert log.append(b"one").recno == 1


# -- reads ----------------------------------------------------------------------------------
def test_read_by_recno_counts_back_and_404s(log20):
    assert log20.read_by_recno(1).data == b"r1"
    assert log20.read_by_recno(-1).recno == 20
    assert log20.read_by_recno(-20).recno == 1
    assert log20.read_by_recno(-100).recno == 1
    for recno in (0, 21, 1000):
        err = status(lambda recno=recno: log20.read_by_recno(recno))
        assert err.code == 404


def test_read_by_ts_is_first_at_or_after(log20):
    ts = [log20.read_by_recno(r).ts for r in range(1, 21)]
    assert ts == sorted(ts)
    assert log20.read_by_ts(ts[6]).recno == 7
    assert log20.read_by_ts(ts[6] + 1).recno == 8
    assert log20.read_by_ts(0).recno == 1
    assert log20.read_by_ts(ts[6] / 1e9).recno <= 8  # float seconds are accepted
    assert status(lambda: log20.read_by_ts(ts[-1] + 1)).code == 404


def test_datum_fields(log20):
    d1, d2 = log20.read_by_recno(1), log20.read_by_recno(2)
    assert isinstance(d1, Datum) and len(d1.sig) == 64
    assert d2.prevhash == d1.hash and d1.prevhash == bytes(32)


def test_read_async_delivers_exactly_one_event(service, log20):
    log20.read_async(3, udata="a")
    log20.read_async(99, udata="b")
    first, second = next_event(service, log20), next_event(service, log20)
    assert (first.type, first.datum.data, first.udata, first.stat) == (EVENT_DATA, b"r3", "a", 205)
    assert (second.type, second.datum, second.udata, second.stat) == (EVENT_FAILURE, None, "b", 404)
    assert second.error.code == 404


# -- appends ----------------------------------------------------------------------------------
def test_append_returns_the_committed_record(log20):
    datum = log20.append(b"r21")
    assert (datum.recno, datum.data) == (21, b"r21")
    assert datum.ts >= log20.read_by_recno(20).ts
    assert log20.read_by_recno(21) == datum


def test_append_rejects_non_bytes_400(log20):
    assert status(lambda: log20.append("text")).code == 400


def test_append_async_reports_created_events_in_order(service, log20):
    collector = Collector()
    for i in range(21, 31):
        log20.append_async(b"r%d" % i, collector, udata=i)
    events = collector.wait_for(10)
    assert [(e.type, e.stat, e.udata, e.datum.recno) for e in events] == [
        (EVENT_CREATED, 201, i, i) for i in range(21, 31)]
    assert collector.threads == {"hoard-logs-callbacks"}
    log20.append_async(b"r31", udata="q")
    event = next_event(service, log20)
    assert (event.type, event.datum.recno, event.udata) == (EVENT_CREATED, 31, "q")


def test_a_refused_append_fails_and_the_writer_resynchronises(blockstore, keydir):
    """A host that sees a corrupted record in transit refuses it; records queued behind it
    were built on it and are refused too; the writer then continues from the host's chain."""
    with LogService(blockstore, keydir, clock=TickClock()) as hosting:
        name = hosting.log_create().name
        real = hosting.host
        corrupt = {5}

        class Corrupting:  # a faulty link between the client and the real host
            def __getattr__(self, item):
                return getattr(real, item)

            def append(self, name, datum, done):
                if datum.recno in corrupt:
                    corrupt.discard(datum.recno)
                    datum = Datum(datum.recno, datum.ts, b"corrupted", datum.sig, datum.prevhash)
                real.append(name, datum, done)

        client_store = open_blockstore("memory://")  # the client holds no copy: it writes through the link
        with LogService(client_store, keydir, clock=TickClock(), remote=lambda _name: Corrupting()) as service:
            log = service.log_open(str(name), "ra")
            assert isinstance(log.backend, Corrupting)
            collector = Collector()
            for i in range(10):
                log.append_async(b"d%d" % i, collector, udata=i)
            events = collector.wait_for(10)
            created = [e for e in events if e.type == EVENT_CREATED]
            failed = [e for e in events if e.type == EVENT_FAILURE]
            assert [e.udata for e in created[:4]] == [0, 1, 2, 3]
            assert failed and failed[0].udata == 4 and failed[0].stat == 403
            assert all(e.stat in (403, 409) for e in failed)
            assert log.append(b"after").recno == len(created) + 1
            stored = [log.read_by_recno(r).data for r in range(1, log.nrecs + 1)]
            assert stored == [e.datum.data for e in created] + [b"after"]
        client_store.close()


def test_append_filter_runs_before_signing_with_the_recno_assigned(log20):
    seen = []

    def encrypt(datum: Datum):
        seen.append(datum.recno)
        return b"enc:" + datum.data

    log20.set_append_filter(encrypt)
    assert log20.append(b"secret").data == b"enc:secret"
    assert seen == [21]
    assert log20.read_by_recno(21).data == b"enc:secret"  # stored and signed as filtered


def test_read_filter_applies_to_reads_and_events(service, log20):
    log20.set_read_filter(lambda d: d.data.upper())
    assert log20.read_by_recno(1).data == b"R1"
    collector = Collector()
    log20.multiread(1, 2, collector)
    events = collector.wait_for(3)
    assert [e.datum.data for e in events[:2]] == [b"R1", b"R2"] and events[2].type == EVENT_EOS
    log20.set_read_filter(lambda d: None)  # None: unchanged
    assert log20.read_by_recno(1).data == b"r1"


# -- events and unsubscribe --------------------------------------------------------------------
def test_event_next_can_pick_one_logs_events(service, log20):
    other = service.log_create()
    other.append(b"o1")
    log20.multiread(1, 1)
    other.multiread(1, 1)
    assert next_event(service, other).datum.data == b"o1"
    assert next_event(service, log20).datum.data == b"r1"


def test_event_next_times_out_with_none(service):
    assert service.event_next(timeout=0) is None
    assert service.event_next(timeout=0.01) is None


def test_callbacks_and_the_queue_are_exclusive_per_request(service, log20):
    collector = Collector()
    log20.multiread(1, 2, collector)
    log20.multiread(3, 1)
    assert [e.datum.recno for e in collector.wait_for(3)[:2]] == [1, 2]
    assert next_event(service, log20).datum.recno == 3
    assert next_event(service, log20).type == EVENT_EOS
    assert service.event_next(log20, timeout=0) is None
    assert all(e.log is log20 for e in collector.events)


def test_unsubscribe_matches_callback_and_udata_with_none_as_wildcard(service, log20):
    a, b = Collector(), Collector()
    log20.subscribe_by_recno(0, 0, a, udata=1)
    log20.subscribe_by_recno(0, 0, a, udata=2)
    log20.subscribe_by_recno(0, 0, b, udata=1)
    log20.subscribe_by_recno(0, 0, b, udata=3)
    assert log20.unsubscribe(a, 2) == 1
    assert log20.unsubscribe(None, 1) == 2  # a/1 and b/1
    assert log20.unsubscribe(a, None) == 0
    log20.append(b"r21")
    assert [e.udata for e in b.wait_for(1)] == [3]
    assert a.events == []
    assert log20.unsubscribe() == 1
    assert service.host.active(log20.name) == []


def test_unsubscribe_ends_a_multiread_without_eos(service, log20):
    collector = Collector()
    log20.multiread(1, 0, collector)
    log20.unsubscribe(collector)
    events = list(collector.events)
    assert all(e.type == EVENT_DATA for e in events)  # whatever came before, no EOS after
    assert service.host.active() == []


def test_closing_the_service_ends_subscriptions_with_shutdown(blockstore, keydir):
    service = LogService(blockstore, keydir)
    log = service.log_create()
    collector = Collector()
    log.subscribe_by_recno(0, 0, collector, udata="cb")
    log.subscribe_by_recno(0, 0, udata="q")
    service.close()
    (event,) = collector.events
    assert (event.type, event.stat, event.udata) == (EVENT_SHUTDOWN, 515, "cb")
    queued = service.event_next(timeout=1)
    assert (queued.type, queued.stat, queued.udata) == (EVENT_SHUTDOWN, 515, "q")
    assert service.event_next() is None  # closed and empty: does not block
    with pytest.raises(StateError):
        log.append(b"x")
    with pytest.raises(StateError):
        service.log_create()


def test_close_acknowledges_queued_appends(blockstore, keydir):
    service = LogService(blockstore, keydir)
    log = service.log_create()
    collector = Collector()
    for i in range(100):
        log.append_async(b"%d" % i, collector)
    service.close()
    assert [e.type for e in collector.events] == [EVENT_CREATED] * 100


def test_a_closed_handle_refuses_calls_and_its_subscriptions_end(service, log20):
    log20.subscribe_by_recno(0, 0)
    log20.close()
    assert service.host.active() == []
    with pytest.raises(StateError):
        log20.read_by_recno(1)
    log20.close()  # idempotent


# -- integrity and persistence -----------------------------------------------------------------
def _tamper(store, name: LogName, recno: int) -> None:
    key = name.raw + recno.to_bytes(8, "big")
    raw = bytearray(store.meta_get(TABLE_RECORDS, key))
    raw[-1] ^= 0x20
    store.commit(Batch().meta_put(TABLE_RECORDS, key, bytes(raw)))


def test_a_tampered_record_is_detected_on_read_and_in_multiread(blockstore, keydir):
    with LogService(blockstore, keydir) as service:
        log = service.log_create()
        for i in range(1, 6):
            log.append(b"r%d" % i)
        name = log.name
        _tamper(blockstore, name, 3)
        err = status(lambda: log.read_by_recno(3))
        assert (err.code, err.gdp_stat) == (403, "CRYPTO_SIGFAIL")
    with LogService(blockstore, keydir) as service:  # fresh host: nothing cached in memory
        log = service.log_open(name, "ro")
        log.multiread(1, 0)
        events = [next_event(service, log) for _ in range(6)]
        assert [(e.type, e.datum.recno if e.datum else None) for e in events] == [
            (EVENT_DATA, 1), (EVENT_DATA, 2), (EVENT_FAILURE, None), (EVENT_DATA, 4), (EVENT_DATA, 5),
            (EVENT_EOS, None)]
        assert events[2].stat == 403


def test_a_re_signed_record_is_detected_as_a_fork_by_the_next_one(blockstore, keydir):
    """A record replaced by another validly signed one (what a forked replica holds) verifies
    alone, but the next record's prevhash no longer matches it."""
    from hoard.logs.keys import find_key
    from hoard.logs.records import Signer
    with LogService(blockstore, keydir) as service:
        log = service.log_create()
        for i in range(1, 6):
            log.append(b"r%d" % i)
        name, old3, r2 = log.name, log.read_by_recno(3), log.read_by_recno(2)
    forged = Signer(find_key(keydir, name)).sign(name, 3, old3.ts, b"other", r2.hash)
    blockstore.commit(Batch().meta_put(TABLE_RECORDS, name.raw + (3).to_bytes(8, "big"), forged.encode()))
    with LogService(blockstore, keydir) as service:
        log = service.log_open(name, "ro")
        assert log.read_by_recno(3).data == b"other"  # a valid record on its own
        log.multiread(1, 0)
        events = [next_event(service, log) for _ in range(6)]
        assert [(e.type, e.stat) for e in events] == [
            (EVENT_DATA, 205), (EVENT_DATA, 205), (EVENT_DATA, 205), (EVENT_FAILURE, 409), (EVENT_DATA, 205),
            (EVENT_EOS, 202)]
        assert events[3].error.gdp_stat == "CHAIN_MISMATCH"


def test_a_missing_record_gives_event_missing(blockstore, keydir):
    with LogService(blockstore, keydir) as service:
        log = service.log_create()
        for i in range(1, 4):
            log.append(b"r%d" % i)
        name = log.name
    blockstore.commit(Batch().meta_delete(TABLE_RECORDS, name.raw + (2).to_bytes(8, "big")))
    with LogService(blockstore, keydir) as service:
        log = service.log_open(name, "ro")
        assert status(lambda: log.read_by_recno(2)).code == 404
        log.multiread(1, 0)
        events = [next_event(service, log) for _ in range(4)]
        assert [(e.type, e.stat) for e in events] == [(EVENT_DATA, 205), (EVENT_MISSING, 430), (EVENT_DATA, 205),
                                                      (EVENT_EOS, 202)]


def test_logs_persist_across_reopen_of_an_lmdb_store(tmp_path: Path):
    path, keydir = str(tmp_path / "store"), tmp_path / "keys"
    store = open_blockstore(path)
    with LogService(store, keydir) as service:
        log = service.log_create(name="persistent")
        for i in range(1, 6):
            log.append(b"r%d" % i)
        last = log.read_by_recno(-1)
    store.close()

    store = open_blockstore(path)
    with LogService(store, keydir) as service:
        log = service.log_open("persistent")  # finds its key in keydir
        assert log.nrecs == 5 and log.read_by_recno(-1) == last
        assert log.append(b"r6").prevhash == last.hash
        assert [log.read_by_recno(r).data for r in range(1, 7)] == [b"r%d" % i for i in range(1, 7)]
    store.close()


def test_many_threads_append_densely(service):
    log = service.log_create()
    collector = Collector()
    log.subscribe_by_recno(1, 0, collector)

    def work(t: int) -> None:
        for i in range(50):
            if i % 2:
                log.append(b"%d-%d" % (t, i))
            else:
                log.append_async(b"%d-%d" % (t, i))

    threads = [threading.Thread(target=work, args=(t,)) for t in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert log.flush(30)
    assert log.nrecs == 200
    datas = [log.read_by_recno(r).data for r in range(1, 201)]
    assert sorted(datas) == sorted(b"%d-%d" % (t, i) for t in range(4) for i in range(50))
    assert [e.datum.recno for e in collector.wait_for(200)] == list(range(1, 201))
    created = [next_event(service, log) for _ in range(100)]  # append_async without a callback: the queue
    assert {e.type for e in created} == {EVENT_CREATED}


def test_no_gaps_or_duplicates_while_records_arrive_during_replay(service):
    log = service.log_create()
    for i in range(500):
        log.append_async(b"%d" % i)
    log.flush(30)
    collector = Collector()
    writer = threading.Thread(target=lambda: [log.append(b"live%d" % i) for i in range(300)])
    writer.start()
    log.subscribe_by_recno(1, 0, collector)
    writer.join(60)
    events = collector.wait_for(800)
    assert [e.datum.recno for e in events] == list(range(1, 801))
    assert [e.datum for e in events] == [log.read_by_recno(r) for r in range(1, 801)]
