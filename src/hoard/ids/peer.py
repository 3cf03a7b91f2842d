"""Peer identity: an Ed25519 key, its libp2p peer ID, and its signed peer record (SPR).

Formats are the real libp2p ones. The key file holds the libp2p protobuf-serialized private
key (as Codex/Logos store `net-privkey`), written with mode 0600. The SPR text form is
`spr:` + unpadded URL-safe base64 of the signed envelope, as nim-libp2p prints it.

Importing py-libp2p costs about half a second, so this module does not: a peer ID is a
multihash in base58 (the `base58` package), and an Ed25519 key file, the only kind hoard
writes, is read and written here (PyNaCl for the key; the 4-byte protobuf framing of the
libp2p key spec, checked against py-libp2p's own encoding in tests/ids). Signing and
verifying peer records, other key types and the libp2p key objects (`Identity.key_pair`,
`PeerId.libp2p`) use py-libp2p, imported on first use: when the network starts.
"""

from __future__ import annotations

import base64
import os
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

import base58

from hoard.errors import InvalidArgumentError

if TYPE_CHECKING:
    import multiaddr
    from libp2p.crypto.keys import KeyPair
    from libp2p.peer.id import ID

SPR_PREFIX = "spr:"

# libp2p key spec (https://github.com/libp2p/specs/blob/master/peer-ids/peer-ids.md): a key is the
# protobuf {1: KeyType (varint), 2: Data (bytes)}; Ed25519 is KeyType 1 and its public Data is the
# 32-byte point. A serialized public key of at most 42 bytes is its own peer ID (identity multihash).
_ED25519_TAG = b"\x08\x01\x12"
_IDENTITY_MULTIHASH = b"\x00"
_MAX_INLINE_KEY_LENGTH = 42


def _is_libp2p_id(value: object) -> bool:
    return type(value).__module__ == "libp2p.peer.id" and type(value).__name__ == "ID"


class PeerId:
    """A libp2p peer ID (base58 text form, e.g. `12D3KooW...`)."""

    __slots__ = ("_bytes", "_text")

    def __init__(self, value: str | bytes | ID | PeerId) -> None:
        self._text: str | None = None
        if isinstance(value, PeerId):
            self._bytes: bytes = value._bytes
        elif isinstance(value, (bytes, bytearray)):
            self._bytes = bytes(value)
        elif isinstance(value, str):
            if not value.strip():
                raise InvalidArgumentError("invalid peer id: empty", peer_id=value)
            try:
                self._bytes = base58.b58decode(value.strip())
            except Exception as exc:
                raise InvalidArgumentError(f"invalid peer id: {value!r}", peer_id=value) from exc
        elif _is_libp2p_id(value):
            self._bytes = value.to_bytes()
        else:
            raise InvalidArgumentError(f"invalid peer id: {value!r}")

    @classmethod
    def from_public_key(cls, serialized: bytes) -> PeerId:
        """The peer ID of a protobuf-serialized libp2p public key."""
        if len(serialized) <= _MAX_INLINE_KEY_LENGTH:
            return cls(_IDENTITY_MULTIHASH + bytes([len(serialized)]) + serialized)
        import hashlib
        return cls(b"\x12\x20" + hashlib.sha256(serialized).digest())  # sha2-256 multihash

    @property
    def libp2p(self) -> ID:
        """This peer ID as py-libp2p's `ID` (imports py-libp2p)."""
        from libp2p.peer.id import ID
        return ID(self._bytes)

    def to_bytes(self) -> bytes:
        return self._bytes

    def __str__(self) -> str:
        if self._text is None:
            self._text = base58.b58encode(self._bytes).decode()
        return self._text

    def __repr__(self) -> str:
        return f"PeerId({str(self)!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, PeerId) and other._bytes == self._bytes

    def __hash__(self) -> int:
        return hash(self._bytes)


def encode_spr(envelope_bytes: bytes) -> str:
    return SPR_PREFIX + base64.urlsafe_b64encode(envelope_bytes).rstrip(b"=").decode()


