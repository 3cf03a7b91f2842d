"""Records (GDP datums): their encoding, the record hash chain, and their signatures.

A `Datum` is (recno, ts, data, sig, prevhash). `ts` is an int: nanoseconds since the Unix
epoch, UTC (GDP's EP_TIME_SPEC without the accuracy field).

A log's writer key is Ed25519 (PUB keytype 4, hoard's) or EC (keytype 3, GDP's default; P-256
when hoard makes one), chosen at log_create. What a signature covers depends on the key:

* **EC (ECDSA with SHA-256): exactly GDP 0.8's signature** (gdp_gcl_ops.c): the digest is
  seeded with the log name and the serialized metadata, and each record adds its number and
  data — SHA-256(log name (32) || serialized metadata || recno (u64 BE) || data), signed as a
  DER-encoded ECDSA signature. As in GDP, the commit timestamp and `prevhash` are not covered
  (the record hash chain still links them: a changed one breaks the next record's prevhash).
* **Ed25519** (hoard's choice for its own logs; it hashes with SHA-512 internally) signs:

      log name (32) || recno (u64 BE) || ts seconds (i64 BE) || ts nanoseconds (u32 BE)
                    || data || prevhash (32)

  Every field but `data` has a fixed size, so the layout is unambiguous without a length.

`prevhash` is the record hash of record recno-1 (32 zero bytes for record 1); the record hash
is SHA-256 (PUB's md_alg 3) of the record's encoding:

    version u8 = 1 || recno u64 BE || ts seconds i64 BE || ts nanoseconds u32 BE
                   || prevhash (32) || sig length u16 BE || sig || data

That encoding is also what the store keeps. A signature that does not verify is LogError 403
(`gdp_stat="CRYPTO_SIGFAIL"`): the status the GDP log server NAKs a bad append with, and the
one readers report.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import struct
from dataclasses import dataclass
from typing import TYPE_CHECKING, Union

import nacl.bindings
import nacl.exceptions
import nacl.signing

from hoard.errors import LogError
from hoard.logs.names import LogName

if TYPE_CHECKING:  # cryptography loads only for EC logs: it is slow to import
    from cryptography.hazmat.primitives.asymmetric.ec import EllipticCurvePrivateKey, EllipticCurvePublicKey

    from hoard.logs.metadata import Metadata

SigningKey = Union[nacl.signing.SigningKey, "EllipticCurvePrivateKey"]
"""A writer's secret key: Ed25519 (PyNaCl) or EC (cryptography)."""

__all__ = [
    "Datum", "HASH_LEN", "SIG_LEN", "Signer", "SigningKey", "Verifier", "ZERO_HASH", "record_ts", "signing_message",
    "to_ns"
]

HASH_LEN = 32
SIG_LEN = 64
ZERO_HASH = bytes(HASH_LEN)
_VERSION = 1
_NS = 1_000_000_000
_HEAD = struct.Struct(">BQqI32sH")  # version, recno, ts sec, ts nsec, prevhash, sig length
_TS = struct.Struct(">qI")
_SIGNED_HEAD = struct.Struct(">QqI")


