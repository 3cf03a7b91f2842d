"""dag-pb (codec 0x70): the protobuf node format of IPFS's UnixFS, encoded and decoded strictly.

A node is `PBNode { repeated PBLink Links = 2; optional bytes Data = 1; }` and a link is
`PBLink { optional bytes Hash = 1; optional string Name = 2; optional uint64 Tsize = 3; }`.
The IPLD dag-pb spec fixes one byte form, which is not what a generic protobuf serializer
writes: Links come before Data, a link's fields come in order Hash, Name, Tsize, and links are
sorted by name (bytewise; a stable sort, so a file's unnamed links keep their order). kubo
(go-merkledag) writes Name and Tsize on every link, even an empty name; `encode_node` does too,
which is what makes hoard's UnixFS CIDs equal to kubo's.

`decode_node` accepts exactly what the spec allows (fields in canonical order, no unknown or
repeated scalar fields, minimal varints, a Hash on every link) and raises InvalidArgumentError
for anything else; it is safe on untrusted bytes (work is linear in the input length).

No PyPI package fits: `ipld-dag-pb` is an unreleased 0.0.1, `libipld` has no dag-pb, and
py-libp2p's bitswap helpers use the generic protobuf serializer (fields in number order).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from hoard.errors import InvalidArgumentError
from hoard.ids.cid import CID

#: Largest dag-pb node decoded (kubo's and bitswap's block limit is 2 MiB).
MAX_NODE_BYTES = 2 << 20


@dataclass(frozen=True, slots=True)
class PBLink:
    """A dag-pb link: the child's CID, its name ("" in a file node) and its cumulative size."""

    cid: CID
    name: str = ""
    tsize: int = 0


@dataclass(frozen=True, slots=True)
class PBNode:
    links: tuple[PBLink, ...]
    data: bytes | None


def _uvarint(n: int) -> bytes:
    out = bytearray()
    while n > 0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def _bytes_field(tag: int, value: bytes) -> bytes:
    return bytes([tag]) + _uvarint(len(value)) + value


def encode_link(link: PBLink) -> bytes:
    name = link.name.encode("utf-8")
    if link.tsize < 0:
        raise InvalidArgumentError(f"dag-pb link size must not be negative: {link.tsize}")
    return (_bytes_field(0x0A, link.cid.binary) + _bytes_field(0x12, name)
            + b"\x18" + _uvarint(link.tsize))


def encode_node(links: Sequence[PBLink], data: bytes | None) -> bytes:
    """The canonical dag-pb bytes of a node: links sorted by name (stable), then Data if any."""
    ordered = sorted(links, key=lambda link: link.name.encode("utf-8"))
    parts = [_bytes_field(0x12, encode_link(link)) for link in ordered]
    if data is not None:
        parts.append(_bytes_field(0x0A, data))
    return b"".join(parts)


class _Reader:
    __slots__ = ("buf", "end", "pos", "what")

    def __init__(self, buf: memoryview, pos: int, end: int, what: str) -> None:
        self.buf, self.pos, self.end, self.what = buf, pos, end, what

    def fail(self, why: str) -> InvalidArgumentError:
        return InvalidArgumentError(f"invalid {self.what}: {why}")

    def varint(self) -> int:
        value = shift = 0
        start = self.pos
        while True:
            if self.pos >= self.end:
                raise self.fail("truncated varint")
            byte = self.buf[self.pos]
            self.pos += 1
            value |= (byte & 0x7F) << shift
            if not byte & 0x80:
                if byte == 0 and self.pos - start > 1:
                    raise self.fail("non-minimal varint")
                return value
            shift += 7
            if shift >= 64:
                raise self.fail("varint longer than 64 bits")

    def length_delimited(self) -> tuple[int, int]:
        length = self.varint()
        if length > self.end - self.pos:
            raise self.fail("field runs past the end")
        start = self.pos
        self.pos += length
        return start, self.pos


def decode_node(block: bytes | memoryview) -> PBNode:
    """Decode a dag-pb block strictly (see the module doc)."""
    if len(block) > MAX_NODE_BYTES:
        raise InvalidArgumentError(f"invalid dag-pb node: {len(block)} bytes is over {MAX_NODE_BYTES}")
    buf = memoryview(block)
    r = _Reader(buf, 0, len(buf), "dag-pb node")
    links: list[PBLink] = []
    data: bytes | None = None
    while r.pos < r.end:
        key = r.varint()
        if key == 0x12:  # Links
            if data is not None:
                raise r.fail("a link after Data")
            start, end = r.length_delimited()
            links.append(_decode_link(buf, start, end))
        elif key == 0x0A:  # Data
            if data is not None:
                raise r.fail("Data twice")
            start, end = r.length_delimited()
            data = bytes(buf[start:end])
        else:
            raise r.fail(f"unexpected field key 0x{key:x}")
    return PBNode(tuple(links), data)


def _decode_link(buf: memoryview, start: int, end: int) -> PBLink:
    r = _Reader(buf, start, end, "dag-pb link")
    cid: CID | None = None
    name: str | None = None
    tsize: int | None = None
    last = 0
    while r.pos < r.end:
        key = r.varint()
        field = key >> 3
        if field <= last:
            raise r.fail("fields out of order or repeated")
        last = field
        if key == 0x0A:
            s, e = r.length_delimited()
            cid = CID(buf[s:e])  # raises InvalidCidError (an InvalidArgumentError)
        elif key == 0x12:
            s, e = r.length_delimited()
            try:
                name = bytes(buf[s:e]).decode("utf-8")
            except UnicodeDecodeError as exc:
                raise r.fail("link name is not UTF-8") from exc
        elif key == 0x18:
            tsize = r.varint()
        else:
            raise r.fail(f"unexpected field key 0x{key:x}")
    if cid is None:
        raise r.fail("link without Hash")
    return PBLink(cid, name or "", tsize or 0)