def decode_spr(text: str) -> tuple[PeerId, list[multiaddr.Multiaddr], int]:
    """Verify an SPR and return (peer id, addresses, sequence number)."""
    from libp2p.peer.envelope import consume_envelope
    from libp2p.peer.peer_record import PEER_RECORD_ENVELOPE_DOMAIN

    raw = text.strip()
    raw = raw.removeprefix(SPR_PREFIX)
    try:
        data = base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4))
        _envelope, record = consume_envelope(data, PEER_RECORD_ENVELOPE_DOMAIN)
    except Exception as exc:
        raise InvalidArgumentError(f"invalid signed peer record: {text[:60]}...", spr=text) from exc
    return PeerId(record.peer_id), list(record.addrs), record.seq


def _ed25519_public_key(serialized_private: bytes) -> bytes | None:
    """The serialized public key of a serialized Ed25519 private key, or None if it is not one."""
    import nacl.signing

    if not serialized_private.startswith(_ED25519_TAG) or len(serialized_private) < 4:
        return None
    data = serialized_private[4:]
    if serialized_private[3] != len(data) or len(data) not in (32, 64):  # seed, or seed + public (go-libp2p)
        return None
    public = bytes(nacl.signing.SigningKey(data[:32]).verify_key)
    if len(data) == 64 and data[32:] != public:
        return None
    return _ED25519_TAG + bytes([len(public)]) + public


class Identity:
    """A node's key pair, loaded from or created in its key file.

    `peer_id` is known at once; `key_pair` (py-libp2p's objects, for the network) on first use.
    """

    def __init__(self, private_key: bytes, public_key: bytes | None = None) -> None:
        """`private_key` is a libp2p protobuf-serialized private key."""
        self._private = private_key
        self._key_pair: KeyPair | None = None
        public = public_key or _ed25519_public_key(private_key)
        if public is None:  # another key type: let py-libp2p read it
            public = self.key_pair.public_key.serialize()
        self.peer_id = PeerId.from_public_key(public)

    @property
    def key_pair(self) -> KeyPair:
        """py-libp2p's key pair (imports py-libp2p)."""
        if self._key_pair is None:
            from libp2p.crypto.keys import KeyPair
            from libp2p.crypto.serialization import deserialize_private_key

            private = deserialize_private_key(self._private)
            self._key_pair = KeyPair(private, private.get_public_key())
        return self._key_pair

    @classmethod
    def from_key_pair(cls, key_pair: KeyPair) -> Identity:
        """An identity for a py-libp2p key pair."""
        identity = cls(key_pair.private_key.serialize(), key_pair.public_key.serialize())
        identity._key_pair = key_pair
        return identity

    def private_key_bytes(self) -> bytes:
        """The libp2p protobuf-serialized private key (what the key file holds)."""
        return self._private

    @classmethod
    def generate(cls) -> Identity:
        """A new random Ed25519 identity."""
        import nacl.signing

        seed = bytes(nacl.signing.SigningKey.generate())
        return cls(_ED25519_TAG + bytes([len(seed)]) + seed)

    @classmethod
    def load_or_create(cls, path: Path) -> Identity:
        """Load the key at `path`, or create an Ed25519 key there (mode 0600) on first use."""
        if path.exists():
            data = path.read_bytes()
            try:
                return cls(data)
            except Exception as exc:
                raise InvalidArgumentError(f"net-privkey {path} is not a libp2p private key", path=str(path)) from exc
        identity = cls.generate()
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(identity.private_key_bytes())
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
        return identity

    def signed_peer_record(self, addrs: Iterable[multiaddr.Multiaddr | str] = (), seq: int | None = None) -> str:
        """A fresh SPR (`spr:...`) for this identity and the given addresses."""
        import multiaddr
        from libp2p.peer.envelope import seal_record
        from libp2p.peer.peer_record import PeerRecord

        record = PeerRecord(self.peer_id.libp2p, [multiaddr.Multiaddr(str(a)) for a in addrs], seq)
        envelope = seal_record(record, self.key_pair.private_key)
        return encode_spr(envelope.marshal_envelope())
