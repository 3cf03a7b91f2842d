"""CIDs are CIDv1 + BLAKE3-256, printed base58btc, parsed from any multibase."""

import blake3
import multibase
import pytest

from hoard.errors import IntegrityError, InvalidCidError
from hoard.ids import CID, DAG_CBOR, RAW


def test_cid_of_data_uses_blake3_multihash():
    cid = CID.of(b"abc")
    assert cid.binary[:4] == bytes([1, RAW, 0x1E, 32])
    assert cid.digest == blake3.blake3(b"abc").digest()


def test_text_form_is_base58btc_and_round_trips():
    cid = CID.of(b"abc", DAG_CBOR)
    assert str(cid).startswith("z")
    assert CID.parse(str(cid)) == cid


def test_other_multibases_parse_to_the_same_cid():
    cid = CID.of(b"abc")
    assert CID.parse(multibase.encode("base32", cid.binary).decode()) == cid


@pytest.mark.parametrize("text", ["", "   ", "not-a-cid", "zzzz", "QmYwAPJzv5CZsnA625s3Xf2nemtYgPpHdWEz79ojWnPbdG",
                                  "bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi"])
def test_bad_or_foreign_cids_are_rejected(text):
    with pytest.raises(InvalidCidError):
        CID.parse(text)


def test_verify_detects_mismatch():
    cid = CID.of(b"right")
    cid.verify(b"right")
    with pytest.raises(IntegrityError) as info:
        cid.verify(b"wrong")
    assert info.value.expected == cid.digest.hex()


def test_cids_are_hashable_and_ordered():
    a, b = CID.of(b"a"), CID.of(b"b")
    assert len({a, CID.parse(str(a)), b}) == 2
    assert sorted([a, b]) == sorted([b, a])


@pytest.mark.parametrize("text", ["z" + "1" * 40_000, "f" + "0" * 100_000, "b" + "a" * 5_000])
def test_overlong_cid_text_is_refused_before_decoding(text):
    # multibase decoders are quadratic: a 40,000-character base58 CID used to take 45 s
    with pytest.raises(InvalidCidError, match="too long"):
        CID.parse(text)


def test_overlong_binary_cid_is_refused():
    with pytest.raises(InvalidCidError, match="too long"):
        CID.parse(b"\x01" * 10_000)
