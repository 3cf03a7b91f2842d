"""UnixFS (IPFS files and directories over dag-pb): an importer whose CIDs equal kubo's, and an
exporter that reads a file or a directory tree back from verified blocks.

Importer, following boxo (ipld/unixfs/importer/balanced, importer/helpers/dagbuilder.go):

* the file is cut in fixed chunks of `chunk_size` bytes (kubo: 256 KiB), the last one shorter;
* each chunk is a leaf: with `raw_leaves` a raw (0x55) block, else a dag-pb node whose UnixFS
  data is `{Type: File, Data: chunk, filesize: len}`;
* the balanced layout: a file of one chunk is that leaf; otherwise nodes of at most
  `max_links` (kubo: 174) children, filled depth-first, each `{Type: File, filesize,
  blocksizes}` with one unnamed link per child (Tsize = the child's cumulative DAG size); the
  root grows a level each time the tree below it is full;
* an empty file is an empty leaf (CIDv0: `{Type: File, filesize: 0}`; raw leaves: the empty raw block);
* a directory is a dag-pb node `{Type: Directory}` with one named link per entry, sorted by
  name; once its links (names + CIDs) reach `hamt_threshold` (kubo: 256 KiB) it is a HAMT
  instead (boxo ipld/unixfs/hamt: fanout 256, murmur3-x64-64 of the name, `{Type: HAMTShard,
  Data: bitfield, hashType, fanout}`); a symlink inside a directory is stored as the link
  itself, `{Type: Symlink, Data: target}` (the exporter does not write symlinks).

`ImportOptions.kubo()` is `ipfs add` (CIDv0, dag-pb leaves), `ImportOptions.kubo_v1()` is
`ipfs add --cid-version=1 --raw-leaves` (CIDv1 dag-pb nodes over raw leaves). Blocks are handed
to a `put(cid, bytes)` callable children first, root last, as they are made: memory stays at
one chunk plus one partly filled node per level.

Exporter: `read_file` yields a file's bytes in order and `export` writes a file or directory
tree, fetching blocks with a `get(cid)` callable. Every block is verified against its own CID
(multihash) before it is decoded, every node's sizes are checked against its children, and
entry names are checked before anything is written; HAMT-sharded directories are read too.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import mmh3

from hoard.content.formats.dagpb import PBLink, decode_node, encode_node
from hoard.errors import IntegrityError, InvalidArgumentError
from hoard.ids.cid import CID, DAG_PB, RAW, SHA2_256

# UnixFS Data.DataType
RAW_T, DIRECTORY, FILE, METADATA, SYMLINK, HAMT_SHARD = 0, 1, 2, 3, 4, 5
_TYPE_NAMES = {0: "raw", 1: "directory", 2: "file", 3: "metadata", 4: "symlink", 5: "hamt-shard"}

#: kubo switches a directory to a HAMT when its links' names + CIDs reach this many bytes.
HAMT_THRESHOLD = 256 * 1024
#: kubo's HAMT width, hash (multicodec murmur3-x64-64) and the bytes of hash a path can use.
HAMT_FANOUT = 256
MURMUR3_X64_64 = 0x22
HAMT_HASH_BYTES = 8
#: Deepest DAG the exporter follows (a balanced file of 174-link nodes is 5 levels at 2**60 bytes).
MAX_DEPTH = 64
#: Largest HAMT fanout read (kubo and Helia use 256).
MAX_HAMT_FANOUT = 1024
#: Largest chunk the importer makes (a block must fit a bitswap message).
MAX_CHUNK = 1 << 20

Put = Callable[[CID, bytes], None]
Get = Callable[[CID], bytes]


@dataclass(frozen=True, slots=True)
class ImportOptions:
    cid_version: int = 0
    raw_leaves: bool = False
    chunk_size: int = 256 * 1024
    max_links: int = 174
    #: Directories whose links (names + CIDs) reach this many bytes become HAMT shards.
    hamt_threshold: int = HAMT_THRESHOLD

    def __post_init__(self) -> None:
        if self.cid_version not in (0, 1):
            raise InvalidArgumentError(f"cid_version must be 0 or 1, got {self.cid_version}")
        if self.cid_version == 0 and self.raw_leaves:
            raise InvalidArgumentError("raw leaves need CIDv1 (kubo: --cid-version=1 --raw-leaves)")
        if not 1 <= self.chunk_size <= MAX_CHUNK:
            raise InvalidArgumentError(f"chunk_size must be 1..{MAX_CHUNK} bytes, got {self.chunk_size}")
        if not 2 <= self.max_links <= 4096:
            raise InvalidArgumentError(f"max_links must be 2..4096, got {self.max_links}")
        if self.hamt_threshold < 0:
            raise InvalidArgumentError(f"hamt_threshold must not be negative, got {self.hamt_threshold}")

    @classmethod
    def kubo(cls) -> ImportOptions:
        """`ipfs add`: CIDv0, dag-pb leaves, 256 KiB chunks, balanced, 174 links per node."""
        return cls()

    @classmethod
    def kubo_v1(cls) -> ImportOptions:
        """`ipfs add --cid-version=1 --raw-leaves`."""
        return cls(cid_version=1, raw_leaves=True)


@dataclass(frozen=True, slots=True)
class Imported:
    """An imported file or directory: its root CID, content size and cumulative DAG size."""

    cid: CID
    size: int
    dag_size: int


# -- UnixFS Data protobuf ---------------------------------------------------------------------

def _uvarint(n: int) -> bytes:
    out = bytearray()
    while n > 0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def encode_data(type_: int, data: bytes | None = None, filesize: int | None = None,
                blocksizes: tuple[int, ...] = (), hash_type: int | None = None,
                fanout: int | None = None) -> bytes:
    """UnixFS `Data` as go-unixfs writes it (proto2, fields in number order, blocksizes unpacked)."""
    out = bytearray(b"\x08" + _uvarint(type_))
    if data is not None:
        out += b"\x12" + _uvarint(len(data)) + data
    if filesize is not None:
        out += b"\x18" + _uvarint(filesize)
    for size in blocksizes:
        out += b" " + _uvarint(size)  # field 4, varint: key 0x20
    if hash_type is not None:
        out += b"\x28" + _uvarint(hash_type)
    if fanout is not None:
        out += b"\x30" + _uvarint(fanout)
    return bytes(out)


@dataclass(frozen=True, slots=True)
class UnixFSData:
    type: int
    data: bytes | None = None
    filesize: int | None = None
    blocksizes: tuple[int, ...] = field(default=())
    fanout: int | None = None

    @property
    def type_name(self) -> str:
        return _TYPE_NAMES.get(self.type, f"unknown({self.type})")


def decode_data(buf: bytes) -> UnixFSData:
    """Decode UnixFS `Data` (packed or unpacked blocksizes; mode, mtime and hashType skipped)."""
    pos, end = 0, len(buf)
    type_: int | None = None
    data: bytes | None = None
    filesize: int | None = None
    blocksizes: list[int] = []
    fanout: int | None = None

    def varint() -> int:
        nonlocal pos
        value = shift = 0
        while True:
            if pos >= end or shift >= 64:
                raise InvalidArgumentError("invalid UnixFS data: bad varint")
            byte = buf[pos]
            pos += 1
            value |= (byte & 0x7F) << shift
            if not byte & 0x80:
                return value
            shift += 7

    def span() -> bytes:
        nonlocal pos
        length = varint()
        if length > end - pos:
            raise InvalidArgumentError("invalid UnixFS data: field runs past the end")
        pos += length
        return buf[pos - length:pos]

    while pos < end:
        key = varint()
        number, wire = key >> 3, key & 7
        if number == 1 and wire == 0:
            type_ = varint()
        elif number == 2 and wire == 2:
            data = span()
        elif number == 3 and wire == 0:
            filesize = varint()
        elif number == 4 and wire == 0:
            blocksizes.append(varint())
        elif number == 4 and wire == 2:
            packed, pos_save = span(), pos
            pos, end = pos - len(packed), pos
            while pos < end:
                blocksizes.append(varint())
            pos, end = pos_save, len(buf)
        elif number == 6 and wire == 0:
            fanout = varint()
        elif wire == 0:
            varint()
        elif wire == 2:
            span()
        else:
            raise InvalidArgumentError(f"invalid UnixFS data: unexpected field key 0x{key:x}")
    if type_ is None:
        raise InvalidArgumentError("invalid UnixFS data: no Type")
    return UnixFSData(type_, data, filesize, tuple(blocksizes), fanout)


# -- importer -------------------------------------------------------------------------------

class _Chunks:
    """Fixed-size chunks of a stream with one chunk of look-ahead (boxo's DagBuilderHelper.Done)."""

    def __init__(self, stream: BinaryIO, size: int) -> None:
        self._stream, self._size = stream, size
        self._next = self._read()

    def _read(self) -> bytes:
        parts: list[bytes] = []
        want = self._size
        while want:
            part = self._stream.read(want)
            if not part:
                break
            parts.append(part)
            want -= len(part)
        return b"".join(parts)

    def done(self) -> bool:
        return not self._next

    def take(self) -> bytes:
        chunk, self._next = self._next, self._read()
        return chunk


class _Builder:
    def __init__(self, put: Put, options: ImportOptions) -> None:
        self.put, self.options = put, options

    def node(self, links: list[PBLink], data: bytes) -> tuple[CID, int]:
        """Store a dag-pb node; returns its CID and cumulative size (len + links' Tsize)."""
        block = encode_node(links, data)
        digest = hashlib.sha256(block).digest()
        cid = CID.v0(digest) if self.options.cid_version == 0 else CID.from_digest(DAG_PB, digest, SHA2_256)
        self.put(cid, block)
        return cid, len(block) + sum(link.tsize for link in links)

    def leaf(self, chunk: bytes) -> tuple[CID, int, int]:
        """A leaf: (cid, file bytes, cumulative DAG size)."""
        if self.options.raw_leaves:
            cid = CID.sha256(chunk, RAW)
            self.put(cid, chunk)
            return cid, len(chunk), len(chunk)
        data = encode_data(FILE, chunk if chunk else None, len(chunk))
        cid, dag_size = self.node([], data)
        return cid, len(chunk), dag_size

    def fill(self, chunks: _Chunks, depth: int,
             first: tuple[CID, int, int] | None = None) -> tuple[CID, int, int]:
        """boxo's fillNodeRec: a node of `depth` filled with up to max_links children."""
        links: list[PBLink] = []
        sizes: list[int] = []
        if first is not None:
            links.append(PBLink(first[0], "", first[2]))
            sizes.append(first[1])
        while len(links) < self.options.max_links and not chunks.done():
            child = self.leaf(chunks.take()) if depth == 1 else self.fill(chunks, depth - 1)
            links.append(PBLink(child[0], "", child[2]))
            sizes.append(child[1])
        filesize = sum(sizes)
        cid, dag_size = self.node(links, encode_data(FILE, None, filesize, tuple(sizes)))
        return cid, filesize, dag_size

    def file(self, stream: BinaryIO) -> Imported:
        chunks = _Chunks(stream, self.options.chunk_size)
        root = self.leaf(chunks.take())  # an empty file is one empty leaf
        depth = 1
        while not chunks.done():
            root = self.fill(chunks, depth, first=root)
            depth += 1
        return Imported(root[0], root[1], root[2])

    def directory(self, path: Path) -> Imported:
        links: list[PBLink] = []
        size = 0
        estimate = 0
        with os.scandir(path) as entries:
            for entry in sorted(entries, key=lambda e: os.fsencode(e.name)):
                name = _entry_name(entry.name, path)
                if entry.is_symlink():  # kubo stores the link itself: {Type: Symlink, Data: target}
                    target = os.fsencode(os.readlink(entry.path))
                    cid, dag_size = self.node([], encode_data(SYMLINK, target))
                    child = Imported(cid, 0, dag_size)
                elif entry.is_dir():
                    child = self.directory(Path(entry.path))
                elif entry.is_file():
                    with open(entry.path, "rb") as f:
                        child = self.file(f)
                else:
                    raise InvalidArgumentError(f"not a file or directory: {entry.path}")
                links.append(PBLink(child.cid, name, child.dag_size))
                size += child.size
                estimate += len(name.encode()) + len(child.cid.binary)
        if estimate >= self.options.hamt_threshold:  # boxo's needsToSwitchToHAMTDir
            cid, dag_size = self.hamt([(_name_hash(link.name), link) for link in links], 0)
        else:
            cid, dag_size = self.node(links, encode_data(DIRECTORY))
        return Imported(cid, size, dag_size)

    def hamt(self, entries: list[tuple[bytes, PBLink]], depth: int) -> tuple[CID, int]:
        """One HAMT shard (boxo ipld/unixfs/hamt, fanout 256): entries grouped by the hash byte
        of this depth; a lone entry is a link `XXname`, a group is a sub-shard linked as `XX`.
        The tree depends only on the set of names, never on insertion order."""
        if depth >= HAMT_HASH_BYTES:
            raise InvalidArgumentError("HAMT directory deeper than its 64-bit hash (colliding names)")
        buckets: dict[int, list[tuple[bytes, PBLink]]] = {}
        for item in entries:
            buckets.setdefault(item[0][depth], []).append(item)
        links: list[PBLink] = []
        for index in sorted(buckets):
            group = buckets[index]
            if len(group) == 1:
                link = group[0][1]
                links.append(PBLink(link.cid, f"{index:02X}{link.name}", link.tsize))
            else:
                cid, dag_size = self.hamt(group, depth + 1)
                links.append(PBLink(cid, f"{index:02X}", dag_size))
        bitfield = sum(1 << index for index in buckets)  # go-bitfield: bit i of a big-endian integer
        data = encode_data(HAMT_SHARD, bitfield.to_bytes((bitfield.bit_length() + 7) // 8, "big"),
                           hash_type=MURMUR3_X64_64, fanout=HAMT_FANOUT)
        return self.node(links, data)


def _name_hash(name: str) -> bytes:
    """murmur3-x64-64 of a name, as boxo's HAMT reads it: the first 64 bits, big-endian."""
    return mmh3.hash_bytes(name.encode("utf-8"), 0)[7::-1]


def _entry_name(name: str, parent: Path) -> str:
    try:
        name.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InvalidArgumentError(f"file name is not UTF-8 in {parent}: {name!r}") from exc
    return name


def import_stream(stream: BinaryIO, put: Put, options: ImportOptions | None = None) -> Imported:
    """Import a file's bytes from a binary stream; blocks go to `put` children first."""
    return _Builder(put, options or ImportOptions()).file(stream)


def import_bytes(data: bytes, put: Put, options: ImportOptions | None = None) -> Imported:
    import io
    return import_stream(io.BytesIO(data), put, options)


def import_path(path: str | os.PathLike[str], put: Put, options: ImportOptions | None = None) -> Imported:
    """Import a file or a directory tree (as `ipfs add [-r] PATH` does, without wrapping)."""
    p = Path(path)
    builder = _Builder(put, options or ImportOptions())
    if p.is_symlink():
        raise InvalidArgumentError(f"symlinks are not supported in a UnixFS import: {p}")
    if p.is_dir():
        return builder.directory(p)
    if p.is_file():
        with open(p, "rb") as f:
            return builder.file(f)
    raise InvalidArgumentError(f"no such file or directory: {p}")


# -- exporter -------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Entry:
    """A directory entry: its name, CID and the cumulative size its link declares."""

    name: str
    cid: CID
    tsize: int


@dataclass(frozen=True, slots=True)
class Node:
    """A verified, decoded UnixFS node: a raw leaf (unixfs None) or a dag-pb node."""

    cid: CID
    links: tuple[PBLink, ...]
    unixfs: UnixFSData | None
    raw: bytes | None

    @property
    def is_directory(self) -> bool:
        return self.unixfs is not None and self.unixfs.type in (DIRECTORY, HAMT_SHARD)


def load(cid: CID, get: Get) -> Node:
    """Fetch a block with `get`, verify it against `cid` and decode it as UnixFS."""
    block = get(cid)
    cid.verify(block)  # IntegrityError on a mismatch
    if cid.codec == RAW:
        return Node(cid, (), None, bytes(block))
    if cid.codec != DAG_PB:
        raise InvalidArgumentError(f"{cid} is {cid.codec_name}, not a UnixFS node (dag-pb or raw)")
    pb = decode_node(block)
    if pb.data is None:
        raise InvalidArgumentError(f"{cid} is a dag-pb node without UnixFS data")
    return Node(cid, pb.links, decode_data(pb.data), None)


def list_directory(cid: CID, get: Get) -> list[Entry]:
    """A directory's entries, sorted by name (plain or HAMT-sharded directories)."""
    return _entries(load(cid, get), get)


def _entries(node: Node, get: Get) -> list[Entry]:
    """A directory's entries: a plain directory's links, or every entry of a HAMT shard tree."""
    if node.unixfs is None or node.unixfs.type not in (DIRECTORY, HAMT_SHARD):
        kind = "raw block" if node.unixfs is None else node.unixfs.type_name
        raise InvalidArgumentError(f"{node.cid} is a {kind}, not a directory")
    entries: list[Entry] = []
    if node.unixfs.type == DIRECTORY:
        entries = [Entry(link.name, link.cid, link.tsize) for link in node.links]
    else:
        _hamt_entries(node, get, entries, 0)
        entries.sort(key=lambda e: e.name.encode())
    seen: set[str] = set()
    for entry in entries:
        _check_name(entry.name, node.cid)
        if entry.name in seen:
            raise InvalidArgumentError(f"{node.cid}: directory entry {entry.name!r} appears twice")
        seen.add(entry.name)
    return entries


def _hamt_entries(node: Node, get: Get, out: list[Entry], depth: int) -> None:
    """Read a HAMT shard (UnixFS type 5): a link named by a bucket (hex, as wide as fanout - 1)
    is a sub-shard; a longer name is the bucket then the entry's name."""
    fs = node.unixfs
    assert fs is not None
    fanout = fs.fanout or 0
    if not 2 <= fanout <= MAX_HAMT_FANOUT or fanout & (fanout - 1):
        raise InvalidArgumentError(f"{node.cid}: HAMT shard with fanout {fs.fanout}")
    if depth > MAX_DEPTH:
        raise InvalidArgumentError(f"{node.cid}: HAMT deeper than {MAX_DEPTH}")
    width = len(f"{fanout - 1:X}")
    for link in node.links:
        bucket = link.name[:width]
        if len(bucket) != width or bucket.strip("0123456789ABCDEF") or int(bucket, 16) >= fanout:
            raise InvalidArgumentError(f"{node.cid}: bad HAMT link name {link.name!r}")
        if len(link.name) == width:
            child = load(link.cid, get)
            if child.unixfs is None or child.unixfs.type != HAMT_SHARD:
                raise InvalidArgumentError(f"{link.cid}: a HAMT sub-shard link to a non-shard")
            _hamt_entries(child, get, out, depth + 1)
        else:
            out.append(Entry(link.name[width:], link.cid, link.tsize))


def _check_name(name: str, where: CID) -> None:
    if name in ("", ".", "..") or "/" in name or "\\" in name or "\0" in name or len(name.encode()) > 255:
        raise InvalidArgumentError(f"{where}: unsafe directory entry name {name!r}")


def read_file(cid: CID, get: Get) -> Iterator[bytes]:
    """A UnixFS file's bytes, in order, each block verified; sizes are checked against the nodes."""
    yield from _read(load(cid, get), get, None, 0)


def _read(node: Node, get: Get, expected: int | None, depth: int) -> Iterator[bytes]:
    if depth > MAX_DEPTH:
        raise InvalidArgumentError(f"{node.cid}: file DAG deeper than {MAX_DEPTH}")
    if node.raw is not None:
        if node.links:
            raise InvalidArgumentError(f"{node.cid}: raw block with links")
        _check_size(node, len(node.raw), expected)
        yield node.raw
        return
    fs = node.unixfs
    assert fs is not None
    if fs.type not in (FILE, RAW_T):
        raise InvalidArgumentError(f"{node.cid} is a {fs.type_name}, not a file")
    data = fs.data or b""
    total = len(data) + sum(fs.blocksizes)
    if fs.filesize is not None and fs.filesize != total:
        raise IntegrityError(f"{node.cid}: filesize {fs.filesize} but data + blocksizes is {total}",
                             cid=str(node.cid))
    _check_size(node, total, expected)
    if len(fs.blocksizes) != len(node.links):
        raise IntegrityError(f"{node.cid}: {len(node.links)} links but {len(fs.blocksizes)} blocksizes",
                             cid=str(node.cid))
    if data:
        yield data
    for link, size in zip(node.links, fs.blocksizes, strict=True):
        yield from _read(load(link.cid, get), get, size, depth + 1)


def _check_size(node: Node, actual: int, expected: int | None) -> None:
    if expected is not None and actual != expected:
        raise IntegrityError(f"{node.cid}: holds {actual} bytes, its parent says {expected}",
                             cid=str(node.cid))


def export(cid: CID, get: Get, dest: str | os.PathLike[str]) -> int:
    """Write the file or directory tree under `cid` to `dest` (which must not exist); returns
    the number of content bytes written. A directory is written entry by entry; a failure
    leaves what was written so far and raises."""
    target = Path(dest)
    if target.exists() or target.is_symlink():
        raise InvalidArgumentError(f"{target} already exists")
    node = load(cid, get)
    if node.is_directory:
        return _export(node, get, target, 0)
    tmp = target.with_name(f".{target.name}.part")
    written = _export(node, get, tmp, 0)
    tmp.rename(target)  # a file appears whole or not at all
    return written


def _export(node: Node, get: Get, target: Path, depth: int) -> int:
    if depth > MAX_DEPTH:
        raise InvalidArgumentError(f"{node.cid}: directory tree deeper than {MAX_DEPTH}")
    if node.is_directory:
        entries = _entries(node, get)
        target.mkdir()
        return sum(_export(load(e.cid, get), get, target / e.name, depth + 1) for e in entries)
    written = 0
    with open(target, "xb") as f:
        for chunk in _read(node, get, None, 0):
            f.write(chunk)
            written += len(chunk)
    return written