@dataclass(frozen=True, slots=True, repr=False)
class Datum:
    """One record: its number (from 1), commit timestamp (ns), data, signature and prevhash."""

    recno: int
    ts: int
    data: bytes
    sig: bytes = b""
    prevhash: bytes = ZERO_HASH

    def __repr__(self) -> str:
        data = repr(self.data[:32]) + ("..." if len(self.data) > 32 else "")
        return (f"Datum(recno={self.recno}, ts={self.ts}, data={data} ({len(self.data)} bytes), "
                f"sig={self.sig[:4].hex()}..., prevhash={self.prevhash[:4].hex()}...)")

    @property
    def ts_datetime(self) -> _dt.datetime:
        """`ts` as an aware UTC datetime (microsecond precision)."""
        return _dt.datetime.fromtimestamp(self.ts / _NS, tz=_dt.UTC)

    def encode(self) -> bytes:
        """The stored, hashed form (see the module docstring)."""
        sec, nsec = divmod(self.ts, _NS)
        return _HEAD.pack(_VERSION, self.recno, sec, nsec, self.prevhash, len(self.sig)) + self.sig + self.data

    @classmethod
    def decode(cls, raw: bytes) -> Datum:
        """The inverse of `encode`; LogError 500 (a corrupt record) if `raw` is not one."""
        try:
            version, recno, sec, nsec, prevhash, siglen = _HEAD.unpack_from(raw, 0)
        except struct.error as exc:
            raise LogError(f"corrupt record: {exc}", status=500, gdp_stat="CORRUPT_GCL") from exc
        end = _HEAD.size + siglen
        if version != _VERSION or end > len(raw):
            raise LogError("corrupt record: bad version or length", status=500, gdp_stat="CORRUPT_GCL")
        return cls(recno, sec * _NS + nsec, bytes(raw[end:]), bytes(raw[_HEAD.size:end]), prevhash)

    @property
    def hash(self) -> bytes:
        """SHA-256 of the encoding: the next record's `prevhash`."""
        return hashlib.sha256(self.encode()).digest()


def record_ts(raw: bytes) -> int:
    """The timestamp of an encoded record without decoding the rest."""
    sec: int
    nsec: int
    sec, nsec = _TS.unpack_from(raw, 9)
    return sec * _NS + nsec


def signing_message(name: LogName, recno: int, ts: int, data: bytes, prevhash: bytes) -> bytes:
    """The exact bytes a record's signature covers (see the module docstring)."""
    sec, nsec = divmod(ts, _NS)
    try:
        head = _SIGNED_HEAD.pack(recno, sec, nsec)
    except struct.error as exc:
        raise LogError(f"record number {recno} or timestamp {ts} out of range", status=400) from exc
    return name.raw + head + data + prevhash


_RECNO = struct.Struct(">Q")


class _GdpDigest:
    """GDP's record digest, SHA-256(log name || serialized metadata || recno (u64 BE) || data):
    seeded once per log name (as GDP keeps it in the handle) and copied for each record."""

    __slots__ = ("_metadata", "_seeded")

    def __init__(self, metadata: Metadata | None) -> None:
        if metadata is None:
            raise LogError("an EC log key needs the log's metadata (GDP signs over it)", status=400)
        self._metadata = metadata
        self._seeded: tuple[LogName, hashlib._Hash] | None = None  # one attribute: read atomically

    def __call__(self, name: LogName, recno: int, data: bytes) -> bytes:
        seeded = self._seeded
        if seeded is None or seeded[0] != name:
            seed = hashlib.sha256(name.raw)
            seed.update(self._metadata.serialize())
            seeded = self._seeded = (name, seed)
        seed = seeded[1]
        try:
            head = _RECNO.pack(recno)
        except struct.error as exc:
            raise LogError(f"record number {recno} out of range", status=400) from exc
        digest = seed.copy()
        digest.update(head)
        digest.update(data)
        return digest.digest()


def _ec_public_der(key: EllipticCurvePublicKey) -> bytes:
    from cryptography.hazmat.primitives import serialization

    return key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


class Signer:
    """A log writer's key: makes signed records. `public_key` is what PUB holds (decoded): the
    raw 32 bytes of an Ed25519 key, the DER SubjectPublicKeyInfo of an EC one. An EC signer
    needs the log's `metadata` (GDP's digest covers it)."""

    __slots__ = ("_digest", "_ec", "_secret", "public_key")

    def __init__(self, key: SigningKey, metadata: Metadata | None = None) -> None:
        if isinstance(key, nacl.signing.SigningKey):
            self.public_key, self._secret = nacl.bindings.crypto_sign_seed_keypair(bytes(key))
            self._ec: EllipticCurvePrivateKey | None = None
            self._digest: _GdpDigest | None = None
            return
        from cryptography.hazmat.primitives.asymmetric import ec

        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise LogError(f"not a log signing key: {type(key).__name__} (Ed25519 or EC)", status=400)
        self._ec, self._secret = key, b""
        self._digest = _GdpDigest(metadata)
        self.public_key = _ec_public_der(key.public_key())

    def sign(self, name: LogName, recno: int, ts: int, data: bytes, prevhash: bytes) -> Datum:
        if self._ec is None or self._digest is None:
            signed = nacl.bindings.crypto_sign(signing_message(name, recno, ts, data, prevhash), self._secret)
            return Datum(recno, ts, data, signed[:SIG_LEN], prevhash)
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import ec, utils

        digest = self._digest(name, recno, data)
        sig = self._ec.sign(digest, ec.ECDSA(utils.Prehashed(hashes.SHA256())))
        return Datum(recno, ts, data, sig, prevhash)


