"""Log metadata: GDP metadata entries, their wire serialization, and the entries log_create adds.

Entries are (id, bytes) pairs kept in insertion order; ids are GDP's u32 FourCC-like values
(`XID` = 0x00584944 is "XID", ...). An id may appear more than once (GDP allows it);
`get` returns the first. The serialization is GDP's `_gdp_gclmd_serialize`, byte for byte:

    u16 count (big-endian)
    count × { u32 id, u32 len } (big-endian)
    the data of every entry, concatenated in the same order

A log created without a name is named SHA-256(serialization) over *all* of it (GDP 0.8.0's
serializer under-reports its length, so the C code hashes only a prefix; hoard hashes the whole
serialization, see docs/logs.md).

The entries log_create adds (as GDP's `gcl-create` does, in this order, after the caller's):
CTM (creation time `YYYY-MM-DDTHH:MM:SS.nnnnnnnnnZ`, UTC), CID (creator, `user@host`), PUB
(the writer's public key), then XID (the external name) when the log is created under one.

PUB is GDP's layout: `[md_alg u8][keytype u8][keylen u16 BE][DER public key]`, the key as a
DER SubjectPublicKeyInfo (what `ep_crypto_key_write_mem(..., DER, PUBLIC)` emits). md_alg is
3 (SHA-256) for both key types hoard signs with:

* EC, GDP's default: keytype 3 (`EP_CRYPTO_KEYTYPE_EC`), keylen = the curve's size in bits
  (256 for P-256, which hoard generates; any named curve OpenSSL knows is read);
* Ed25519: keytype 4 (`KEYTYPE_ED25519`: GDP 0.8 has RSA 1, DSA 2, EC 3 and no Ed25519, so
  hoard takes the next value), keylen 256, a 44-byte DER key.

RSA and DSA keys (keytypes 1 and 2) are refused (LogError 400), as are md_algs other than 3.
"""

from __future__ import annotations

import datetime as _dt
import getpass
import hashlib
import socket
import struct
from collections.abc import Iterable, Iterator, Mapping
from typing import Union

from hoard.errors import LogError
from hoard.logs.names import LogName

__all__ = [
    "CID", "CTM", "KEYTYPE_DSA", "KEYTYPE_EC", "KEYTYPE_ED25519", "KEYTYPE_RSA", "LOC", "MD_SHA1", "MD_SHA224",
    "MD_SHA256", "MD_SHA384", "MD_SHA512", "Metadata", "MetadataInput", "PUB", "SYN", "XID", "XTM",
    "decode_pub", "default_creator", "encode_pub", "format_ctm", "mdid", "metadata_name", "parse_ctm"
]

# metadata ids (gdp/gdp.h GDP_GCLMD_*)
XID = 0x00584944  # external id (the name the log was created under)
PUB = 0x00505542  # public key
CTM = 0x0043544D  # creation time
XTM = 0x0058544D  # expiration time
CID = 0x00434944  # creator id
SYN = 0x0053594E  # syntax
LOC = 0x004C4F43  # location
_EOLIST = 0

# message digest algorithms (ep_crypto.h EP_CRYPTO_MD_*)
MD_SHA1, MD_SHA224, MD_SHA256, MD_SHA384, MD_SHA512 = 1, 2, 3, 4, 5
# key types (ep_crypto.h EP_CRYPTO_KEYTYPE_*); Ed25519 is hoard's addition
KEYTYPE_RSA, KEYTYPE_DSA, KEYTYPE_EC, KEYTYPE_ED25519 = 1, 2, 3, 4

_COUNT = struct.Struct(">H")
_ENTRY = struct.Struct(">II")
_PUB_HEAD = struct.Struct(">BBH")
_ED25519_BITS = 256


def mdid(value: int | str) -> int:
    """A metadata id from an int or a FourCC string (`"XID"` → 0x00584944), as gcl-create packs it."""
    if isinstance(value, str):
        if not 1 <= len(value) <= 4 or not value.isascii():
            raise LogError(f"a metadata id string is 1-4 ASCII characters: {value!r}", status=400)
        out = 0
        for ch in value:
            out = (out << 8) | ord(ch)
        value = out
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value < 1 << 32:
        raise LogError(f"a metadata id is a non-zero u32: {value!r}", status=400)
    return value


