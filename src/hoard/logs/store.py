"""`LogStore`: logs persisted in a node's catalog tables, and the hosting-side checks.

Tables (keys and values are bytes; one catalog commit per call, so each is all-or-nothing):

    logs      name (32)                 -> serialized metadata (GDP format)
    logtails  name (32)                 -> nrecs u64 BE || last record hash (32) || last ts i64 BE
    records   name (32) || recno u64 BE -> record encoding (records.Datum.encode)

The tail row is written in the same commit as the records it describes, so `nrecs` and the
chain head are never ahead of or behind the records. With a `quota` (the node's content
ingest), records count against the storage quota: each record's key and encoding are
admitted by `Ingest.admit` before the commit, and the count commits with them; a record that
does not fit is refused with LogError 507 (insufficient storage), as is every record after it in the
same call, and nothing of theirs is written. Appends are committed with
`durable=True`: when `append`/`append_many` returns, the records are on stable storage.

There is no separate timestamp index: the hosting checks keep timestamps non-decreasing in
record order, so `read_by_ts` is a binary search over the records (O(log n) point reads) and
gives exactly GDP's "first record at or after t".

Hosting checks on every appended record, in GDP's order (gdplogd `cmd_append`):

1. recno must be nrecs + 1: an existing recno (1 ≤ recno ≤ nrecs) is 409 (`RECORD_DUPLICATED`),
   anything else 403 (`RECNO_SEQ_ERROR`);
2. the signature must verify against PUB: else 403 (`CRYPTO_SIGFAIL`);
3. prevhash must be the hash of record nrecs (zeros for record 1): else 409 (a fork);
4. ts must not go backwards and not be more than `max_skew_ns` ahead of the host clock: else 400.
"""

from __future__ import annotations

import hashlib
import struct
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from hoard.content.ingest import LOGS_ACCOUNT, Admission, Ingest
from hoard.errors import HoardError, LogError, QuotaExceededError
from hoard.logs.metadata import PUB, Metadata, decode_pub
from hoard.logs.names import LogName
from hoard.logs.records import ZERO_HASH, Datum, Verifier, record_ts
from hoard.store import local_views
from hoard.store.base import BlockStore
from hoard.store.catalog import Catalog, CatalogBatch

__all__ = ["DEFAULT_MAX_SKEW_NS", "LogInfo", "LogStore", "Tail"]

TABLE_LOGS = "logs"
TABLE_TAILS = "logtails"
TABLE_RECORDS = "records"
DEFAULT_MAX_SKEW_NS = 30 * 1_000_000_000
_TAIL = struct.Struct(">Q32sq")
_RECNO = struct.Struct(">Q")


@dataclass(frozen=True, slots=True)
class Tail:
    """The head of a log's chain: record count, hash and timestamp of the last record."""

    nrecs: int
    last_hash: bytes = ZERO_HASH
    last_ts: int = 0

    def pack(self) -> bytes:
        return _TAIL.pack(self.nrecs, self.last_hash, self.last_ts)

    @classmethod
    def unpack(cls, raw: bytes) -> Tail:
        return cls(*_TAIL.unpack(raw))


@dataclass(frozen=True, slots=True)
class LogInfo:
    """What opening a log returns: its metadata, the writer's public key and the current tail."""

    name: LogName
    metadata: Metadata
    public_key: bytes
    tail: Tail

    @property
    def nrecs(self) -> int:
        return self.tail.nrecs


class _Entry:
    __slots__ = ("metadata", "tail", "verifier")

    def __init__(self, metadata: Metadata, verifier: Verifier, tail: Tail) -> None:
        self.metadata = metadata
        self.verifier = verifier
        self.tail = tail  # replaced (never mutated) after each commit


def _record_key(name: LogName, recno: int) -> bytes:
    return name.raw + _RECNO.pack(recno)


def _not_found(name: LogName) -> LogError:
    return LogError(f"no log named {name}", status=404, gdp_stat="NOTFOUND", log=str(name))


def _no_room(name: LogName, datum: Datum, reason: str) -> LogError:
    return LogError(f"record {datum.recno} of log {name} refused: {reason}", status=507, recno=datum.recno)


