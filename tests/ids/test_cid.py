"""CIDs: CIDv1 (raw, dag-pb, dag-cbor, codex-*; blake3 or sha2-256) and CIDv0, parsed from any multibase.

The known CIDs below are public values, recomputed here from their content: kubo's empty
UnixFS directory and `ipfs add` of "hello world\\n" (CIDv0), the raw sha2-256 CIDv1 of
"hello world", and the Logos manifest CID of "Hello World!" uploaded as hello.txt.
"""

import hashlib
import pickle

import blake3
import multibase
import pytest

from hoard.errors import IntegrityError, InvalidCidError
from hoard.ids import (
    BLAKE3,
    CID,
    CODEX_BLOCK,
    CODEX_MANIFEST,
    CODEX_ROOT,
    DAG_CBOR,
    DAG_PB,
    RAW,
    SHA2_256,
)

EMPTY_DIR_V0 = "QmUNLLsPACCz1vLxQVkXqqLX5R1X345qqfHbsf67hvA3Nn"
EMPTY_DIR_V1 = "bafybeiczsscdsbs7ffqz55asqdf3smv6klcw3gofszvwlyarci47bgf354"
EMPTY_DIR_NODE = bytes.fromhex("0a020801")  # dag-pb PBNode{Data: UnixFS{Type: Directory}}
HELLO_RAW_SHA256 = "bafkreifzjut3te2nhyekklss27nh3k72ysco7y32koao5eei66wof36n5e"
LOGOS_HELLO_MANIFEST = "zDvZRwzmAkhzDRPH5EW242gJBNZ2T7aoH2v1fVH66FxXL4kSbvyM"


def test_cid_of_data_uses_blake3_multihash():
    cid = CID.of(b"abc")
    assert cid.binary[:4] == bytes([1, RAW, 0x1E, 32])
    assert cid.digest == blake3.blake3(b"abc").digest()
    assert (cid.version, cid.codec, cid.hash_code) == (1, RAW, BLAKE3)


def test_text_form_is_base58btc_and_round_trips():
    cid = CID.of(b"abc", DAG_CBOR)
    assert str(cid).startswith("z")
    assert CID.parse(str(cid)) == cid


def test_other_multibases_parse_to_the_same_cid():
    cid = CID.of(b"abc")
    assert CID.parse(multibase.encode("base32", cid.binary).decode()) == cid
    assert CID.parse(cid.to_base32()) == cid


def _v1(codec: bytes, hash_code: bytes, digest: bytes) -> str:
    return multibase.encode("base32", b"\x01" + codec + hash_code + bytes([len(digest)]) + digest).decode()


FOREIGN = {
    "sha2-512": _v1(b"\x55", b"\x13", hashlib.sha512(b"x").digest()),
    "identity hash": _v1(b"\x55", b"\x00", b"abc"),
    "dag-json codec": _v1(b"\xa9\x02", b"\x12", hashlib.sha256(b"x").digest()),
    "short digest": _v1(b"\x55", b"\x12", hashlib.sha256(b"x").digest()[:20]),
    "non-minimal varint": multibase.encode("base32", b"\x01\xd5\x00\x12\x20" + bytes(32)).decode(),
    "CIDv2": multibase.encode("base32", b"\x02\x55\x12\x20" + bytes(32)).decode(),
    "multibase CIDv0": multibase.encode("base32", b"\x12\x20" + bytes(32)).decode(),
}


@pytest.mark.parametrize("text", ["", "   ", "not-a-cid", "zzzz", "Qm" + "0" * 44, *FOREIGN.values()],
                         ids=["empty", "blank", "junk", "short", "bad-v0", *FOREIGN])
def test_bad_or_foreign_cids_are_rejected(text):
    with pytest.raises(InvalidCidError, match="cannot parse cid"):
        CID.parse(text)


def test_rejection_says_why():
    with pytest.raises(InvalidCidError, match="unsupported hash 0x13"):
        CID.parse(FOREIGN["sha2-512"])
    with pytest.raises(InvalidCidError, match="unsupported codec 0x129"):
        CID.parse(FOREIGN["dag-json codec"])


@pytest.mark.parametrize("binary", [b"", b"\x01\x55\x1e\x20" + bytes(31), b"\x01\x55\x1e\x20" + bytes(33),
                                    b"\x01\x56\x1e\x20" + bytes(32), b"\x12\x20" + bytes(31)])
def test_bad_binary_cids_are_rejected(binary):
    with pytest.raises(InvalidCidError):
        CID(binary)


def test_verify_detects_mismatch():
    cid = CID.of(b"right")
    cid.verify(b"right")
    with pytest.raises(IntegrityError) as info:
        cid.verify(b"wrong")
    assert info.value.expected == cid.digest.hex()


