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


def test_identity_matches_py_libp2p(tmp_path):
    """hoard reads and writes Ed25519 key files without importing py-libp2p; libp2p must agree."""
    from libp2p.crypto.ed25519 import create_new_key_pair
    from libp2p.crypto.serialization import deserialize_private_key
    from libp2p.peer.id import ID

    ours = Identity.load_or_create(tmp_path / "key")
    private = deserialize_private_key((tmp_path / "key").read_bytes())
    assert PeerId(ID.from_pubkey(private.get_public_key())) == ours.peer_id
    assert ours.key_pair.private_key.serialize() == (tmp_path / "key").read_bytes()

    theirs = create_new_key_pair()
    (tmp_path / "theirs").write_bytes(theirs.private_key.serialize())
    loaded = Identity.load_or_create(tmp_path / "theirs")
    assert loaded.peer_id == PeerId(ID.from_pubkey(theirs.public_key))
    assert str(loaded.peer_id) == ID.from_pubkey(theirs.public_key).to_base58()
    assert Identity.from_key_pair(theirs).peer_id == loaded.peer_id
    assert loaded.peer_id.libp2p == ID.from_pubkey(theirs.public_key)


def test_other_key_types_are_read_by_py_libp2p(tmp_path):
    from libp2p.crypto.secp256k1 import create_new_key_pair
    from libp2p.peer.id import ID

    pair = create_new_key_pair()
    (tmp_path / "key").write_bytes(pair.private_key.serialize())
    assert Identity.load_or_create(tmp_path / "key").peer_id == PeerId(ID.from_pubkey(pair.public_key))


def test_peer_id_text_and_bytes_round_trip():
    peer = Identity.generate().peer_id
    assert PeerId(str(peer)) == peer == PeerId(peer.to_bytes()) == PeerId(peer.libp2p)
    assert hash(PeerId(str(peer))) == hash(peer)
    with pytest.raises(InvalidArgumentError):
        PeerId("")
