"""Metadata: GDP ids, GDP's exact serialization, the name derived from it, CTM/CID/PUB."""

from __future__ import annotations

import hashlib
import re
import struct

import nacl.signing
import pytest
from cryptography.hazmat.primitives import serialization

from hoard.errors import LogError
from hoard.logs import metadata as md
from hoard.logs.metadata import Metadata


def test_ids_are_gdps():
    assert (md.XID, md.PUB, md.CTM, md.XTM, md.CID, md.SYN, md.LOC) == (
        0x00584944, 0x00505542, 0x0043544D, 0x0058544D, 0x00434944, 0x0053594E, 0x004C4F43)
    assert md.mdid("XID") == md.XID and md.mdid("CTM") == md.CTM


def test_serialization_is_count_then_headers_then_data():
    m = Metadata().add(md.CID, "alice@example.org").add(md.CTM, b"T").add(0x41424344, b"")
    expected = (struct.pack(">H", 3)
                + struct.pack(">II", md.CID, 17) + struct.pack(">II", md.CTM, 1) + struct.pack(">II", 0x41424344, 0)
                + b"alice@example.org" + b"T")
    assert m.serialize() == expected
    assert Metadata.parse(expected) == m


def test_empty_metadata_serializes_to_a_zero_count():
    assert Metadata().serialize() == b"\x00\x00"


def test_unnamed_log_name_hashes_the_whole_serialization():
    m = Metadata({md.CID: "bob@host", md.CTM: "2024-01-02T03:04:05.000000006Z"})
    assert md.metadata_name(m).raw == hashlib.sha256(m.serialize()).digest()


@pytest.mark.parametrize("raw", [b"", b"\x00", b"\x00\x01\x00\x43", b"\x00\x01" + struct.pack(">II", 7, 5) + b"abc",
                                 b"\x00\x00extra", b"\x00\x01" + struct.pack(">II", 0, 0)])
def test_malformed_serializations_are_400(raw):
    with pytest.raises(LogError) as err:
        Metadata.parse(raw)
    assert err.value.code == 400


def test_duplicate_ids_are_kept_in_order_and_get_returns_the_first():
    m = Metadata([(md.LOC, b"a"), (md.LOC, b"b")])
    assert list(m) == [(md.LOC, b"a"), (md.LOC, b"b")] and m.get(md.LOC) == b"a"


def test_ctm_format_and_round_trip():
    ns = 1_700_000_000 * 10**9 + 123_456_789
    text = md.format_ctm(ns)
    assert text == "2023-11-14T22:13:20.123456789Z"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z", text)
    assert md.parse_ctm(text) == ns
    assert md.parse_ctm(text + "/0.5") == ns  # GDP may append /accuracy


def test_pub_layout_is_mdalg_keytype_keylen_der():
    key = nacl.signing.SigningKey.generate()
    raw = bytes(key.verify_key)
    value = md.encode_pub(raw)
    assert value[0] == md.MD_SHA256 == 3
    assert value[1] == md.KEYTYPE_ED25519 == 4
    assert struct.unpack(">H", value[2:4]) == (256,)
    spki = serialization.load_der_public_key(value[4:])
    assert spki.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw) == raw
    assert len(value) == 4 + 44
    assert md.decode_pub(value) == raw


def test_pub_of_another_key_type_is_refused():
    value = bytearray(md.encode_pub(bytes(nacl.signing.SigningKey.generate().verify_key)))
    value[1] = md.KEYTYPE_EC
    with pytest.raises(LogError) as err:
        md.decode_pub(bytes(value))
    assert err.value.code == 400


def test_default_creator_is_user_at_host():
    assert re.fullmatch(r"[^@]+@[^@]+", md.default_creator())
