"""CAR files (content-addressed archives): write CARv1/CARv2, read either, verify every block.

CARv1: `varint(len) header` then sections `varint(len) CID bytes`, where the header is the
dag-cbor map `{"roots": [CID...], "version": 1}`. CARv2 wraps a CARv1 payload: an 11-byte
pragma, a 40-byte header (16 bytes of characteristics, then little-endian u64 data offset,
data size and index offset), the payload at the data offset, and an optional index after it
(ignored here: the reader streams the payload; the writer writes no index, index offset 0).

Reading is streaming and bounded: the header and every section are length-checked before they
are read, each CID must be one hoard verifies (CIDv0, or CIDv1 raw/dag-pb/dag-cbor/codex with a
32-byte sha2-256 or blake3 digest), and each block is verified against its CID before it is
yielded. The first bad byte raises (InvalidArgumentError for a malformed file, IntegrityError
for a block that does not match its CID); a caller that must change nothing on bad input
collects or stages blocks and commits only after the whole file was read.

`libipld` (PyPI) decodes CARs only whole and only with dag-cbor blocks, so the format is
written here, once; the dag-cbor header uses hoard.content.dag.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import BinaryIO

from hoard.content import dag
from hoard.content.formats.dagpb import decode_node
from hoard.errors import IntegrityError, InvalidArgumentError
from hoard.ids.cid import CID, DAG_CBOR, DAG_PB

#: The CARv2 pragma: varint(10) then dag-cbor {"version": 2}.
CARV2_PRAGMA = bytes.fromhex("0aa16776657273696f6e02")
CARV2_HEADER_LEN = 40
#: Largest CARv1 header accepted (a few roots fit in a few hundred bytes).
MAX_HEADER_BYTES = 64 * 1024
#: Most roots in a header.
MAX_ROOTS = 1024
#: Largest block accepted (kubo's and bitswap's limit is 2 MiB; hoard's own blocks are smaller).
MAX_BLOCK_BYTES = 4 << 20

Get = Callable[[CID], bytes]


@dataclass(frozen=True, slots=True)
class CarHeader:
    version: int  # 1 or 2 (the payload is always CARv1)
    roots: tuple[CID, ...]


def _uvarint(n: int) -> bytes:
    out = bytearray()
    while n > 0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def encode_header(roots: Sequence[CID]) -> bytes:
    body = dag.encode({"roots": list(roots), "version": 1})
    return _uvarint(len(body)) + body


def encode_section(cid: CID, data: bytes) -> bytes:
    return _uvarint(len(cid.binary) + len(data)) + cid.binary + data


def iter_car(roots: Sequence[CID], blocks: Iterable[tuple[CID, bytes]]) -> Iterator[bytes]:
    """A CARv1 as a stream of byte strings (header, then one per block): for HTTP responses
    (the trustless gateway's `application/vnd.ipld.car`) and pipes."""
    if not roots:
        raise InvalidArgumentError("a CAR needs at least one root")
    yield encode_header(roots)
    for cid, data in blocks:
        yield encode_section(cid, data)


def write_car(out: BinaryIO, roots: Sequence[CID], blocks: Iterable[tuple[CID, bytes]],
              version: int = 1) -> int:
    """Write a CAR of `blocks` (in the order given) to `out`; returns the bytes written.

    CARv2 needs the payload size up front: it is written after the payload, so `out` must be
    seekable for version 2."""
    if version not in (1, 2):
        raise InvalidArgumentError(f"CAR version must be 1 or 2, got {version}")
    if not roots:
        raise InvalidArgumentError("a CAR needs at least one root")
    start = out.tell() if version == 2 else 0
    if version == 2:
        out.write(CARV2_PRAGMA + bytes(CARV2_HEADER_LEN))
    written = 0
    for part in iter_car(roots, blocks):
        out.write(part)
        written += len(part)
    if version == 1:
        return written
    end = out.tell()
    data_offset = len(CARV2_PRAGMA) + CARV2_HEADER_LEN
    out.seek(start + len(CARV2_PRAGMA))
    out.write(bytes(16) + struct.pack("<QQQ", data_offset, written, 0))
    out.seek(end)
    return end - start


def links_of(cid: CID, block: bytes) -> list[CID]:
    """The CIDs a block links to: dag-pb links, CIDs anywhere in a dag-cbor node, none for raw.
    Other tools' dag-cbor is read leniently (a verified block need not be in hoard's canonical
    form to be walked; hoard's own nodes are decoded strictly where they are used)."""
    if cid.codec == DAG_PB:
        return [link.cid for link in decode_node(block).links]
    if cid.codec == DAG_CBOR:
        found: list[CID] = []
        stack: list[object] = [dag.decode(block, strict=False)]
        while stack:
            item = stack.pop()
            if isinstance(item, CID):
                found.append(item)
            elif isinstance(item, dict):
                stack.extend(reversed(list(item.values())))
            elif isinstance(item, list):
                stack.extend(reversed(item))
        return found
    return []


def walk_dag(root: CID, get: Get) -> Iterator[tuple[CID, bytes]]:
    """Every block of the DAG under `root`, depth-first in link order (the order kubo and
    Helia export), each once, each verified against its CID."""
    seen: set[CID] = set()
    stack = [root]
    while stack:
        cid = stack.pop()
        if cid in seen:
            continue
        seen.add(cid)
        block = get(cid)
        cid.verify(block)
        yield cid, block
        stack.extend(reversed(links_of(cid, block)))


def export_car(out: BinaryIO, root: CID, get: Get, version: int = 1) -> int:
    """Write the DAG under `root` as a CAR with that single root."""
    return write_car(out, [root], walk_dag(root, get), version)


class _Stream:
    """Exact reads from a binary stream, within an optional byte limit (a CARv2 payload)."""

    def __init__(self, f: BinaryIO, limit: int | None = None) -> None:
        self.f, self.limit, self.pos = f, limit, 0

    def read(self, n: int, what: str) -> bytes:
        if self.limit is not None and self.pos + n > self.limit:
            raise InvalidArgumentError(f"invalid CAR: {what} runs past the CARv2 data size")
        parts: list[bytes] = []
        want = n
        while want:
            part = self.f.read(want)
            if not part:
                raise InvalidArgumentError(f"invalid CAR: truncated {what}")
            parts.append(part)
            want -= len(part)
        self.pos += n
        return b"".join(parts) if len(parts) != 1 else parts[0]

    def first_byte(self) -> int | None:
        """The next byte, or None at the clean end of the payload."""
        if self.limit is not None and self.pos >= self.limit:
            return None
        byte = self.f.read(1)
        if not byte:
            return None
        self.pos += 1
        return byte[0]

    def varint(self, what: str, first: int | None = None) -> int:
        value = shift = 0
        for _ in range(10):
            byte = self.read(1, what)[0] if first is None else first
            first = None
            value |= (byte & 0x7F) << shift
            if not byte & 0x80:
                return value
            shift += 7
        raise InvalidArgumentError(f"invalid CAR: {what} varint too long")


def _read_v1_header(s: _Stream) -> tuple[int, tuple[CID, ...]]:
    length = s.varint("header length")
    if not 0 < length <= MAX_HEADER_BYTES:
        raise InvalidArgumentError(f"invalid CAR: header length {length}")
    raw = s.read(length, "header")
    try:
        header = dag.decode(raw, "CAR header", strict=False)  # other writers' headers
    except IntegrityError as exc:
        raise InvalidArgumentError(f"invalid CAR: {exc}") from exc
    if not isinstance(header, dict):
        raise InvalidArgumentError("invalid CAR: the header is not a map")
    version = header.get("version")
    if version == 2 and set(header) == {"version"}:
        return 2, ()
    roots = header.get("roots")
    if version != 1 or not isinstance(roots, list) or not all(isinstance(r, CID) for r in roots):
        raise InvalidArgumentError(f"invalid CAR header: {header!r:.200}")
    if len(roots) > MAX_ROOTS:
        raise InvalidArgumentError(f"invalid CAR: {len(roots)} roots")
    return 1, tuple(roots)


def _split_cid(section: bytes) -> int:
    """The length of the CID at the start of a section."""
    if section[:2] == b"\x12\x20":
        return 34  # CIDv0: a bare sha2-256 multihash
    pos = 0
    values = []
    for _ in range(4):  # version, codec, hash code, digest length
        value = shift = 0
        while True:
            if pos >= len(section) or shift > 63:
                raise InvalidArgumentError("invalid CAR: truncated CID in a section")
            byte = section[pos]
            pos += 1
            value |= (byte & 0x7F) << shift
            if not byte & 0x80:
                break
            shift += 7
        values.append(value)
    return pos + values[3]


def read_car(f: BinaryIO) -> tuple[CarHeader, Iterator[tuple[CID, bytes]]]:
    """Read a CARv1 or CARv2 header; the iterator yields each block, verified, in file order."""
    s = _Stream(f)
    version, roots = _read_v1_header(s)
    if version == 2:
        rest = s.read(CARV2_HEADER_LEN, "CARv2 header")
        data_offset, data_size, _index_offset = struct.unpack("<QQQ", rest[16:])
        here = len(CARV2_PRAGMA) + CARV2_HEADER_LEN
        if data_offset < here:
            raise InvalidArgumentError(f"invalid CARv2: data offset {data_offset}")
        s.read(data_offset - here, "CARv2 padding")  # usually none
        s = _Stream(f, data_size)
        inner, roots = _read_v1_header(s)
        if inner != 1:
            raise InvalidArgumentError("invalid CARv2: its payload is not a CARv1")
    return CarHeader(version, roots), _sections(s)


def _sections(s: _Stream) -> Iterator[tuple[CID, bytes]]:
    while (first := s.first_byte()) is not None:
        length = s.varint("section length", first)
        if not 0 < length <= MAX_BLOCK_BYTES + 100:
            raise InvalidArgumentError(f"invalid CAR: section of {length} bytes")
        section = s.read(length, "section")
        split = _split_cid(section)
        if split > len(section):
            raise InvalidArgumentError("invalid CAR: a section shorter than its CID")
        cid = CID(section[:split])  # InvalidCidError (an InvalidArgumentError) for other kinds
        data = section[split:]
        cid.verify(data)
        yield cid, data


def import_car(f: BinaryIO, put: Callable[[CID, bytes], None]) -> tuple[CarHeader, int]:
    """Read a CAR, hand every verified block to `put`; returns the header and the block count."""
    header, blocks = read_car(f)
    count = 0
    for cid, data in blocks:
        put(cid, data)
        count += 1
    return header, count


__all__ = ["CARV2_PRAGMA", "CarHeader", "encode_header", "encode_section", "export_car",
           "import_car", "iter_car", "links_of", "read_car", "walk_dag", "write_car"]
