"""Safe transfer defaults: pushes refused unless an operator opts in; vouchers and ids bounded."""

from __future__ import annotations

import pytest

from hoard.errors import InvalidArgumentError, TransferError
from hoard.ids import CID
from hoard.limits import TRANSFER_MAX_TYPE_ID, TRANSFER_MAX_VOUCHER_BYTES
from hoard.transfer.builtin import DefaultVoucher, PolicyValidator, TransferPolicy
from hoard.transfer.messages import decode_message, encode_message, new_request
from hoard.transfer.types import ChannelID
from hoard.transfer.vouchers import EncodedVoucher

ALICE = "12D3KooWLRPJAA5o6Hkd3b9CScS1JqmRwMy1g2JmDnsKFrMWL8Jp"


def test_pushes_are_refused_by_default_and_accepted_on_opt_in() -> None:
    chid = ChannelID(ALICE, ALICE, 1)
    with pytest.raises(TransferError, match="does not accept push"):
        PolicyValidator().validate_push(False, chid, ALICE, DefaultVoucher(), CID.of(b"x"), None)
    assert PolicyValidator().validate_pull(False, chid, ALICE, DefaultVoucher(), CID.of(b"x"), None) is not None
    assert TransferPolicy.from_json(None).push is False
    assert TransferPolicy.from_json({"pull": True}).push is False  # a stored policy without the key
    opted = PolicyValidator(TransferPolicy.from_json({"push": True}))
    assert opted.validate_push(False, chid, ALICE, DefaultVoucher(), CID.of(b"x"), None) is not None


def test_policy_peers_must_be_peer_ids() -> None:
    with pytest.raises(InvalidArgumentError, match="invalid peer id"):
        TransferPolicy.from_json({"peers": ["garbage"]})
    assert TransferPolicy.from_json({"peers": [ALICE]}).peers == frozenset([ALICE])


def test_vouchers_and_type_ids_are_bounded() -> None:
    EncodedVoucher("t", b"x" * TRANSFER_MAX_VOUCHER_BYTES)
    with pytest.raises(InvalidArgumentError, match="at most"):
        EncodedVoucher("t", b"x" * (TRANSFER_MAX_VOUCHER_BYTES + 1))
    with pytest.raises(InvalidArgumentError, match="at most"):
        EncodedVoucher("t" * (TRANSFER_MAX_TYPE_ID + 1), b"")
    # a peer's oversized voucher inside a well-formed message is refused at decode
    huge = encode_message(new_request(1, EncodedVoucher("t", b"v" * 10), CID.of(b"x")))
    huge = huge.replace(b"J" + b"v" * 10, b"Z\x00\x01\x00\x00" + b"v" * 65536, 1)
    with pytest.raises(InvalidArgumentError, match="invalid transfer message.*65536 bytes .at most"):
        decode_message(huge)