class Verifier:
    """A log's public key (from PUB, as `decode_pub` returns it): checks record signatures.
    For an EC key (a DER SubjectPublicKeyInfo) `metadata` is the log's (GDP's digest covers it)."""

    __slots__ = ("_digest", "_ec", "public_key")

    def __init__(self, public_key: bytes, metadata: Metadata | None = None) -> None:
        self.public_key = bytes(public_key)
        self._ec: EllipticCurvePublicKey | None = None
        self._digest: _GdpDigest | None = None
        if len(public_key) == 32:
            return
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import ec

        try:
            key = serialization.load_der_public_key(self.public_key)
        except ValueError as exc:
            raise LogError(f"not a log public key (32-byte Ed25519 or DER EC): {exc}", status=400) from exc
        if not isinstance(key, ec.EllipticCurvePublicKey):
            raise LogError(f"not a log public key: {type(key).__name__} (Ed25519 or EC)", status=400)
        self._ec = key
        self._digest = _GdpDigest(metadata)

    def verify(self, name: LogName, datum: Datum) -> None:
        """Raise LogError 403 (`CRYPTO_SIGFAIL`) unless `datum.sig` signs `datum` in log `name`."""
        if self._ec is not None and self._digest is not None:
            if self._verify_ec(name, datum):
                return
        elif len(datum.sig) == SIG_LEN and len(datum.prevhash) == HASH_LEN:
            try:
                message = signing_message(name, datum.recno, datum.ts, datum.data, datum.prevhash)
                nacl.bindings.crypto_sign_open(datum.sig + message, self.public_key)
                return
            except (LogError, nacl.exceptions.BadSignatureError):
                pass
        raise LogError(f"record {datum.recno} of log {name}: signature does not verify", status=403,
                       gdp_stat="CRYPTO_SIGFAIL", recno=datum.recno)

    def _verify_ec(self, name: LogName, datum: Datum) -> bool:
        from cryptography.exceptions import InvalidSignature
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import ec, utils

        assert self._ec is not None and self._digest is not None
        if not datum.sig or len(datum.prevhash) != HASH_LEN:
            return False
        try:
            digest = self._digest(name, datum.recno, datum.data)
            self._ec.verify(datum.sig, digest, ec.ECDSA(utils.Prehashed(hashes.SHA256())))
        except (LogError, InvalidSignature, ValueError):
            return False
        return True


def to_ns(ts: float | _dt.datetime) -> int:
    """A timestamp argument as ns since the epoch: an int is ns, a float is seconds
    (`time.time()`), a datetime is converted (a naive one is taken as UTC)."""
    if isinstance(ts, bool):
        raise LogError("a timestamp is an int (ns), a float (s) or a datetime, not a bool", status=400)
    if isinstance(ts, int):
        return ts
    if isinstance(ts, float):
        return round(ts * _NS)
    if isinstance(ts, _dt.datetime):
        if ts.tzinfo is None:
            ts = ts.replace(tzinfo=_dt.UTC)
        delta = ts - _dt.datetime(1970, 1, 1, tzinfo=_dt.UTC)
        return (delta.days * 86_400 + delta.seconds) * _NS + delta.microseconds * 1_000
    raise LogError(f"a timestamp is an int (ns), a float (s) or a datetime, not {type(ts).__name__}", status=400)