MetadataInput = Union["Metadata", Mapping[int | str, bytes | str],
                      Iterable[tuple[int | str, bytes | str]], None]


class Metadata:
    """An ordered list of (id, value) metadata entries, serialized exactly as GDP does."""

    __slots__ = ("_entries",)

    def __init__(self, entries: MetadataInput = None) -> None:
        self._entries: list[tuple[int, bytes]] = []
        if entries is None:
            return
        if isinstance(entries, Metadata):
            self._entries = list(entries._entries)
            return
        items = entries.items() if isinstance(entries, Mapping) else entries
        for key, value in items:
            self.add(key, value)

    def add(self, id: int | str, value: bytes | str) -> Metadata:
        """Append an entry (a str value is stored as its UTF-8 bytes, without a NUL)."""
        if isinstance(value, str):
            value = value.encode("utf-8")
        elif isinstance(value, (bytearray, memoryview)):
            value = bytes(value)
        if not isinstance(value, bytes):
            raise LogError(f"a metadata value is bytes or str, not {type(value).__name__}", status=400)
        if len(self._entries) >= 0xFFFF:
            raise LogError("too many metadata entries (at most 65535)", status=413)
        self._entries.append((mdid(id), value))
        return self

    def get(self, id: int | str, default: bytes | None = None) -> bytes | None:
        """The first value with this id, or `default`."""
        key = mdid(id)
        for entry_id, value in self._entries:
            if entry_id == key:
                return value
        return default

    def __contains__(self, id: object) -> bool:
        return isinstance(id, (int, str)) and self.get(id) is not None

    def __iter__(self) -> Iterator[tuple[int, bytes]]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Metadata) and other._entries == self._entries

    def __repr__(self) -> str:
        return f"Metadata({self._entries!r})"

    def serialize(self) -> bytes:
        """GDP's serialization: u16 count, {u32 id, u32 len} per entry, then the data blobs."""
        head = [_COUNT.pack(len(self._entries))]
        head += [_ENTRY.pack(entry_id, len(value)) for entry_id, value in self._entries]
        return b"".join(head) + b"".join(value for _, value in self._entries)

    @classmethod
    def parse(cls, data: bytes) -> Metadata:
        """The inverse of `serialize`; LogError 400 if `data` is not exactly one serialization."""
        data = bytes(data)
        try:
            (count,) = _COUNT.unpack_from(data, 0)
            heads = [_ENTRY.unpack_from(data, _COUNT.size + i * _ENTRY.size) for i in range(count)]
        except struct.error as exc:
            raise LogError(f"truncated metadata: {exc}", status=400) from exc
        pos = _COUNT.size + count * _ENTRY.size
        md = cls()
        for entry_id, length in heads:
            if entry_id == _EOLIST or pos + length > len(data):
                raise LogError("malformed metadata entry", status=400, mdid=entry_id)
            md._entries.append((entry_id, data[pos:pos + length]))
            pos += length
        if pos != len(data):
            raise LogError(f"{len(data) - pos} stray bytes after the metadata", status=400)
        return md


def metadata_name(md: Metadata) -> LogName:
    """The name of a log created without one: SHA-256 of the whole serialized metadata."""
    return LogName(hashlib.sha256(md.serialize()).digest())


def format_ctm(ts_ns: int) -> str:
    """GDP's CTM text for a time in ns since the epoch: `YYYY-MM-DDTHH:MM:SS.nnnnnnnnnZ` (UTC)."""
    sec, nsec = divmod(ts_ns, 1_000_000_000)
    day = _dt.datetime.fromtimestamp(sec, tz=_dt.UTC)
    return f"{day:%Y-%m-%dT%H:%M:%S}.{nsec:09d}Z"


