"""hugo semantics on the content store: files of indexed blocks, CRC32 checked, every write a version.

A file is an inode number. `write` puts one block at an index (creating or overwriting it)
or appends it; `stream_write` appends many blocks as one version. Each block is a raw hoard
block (CID = BLAKE3 of its bytes), stored once however many files and versions use it: the
content store's refcounts and pending accounting (and so its quota) cover file blocks exactly
as they cover datasets. A write goes through the ingest path (`hoard.content.ingest`): its
blocks are stored first (pending, quota-checked), then the new version's entries and the
block references commit in one atomic batch, so a failed or rejected write changes nothing.

Everything here is blocking (LMDB, hashing); the node runs it in threads.
"""

from __future__ import annotations

import threading
import time
import zlib
from collections.abc import Iterable, Iterator

from hoard.content import ContentStore, IngestSession
from hoard.errors import IntegrityError, InvalidArgumentError, NotFoundError
from hoard.files.model import (
    BLOCKS,
    HEAD,
    HEADS,
    MAX_U64,
    U64,
    VERSION,
    VERSIONS,
    WINDOW_BITS,
    WINDOWS,
    BlockRef,
    CrcMismatchError,
    FileBlock,
    FileInfo,
    FileWrite,
    Head,
    block_key,
    check_u64,
    decode_entry,
    encode_entry,
    window_key,
)
from hoard.ids.cid import CID
from hoard.limits import MAX_FILE_BLOCK_BYTES
from hoard.store.catalog import CatalogBatch

BATCH_BYTES = 8 << 20  # stream writes store their blocks in batches of about this size
READ_BATCH_BYTES = 4 << 20  # reads fetch about this much per store transaction

_Item = tuple[int | None, CID, int, int]  # (index or None to append, cid, len, crc32)


def _check_block(data: object) -> bytes:
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise InvalidArgumentError(f"block data must be bytes, got {type(data).__name__}")
    if len(data) > MAX_FILE_BLOCK_BYTES:
        raise InvalidArgumentError(f"block of {len(data)} bytes exceeds the maximum file block size "
                                   f"{MAX_FILE_BLOCK_BYTES}", size=len(data), max=MAX_FILE_BLOCK_BYTES)
    return bytes(data)