def test_verify_uses_the_cids_own_hash():
    cid = CID.sha256(b"right", CODEX_BLOCK)
    cid.verify(b"right")
    with pytest.raises(IntegrityError, match="sha2-256"):
        cid.verify(b"wrong")
    # the same digest under the other hash is a different CID and does not verify the data
    with pytest.raises(IntegrityError):
        CID.from_digest(CODEX_BLOCK, cid.digest, BLAKE3).verify(b"right")


def test_cids_are_hashable_and_ordered():
    a, b = CID.of(b"a"), CID.of(b"b")
    assert len({a, CID.parse(str(a)), b}) == 2
    assert sorted([a, b]) == sorted([b, a])


def test_cids_pickle():
    for cid in (CID.of(b"a"), CID.sha256(b"a", CODEX_ROOT), CID.v0(hashlib.sha256(b"a").digest())):
        assert pickle.loads(pickle.dumps(cid)) == cid


@pytest.mark.parametrize("text", ["z" + "1" * 40_000, "f" + "0" * 100_000, "b" + "a" * 5_000])
def test_overlong_cid_text_is_refused_before_decoding(text):
    # multibase decoders are quadratic: a 40,000-character base58 CID used to take 45 s
    with pytest.raises(InvalidCidError, match="too long"):
        CID.parse(text)


def test_overlong_binary_cid_is_refused():
    with pytest.raises(InvalidCidError, match="too long"):
        CID.parse(b"\x01" * 10_000)


# -- IPFS: CIDv0 and sha2-256 CIDv1 ---------------------------------------------------------
def test_cidv0_of_kubos_empty_directory():
    cid = CID.v0(hashlib.sha256(EMPTY_DIR_NODE).digest())
    assert str(cid) == EMPTY_DIR_V0
    assert (cid.version, cid.codec, cid.hash_code) == (0, DAG_PB, SHA2_256)
    assert cid.binary == cid.multihash == b"\x12\x20" + cid.digest
    cid.verify(EMPTY_DIR_NODE)


def test_cidv0_text_round_trips_and_converts_to_v1():
    cid = CID.parse(EMPTY_DIR_V0)
    assert str(cid) == EMPTY_DIR_V0 and CID.parse(cid.binary) == cid
    assert cid.to_base32() == EMPTY_DIR_V1
    v1 = CID.parse(EMPTY_DIR_V1)
    assert (v1.version, v1.codec, v1.hash_code) == (1, DAG_PB, SHA2_256)
    assert v1 == cid.to_v1() and v1 != cid and v1.digest == cid.digest


def test_cidv0_of_kubo_add_hello_world():
    unixfs = bytes.fromhex("0802120c") + b"hello world\n" + bytes.fromhex("180c")  # File, data, filesize 12
    node = bytes([0x0A, len(unixfs)]) + unixfs  # PBNode{Data}
    assert str(CID.v0(hashlib.sha256(node).digest())) == "QmT78zSuBmuS4z925WZfrqQ1qHaJ56DQaTfyMUF7F8ff5o"


def test_raw_sha256_cidv1_matches_ipfs():
    cid = CID.sha256(b"hello world")
    assert cid.to_base32() == HELLO_RAW_SHA256
    parsed = CID.parse(HELLO_RAW_SHA256)
    assert parsed == cid and (parsed.codec, parsed.hash_code) == (RAW, SHA2_256)
    assert str(parsed).startswith("z") and CID.parse(str(parsed)) == cid
    assert CID.of(b"hello world", RAW, SHA2_256) == cid


# -- Logos: codex codecs with three-byte varints -------------------------------------------
def test_logos_manifest_cid_parses():
    cid = CID.parse(LOGOS_HELLO_MANIFEST)
    assert (cid.version, cid.codec, cid.hash_code) == (1, CODEX_MANIFEST, SHA2_256)
    assert cid.codec_name == "codex-manifest"
    assert cid.binary[:6] == bytes.fromhex("01819a031220")
    assert str(cid) == LOGOS_HELLO_MANIFEST
    assert CID(cid.binary) == cid and CID.parse(cid.to_base32()) == cid


@pytest.mark.parametrize("codec", [CODEX_MANIFEST, CODEX_BLOCK, CODEX_ROOT])
def test_codex_cids_round_trip(codec):
    cid = CID.sha256(b"block", codec)
    assert cid.codec == codec and len(cid.binary) == 38
    assert CID.parse(str(cid)) == cid and CID(cid.binary) == cid
    assert cid.digest == hashlib.sha256(b"block").digest()
    assert cid.multihash == b"\x12\x20" + cid.digest


def test_from_digest_refuses_unknown_codecs_and_lengths():
    with pytest.raises(InvalidCidError):
        CID.from_digest(0x0129, bytes(32))
    with pytest.raises(InvalidCidError):
        CID.from_digest(RAW, bytes(31))
    with pytest.raises(InvalidCidError):
        CID.from_digest(RAW, bytes(32), 0x13)
    with pytest.raises(InvalidCidError):
        CID.v0(bytes(20))
