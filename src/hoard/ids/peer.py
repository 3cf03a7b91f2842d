"""Peer identity: an Ed25519 key, its libp2p peer ID, and its signed peer record (SPR).

Formats are the real libp2p ones, produced by py-libp2p's own key, peer-ID and envelope
code. The key file holds the libp2p protobuf-serialized private key (as Codex/Logos store
`net-privkey`), written with mode 0600. The SPR text form is `spr:` + unpadded URL-safe
base64 of the signed envelope, as nim-libp2p prints it.
"""

from __future__ import annotations

import base64
import os
from collections.abc import Iterable
from pathlib import Path

import multiaddr
from libp2p.crypto.ed25519 import create_new_key_pair
from libp2p.crypto.keys import KeyPair
from libp2p.crypto.serialization import deserialize_private_key
from libp2p.peer.envelope import consume_envelope, seal_record
from libp2p.peer.id import ID
from libp2p.peer.peer_record import PEER_RECORD_ENVELOPE_DOMAIN, PeerRecord

from hoard.errors import InvalidArgumentError

SPR_PREFIX = "spr:"


class PeerId:
    """A libp2p peer ID (base58 text form, e.g. `12D3KooW...`)."""

    __slots__ = ("_id",)

    def __init__(self, value: str | bytes | ID | PeerId) -> None:
        if isinstance(value, PeerId):
            self._id = value._id
        elif isinstance(value, ID):
            self._id = value
        elif isinstance(value, (bytes, bytearray)):
            self._id = ID(bytes(value))
        elif isinstance(value, str):
            try:
                self._id = ID.from_base58(value.strip())
            except Exception as exc:
                raise InvalidArgumentError(f"invalid peer id: {value!r}", peer_id=value) from exc
            if not value.strip():
                raise InvalidArgumentError("invalid peer id: empty", peer_id=value)
        else:
            raise InvalidArgumentError(f"invalid peer id: {value!r}")

    @property
    def libp2p(self) -> ID:
        return self._id

    def to_bytes(self) -> bytes:
        return self._id.to_bytes()

    def __str__(self) -> str:
        return self._id.to_base58()

    def __repr__(self) -> str:
        return f"PeerId({str(self)!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, PeerId) and other._id == self._id

    def __hash__(self) -> int:
        return hash(self._id.to_bytes())


def encode_spr(envelope_bytes: bytes) -> str:
    return SPR_PREFIX + base64.urlsafe_b64encode(envelope_bytes).rstrip(b"=").decode()


def decode_spr(text: str) -> tuple[PeerId, list[multiaddr.Multiaddr], int]:
    """Verify an SPR and return (peer id, addresses, sequence number)."""
    raw = text.strip()
    if raw.startswith(SPR_PREFIX):
        raw = raw[len(SPR_PREFIX):]
    try:
        data = base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4))
        _envelope, record = consume_envelope(data, PEER_RECORD_ENVELOPE_DOMAIN)
    except Exception as exc:
        raise InvalidArgumentError(f"invalid signed peer record: {text[:60]}...", spr=text) from exc
    return PeerId(record.peer_id), list(record.addrs), record.seq


class Identity:
    """A node's key pair, loaded from or created in its key file."""

    def __init__(self, key_pair: KeyPair) -> None:
        self.key_pair = key_pair
        self.peer_id = PeerId(ID.from_pubkey(key_pair.public_key))

    @classmethod
    def generate(cls) -> Identity:
        return cls(create_new_key_pair())

    @classmethod
    def load_or_create(cls, path: Path) -> Identity:
        """Load the key at `path`, or create an Ed25519 key there (mode 0600) on first use."""
        if path.exists():
            try:
                private = deserialize_private_key(path.read_bytes())
            except Exception as exc:
                raise InvalidArgumentError(f"net-privkey {path} is not a libp2p private key", path=str(path)) from exc
            return cls(KeyPair(private, private.get_public_key()))
        identity = cls.generate()
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(identity.key_pair.private_key.serialize())
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
        return identity

    def signed_peer_record(self, addrs: Iterable[multiaddr.Multiaddr | str] = (), seq: int | None = None) -> str:
        """A fresh SPR (`spr:...`) for this identity and the given addresses."""
        record = PeerRecord(self.peer_id.libp2p, [multiaddr.Multiaddr(str(a)) for a in addrs], seq)
        envelope = seal_record(record, self.key_pair.private_key)
        return encode_spr(envelope.marshal_envelope())
