"""dag-cbor as the IPLD spec has it: 64-bit floats, length-first key order, strict decoding.

The byte and CID vectors were produced by @ipld/dag-cbor 10 (the codec Helia 7 uses, from
tests/ipfs/helia's lock file) with sha2-256 CIDv1s; the empty map's CID is the spec's
well-known empty dag-cbor node.
"""

from __future__ import annotations

import struct

import cbor2
import pytest

from hoard.content import dag
from hoard.errors import IntegrityError
from hoard.ids.cid import CID, DAG_CBOR

LINK = CID.parse("bafkreie5v5ojgfwykkrqz6lbmq3lc7iijmkjqfxzlgjrkm4abuflglkhzy")

VECTORS = [  # (value, dag-cbor bytes, sha2-256 CIDv1)
    ({}, "a0", "bafyreigbtj4x7ip5legnfznufuopl4sg4knzc2cof6duas4b3q2fy6swua"),
    ({"a": 1.5}, "a16161fb3ff8000000000000", "bafyreic6v65kiate4qj6lsdjvf2qjul5frowyn4kgtjp7fpbm7jjfz4mfm"),
    ({"half": 0.5, "one": 1, "pi": 3.141592653589793, "neg": -2.25, "big": 1e300},
     ("a5627069fb400921fb54442d1863626967fb7e37e43c8800759c636e6567fbc002000000000000636f6e65016468616c66fb3fe0"
     "000000000000"),
     "bafyreifzgj4s26ezgiqhd5ztzlbsutwkqndwfnwurm7lcugp4dqwmwrf3e"),
    ({"z": [1, -1, "x", b"\x01\x02", None, True, False], "bb": LINK, "a": 1.5, "ccc": {"ab": 1, "b": 2}},
     ("a46161fb3ff8000000000000617a8701206178420102f6f5f4626262d82a582500015512209daf5c9316d852a30cf9616436b17d08"
     "4b149816f959931533800d0ab32d47ce63636363a261620262616201"),
     "bafyreiedffh3mcxx5osml75epches3dgnu3kloeigekvm6dsdvf2uybugm"),
]


@pytest.mark.parametrize(("value", "hex_bytes", "cid"), VECTORS)
def test_encoding_and_cid_match_the_reference_codec(value: object, hex_bytes: str, cid: str) -> None:
    data = dag.encode(value)
    assert data.hex() == hex_bytes
    assert CID.sha256(data, DAG_CBOR).to_base32() == cid
    assert dag.decode(data) == value


@pytest.mark.parametrize("number", [1.5, 0.5, 1.0, -2.25, 0.1, 1e300, 5e-324, -0.0, 65504.0])
def test_every_float_is_written_as_an_8_byte_float_and_round_trips(number: float) -> None:
    data = dag.encode(number)
    assert data == b"\xfb" + struct.pack(">d", number)  # what cbor2's canonical mode would shrink to 0xf9/0xfa
    back = dag.decode(data)
    assert type(back) is float and struct.pack(">d", back) == struct.pack(">d", number)
    assert dag.encode({"x": [number]}) == bytes.fromhex("a16178 81") + data


def test_map_keys_are_sorted_length_first_then_bytewise() -> None:
    data = dag.encode({"bb": 1, "a": 2, "aa": 3, "b": 4, "": 5})
    assert list(cbor2.loads(data)) == ["", "a", "b", "aa", "bb"]


@pytest.mark.parametrize(("hex_bytes", "why"), [
    ("f93e00", "half-precision float"),
    ("fa3fc00000", "single-precision float"),
    ("a2616202616101", "keys out of order"),
    ("a2626161016162 02", "keys not length-first"),
    ("1801", "integer in more bytes than needed"),
    ("5801 00", "length in more bytes than needed"),
    ("f7", "undefined"),
    ("e0", "a simple value"),
    ("fb7ff8000000000000", "NaN"),
    ("fb7ff0000000000000", "Infinity"),
    ("a1016161", "an integer key"),
    ("a2616101616102", "a duplicate key"),
    ("9f01ff", "an indefinite-length array"),
    ("c11a514b67b0", "a tag other than 42 (a date)"),
    ("c249010000000000000000", "a bignum"),
    ("01 01", "trailing bytes"),
])
def test_decode_refuses_what_strict_dag_cbor_forbids(hex_bytes: str, why: str) -> None:
    with pytest.raises(IntegrityError, match="malformed test block"):
        dag.decode(bytes.fromhex(hex_bytes), "test block")


def test_non_strict_decode_takes_a_non_canonical_block_but_never_a_foreign_tag() -> None:
    assert dag.decode(bytes.fromhex("a2616202616101"), strict=False) == {"b": 2, "a": 1}
    assert dag.decode(bytes.fromhex("f93e00"), strict=False) == 1.5
    with pytest.raises(IntegrityError):
        dag.decode(bytes.fromhex("c11a514b67b0"), strict=False)


@pytest.mark.parametrize("value", [
    float("nan"), float("inf"), -float("inf"), 1 << 64, -(1 << 64) - 1, {1: "int key"}, {b"k": "bytes key"},
    {1, 2}, cbor2.undefined, cbor2.CBORTag(1, 0), object(),
])
def test_encode_refuses_what_dag_cbor_cannot_hold(value: object) -> None:
    with pytest.raises((TypeError, ValueError)):
        dag.encode(value)


def test_the_64_bit_integer_range_is_held_whole() -> None:
    data = dag.encode([(1 << 64) - 1, -(1 << 64)])
    assert data == bytes.fromhex("821bffffffffffffffff3bffffffffffffffff")
    assert dag.decode(data) == [(1 << 64) - 1, -(1 << 64)]