def parse_ctm(text: str | bytes) -> int:
    """The inverse of `format_ctm` (ns since the epoch). A GDP `/accuracy` suffix is ignored."""
    if isinstance(text, bytes):
        text = text.decode("ascii", "replace")
    text = text.split("/", 1)[0]
    try:
        whole, frac = text.rstrip("Z").split(".")
        day = _dt.datetime.strptime(whole, "%Y-%m-%dT%H:%M:%S").replace(tzinfo=_dt.UTC)
        nsec = int(frac.ljust(9, "0")[:9])
    except ValueError as exc:
        raise LogError(f"not a CTM time: {text!r}", status=400) from exc
    return int(day.timestamp()) * 1_000_000_000 + nsec


def default_creator() -> str:
    """`user@host` for CID, as gcl-create builds it (user name, else uid; fully qualified host)."""
    try:
        user = getpass.getuser()
    except (OSError, KeyError):  # no passwd entry and no LOGNAME/USER: gcl-create falls back to the uid
        import os
        user = str(os.getuid())
    return f"{user}@{socket.getfqdn() or 'localhost'}"


def encode_pub(public_key: bytes) -> bytes:
    """The PUB value for a log public key as `Signer.public_key` gives it: a raw 32-byte Ed25519
    key (keytype 4) or an EC key's DER SubjectPublicKeyInfo (keytype 3). Layout above."""
    # cryptography is imported here, on first use: it is slow to import
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    public_key = bytes(public_key)
    if len(public_key) == 32:
        try:
            der = Ed25519PublicKey.from_public_bytes(public_key).public_bytes(
                serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
        except ValueError as exc:
            raise LogError(f"not an Ed25519 public key: {exc}", status=400) from exc
        return _PUB_HEAD.pack(MD_SHA256, KEYTYPE_ED25519, _ED25519_BITS) + der
    try:
        key = serialization.load_der_public_key(public_key)
    except ValueError as exc:
        raise LogError(f"not a log public key (32-byte Ed25519 or DER EC): {exc}", status=400) from exc
    if not isinstance(key, ec.EllipticCurvePublicKey):
        raise LogError(f"not a log public key: {type(key).__name__} (Ed25519 or EC)", status=400)
    der = key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return _PUB_HEAD.pack(MD_SHA256, KEYTYPE_EC, key.curve.key_size) + der


_KEYTYPE_NAMES = {KEYTYPE_RSA: "RSA", KEYTYPE_DSA: "DSA", KEYTYPE_EC: "EC", KEYTYPE_ED25519: "Ed25519"}


def decode_pub(value: bytes) -> bytes:
    """The log public key in a PUB value, as `Verifier` takes it: the raw 32 bytes of an Ed25519
    key (keytype 4), the DER SubjectPublicKeyInfo of an EC key (keytype 3). LogError 400 for
    another key type or digest, or a key that is not of the type PUB names."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    if len(value) < _PUB_HEAD.size + 1:
        raise LogError("PUB metadata is too short", status=400)
    md_alg, keytype, _bits = _PUB_HEAD.unpack_from(value, 0)
    if keytype not in (KEYTYPE_EC, KEYTYPE_ED25519) or md_alg != MD_SHA256:
        kind = _KEYTYPE_NAMES.get(keytype, "unknown")
        raise LogError(f"unsupported PUB key (keytype {keytype}, {kind}; md_alg {md_alg}); hoard logs use "
                       f"EC (keytype {KEYTYPE_EC}) or Ed25519 (keytype {KEYTYPE_ED25519}) with SHA-256 "
                       f"(md_alg {MD_SHA256})", status=400)
    try:
        key = serialization.load_der_public_key(value[_PUB_HEAD.size:])
    except ValueError as exc:
        raise LogError(f"PUB metadata does not hold a DER public key: {exc}", status=400) from exc
    if keytype == KEYTYPE_EC:
        if not isinstance(key, ec.EllipticCurvePublicKey):
            raise LogError("PUB metadata says EC (keytype 3) but holds another key", status=400)
        return key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    if not isinstance(key, Ed25519PublicKey):
        raise LogError("PUB metadata says Ed25519 (keytype 4) but holds another key", status=400)
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
