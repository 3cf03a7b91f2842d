"""CIDs: CIDv1 with a BLAKE3-256 multihash (code 0x1e).

A `CID` is an immutable value holding the binary CID. Parsing text goes through py-cid and
py-multibase (any multibase); the text form is base58btc (`z...`), as Logos Storage prints it.
Building a CID from a digest is a byte concatenation, so the hot path (one per block) is cheap.
"""

from __future__ import annotations

from typing import Final

import blake3
import cid as pycid
import multihash

from hoard.errors import InvalidCidError, IntegrityError
from hoard.limits import MAX_CID_BYTES, MAX_CID_TEXT

RAW: Final = 0x55
DAG_CBOR: Final = 0x71
BLAKE3: Final = 0x1E
DIGEST_LEN: Final = 32

_CODEC_NAMES = {RAW: "raw", DAG_CBOR: "dag-cbor"}
# varint(1) varint(codec) varint(0x1e) varint(32); 0x71 and 0x55 are one-byte varints
_PREFIX = {codec: bytes([1, codec, BLAKE3, DIGEST_LEN]) for codec in _CODEC_NAMES}


class CID:
    """A content identifier: version 1, codec raw or dag-cbor, BLAKE3-256 digest."""

    __slots__ = ("_bytes", "_str")

    def __init__(self, binary: bytes) -> None:
        if len(binary) != 36 or binary[:1] != b"\x01" or binary[1] not in _CODEC_NAMES or binary[2:4] != bytes([BLAKE3, 32]):
            raise InvalidCidError(f"not a hoard CID (CIDv1, raw/dag-cbor, blake3-256): {binary.hex()}", cid=binary.hex())
        self._bytes = bytes(binary)
        self._str: str | None = None

    # -- construction ------------------------------------------------------------------
    @classmethod
    def from_digest(cls, codec: int, digest: bytes) -> CID:
        """The CID of content whose BLAKE3-256 digest is `digest`."""
        obj = cls.__new__(cls)
        obj._bytes = _PREFIX[codec] + digest
        obj._str = None
        return obj

    @classmethod
    def of(cls, data: bytes | memoryview, codec: int = RAW) -> CID:
        """Hash `data` with BLAKE3 and return its CID."""
        return cls.from_digest(codec, blake3.blake3(data).digest())

    @classmethod
    def parse(cls, text: str | bytes | CID) -> CID:
        """Parse a CID from its text form (any multibase) or binary form."""
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
        try:
            parsed = pycid.make_cid(text)
        except Exception as exc:  # py-cid raises ValueError, KeyError, ... for junk
            raise InvalidCidError(f"cannot parse cid: {text}", cid=text) from exc
        if parsed.version != 1:
            raise InvalidCidError(f"cannot parse cid: {text} (CIDv0 is not used by hoard)", cid=text)
        try:
            decoded = multihash.decode(parsed.multihash)
        except Exception as exc:
            raise InvalidCidError(f"cannot parse cid: {text} (bad multihash)", cid=text) from exc
        if decoded.code != BLAKE3 or len(decoded.digest) != DIGEST_LEN:
            raise InvalidCidError(f"unsupported hash in cid {text}: hoard addresses content by blake3-256", cid=text)
        codec = {"raw": RAW, "dag-cbor": DAG_CBOR}.get(parsed.codec)
        if codec is None:
            raise InvalidCidError(f"unsupported codec in cid {text}: {parsed.codec}", cid=text)
        obj = cls.from_digest(codec, decoded.digest)
        obj._str = None
        return obj

    # -- views -------------------------------------------------------------------------
    @property
    def codec(self) -> int:
        return self._bytes[1]

    @property
    def codec_name(self) -> str:
        return _CODEC_NAMES[self._bytes[1]]

    @property
    def digest(self) -> bytes:
        """The 32-byte BLAKE3 digest."""
        return self._bytes[4:]

    @property
    def multihash(self) -> bytes:
        return self._bytes[2:]

    def __bytes__(self) -> bytes:
        return self._bytes

    @property
    def binary(self) -> bytes:
        return self._bytes

    def __str__(self) -> str:
        if self._str is None:
            self._str = str(pycid.CIDv1(self.codec_name, self.multihash))
        return self._str

    def __repr__(self) -> str:
        return f"CID({str(self)!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, CID) and other._bytes == self._bytes

    def __lt__(self, other: CID) -> bool:
        return self._bytes < other._bytes

    def __hash__(self) -> int:
        return hash(self._bytes)

    def __reduce__(self):  # picklable, for process pools and tests
        return (CID, (self._bytes,))

    def verify(self, data: bytes | memoryview) -> None:
        """Raise IntegrityError unless `data` hashes to this CID."""
        actual = blake3.blake3(data).digest()
        if actual != self.digest:
            raise IntegrityError(
                f"block {self} does not match its content (got blake3 {actual.hex()})",
                cid=str(self), expected=self.digest.hex(), actual=actual.hex(),
            )
