"""The default BlockStore: one LMDB environment per repo.

Named databases: `blocks` (binary CID -> bytes), `stats` (block count and bytes, updated in
the same transaction as the blocks), and one `m:<table>` database per metadata table. A
`commit` is one LMDB write transaction, so a batch is all-or-nothing even if the process is
killed mid-way. The environment runs with MDB_NOSYNC: a process crash never loses a
committed transaction (the OS page cache holds it), and `commit(durable=True)` / `sync()`
force everything to disk, which is what upload finalisation does.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import mmap
import os
import struct
import sys
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import lmdb

from hoard.errors import InvalidArgumentError, RepoDamagedError, StateError
from hoard.ids.cid import CID
from hoard.store.base import Batch, BlockStore, StoreStats

_STATS = struct.Struct(">QQ")
_MAP_SIZE = 1 << 40  # 1 TiB of address space; the file only grows as data arrives
_TRIM_EVERY = 64 << 20  # bytes moved between page-table trims of the map

_libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True) if sys.platform.startswith("linux") else None
if _libc is not None:
    _libc.madvise.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]


def _map_ranges(path: str) -> list[tuple[int, int]]:
    """Address ranges where this process maps the file at `path` (Linux /proc/self/maps)."""
    ranges = []
    with open("/proc/self/maps") as maps:
        for line in maps:
            if line.rstrip().endswith(path):
                start, end = line.split(None, 1)[0].split("-")
                ranges.append((int(start, 16), int(end, 16)))
    return ranges


_META = struct.Struct("<II")  # mm_magic, mm_version at offset 16 of a meta page
_META_TAIL = struct.Struct("<QQ")  # mm_last_pg, mm_txnid at offset 136 (64-bit LMDB 0.9)
_MAGIC = 0xBEEFC0DE


def _private(path: Path, mode: int) -> None:
    """Tighten `path` to `mode` (repo files 0600, directories 0700) if it is ours and looser."""
    try:
        st = path.stat()
        if st.st_uid == os.getuid() and st.st_mode & 0o777 & ~mode:
            path.chmod(mode)
    except OSError:
        pass


def check_data_file(path: Path) -> None:
    """Refuse (RepoDamagedError) an LMDB data file that is truncated or not LMDB at all.

    The two meta pages at the start of `data.mdb` name the page size and the last page in
    use; a file shorter than that would map pages that do not exist and the process would die
    with SIGBUS on the first read of them. A missing file is a new store (fine); an empty
    or shorter-than-its-metas one is damage.
    """
    file = path / "data.mdb"
    try:
        size = file.stat().st_size
        with open(file, "rb") as fh:
            head = fh.read(64 << 10 | 256)
    except FileNotFoundError:
        return
    except OSError as exc:
        raise RepoDamagedError(f"cannot read the store file {file}: {exc.strerror}", path=str(file)) from exc
    advice = "Restore it from a backup (or move the directory away to start an empty store)."
    if size == 0:
        raise RepoDamagedError(f"the store file {file} is empty (truncated). {advice}", path=str(file))
    metas: list[tuple[int, int, int]] = []
    psize = struct.unpack_from("<I", head, 40)[0] if len(head) >= 44 else 0
    for offset in (0, psize):
        if psize and offset + 152 <= len(head):
            magic, _version = _META.unpack_from(head, offset + 16)
            if magic == _MAGIC:
                last_pg, txnid = _META_TAIL.unpack_from(head, offset + 136)
                metas.append((txnid, last_pg, psize))
    if not metas or psize not in (1 << n for n in range(9, 17)):
        raise RepoDamagedError(f"the store file {file} is not an LMDB file (no valid meta page). {advice}",
                               path=str(file))
    _txnid, last_pg, psize = max(metas)
    need = (last_pg + 1) * psize
    if size < need:
        raise RepoDamagedError(f"the store file {file} is truncated: {size} bytes, but its last committed "
                               f"transaction uses {need}. {advice}", path=str(file))


def _check_tables(env: lmdb.Environment) -> None:
    """A quick look at every named database: its root and both ends (lmdb.Error if damaged)."""
    with env.begin() as txn:
        names = [key for key, _ in txn.cursor()]
    for name in names:
        try:
            db = env.open_db(name, create=False)
        except lmdb.IncompatibleError:
            continue
        with env.begin(db=db) as txn:
            txn.stat(db)
            cursor = txn.cursor()
            if cursor.first():
                cursor.key()
            if cursor.last():
                cursor.key()


class LmdbBlockStore(BlockStore):
    """Blocks and metadata in an LMDB environment at `path` (a directory)."""

    supports_durability = True
    url_scheme = "lmdb"

    def __init__(self, path: str | os.PathLike[str], map_size: int = _MAP_SIZE) -> None:
        self.path = Path(path)
        self.path.mkdir(mode=0o700, parents=True, exist_ok=True)
        _private(self.path, 0o700)
        check_data_file(self.path)  # before LMDB maps it: a truncated file would SIGBUS later
        try:
            self._env = lmdb.open(
                str(self.path), map_size=map_size, max_dbs=64, sync=False, metasync=False,
                readahead=False, max_readers=256, writemap=False, mode=0o600,
            )
        except lmdb.Error as exc:
            raise InvalidArgumentError(f"cannot open store at {self.path}: {exc}", path=str(self.path)) from exc
        for name in ("data.mdb", "lock.mdb"):
            _private(self.path / name, 0o600)
        try:
            _check_tables(self._env)
            self._blocks = self._env.open_db(b"blocks")
            self._stats_db = self._env.open_db(b"stats")
        except lmdb.Error as exc:
            self._env.close()
            raise RepoDamagedError(f"the store at {self.path} is damaged: {exc}. Restore it from a backup "
                                   "(or move it away to start an empty one).", path=str(self.path)) from exc
        self._tables: dict[str, object] = {}
        self._tables_lock = threading.Lock()
        self._write_lock = threading.Lock()
        self._closed = False
        self._moved = 0
        self._data_file = str((self.path / "data.mdb").resolve())
        self._ranges: list[tuple[int, int]] | None = None

    def _account(self, nbytes: int) -> None:
        """Bound RSS: every _TRIM_EVERY bytes, drop the map's page-table entries.

        LMDB reads through a read-only shared mmap of the data file; the pages a large read or
        write touches stay mapped (and counted in RSS) although they are only page cache.
        MADV_DONTNEED on a shared file mapping just unmaps them; the next access faults them
        back in from the page cache, so it is safe with concurrent readers.
        """
        self._moved += nbytes
        if self._moved < _TRIM_EVERY or _libc is None:
            return
        self._moved = 0
        if self._ranges is None:
            self._ranges = _map_ranges(self._data_file)
        for start, end in self._ranges:
            _libc.madvise(start, end - start, mmap.MADV_DONTNEED)

    def _table(self, name: str) -> Any:
        db = self._tables.get(name)
        if db is None:
            with self._tables_lock:
                db = self._tables.get(name)
                if db is None:
                    db = self._env.open_db(b"m:" + name.encode())
                    self._tables[name] = db
        return db

    def _check_open(self) -> None:
        if self._closed:
            raise StateError(f"store at {self.path} is closed")

    # -- reads -------------------------------------------------------------------
    def get(self, cid: CID) -> bytes | None:
        self._check_open()
        with self._env.begin(db=self._blocks) as txn:
            data = txn.get(cid.binary)
        if data is not None:
            self._account(len(data))
        return data

    def get_many(self, cids: Iterable[CID]) -> list[bytes | None]:
        self._check_open()
        with self._env.begin(db=self._blocks) as txn:
            blocks = [txn.get(c.binary) for c in cids]
        self._account(sum(len(b) for b in blocks if b is not None))
        return blocks

    def has(self, cid: CID) -> bool:
        self._check_open()
        with self._env.begin(db=self._blocks, buffers=True) as txn:
            return txn.get(cid.binary) is not None

    def has_many(self, cids: Iterable[CID]) -> list[bool]:
        """One read transaction for the whole batch."""
        self._check_open()
        with self._env.begin(db=self._blocks, buffers=True) as txn:
            return [txn.get(c.binary) is not None for c in cids]

    def size_of(self, cid: CID) -> int | None:
        self._check_open()
        with self._env.begin(db=self._blocks, buffers=True) as txn:
            value = txn.get(cid.binary)
            return None if value is None else len(value)

    def iter_cids(self) -> Iterator[CID]:
        self._check_open()
        with self._env.begin(db=self._blocks) as txn:
            keys = [CID(k) for k in txn.cursor().iternext(keys=True, values=False)]
        return iter(keys)

    def meta_get(self, table: str, key: bytes) -> bytes | None:
        self._check_open()
        with self._env.begin(db=self._table(table)) as txn:
            return txn.get(key)

    def meta_iter(self, table: str, prefix: bytes = b"") -> Iterator[tuple[bytes, bytes]]:
        self._check_open()
        rows: list[tuple[bytes, bytes]] = []
        with self._env.begin(db=self._table(table)) as txn:
            cursor = txn.cursor()
            if cursor.set_range(prefix):
                for key, value in cursor:
                    if not key.startswith(prefix):
                        break
                    rows.append((key, value))
        return iter(rows)

    def stats(self) -> StoreStats:
        self._check_open()
        with self._env.begin(db=self._stats_db) as txn:
            raw = txn.get(b"s")
        return StoreStats(*_STATS.unpack(raw)) if raw else StoreStats(0, 0)

    # -- writes ------------------------------------------------------------------
    def commit(self, batch: Batch, durable: bool = False) -> None:
        self._check_open()
        if batch:
            with self._write_lock:
                tables = {name: self._table(name) for name, _ in batch.meta}  # open before the txn
                try:
                    with self._env.begin(write=True) as txn:
                        raw = txn.get(b"s", db=self._stats_db)
                        count, total = _STATS.unpack(raw) if raw else (0, 0)
                        for cid in batch.deletes:
                            old = txn.pop(cid.binary, db=self._blocks)
                            if old is not None:
                                count -= 1
                                total -= len(old)
                        for cid, data in batch.puts.items():
                            if txn.put(cid.binary, data, overwrite=False, db=self._blocks):
                                count += 1
                                total += len(data)
                        for (table, key), value in batch.meta.items():
                            if value is None:
                                txn.delete(key, db=tables[table])
                            else:
                                txn.put(key, value, db=tables[table])
                        txn.put(b"s", _STATS.pack(count, total), db=self._stats_db)
                    self._account(sum(len(d) for d in batch.puts.values()))
                except lmdb.MapFullError as exc:
                    raise StateError(f"store at {self.path} is full (map size)") from exc
        if durable:
            self.sync()

    def sync(self) -> None:
        self._check_open()
        self._env.sync(True)

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            try:
                self._env.sync(True)
            finally:
                self._env.close()
