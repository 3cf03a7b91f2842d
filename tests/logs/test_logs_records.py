"""Records: encoding, the exact signed bytes, Ed25519 signatures and the hash chain."""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import struct

import nacl.signing
import pytest

from hoard.errors import LogError
from hoard.logs import LogName
from hoard.logs.records import ZERO_HASH, Datum, Signer, Verifier, signing_message, to_ns

NAME = LogName(hashlib.sha256(b"records").digest())


@pytest.fixture
def key() -> nacl.signing.SigningKey:
    return nacl.signing.SigningKey.generate()


def test_signed_bytes_are_name_recno_ts_data_prevhash():
    ts = 1_700_000_000 * 10**9 + 42
    prev = b"\xaa" * 32
    expected = NAME.raw + struct.pack(">Q", 7) + struct.pack(">qI", 1_700_000_000, 42) + b"payload" + prev
    assert signing_message(NAME, 7, ts, b"payload", prev) == expected


def test_signature_is_ed25519_over_the_signed_bytes(key):
    datum = Signer(key).sign(NAME, 1, 5, b"hello", ZERO_HASH)
    key.verify_key.verify(signing_message(NAME, 1, 5, b"hello", ZERO_HASH), datum.sig)
    Verifier(bytes(key.verify_key)).verify(NAME, datum)


@pytest.mark.parametrize("change", [
    {"recno": 2}, {"ts": 6}, {"data": b"hellO"}, {"prevhash": b"\x01" * 32}, {"sig": b"\x00" * 64}, {"sig": b""},
])
def test_any_change_breaks_the_signature_403(key, change):
    datum = dataclasses.replace(Signer(key).sign(NAME, 1, 5, b"hello", ZERO_HASH), **change)
    with pytest.raises(LogError) as err:
        Verifier(bytes(key.verify_key)).verify(NAME, datum)
    assert err.value.code == 403 and err.value.gdp_stat == "CRYPTO_SIGFAIL"


def test_another_logs_name_breaks_the_signature(key):
    datum = Signer(key).sign(NAME, 1, 5, b"hello", ZERO_HASH)
    with pytest.raises(LogError):
        Verifier(bytes(key.verify_key)).verify(LogName(b"\x05" * 32), datum)


def test_another_key_does_not_verify(key):
    datum = Signer(key).sign(NAME, 1, 5, b"hello", ZERO_HASH)
    with pytest.raises(LogError) as err:
        Verifier(bytes(nacl.signing.SigningKey.generate().verify_key)).verify(NAME, datum)
    assert err.value.code == 403


def test_encoding_round_trips_and_is_what_is_hashed(key):
    datum = Signer(key).sign(NAME, 3, -1_500_000_000, b"\x00data", b"\x07" * 32)  # ts before the epoch too
    raw = datum.encode()
    assert raw[0] == 1 and struct.unpack(">Q", raw[1:9]) == (3,)
    assert Datum.decode(raw) == datum
    assert datum.hash == hashlib.sha256(raw).digest()


def test_corrupt_encoding_is_500():
    with pytest.raises(LogError) as err:
        Datum.decode(b"\x01\x00")
    assert err.value.code == 500


def test_timestamp_arguments():
    assert to_ns(5) == 5
    assert to_ns(1.5) == 1_500_000_000
    assert to_ns(dt.datetime(1970, 1, 1, 0, 0, 1, 7, tzinfo=dt.UTC)) == 1_000_007_000
    assert to_ns(dt.datetime(1970, 1, 1, 0, 0, 2)) == 2_000_000_000  # naive = UTC
    with pytest.raises(LogError):
        to_ns("yesterday")  # type: ignore[arg-type]
