"""LogStore: persistence in BlockStore tables and the hosting-side checks of cmd_append."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import nacl.signing
import pytest

from hoard.errors import LogError
from hoard.logs import LogName, LogStore, Metadata, parse_name
from hoard.logs.metadata import CID, PUB, encode_pub
from hoard.logs.records import ZERO_HASH, Datum, Signer
from hoard.logs.store import TABLE_RECORDS
from hoard.store import Batch, MemoryBlockStore, open_blockstore

NAME = parse_name("store-test-log")
T0 = 1_700_000_000 * 10**9


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> int:
        return self.now


@pytest.fixture
def key() -> nacl.signing.SigningKey:
    return nacl.signing.SigningKey.generate()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def logs(blockstore, key, clock) -> LogStore:
    store = LogStore(blockstore, clock=clock)
    store.create(NAME, Metadata({CID: "t@h", PUB: encode_pub(bytes(key.verify_key))}))
    return store


class Writer:
    """Builds a valid chain of records for NAME."""

    def __init__(self, key: nacl.signing.SigningKey) -> None:
        self.signer = Signer(key)
        self.recno, self.prev, self.ts = 0, ZERO_HASH, T0

    def next(self, data: bytes = b"x", ts_step: int = 1000) -> Datum:
        self.recno += 1
        self.ts += ts_step
        datum = self.signer.sign(NAME, self.recno, self.ts, data, self.prev)
        self.prev = datum.hash
        return datum


def fill(logs: LogStore, key, count: int, ts_step: int = 1000) -> Writer:
    writer = Writer(key)
    for i in range(1, count + 1):
        logs.append(NAME, writer.next(b"r%d" % i, ts_step))
    return writer


def status(call) -> int:
    with pytest.raises(LogError) as err:
        call()
    return err.value.code


def test_create_and_info(logs, key):
    info = logs.info(NAME)
    assert info.nrecs == 0 and info.public_key == bytes(key.verify_key)
    assert logs.names() == [NAME]


def test_create_twice_is_409(logs, key):
    assert status(lambda: logs.create(NAME, Metadata({PUB: encode_pub(bytes(key.verify_key))}))) == 409


def test_create_without_pub_is_400(blockstore):
    assert status(lambda: LogStore(blockstore).create(parse_name("other"), Metadata({CID: "a@b"}))) == 400


def test_unknown_log_is_404(logs):
    other = parse_name("nope")
    assert status(lambda: logs.info(other)) == 404
    assert status(lambda: logs.read(other, 1)) == 404


def test_appends_number_densely_from_1(logs, key):
    fill(logs, key, 3)
    assert logs.nrecs(NAME) == 3
    assert [logs.read(NAME, r).data for r in (1, 2, 3)] == [b"r1", b"r2", b"r3"]
    assert logs.read(NAME, 2).prevhash == logs.read(NAME, 1).hash


def test_existing_recno_is_409(logs, key):
    writer = fill(logs, key, 3)
    dup = Signer(key).sign(NAME, 2, writer.ts + 1, b"again", logs.read(NAME, 1).hash)
    with pytest.raises(LogError) as err:
        logs.append(NAME, dup)
    assert err.value.code == 409 and err.value.gdp_stat == "RECORD_DUPLICATED"


@pytest.mark.parametrize("recno", [5, 0, -1])
def test_recno_out_of_sequence_is_403(logs, key, recno):
    writer = fill(logs, key, 3)
    if recno >= 0:
        bad = Signer(key).sign(NAME, recno, writer.ts + 1, b"gap", writer.prev)
    else:  # cannot be signed (recno is a u64 in the signed bytes)
        bad = Datum(recno, writer.ts + 1, b"gap", bytes(64), writer.prev)
    with pytest.raises(LogError) as err:
        logs.append(NAME, bad)
    assert err.value.code == 403 and err.value.gdp_stat == "RECNO_SEQ_ERROR"


def test_bad_signature_is_403(logs, key):
    writer = Writer(key)
    datum = dataclasses.replace(writer.next(b"signed"), data=b"tampered")
    with pytest.raises(LogError) as err:
        logs.append(NAME, datum)
    assert err.value.code == 403 and err.value.gdp_stat == "CRYPTO_SIGFAIL"


def test_signed_by_another_key_is_403(logs):
    datum = Writer(nacl.signing.SigningKey.generate()).next()
    assert status(lambda: logs.append(NAME, datum)) == 403


def test_sequence_is_checked_before_the_signature_as_gdp_does(logs, key):
    fill(logs, key, 2)
    dup = dataclasses.replace(Writer(key).next(), sig=bytes(64))  # recno 1 again, and unsigned
    assert status(lambda: logs.append(NAME, dup)) == 409


def test_wrong_prevhash_is_a_fork_409(logs, key):
    writer = fill(logs, key, 2)
    fork = Signer(key).sign(NAME, 3, writer.ts + 1, b"fork", b"\x13" * 32)
    with pytest.raises(LogError) as err:
        logs.append(NAME, fork)
    assert err.value.code == 409 and err.value.gdp_stat == "CHAIN_MISMATCH"


def test_timestamp_going_backwards_is_400(logs, key):
    writer = fill(logs, key, 2)
    back = Signer(key).sign(NAME, 3, writer.ts - 1, b"old", writer.prev)
    assert status(lambda: logs.append(NAME, back)) == 400


def test_timestamp_far_in_the_future_is_400(logs, key, clock):
    future = Signer(key).sign(NAME, 1, clock.now + 31 * 10**9, b"later", ZERO_HASH)
    assert status(lambda: logs.append(NAME, future)) == 400


def test_a_refused_append_changes_nothing(logs, key):
    writer = fill(logs, key, 2)
    tail = logs.tail(NAME)
    with pytest.raises(LogError):
        logs.append(NAME, Signer(key).sign(NAME, 3, writer.ts + 1, b"x", b"\x00" * 31 + b"\x01"))
    assert logs.tail(NAME) == tail
    assert logs.get(NAME, 3) is None


def test_append_many_commits_the_good_records_once_and_durably(key, clock):
    class Spy(MemoryBlockStore):
        def __init__(self) -> None:
            super().__init__()
            self.commits: list[bool] = []

        def commit(self, batch: Batch, durable: bool = False) -> None:
            self.commits.append(durable)
            super().commit(batch, durable)

    spy = Spy()
    logs = LogStore(spy, clock=clock)
    logs.create(NAME, Metadata({PUB: encode_pub(bytes(key.verify_key))}))
    writer = Writer(key)
    records = [writer.next(b"%d" % i) for i in range(5)]
    bad = dataclasses.replace(records[4], data=b"tampered")
    spy.commits.clear()
    results = logs.append_many([(NAME, d) for d in records[:4]] + [(NAME, bad), (NAME, records[1])])
    assert results[:4] == records[:4]
    assert [r.code for r in results[4:]] == [403, 409]
    assert spy.commits == [True]
    assert logs.nrecs(NAME) == 4


def test_read_counts_back_from_the_end(logs, key):
    fill(logs, key, 20)
    assert logs.read(NAME, -1).recno == 20
    assert logs.read(NAME, -20).recno == 1
    assert logs.read(NAME, -25).recno == 1  # clamped
    assert status(lambda: logs.read(NAME, 0)) == 404  # 0 → nrecs + 1
    assert status(lambda: logs.read(NAME, 21)) == 404


def test_reading_an_empty_log_is_404(logs):
    assert status(lambda: logs.read(NAME, -1)) == 404
    assert status(lambda: logs.read(NAME, 1)) == 404


def test_read_by_ts_is_the_first_record_at_or_after(logs, key):
    fill(logs, key, 20, ts_step=1000)  # record r stamped T0 + 1000 r
    assert logs.read_by_ts(NAME, T0 + 5000).recno == 5
    assert logs.read_by_ts(NAME, T0 + 5001).recno == 6
    assert logs.read_by_ts(NAME, 0).recno == 1
    assert logs.read_by_ts(NAME, T0 + 20000).recno == 20
    assert status(lambda: logs.read_by_ts(NAME, T0 + 20001)) == 404


def test_read_by_ts_with_equal_timestamps_gives_the_lowest_recno(logs, key):
    writer = Writer(key)
    for step in (1000, 0, 0, 1000):
        logs.append(NAME, writer.next(ts_step=step))
    assert logs.read_by_ts(NAME, T0 + 1000).recno == 1
    assert logs.read_by_ts(NAME, T0 + 1001).recno == 4


def test_a_tampered_stored_record_fails_verification_on_read(logs, key, blockstore):
    fill(logs, key, 3)
    key2 = NAME.raw + (2).to_bytes(8, "big")
    raw = bytearray(blockstore.meta_get(TABLE_RECORDS, key2))
    raw[-1] ^= 0x01  # flip a bit of the data
    blockstore.commit(Batch().meta_put(TABLE_RECORDS, key2, bytes(raw)))
    with pytest.raises(LogError) as err:
        logs.read(NAME, 2)
    assert err.value.code == 403 and err.value.gdp_stat == "CRYPTO_SIGFAIL"
    assert logs.read(NAME, 2, verify=False).data == b"r3"  # b"r2" with its last bit flipped
    assert logs.read(NAME, 3).recno == 3


def test_logs_persist_across_reopen(tmp_path: Path, key, clock):
    path = str(tmp_path / "persist")
    store = open_blockstore(path)
    logs = LogStore(store, clock=clock)
    logs.create(NAME, Metadata({PUB: encode_pub(bytes(key.verify_key))}))
    writer = fill(logs, key, 5)
    store.close()

    store = open_blockstore(path)
    logs = LogStore(store, clock=clock)
    assert logs.nrecs(NAME) == 5 and logs.tail(NAME).last_hash == writer.prev
    logs.append(NAME, writer.next(b"r6"))
    assert [logs.read(NAME, r).data for r in range(1, 7)] == [b"r1", b"r2", b"r3", b"r4", b"r5", b"r6"]
    assert logs.names() == [NAME]
    store.close()


def test_names_are_log_names(logs):
    assert all(isinstance(n, LogName) for n in logs.names())
