"""CIDs of the three dataset formats hoard stores (DESIGN.md "One data model").

A `CID` is an immutable value holding a binary CID, one of:

* **CIDv1** `varint(1) varint(codec) varint(hash) varint(32) digest`, with codec raw (0x55),
  dag-pb (0x70), dag-cbor (0x71), codex-manifest (0xCD01), codex-block (0xCD02) or codex-root
  (0xCD03), and hash blake3 (0x1e) or sha2-256 (0x12), both 32 bytes. The codex codecs are
  three-byte varints (0xCD01 is `81 9a 03`); Logos renamed them storage-* with the same numbers.
* **CIDv0**, IPFS's original form: the binary CID is a bare sha2-256 multihash (`12 20`
  digest), the codec is implied (dag-pb), and the text form is base58btc without a multibase
  prefix (`Qm...`, 46 characters).

hoard's own format (raw blocks, dag-cbor manifests) hashes with BLAKE3; Logos (codex-*) and
IPFS (raw, dag-pb) use sha2-256. `digest` is always the multihash digest and `hash_code` says
which hash made it: code that looks content up by a BLAKE3 digest must check `hash_code`.

Text: a CIDv1 prints base58btc (`z...`), as Logos Storage prints it; `to_base32()` gives the
`b...` form IPFS tools print (`bafy...`, `bafkrei...`). `parse` accepts any multibase, and the
46-character `Qm...` CIDv0 form, following the CID spec's decoding rules (a multibase text
whose first decoded byte is 0x12 is refused: CIDv0 is never multibase-encoded).

Every binary CID is validated by one dictionary lookup of its prefix (all canonical prefixes
are known in advance), so decoders of untrusted bytes stay cheap and reject non-minimal
varints, unknown codecs, unknown hashes and wrong lengths alike. Building a CID from a digest
is a byte concatenation and the text form is cached, so the hot path (one per block) is cheap.
"""

from __future__ import annotations

import hashlib
from typing import Final

import blake3
import multibase  # type: ignore[import-untyped]

from hoard.errors import IntegrityError, InvalidCidError
from hoard.limits import MAX_CID_BYTES, MAX_CID_TEXT

# -- multicodec codes ------------------------------------------------------------------
RAW: Final = 0x55
DAG_PB: Final = 0x70
DAG_CBOR: Final = 0x71
CODEX_MANIFEST: Final = 0xCD01
CODEX_BLOCK: Final = 0xCD02
CODEX_ROOT: Final = 0xCD03
# -- multihash codes -------------------------------------------------------------------
BLAKE3: Final = 0x1E
SHA2_256: Final = 0x12
#: Length of every digest hoard accepts (blake3-256 and sha2-256).
DIGEST_LEN: Final = 32

CODEC_NAMES: Final[dict[int, str]] = {
    RAW: "raw", DAG_PB: "dag-pb", DAG_CBOR: "dag-cbor",
    CODEX_MANIFEST: "codex-manifest", CODEX_BLOCK: "codex-block", CODEX_ROOT: "codex-root",
}
HASH_NAMES: Final[dict[int, str]] = {BLAKE3: "blake3", SHA2_256: "sha2-256"}


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


# (version, codec, hash code): one shared tuple per kind, referenced by every CID of that kind
_Info = tuple[int, int, int]
_V0_PREFIX: Final = bytes([SHA2_256, DIGEST_LEN])
_V0_INFO: Final[_Info] = (0, DAG_PB, SHA2_256)
_KIND: dict[int, dict[int, tuple[bytes, _Info]]] = {}  # hash -> codec -> (CIDv1 prefix, info)
_INFO_BY_PREFIX: dict[bytes, _Info] = {_V0_PREFIX: _V0_INFO}
for _hash_code in HASH_NAMES:
    for _codec in CODEC_NAMES:
        _prefix = b"\x01" + _varint(_codec) + _varint(_hash_code) + _varint(DIGEST_LEN)
        _INFO_BY_PREFIX[_prefix] = (1, _codec, _hash_code)
        _KIND.setdefault(_hash_code, {})[_codec] = (_prefix, _INFO_BY_PREFIX[_prefix])


def _hash(hash_code: int, data: bytes | memoryview) -> bytes:
    if hash_code == BLAKE3:
        return blake3.blake3(data).digest()
    return hashlib.sha256(data).digest()


