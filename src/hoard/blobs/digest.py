"""`BlobDigest`: the BLAKE3-256 digest that names a castore blob (or one of its chunks)."""

from __future__ import annotations

import base64
import binascii
from typing import Final

import blake3

from hoard.errors import InvalidArgumentError
from hoard.ids.cid import BLAKE3, CID, DIGEST_LEN, RAW


class BlobDigest:
    """32 bytes of BLAKE3. Prints as `b3:<base64>` (castore's Display form); `hex()` too.

    A blob's digest is the hash of all its bytes; a chunk's digest is the hash of the chunk,
    which is also the digest inside the chunk's raw-block CID (`cid`).
    """

    __slots__ = ("_bytes",)

    def __init__(self, raw: bytes) -> None:
        if not isinstance(raw, (bytes, bytearray, memoryview)):
            raise InvalidArgumentError(f"a blob digest is 32 bytes, got {type(raw).__name__}")
        if len(raw) != DIGEST_LEN:
            raise InvalidArgumentError(f"invalid digest length: expected {DIGEST_LEN} bytes, got {len(raw)}",
                                       length=len(raw))
        self._bytes = bytes(raw)

    @classmethod
    def of(cls, data: bytes | memoryview) -> BlobDigest:
        """The digest of `data`."""
        return cls(blake3.blake3(data).digest())

    @classmethod
    def from_cid(cls, cid: CID) -> BlobDigest:
        """The digest inside a BLAKE3 block CID; InvalidArgumentError for any other hash.

        Castore names content by BLAKE3 only: a sha2-256 digest (a Logos or IPFS block) must
        never be taken for one.
        """
        if cid.hash_code != BLAKE3:
            raise InvalidArgumentError(f"block {cid} is hashed with {cid.hash_name}, not blake3: "
                                       "it has no castore digest", cid=str(cid))
        return cls(cid.digest)

    @classmethod
    def parse(cls, value: str | bytes | BlobDigest) -> BlobDigest:
        """From 32 raw bytes, `b3:<base64>`, or 64 hex digits."""
        if isinstance(value, BlobDigest):
            return value
        if isinstance(value, (bytes, bytearray, memoryview)):
            return cls(value)
        if not isinstance(value, str):
            raise InvalidArgumentError(f"cannot parse blob digest from {type(value).__name__}")
        text = value.strip()
        try:
            if text.startswith("b3:"):
                raw = base64.b64decode(text[3:], validate=True)
            elif len(text) == 2 * DIGEST_LEN:
                raw = bytes.fromhex(text)
            else:
                raise ValueError("neither b3:<base64> nor 64 hex digits")
        except (ValueError, binascii.Error) as exc:
            raise InvalidArgumentError(f"cannot parse blob digest {value!r}: {exc}", digest=value) from exc
        return cls(raw)

    @property
    def cid(self) -> CID:
        """The CID of the raw block with this digest (a chunk, or a single-chunk blob)."""
        return CID.from_digest(RAW, self._bytes)

    def __bytes__(self) -> bytes:
        return self._bytes

    def hex(self) -> str:
        return self._bytes.hex()

    def __str__(self) -> str:
        return "b3:" + base64.b64encode(self._bytes).decode()

    def __repr__(self) -> str:
        return f"BlobDigest({str(self)!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, BlobDigest) and other._bytes == self._bytes

    def __hash__(self) -> int:
        return hash(self._bytes)


EMPTY_BLOB: Final = BlobDigest(blake3.blake3(b"").digest())
