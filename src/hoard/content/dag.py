"""dag-cbor: IPLD's strict CBOR profile, for hoard's manifests, index nodes and CAR headers.

`encode` writes what the DAG-CBOR spec requires of an encoder, so any IPLD tool reads it and
derives the same CID:

* floats are always 64-bit (0xfb), never half or single precision, and never NaN or ±Infinity;
* map keys are text strings, sorted length-first, then bytewise; no key twice;
* integers lie in CBOR's 64-bit range (-2**64 .. 2**64-1) and take the fewest bytes; lengths too;
* definite lengths only; the one tag is 42, a link: a 0x00 byte then the binary CID;
* the only simple values are false, true and null.

`decode` is strict by default: the block must be exactly the bytes `encode` writes for the
value it decodes to, so half-precision floats, unsorted or non-text keys, integers or lengths
in more bytes than needed, `undefined` and other tags are all refused, as are indefinite
lengths, duplicate keys, invalid UTF-8 and any tag but 42. `strict=False` drops the
canonical-form check (for walking blocks another encoder wrote); the other rules still hold.

The codec is cbor2 (its C encoder, canonical mode for the key order) with hoard's own encoders
for floats and links. libipld (Rust) was measured and is faster, but it decodes a link as a
plain byte string and cannot write one, so a manifest's CIDs would not survive it (docs/ipfs.md).
"""

from __future__ import annotations

import datetime
import decimal
import fractions
import ipaddress
import math
import re
import struct
import uuid
from collections.abc import Callable, Mapping
from email.mime.text import MIMEText
from typing import Any

import cbor2

from hoard.errors import IntegrityError
from hoard.ids.cid import CID, DAG_CBOR

CID_TAG = 42
_F64 = struct.Struct(">d")
_INT_RANGE = range(-(1 << 64), 1 << 64)


def _float(encoder: cbor2.CBOREncoder, value: float) -> None:
    if not math.isfinite(value):
        raise ValueError(f"dag-cbor has no {value!r}")
    encoder.write(b"\xfb" + _F64.pack(value))


def _int(encoder: cbor2.CBOREncoder, value: int) -> None:
    if value not in _INT_RANGE:
        raise ValueError(f"integer {value} is outside dag-cbor's 64-bit range")
    encoder.encode_int(value)


def _map(encoder: cbor2.CBOREncoder, value: Mapping[Any, Any]) -> None:
    for key in value:
        if type(key) is not str:
            raise TypeError(f"dag-cbor map keys are strings, not {type(key).__name__}")
    encoder.encode_map(value)  # canonical: keys sorted length-first, then bytewise


def _link(encoder: cbor2.CBOREncoder, value: CID) -> None:
    encoder.encode_semantic(CID_TAG, b"\x00" + value.binary)


def _refuse(encoder: cbor2.CBOREncoder, value: Any) -> None:
    raise TypeError(f"cannot encode {type(value).__name__} as dag-cbor")


_REFUSED: tuple[type, ...] = (
    set, frozenset, complex, datetime.datetime, datetime.date, decimal.Decimal, fractions.Fraction, uuid.UUID,
    re.Pattern, MIMEText, cbor2.CBORTag, cbor2.CBORSimpleValue, type(cbor2.undefined),
    ipaddress.IPv4Address, ipaddress.IPv6Address, ipaddress.IPv4Network, ipaddress.IPv6Network,
    ipaddress.IPv4Interface, ipaddress.IPv6Interface,
)
_ENCODERS: dict[type, Callable[[cbor2.CBOREncoder, Any], None]] = {
    float: _float, int: _int, dict: _map, CID: _link, **{t: _refuse for t in _REFUSED},
}


def _tag_hook(tag: cbor2.CBORTag, _immutable: bool = False) -> Any:  # cbor2 6.x signature
    if tag.tag == CID_TAG:
        value = tag.value
        if not isinstance(value, bytes) or value[:1] != b"\x00":
            raise ValueError("tag 42 must hold 0x00 + binary CID")
        return CID(value[1:])
    raise ValueError(f"unexpected CBOR tag {tag.tag} in dag-cbor")


def _no_tag(tag: int) -> Callable[[Any, bool], Any]:
    def refuse(_value: Any, _immutable: bool = False) -> Any:
        raise ValueError(f"unexpected CBOR tag {tag} in dag-cbor")

    return refuse


# The tags cbor2 decodes itself (dates, bignums, decimals, sets, shared values...): never dag-cbor.
_NATIVE_TAGS = (0, 1, 2, 3, 4, 5, 25, 28, 29, 30, 35, 36, 37, 52, 54, 100, 256, 258, 260, 261, 1004, 55799)
_SEMANTIC = {tag: _no_tag(tag) for tag in _NATIVE_TAGS}


def encode(obj: Any) -> bytes:
    """Encode `obj` (dicts with str keys, lists, str, bytes, int, float, bool, None, CID) as
    dag-cbor. Anything else, or a value dag-cbor cannot hold, raises TypeError or ValueError."""
    return cbor2.dumps(obj, canonical=True, encoders=_ENCODERS, default=_refuse)


def decode(data: bytes | memoryview, what: str = "dag-cbor node", *, strict: bool = True) -> Any:
    """Decode dag-cbor; malformed input (or, when `strict`, input not in the canonical form
    `encode` writes) is an IntegrityError naming `what`."""
    raw = bytes(data)
    try:
        value = cbor2.loads(raw, tag_hook=_tag_hook, semantic_decoders=_SEMANTIC, allow_duplicate_keys=False,
                            allow_indefinite=False)
    except Exception as exc:
        cause = exc.__cause__ or exc.__context__  # cbor2 wraps what a hook raised
        raise IntegrityError(f"malformed {what}: {exc}" + (f" ({cause})" if cause else "")) from exc
    if strict:
        try:
            canonical = encode(value)
        except Exception as exc:
            raise IntegrityError(f"malformed {what}: not dag-cbor: {exc}") from exc
        if canonical != raw:
            at = next((i for i, (a, b) in enumerate(zip(raw, canonical, strict=False)) if a != b),
                      min(len(raw), len(canonical)))
            raise IntegrityError(f"malformed {what}: not in dag-cbor's canonical form from byte {at} (floats are "
                                 "64-bit, map keys sorted length-first, integers and lengths in the fewest bytes)")
    return value


def encode_node(obj: Any) -> tuple[CID, bytes]:
    """Encode a node and return (its dag-cbor CID, its bytes)."""
    data = encode(obj)
    return CID.of(data, DAG_CBOR), data