class CID:
    """A content identifier: CIDv1 or CIDv0, one of hoard's codecs, a blake3/sha2-256 digest.

    `CID(binary)` validates a binary CID (CIDv1, or a CIDv0 bare multihash) and raises
    InvalidCidError for anything else.
    """

    __slots__ = ("_bytes", "_info", "_str")

    def __init__(self, binary: bytes | bytearray | memoryview) -> None:
        raw = bytes(binary)
        info = _INFO_BY_PREFIX.get(raw[:-DIGEST_LEN]) if len(raw) > DIGEST_LEN else None
        if info is None:
            raise InvalidCidError(
                "not a hoard CID (CIDv1 or CIDv0; codec raw, dag-pb, dag-cbor or codex-*; "
                f"blake3 or sha2-256, 32 bytes): {raw[:MAX_CID_BYTES].hex()}", cid=raw[:MAX_CID_BYTES].hex())
        self._bytes = raw
        self._info = info
        self._str: str | None = None

    # -- construction ------------------------------------------------------------------
    @classmethod
    def from_digest(cls, codec: int, digest: bytes, hash_code: int = BLAKE3) -> CID:
        """The CIDv1 of content of codec `codec` whose `hash_code` digest is `digest`."""
        try:
            prefix, info = _KIND[hash_code][codec]
        except KeyError:
            raise InvalidCidError(f"cannot build a CID with codec 0x{codec:x} and hash 0x{hash_code:x}",
                                  cid="") from None
        if len(digest) != DIGEST_LEN:
            raise InvalidCidError(f"a digest is {DIGEST_LEN} bytes, got {len(digest)}", cid="")
        obj = cls.__new__(cls)
        obj._bytes = prefix + digest
        obj._info = info
        obj._str = None
        return obj

    @classmethod
    def v0(cls, digest: bytes) -> CID:
        """The CIDv0 (dag-pb, sha2-256) with this sha2-256 digest."""
        if len(digest) != DIGEST_LEN:
            raise InvalidCidError(f"a CIDv0 digest is {DIGEST_LEN} bytes, got {len(digest)}", cid="")
        obj = cls.__new__(cls)
        obj._bytes = _V0_PREFIX + digest
        obj._info = _V0_INFO
        obj._str = None
        return obj

    @classmethod
    def of(cls, data: bytes | memoryview, codec: int = RAW, hash_code: int = BLAKE3) -> CID:
        """Hash `data` (BLAKE3 unless `hash_code` says sha2-256) and return its CIDv1."""
        if codec not in _KIND.get(hash_code, {}):
            raise InvalidCidError(f"cannot build a CID with codec 0x{codec:x} and hash 0x{hash_code:x}", cid="")
        return cls.from_digest(codec, _hash(hash_code, data), hash_code)

    @classmethod
    def sha256(cls, data: bytes | memoryview, codec: int = RAW) -> CID:
        """The CIDv1 of `data` with a sha2-256 multihash (the IPFS and Logos hash)."""
        return cls.from_digest(codec, hashlib.sha256(data).digest(), SHA2_256)

    @classmethod
    def parse(cls, text: str | bytes | bytearray | memoryview | CID) -> CID:
        """Parse a CID from its text form (any multibase, or `Qm...` CIDv0) or binary form."""
        if isinstance(text, CID):
            return text
        if isinstance(text, (bytes, bytearray, memoryview)):
            if len(text) > MAX_CID_BYTES:
                raise InvalidCidError(f"cannot parse cid: {len(text)} bytes is too long for a CID", cid="")
            return cls(bytes(text))
        if not isinstance(text, str):
            raise InvalidCidError(f"cannot parse cid: {type(text).__name__} is not a CID", cid="")
        if len(text) > MAX_CID_TEXT:
            # refused before decoding: multibase decoders are quadratic in the input length
            raise InvalidCidError(
                f"cannot parse cid: {len(text)} characters is too long for a CID (limit {MAX_CID_TEXT})",
                cid=text[:64] + "...")
        text = text.strip()
        if not text:
            raise InvalidCidError(f"cannot parse cid: {text!r}", cid=text)
        v0 = len(text) == 46 and text.startswith("Qm")
        try:
            # a CIDv0 is bare base58btc: decode it as the multibase base58btc text 'z' + text
            binary = bytes(multibase.decode("z" + text if v0 else text))
        except Exception as exc:  # py-multibase raises ValueError, KeyError, ... for junk
            raise InvalidCidError(f"cannot parse cid: {text}", cid=text) from exc
        if not v0 and binary[:1] == bytes([SHA2_256]):
            raise InvalidCidError(f"cannot parse cid: {text} (a CIDv0 is never multibase-encoded)", cid=text)
        try:
            return cls(binary)
        except InvalidCidError as exc:
            raise InvalidCidError(f"cannot parse cid: {text} ({_why_not(binary)})", cid=text) from exc

    # -- views -------------------------------------------------------------------------
    @property
    def version(self) -> int:
        """0 or 1."""
        return self._info[0]

    @property
    def codec(self) -> int:
        """The multicodec code of the content (dag-pb for a CIDv0)."""
        return self._info[1]

    @property
    def codec_name(self) -> str:
        return CODEC_NAMES[self._info[1]]

    @property
    def hash_code(self) -> int:
        """The multihash code: BLAKE3 (0x1e) or SHA2_256 (0x12)."""
        return self._info[2]

    @property
    def hash_name(self) -> str:
        return HASH_NAMES[self._info[2]]

    @property
    def digest(self) -> bytes:
        """The 32-byte multihash digest (BLAKE3 or sha2-256: see `hash_code`)."""
        return self._bytes[-DIGEST_LEN:]

    @property
    def multihash(self) -> bytes:
        """The multihash: `varint(hash) varint(32) digest` (the whole binary form of a CIDv0)."""
        return self._bytes[-DIGEST_LEN - 2:]

    def __bytes__(self) -> bytes:
        return self._bytes

    @property
    def binary(self) -> bytes:
        return self._bytes

    def to_v1(self) -> CID:
        """This CID as CIDv1 (a CIDv0 becomes dag-pb sha2-256 CIDv1; a CIDv1 is returned as is)."""
        return self if self._info[0] == 1 else CID.from_digest(DAG_PB, self.digest, SHA2_256)

    def to_base32(self) -> str:
        """The base32 text form IPFS tools print (`bafy...`); a CIDv0 is given as its CIDv1."""
        return str(multibase.encode("base32", self.to_v1()._bytes).decode())

    def __str__(self) -> str:
        if self._str is None:
            text = str(multibase.encode("base58btc", self._bytes).decode())
            self._str = text[1:] if self._info[0] == 0 else text  # a CIDv0 has no multibase prefix
        return self._str

    def __repr__(self) -> str:
        return f"CID({str(self)!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, CID) and other._bytes == self._bytes

    def __lt__(self, other: CID) -> bool:
        return self._bytes < other._bytes

    def __hash__(self) -> int:
        return hash(self._bytes)

    def __reduce__(self) -> tuple[type[CID], tuple[bytes]]:  # picklable, for process pools and tests
        return (CID, (self._bytes,))

    def verify(self, data: bytes | memoryview) -> None:
        """Raise IntegrityError unless `data` hashes, with this CID's own hash, to its digest."""
        actual = _hash(self._info[2], data)
        if actual != self.digest:
            raise IntegrityError(
                f"block {self} does not match its content (got {self.hash_name} {actual.hex()})",
                cid=str(self), expected=self.digest.hex(), actual=actual.hex(), hash=self.hash_name,
            )


def _why_not(binary: bytes) -> str:
    """Why a decoded binary CID is refused, for the error message."""
    version, pos = _read_varint(binary, 0)
    if version != 1:
        return f"CID version {version} is not supported" if version is not None else "truncated"
    codec, pos = _read_varint(binary, pos)
    if codec is None:
        return "truncated"
    if codec not in CODEC_NAMES:
        return f"unsupported codec 0x{codec:x}"
    hash_code, pos = _read_varint(binary, pos)
    if hash_code is None:
        return "truncated"
    if hash_code not in HASH_NAMES:
        return f"unsupported hash 0x{hash_code:x}: hoard verifies blake3 and sha2-256"
    length, pos = _read_varint(binary, pos)
    if length != DIGEST_LEN or len(binary) - pos != DIGEST_LEN:
        return f"bad digest length (a {HASH_NAMES[hash_code]} digest is {DIGEST_LEN} bytes)"
    return "non-canonical varint"


def _read_varint(data: bytes, pos: int) -> tuple[int | None, int]:
    value = shift = 0
    while pos < len(data) and shift < 64:
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, pos
        shift += 7
    return None, pos

