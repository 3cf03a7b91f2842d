"""Channel states keep their CID sets through to_dict/from_dict for every kind of CID."""

import hashlib

import pytest

from hoard.ids import CID, CODEX_BLOCK, DAG_CBOR
from hoard.transfer.types import _cid_from_text, _cid_text


@pytest.mark.parametrize("cid", [CID.of(b"x"), CID.of(b"x", DAG_CBOR), CID.sha256(b"x", CODEX_BLOCK),
                                 CID.sha256(b"x"), CID.v0(hashlib.sha256(b"x").digest())],
                         ids=["raw", "dag-cbor", "codex-block", "raw-sha256", "v0"])
def test_cid_text_round_trips(cid):
    text = _cid_text(cid)
    assert "=" not in text and CID.parse(text) == cid and _cid_from_text(text) == cid