class FileStore:
    """hugo files over a ContentStore. Thread-safe: version commits are serialised."""

    def __init__(self, content: ContentStore) -> None:
        self.content = content
        self.catalog = content.catalog
        self.blobs = content.blobs
        self._lock = threading.Lock()

    # -- writes --------------------------------------------------------------------
    def write(self, ino: int, data: bytes, index: int | None = None, crc32: int | None = None) -> FileWrite:
        """Write one block at `index` (create or overwrite), or append it when `index` is None.

        With `crc32`, the block's CRC32 (IEEE) must equal it, else CrcMismatchError and
        nothing is written. Makes one new version; creates the file if `ino` is new.
        """
        check_u64("ino", ino)
        if index is not None and check_u64("index", index) == MAX_U64:
            raise InvalidArgumentError(f"block index {index} is out of range (at most 2^64-2)", index=str(index))
        data = _check_block(data)
        actual = zlib.crc32(data)
        if crc32 is not None and crc32 != actual:
            raise CrcMismatchError(f"crc32 mismatch, expected {crc32}, actual {actual}", expected=crc32, actual=actual)
        cid = CID.of(data)
        with self.content.ingest.session() as session:  # ended by the commit; abandoned on an error
            session.write([(cid, data)])
            return self._commit(ino, [(index, cid, len(data), actual)], session)

    def stream_write(self, ino: int, blocks: Iterable[bytes]) -> FileWrite:
        """Append `blocks` in order as one new version; returns their indices.

        Blocks are stored in batches as they arrive, so memory stays bounded. An error
        (including one raised by `blocks`) leaves the file unchanged. No blocks: no version.
        """
        check_u64("ino", ino)
        items: list[_Item] = []
        pending: list[tuple[CID, bytes]] = []
        pending_bytes = 0
        with self.content.ingest.session() as session:  # ended by the commit; abandoned on an error
            for data in blocks:
                data = _check_block(data)
                cid = CID.of(data)
                items.append((None, cid, len(data), zlib.crc32(data)))
                pending.append((cid, data))
                pending_bytes += len(data)
                if pending_bytes >= BATCH_BYTES:
                    session.write(pending)
                    pending, pending_bytes = [], 0
            session.write(pending)
            if not items:
                session.abandon()
                head = self._head(ino) or Head()
                return FileWrite(ino, (), head.version)
            return self._commit(ino, items, session)

    def _commit(self, ino: int, items: list[_Item], session: IngestSession) -> FileWrite:
        with self._lock:
            head = self._head(ino) or Head()
            version = head.version + 1
            next_index, blocks, size = head.next_index, head.blocks, head.bytes
            batch = CatalogBatch()
            indices: list[int] = []
            windows: set[bytes] = set()
            for index, cid, length, crc in items:
                if index is None:
                    if next_index > MAX_U64 - 1:
                        raise InvalidArgumentError(f"file {ino} has no index left to append at", ino=ino)
                    index = next_index
                if index >= next_index:
                    blocks += 1
                else:
                    previous = self._latest(ino, index)
                    if previous is None:
                        blocks += 1
                    else:
                        size -= previous.len
                size += length
                next_index = max(next_index, index + 1)
                batch.put(BLOCKS, block_key(ino, index, version), encode_entry(cid, length, crc))
                windows.add(window_key(ino, index))
                indices.append(index)
            for key in windows:
                batch.put(WINDOWS, key, b"")
            key = U64.pack(ino)
            batch.put(HEADS, key, HEAD.pack(version, next_index, blocks, size, head.entries + len(items)))
            batch.put(VERSIONS, key + U64.pack(version),
                           VERSION.pack(time.time(), len(items), next_index, blocks, size))
            session.commit_refs(batch, [cid for _, cid, _, _ in items])
            return FileWrite(ino, tuple(indices), version)

    # -- reads ---------------------------------------------------------------------
    def _head(self, ino: int) -> Head | None:
        raw = self.catalog.get(HEADS, U64.pack(ino))
        return None if raw is None else Head(*HEAD.unpack(raw))

    def _latest(self, ino: int, index: int) -> BlockRef | None:
        rows = list(self.catalog.scan(BLOCKS, U64.pack(ino) + U64.pack(index)))
        return decode_entry(*rows[-1]) if rows else None

    def _version(self, ino: int, version: int | None) -> tuple[Head, int]:
        check_u64("ino", ino)
        head = self._head(ino)
        if head is None:
            raise NotFoundError(f"file {ino} not found", ino=ino)
        if version is None:
            return head, head.version
        check_u64("version", version)
        if not 1 <= version <= head.version:
            raise NotFoundError(f"file {ino} has no version {version} (it has versions 1 to {head.version})",
                                ino=ino, version=version)
        return head, version

    def stat(self, ino: int, version: int | None = None) -> FileInfo:
        """The file at `version` (default: the latest). NotFoundError for a missing file or version."""
        head, version = self._version(ino, version)
        raw = self.catalog.get(VERSIONS, U64.pack(ino) + U64.pack(version))
        if raw is None:
            raise IntegrityError(f"file {ino}: the record of version {version} is missing", ino=ino)
        when, _written, next_index, blocks, size = VERSION.unpack(raw)
        return FileInfo(ino, version, head.version, blocks, size, next_index, when)

    def refs(self, ino: int, start: int | None = None, end: int | None = None,
             version: int | None = None) -> Iterator[BlockRef]:
        """Where the file's blocks with `start <= index <= end` are, at `version`, in index order.

        Both bounds are inclusive and optional. Raises (before iterating) NotFoundError for a
        missing file or version and InvalidArgumentError for `start > end`.
        """
        _, version = self._version(ino, version)
        lo = 0 if start is None else check_u64("start", start)
        hi = MAX_U64 if end is None else check_u64("end", end)
        if lo > hi:
            raise InvalidArgumentError(f"start block index {lo} is after end block index {hi}", start=lo, end=hi)
        return self._walk(ino, lo, hi, version)

    def _walk(self, ino: int, lo: int, hi: int, version: int) -> Iterator[BlockRef]:
        span = 1 << WINDOW_BITS
        for wkey, _ in self.catalog.scan(WINDOWS, U64.pack(ino)):
            first = int.from_bytes(wkey[8:], "big") << WINDOW_BITS
            if first + span - 1 < lo:
                continue
            if first > hi:
                return
            best: tuple[bytes, bytes] | None = None
            best_index = -1
            for key, value in self.catalog.scan(BLOCKS, wkey):
                index = U64.unpack_from(key, 8)[0]
                if index > hi:
                    break
                if index < lo or U64.unpack_from(key, 16)[0] > version:
                    continue
                if index != best_index and best is not None:
                    yield decode_entry(*best)
                best, best_index = (key, value), index
            if best is not None:
                yield decode_entry(*best)

    def read(self, ino: int, start: int | None = None, end: int | None = None,
             version: int | None = None) -> Iterator[FileBlock]:
        """The file's blocks (index, data, crc32) as `refs` selects them, read lazily in batches."""
        return self._load(ino, self.refs(ino, start, end, version))

    def _load(self, ino: int, refs: Iterator[BlockRef]) -> Iterator[FileBlock]:
        batch: list[BlockRef] = []
        size = 0
        for ref in refs:
            batch.append(ref)
            size += ref.len
            if size >= READ_BATCH_BYTES:
                yield from self._fetch(ino, batch)
                batch, size = [], 0
        if batch:
            yield from self._fetch(ino, batch)

    def _fetch(self, ino: int, refs: list[BlockRef]) -> Iterator[FileBlock]:
        for ref, data in zip(refs, self.blobs.get_many([r.cid for r in refs])):
            if data is None:
                raise IntegrityError(f"block {ref.cid} (index {ref.index} of file {ino}) is missing from the store",
                                     cid=str(ref.cid), ino=ino, index=ref.index)
            yield FileBlock(ref.index, data, ref.crc32)
