"""Castore names blobs by BLAKE3 only: a sha2-256 block digest is never taken for a blob digest."""

import blake3
import pytest

from hoard.blobs import BlobDigest
from hoard.errors import InvalidArgumentError
from hoard.ids import CID, CODEX_BLOCK, RAW


def test_a_blake3_block_cid_gives_its_blob_digest():
    cid = CID.of(b"chunk")
    assert BlobDigest.from_cid(cid) == BlobDigest(blake3.blake3(b"chunk").digest())
    assert BlobDigest.from_cid(cid).cid == cid


@pytest.mark.parametrize("codec", [RAW, CODEX_BLOCK])
def test_a_sha256_block_cid_has_no_blob_digest(codec):
    with pytest.raises(InvalidArgumentError, match="sha2-256, not blake3"):
        BlobDigest.from_cid(CID.sha256(b"chunk", codec))
