"""Peer identity: Ed25519 key file, libp2p peer ID, signed peer record."""

import stat

import pytest

from hoard.errors import InvalidArgumentError
from hoard.ids import Identity, PeerId
from hoard.ids.peer import decode_spr


def test_key_is_created_once_with_private_mode(tmp_path):
    path = tmp_path / "key"
    first = Identity.load_or_create(path)
    second = Identity.load_or_create(path)
    assert first.peer_id == second.peer_id
    assert str(first.peer_id).startswith("12D3KooW")  # Ed25519 peer IDs are identity multihashes
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_spr_round_trips_and_is_verified(tmp_path):
    identity = Identity.load_or_create(tmp_path / "key")
    spr = identity.signed_peer_record(["/ip4/127.0.0.1/tcp/4001"])
    assert spr.startswith("spr:")
    peer, addrs, _seq = decode_spr(spr)
    assert peer == identity.peer_id
    assert [str(a) for a in addrs] == ["/ip4/127.0.0.1/tcp/4001"]
    tampered = spr[:-6] + ("A" if spr[-6] != "A" else "B") + spr[-5:]
    with pytest.raises(InvalidArgumentError):
        decode_spr(tampered)


def test_corrupt_key_file_is_a_clear_error(tmp_path):
    (tmp_path / "key").write_bytes(b"garbage")
    with pytest.raises(InvalidArgumentError, match="net-privkey"):
        Identity.load_or_create(tmp_path / "key")


def test_bad_peer_id_is_rejected():
    with pytest.raises(InvalidArgumentError):
        PeerId("not a peer")