class LogStore:
    """Logs in a node's catalog. Thread-safe: reads run concurrently, appends are serialised."""

    def __init__(self, store: Catalog | BlockStore, *, clock: Callable[[], int] = time.time_ns,
                 max_skew_ns: int = DEFAULT_MAX_SKEW_NS, quota: Ingest | None = None) -> None:
        """`quota`: the content store's ingest (same catalog), whose storage quota the records
        count against; None: logs are not accounted (a store used for logs alone). A
        `BlockStore` (memory, a bare LMDB dir) is used through its tables."""
        self._store: Catalog = local_views(store)[1] if isinstance(store, BlockStore) else store
        self._clock = clock
        self._max_skew_ns = max_skew_ns
        self._entries: dict[LogName, _Entry] = {}
        self._lock = threading.RLock()
        self._quota = quota
        if quota is not None:
            quota.ensure_account(LOGS_ACCOUNT, self._measure)

    def _measure(self) -> int:
        """Bytes of every stored record, as `append_many` counts them (once per store)."""
        return sum(len(key) + len(value) for key, value in self._store.scan(TABLE_RECORDS))

    # -- logs ---------------------------------------------------------------------
    def create(self, name: LogName, metadata: Metadata) -> LogInfo:
        """Create an empty log (durably). 409 if it exists; 400 without a usable (EC or Ed25519) PUB."""
        name.check_valid()
        pub = metadata.get(PUB)
        if pub is None:
            raise LogError("a log needs PUB metadata (the writer's public key)", status=400, gdp_stat="SKEY_REQUIRED")
        verifier = Verifier(decode_pub(pub), metadata)
        with self._lock:
            if self._entries.get(name) is not None or self._store.get(TABLE_LOGS, name.raw) is not None:
                raise LogError(f"log {name} already exists", status=409, log=str(name))
            tail = Tail(0)
            batch = CatalogBatch().put(TABLE_LOGS, name.raw, metadata.serialize())
            batch.put(TABLE_TAILS, name.raw, tail.pack())
            self._store.commit(batch, durable=True)
            self._entries[name] = _Entry(metadata, verifier, tail)
        return LogInfo(name, metadata, verifier.public_key, tail)

    def _entry(self, name: LogName) -> _Entry:
        entry = self._entries.get(name)
        if entry is not None:
            return entry
        raw_md = self._store.get(TABLE_LOGS, name.raw)
        if raw_md is None:
            raise _not_found(name)
        metadata = Metadata.parse(raw_md)
        raw_tail = self._store.get(TABLE_TAILS, name.raw)
        tail = Tail.unpack(raw_tail) if raw_tail is not None else Tail(0)
        entry = _Entry(metadata, Verifier(decode_pub(metadata.get(PUB) or b""), metadata), tail)
        with self._lock:
            return self._entries.setdefault(name, entry)

    def info(self, name: LogName) -> LogInfo:
        """Metadata, public key and tail of a log; LogError 404 if there is none."""
        entry = self._entry(name)
        return LogInfo(name, entry.metadata, entry.verifier.public_key, entry.tail)

    def tail(self, name: LogName) -> Tail:
        return self._entry(name).tail

    def nrecs(self, name: LogName) -> int:
        return self._entry(name).tail.nrecs

    def names(self) -> list[LogName]:
        """Every log in the store, in name order."""
        return [LogName(key) for key, _ in self._store.scan(TABLE_LOGS)]

    # -- reads --------------------------------------------------------------------
    def get(self, name: LogName, recno: int) -> Datum | None:
        """Record `recno` (absolute) as stored, unverified; None if absent."""
        raw = self._store.get(TABLE_RECORDS, _record_key(name, recno))
        return None if raw is None else Datum.decode(raw)

    def resolve(self, name: LogName, recno: int) -> int:
        """GDP's starting point: recno ≤ 0 counts back from the end (recno += nrecs + 1, at
        least 1); a result past the last record is LogError 404."""
        nrecs = self.nrecs(name)
        if recno <= 0:
            recno = max(recno + nrecs + 1, 1)
        if recno > nrecs:
            raise LogError(f"log {name} has no record {recno} (nrecs {nrecs})", status=404,
                           gdp_stat="NAK_NOTFOUND", recno=recno)
        return recno

    def read(self, name: LogName, recno: int, *, verify: bool = True) -> Datum:
        """Record `recno` (≤ 0 counts back: -1 is the last). 404 if there is none; with
        `verify`, a record whose signature does not verify is LogError 403."""
        recno = self.resolve(name, recno)
        datum = self.get(name, recno)
        if datum is None or datum.recno != recno:
            raise LogError(f"record {recno} of log {name} is missing", status=404,
                           gdp_stat="RECORD_MISSING", recno=recno)
        if verify:
            self._entry(name).verifier.verify(name, datum)
        return datum

    def first_at_or_after(self, name: LogName, ts: int) -> int | None:
        """The number of the first record with timestamp ≥ ts, or None. O(log nrecs) reads."""
        lo, hi = 1, self.nrecs(name)
        found = None
        while lo <= hi:
            mid = (lo + hi) // 2
            raw = self._store.get(TABLE_RECORDS, _record_key(name, mid))
            if raw is None:
                raise LogError(f"record {mid} of log {name} is missing", status=404,
                               gdp_stat="RECORD_MISSING", recno=mid)
            if record_ts(raw) >= ts:
                found, hi = mid, mid - 1
            else:
                lo = mid + 1
        return found

    def read_by_ts(self, name: LogName, ts: int, *, verify: bool = True) -> Datum:
        """The first record with timestamp ≥ ts; 404 if every record is older."""
        recno = self.first_at_or_after(name, ts)
        if recno is None:
            raise LogError(f"log {name} has no record at or after {ts}", status=404, gdp_stat="NAK_NOTFOUND")
        return self.read(name, recno, verify=verify)

    # -- appends ------------------------------------------------------------------
    def _check_sequence(self, name: LogName, datum: Datum, tail: Tail, sig_error: LogError | None) -> LogError | None:
        if datum.recno != tail.nrecs + 1:
            if 1 <= datum.recno <= tail.nrecs:
                return LogError(f"record {datum.recno} of log {name} already exists", status=409,
                                gdp_stat="RECORD_DUPLICATED", recno=datum.recno)
            return LogError(f"record {datum.recno} out of sequence in log {name} (next is {tail.nrecs + 1})",
                            status=403, gdp_stat="RECNO_SEQ_ERROR", recno=datum.recno)
        if sig_error is not None:
            return sig_error
        if datum.prevhash != tail.last_hash:
            return LogError(f"record {datum.recno} does not follow record {tail.nrecs} of log {name} "
                            "(prevhash mismatch: a fork)", status=409, gdp_stat="CHAIN_MISMATCH", recno=datum.recno)
        if datum.ts < tail.last_ts:
            return LogError(f"record {datum.recno} of log {name} is older than the record before it",
                            status=400, gdp_stat="BAD_TIMESTAMP", recno=datum.recno)
        if datum.ts > self._clock() + self._max_skew_ns:
            return LogError(f"record {datum.recno} of log {name} is stamped in the future",
                            status=400, gdp_stat="BAD_TIMESTAMP", recno=datum.recno)
        return None

    @contextmanager
    def _admission(self) -> Iterator[Admission | None]:
        if self._quota is None:
            yield None
        else:
            with self._quota.admit(LOGS_ACCOUNT) as room:
                yield room

    def append(self, name: LogName, datum: Datum) -> Datum:
        """Check and durably commit one record; raise the check's LogError if it fails."""
        (result,) = self.append_many([(name, datum)])
        if isinstance(result, LogError):
            raise result
        return result

    def verify_many(self, items: Iterable[tuple[LogName, Datum]]) -> list[LogError | None]:
        """Check each record's signature (check 2); None where it verifies. Lock-free."""
        errors: list[LogError | None] = []
        for name, datum in items:
            try:
                self._entry(name).verifier.verify(name, datum)
                errors.append(None)
            except LogError as exc:
                errors.append(exc)
        return errors

    def append_many(self, items: Iterable[tuple[LogName, Datum]],
                    sig_errors: list[LogError | None] | None = None) -> list[Datum | LogError]:
        """Check records in order and commit every one that passes in one durable commit.

        Returns, per item, the committed Datum or the LogError that refused it. A refused
        record does not stop later ones (each is checked against the chain as committed so
        far in this call). `sig_errors` is `verify_many(items)` when the caller already ran it
        (the host verifies on another thread while the previous batch is being committed).
        """
        items = list(items)
        if sig_errors is None:
            sig_errors = self.verify_many(items)
        results: list[Datum | LogError] = []
        with self._lock, self._admission() as room:
            batch = CatalogBatch()
            tails: dict[LogName, Tail] = {}
            full: str | None = None  # why the quota refused a record: every later one is refused too
            for (name, datum), sig_error in zip(items, sig_errors):
                if full is not None:
                    results.append(_no_room(name, datum, full))
                    continue
                try:
                    tail = tails.get(name) or self._entry(name).tail
                except LogError as exc:
                    results.append(exc)
                    continue
                error = self._check_sequence(name, datum, tail, sig_error)
                if error is not None:
                    results.append(error)
                    continue
                key = _record_key(name, datum.recno)
                encoded = datum.encode()
                if room is not None:
                    try:
                        room.take(len(key) + len(encoded))  # the storage quota, checked by the ingest
                    except QuotaExceededError as exc:
                        full = exc.message
                        results.append(_no_room(name, datum, full))
                        continue
                batch.put(TABLE_RECORDS, key, encoded)
                tails[name] = Tail(datum.recno, hashlib.sha256(encoded).digest(), datum.ts)
                results.append(datum)
            if not tails:
                return results
            for name, tail in tails.items():
                batch.put(TABLE_TAILS, name.raw, tail.pack())
            try:
                if room is not None:
                    room.commit(batch, durable=True)  # the records and the quota's count together
                else:
                    self._store.commit(batch, durable=True)
            except HoardError as exc:
                failure = LogError(f"could not commit records: {exc.message}", status=500, gdp_stat="PHYSIO_ERROR")
                return [failure if isinstance(r, Datum) else r for r in results]
            for name, tail in tails.items():
                self._entries[name].tail = tail
        return results
