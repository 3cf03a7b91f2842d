"""dag-cbor encoding: canonical CBOR with CIDs as tag 42 (a 0x00 byte then the binary CID).

Any IPLD tool can decode what this writes. Decoding is strict: duplicate map keys and
indefinite-length containers are rejected, and tag 42 must carry a hoard CID.
"""

from __future__ import annotations

from typing import Any

import cbor2

from hoard.errors import IntegrityError
from hoard.ids.cid import CID, DAG_CBOR

CID_TAG = 42


def _default(encoder: cbor2.CBOREncoder, value: Any) -> None:
    if isinstance(value, CID):
        encoder.encode(cbor2.CBORTag(CID_TAG, b"\x00" + value.binary))
        return
    raise TypeError(f"cannot encode {type(value).__name__} as dag-cbor")


def _tag_hook(tag: cbor2.CBORTag, _immutable: bool = False) -> Any:  # cbor2 6.x signature
    if tag.tag == CID_TAG:
        value = tag.value
        if not isinstance(value, bytes) or value[:1] != b"\x00":
            raise ValueError("tag 42 must hold 0x00 + binary CID")
        return CID(value[1:])
    raise ValueError(f"unexpected CBOR tag {tag.tag} in dag-cbor")


def encode(obj: Any) -> bytes:
    """Encode `obj` (dicts, lists, str, bytes, int, bool, None, CID) as canonical dag-cbor."""
    return cbor2.dumps(obj, canonical=True, default=_default)


def decode(data: bytes | memoryview, what: str = "dag-cbor node") -> Any:
    """Decode dag-cbor; malformed input is an IntegrityError naming `what`."""
    try:
        return cbor2.loads(bytes(data), tag_hook=_tag_hook, allow_duplicate_keys=False, allow_indefinite=False)
    except Exception as exc:
        raise IntegrityError(f"malformed {what}: {exc}") from exc


def encode_node(obj: Any) -> tuple[CID, bytes]:
    """Encode a node and return (its dag-cbor CID, its bytes)."""
    data = encode(obj)
    return CID.of(data, DAG_CBOR), data
