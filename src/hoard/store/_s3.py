"""Blocks in an S3-compatible bucket (AWS S3, MinIO, Ceph RGW, SeaweedFS), on obstore.

URL: `s3://bucket/prefix?endpoint=http://127.0.0.1:8333&region=us-east-1`. Query keys
(any other is an error): `endpoint` (else `AWS_ENDPOINT_URL`, else AWS), `region` (else
`AWS_REGION`, `AWS_DEFAULT_REGION`, `us-east-1`), `addressing` (`path`, the default, or
`virtual`), `concurrency` (requests in flight per batch, default 16). Credentials come from the
environment as obstore reads it (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`,
`AWS_SESSION_TOKEN`, web identity, instance metadata), never from the URL.

Layout under the prefix (keys are the CID's binary in multibase base32, `bafk...`):

  blocks/<cid>             the block's bytes (manifests and index nodes too)
  refs/<cid>/<holder>      empty marker: node <holder> refers to the block
  deleting/<holder>        lease: node <holder> is deleting blocks now (see below)
  datasets/<cid>           a dataset's record for nodes that adopt it (`publish`); deleted
                           with the block <cid>

**Several nodes on one bucket.** Each node is a holder (its peer ID). A block is deleted only
by the last holder to release it, and never while another holder's catalog refers to it.
The protocol, with its ordering (S3's strong read-after-write and list-after-write
consistency, which AWS, MinIO, Ceph and SeaweedFS provide, is assumed):

- hold:    PUT refs/<cid>/<me> for each block *before* writing or relying on the block.
- confirm: before the catalog commit, LIST deleting/; HEAD every held block; a missing one is
           returned (the caller re-writes it). If a live lease of another node is listed, first
           wait until `settle` seconds have passed since this node's last marker write.
- release: PUT deleting/<me>; DELETE refs/<cid>/<me>; LIST refs/<cid>/ (all holders, this
           one included); DELETE blocks/<cid> only if that listing is empty *and* the DELETE is
           sent within `window` seconds of sending the LIST (a DELETE timeout of
           `delete_timeout`, no retries); finally DELETE deleting/<me>.

Why it is safe: a deleter that lists a block's markers after a holder's marker PUT sees it and
keeps the block. One that listed before it deletes, if at all, by LIST-send + window +
delete_timeout < marker + settle; if its lease was up when the holder listed deleting/, the
holder waits past that instant before its HEADs, so it sees the deletion and re-writes. If no
lease was listed, every deleter either started after the holder's markers were visible (and so
keeps the blocks) or finished before the LIST, and then the HEADs that follow see its deletions.

Limits: (1) a request the server applies after the client gave up on it (a stalled DELETE
outliving `delete_timeout`) is outside the argument; (2) lease expiry compares the lease's
last-modified time with the local clock, so nodes need clocks within `lease_ttl` of the
server's; (3) within one process, hold and release of the same CID must not overlap (the
content layer decides both under its lock; this store additionally orders its own holds and
releases); (4) a node that reads a dataset straight from the bucket without holding it can
see it deleted mid-read; (5) a block whose guarded DELETE ran out of its window, or a node
that crashed between its catalog commit and `release`, leaves an orphan: `sweep` removes
blocks with no marker, and `held` lists a node's markers for it to compare with its catalog.
"""

from __future__ import annotations

import base64
import contextlib
import json
import logging
import os
import re
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, TypeVar
from urllib.parse import parse_qsl, urlsplit

import obstore
from obstore import exceptions as obx
from obstore.store import S3Store

from hoard.errors import HoardError, InvalidArgumentError, InvalidCidError, StateError
from hoard.ids.cid import CID
from hoard.store.base import StoreStats
from hoard.store.blobs import BlobStore, BlockData

__all__ = ["HoldTiming", "S3BlobStore", "S3Settings", "block_key", "parse_s3_url"]

log = logging.getLogger("hoard.store.s3")

BLOCKS, HOLDS, LEASES, RECORDS = "blocks", "refs", "deleting", "datasets"
_MAX_RECORD = 1 << 20  # a published record read back is at most this big
MULTIPART_BYTES = 16 << 20  # objects larger than this are uploaded in parts
MULTIPART_PART_BYTES = 8 << 20
QUERY_KEYS = frozenset({"endpoint", "region", "addressing", "concurrency"})
_BUCKET_RE = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
_SEGMENT_RE = re.compile(r"[A-Za-z0-9!_.*'()=+,;@-]{1,255}")
_HOLDER_RE = re.compile(r"[A-Za-z0-9._-]{1,128}")
_MAX_CONCURRENCY = 256
_BULK = 1000  # keys per DeleteObjects request (the S3 maximum)
# obstore raises the builtin FileNotFoundError for a missing object (its own class too, by
# version); transport failures can surface as OSError subclasses.
_NOT_FOUND = (obx.NotFoundError, FileNotFoundError)
_FAILED = (obx.BaseError, OSError)
T = TypeVar("T")
R = TypeVar("R")


# -- configuration ----------------------------------------------------------------------
@dataclass(frozen=True)
class S3Settings:
    """Where the bucket is and how to talk to it (parsed from an `s3://` URL)."""

    bucket: str
    prefix: str = ""
    endpoint: str | None = None
    region: str = "us-east-1"
    addressing: Literal["path", "virtual"] = "path"
    concurrency: int = 16

    def describe(self) -> str:
        """The URL form, without credentials (for logs and errors)."""
        where = f"s3://{self.bucket}/{self.prefix}".rstrip("/")
        return where + (f" at {self.endpoint}" if self.endpoint else "")


@dataclass(frozen=True)
class HoldTiming:
    """Bounds of the release/confirm protocol (module docstring), in seconds."""

    window: float = 2.0           # LIST of markers sent -> DELETE of the block sent, at most
    delete_timeout: float = 5.0   # the guarded DELETE's request timeout (no retries)
    lease_ttl: float = 900.0      # a deleting/ lease older than this is dead (crashed deleter)
    margin: float = 0.5

    @property
    def settle(self) -> float:
        """How long after its last marker write a holder waits when a deleter is active."""
        return self.window + self.delete_timeout + self.margin


def parse_s3_url(url: str, env: Mapping[str, str] | None = None) -> S3Settings:
    """Validate `s3://bucket[/prefix][?key=value...]` strictly; environment fills defaults."""
    env = os.environ if env is None else env
    parts = urlsplit(url)
    if parts.scheme != "s3":
        raise InvalidArgumentError(f"not an s3:// URL: {url!r}", url=url)
    if parts.username is not None or parts.password is not None or "@" in parts.netloc:
        raise InvalidArgumentError("s3 URL must not carry credentials (use AWS_ACCESS_KEY_ID and "
                                   "AWS_SECRET_ACCESS_KEY)", url="s3://…")
    if parts.fragment:
        raise InvalidArgumentError(f"s3 URL takes no #fragment: {url!r}", url=url)
    bucket = parts.netloc
    if not _BUCKET_RE.fullmatch(bucket) or ".." in bucket:
        raise InvalidArgumentError(f"bad bucket name {bucket!r} (3-63 of a-z 0-9 . -)", url=url)
    segments = [s for s in parts.path.split("/") if s]
    if parts.path.strip("/") != "/".join(segments) or \
            any(s in (".", "..") or not _SEGMENT_RE.fullmatch(s) for s in segments):
        raise InvalidArgumentError(f"bad prefix {parts.path!r} in {url!r}", url=url)
    query: dict[str, str] = {}
    for key, value in parse_qsl(parts.query, keep_blank_values=True, strict_parsing=bool(parts.query)):
        if key not in QUERY_KEYS:
            raise InvalidArgumentError(f"unknown s3 URL option {key!r} (known: {', '.join(sorted(QUERY_KEYS))})",
                                       url=url, option=key)
        if key in query:
            raise InvalidArgumentError(f"s3 URL option {key!r} given twice", url=url, option=key)
        query[key] = value
    endpoint = query.get("endpoint") or env.get("AWS_ENDPOINT_URL") or None
    if endpoint is not None:
        ep = urlsplit(endpoint)
        if ep.scheme not in ("http", "https") or not ep.hostname or ep.query or ep.fragment \
                or ep.path not in ("", "/") or ep.username is not None:
            raise InvalidArgumentError(f"bad endpoint {endpoint!r} (want http[s]://host[:port])", url=url)
        endpoint = endpoint.rstrip("/")
    region = query.get("region") or env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or "us-east-1"
    if not re.fullmatch(r"[a-z0-9-]{1,64}", region):
        raise InvalidArgumentError(f"bad region {region!r}", url=url)
    addressing = query.get("addressing", "path")
    if addressing not in ("path", "virtual"):
        raise InvalidArgumentError(f"addressing must be 'path' or 'virtual', not {addressing!r}", url=url)
    concurrency_text = query.get("concurrency", "16")
    if not concurrency_text.isdigit() or not 1 <= int(concurrency_text) <= _MAX_CONCURRENCY:
        raise InvalidArgumentError(f"concurrency must be 1-{_MAX_CONCURRENCY}, not {concurrency_text!r}", url=url)
    return S3Settings(bucket, "/".join(segments), endpoint, region,
                      "path" if addressing == "path" else "virtual", int(concurrency_text))


# -- keys ---------------------------------------------------------------------------------
def block_key(cid: CID) -> str:
    """The object name of a block: its binary CID in multibase base32 (`b` + RFC 4648 lower)."""
    return "b" + base64.b32encode(cid.binary).decode().lower().rstrip("=")


def _parse_key(name: str) -> CID | None:
    if not name.startswith("b"):
        return None
    text = name[1:].upper()
    try:
        return CID(base64.b32decode(text + "=" * (-len(text) % 8)))
    except (ValueError, InvalidCidError):
        return None


def _last(path: str) -> str:
    return path.rsplit("/", 1)[-1]


# -- the store ---------------------------------------------------------------------------
class _HoldReleaseOrder:
    """Holds run together; a release runs alone (a writer-preferring readers-writer lock),
    so this process never deletes a marker it is writing at the same moment."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._holds = 0
        self._releasing = False
        self._waiting = 0

    @contextlib.contextmanager
    def holding(self) -> Iterator[None]:
        with self._cond:
            self._cond.wait_for(lambda: not self._releasing and not self._waiting)
            self._holds += 1
        try:
            yield
        finally:
            with self._cond:
                self._holds -= 1
                self._cond.notify_all()

    @contextlib.contextmanager
    def releasing(self) -> Iterator[None]:
        with self._cond:
            self._waiting += 1
            self._cond.wait_for(lambda: not self._releasing and self._holds == 0)
            self._waiting -= 1
            self._releasing = True
        try:
            yield
        finally:
            with self._cond:
                self._releasing = False
                self._cond.notify_all()


class S3BlobStore(BlobStore):
    """Blocks as objects under `blocks/` of a bucket prefix, shared by holders (nodes).

    `holder` names this node in the markers (its peer ID); without one the store can read
    and write blocks but not hold or release them. `verify_reads` checks every block read
    against its CID (a bucket other nodes write is a trust boundary).
    """

    shared = True
    url_scheme = "s3"

    def __init__(self, settings: S3Settings, *, holder: str | None = None,
                 timing: HoldTiming | None = None, verify_reads: bool = True,
                 request_timeout: float = 30.0) -> None:
        if holder is not None and not _HOLDER_RE.fullmatch(holder):
            raise InvalidArgumentError(f"bad holder id {holder!r} (1-128 of A-Z a-z 0-9 . _ -)", holder=holder)
        self.settings = settings
        self.holder = holder
        self.timing = timing or HoldTiming()
        self.verify_reads = verify_reads
        self._obj = self._client(request_timeout, retries=8)
        self._guarded = self._client(self.timing.delete_timeout, retries=0)
        self._pool = ThreadPoolExecutor(settings.concurrency, thread_name_prefix="hoard-s3")
        self._order = _HoldReleaseOrder()
        self._marked_at = 0.0  # time.monotonic() when this node's last marker write completed
        self._lease_lock = threading.Lock()
        self._closed = False
        try:
            next(iter(obstore.list(self._obj, BLOCKS, chunk_size=1)), None)
        except _FAILED as exc:
            self._pool.shutdown(wait=False)
            raise InvalidArgumentError(f"cannot use bucket {settings.describe()}: {_first_line(exc)}",
                                       url=settings.describe()) from exc

    def _client(self, timeout: float, retries: int) -> S3Store:
        s = self.settings
        options: dict[str, Any] = {"timeout": timedelta(seconds=timeout), "connect_timeout": timedelta(seconds=5),
                                   "pool_max_idle_per_host": str(max(s.concurrency, 8))}
        if s.endpoint is not None and s.endpoint.startswith("http://"):
            options["allow_http"] = True
        config: dict[str, Any] = {"region": s.region, "virtual_hosted_style_request": s.addressing == "virtual"}
        if s.endpoint is not None:
            config["endpoint"] = s.endpoint
        retry = {"max_retries": retries, "retry_timeout": timedelta(seconds=max(timeout * 2, 60)),
                 "backoff": {"init_backoff": timedelta(milliseconds=100), "max_backoff": timedelta(seconds=5),
                             "base": 2.0}}
        return S3Store(s.bucket, prefix=s.prefix or None, config=config,  # type: ignore[arg-type]
                       client_options=options, retry_config=retry)  # type: ignore[arg-type]

    def __repr__(self) -> str:
        return f"S3BlobStore({self.settings.describe()!r}, holder={self.holder!r})"

    # -- plumbing -------------------------------------------------------------------
    def _fail(self, op: str, path: str, exc: Exception) -> HoardError:
        self._check_open()
        return StateError(f"S3 {op} of {path} in {self.settings.describe()} failed: {_first_line(exc)}",
                          op=op, key=path)

    def _check_open(self) -> None:
        if self._closed:
            raise StateError(f"{self!r} is closed")

    def _map(self, fn: Callable[[T], R], items: Sequence[T]) -> list[R]:
        """`fn` over `items` with at most `concurrency` requests in flight, results in order."""
        self._check_open()
        if len(items) <= 1:
            return [fn(item) for item in items]
        return list(self._pool.map(fn, items))

    def _head(self, path: str) -> int | None:
        try:
            return int(obstore.head(self._obj, path)["size"])
        except _NOT_FOUND:
            return None
        except _FAILED as exc:
            raise self._fail("HEAD", path, exc) from exc

    def _put(self, path: str, data: BlockData, client: S3Store | None = None) -> None:
        try:
            # one PUT for a block; a large object (a hugo block of up to 32 MiB) goes in parts
            multipart = len(data) > MULTIPART_BYTES
            obstore.put(client or self._obj, path, data, use_multipart=multipart,
                        chunk_size=MULTIPART_PART_BYTES, max_concurrency=4)
        except _FAILED as exc:
            raise self._fail("PUT", path, exc) from exc

    def _delete_keys(self, paths: Sequence[str], client: S3Store | None = None) -> None:
        for i in range(0, len(paths), _BULK):
            chunk = list(paths[i:i + _BULK])
            try:
                obstore.delete(client or self._obj, chunk)
            except _NOT_FOUND:
                pass
            except _FAILED as exc:
                raise self._fail("DELETE", chunk[0], exc) from exc

    def _list(self, prefix: str) -> Iterator[tuple[str, int, datetime]]:
        try:
            for page in obstore.list(self._obj, prefix, chunk_size=1000):
                for meta in page:
                    yield meta["path"], int(meta["size"]), meta["last_modified"]
        except _FAILED as exc:
            raise self._fail("LIST", prefix + "/", exc) from exc

    # -- required ---------------------------------------------------------------------
    def get(self, cid: CID) -> bytes | None:
        self._check_open()
        path = f"{BLOCKS}/{block_key(cid)}"
        try:
            data = obstore.get(self._obj, path).bytes().to_bytes()
        except _NOT_FOUND:
            return None
        except _FAILED as exc:
            raise self._fail("GET", path, exc) from exc
        if self.verify_reads:
            cid.verify(data)
        return data

    def has(self, cid: CID) -> bool:
        return self.size_of(cid) is not None

    def size_of(self, cid: CID) -> int | None:
        self._check_open()
        return self._head(f"{BLOCKS}/{block_key(cid)}")

    def put(self, cid: CID, data: BlockData) -> None:
        self._check_open()
        self._put(f"{BLOCKS}/{block_key(cid)}", data)

    def delete(self, cid: CID) -> bool:
        if not self.has(cid):
            return False
        self._delete_keys([f"{BLOCKS}/{block_key(cid)}"])
        return True

    def iter_cids(self) -> Iterator[CID]:
        self._check_open()
        for path, _, _ in self._list(BLOCKS):
            cid = _parse_key(_last(path))
            if cid is not None:
                yield cid

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._pool.shutdown(wait=True)

    # -- batched forms: `concurrency` requests in flight ------------------------------
    def get_many(self, cids: Iterable[CID]) -> list[bytes | None]:
        return self._map(self.get, list(cids))

    def has_many(self, cids: Iterable[CID]) -> list[bool]:
        return self._map(self.has, list(cids))

    def put_many(self, items: Iterable[tuple[CID, BlockData]]) -> None:
        self._map(lambda item: self.put(*item), list(items))

    def delete_many(self, cids: Iterable[CID]) -> None:
        """Bulk DeleteObjects, 1000 keys a request; absent blocks are fine."""
        self._check_open()
        self._delete_keys([f"{BLOCKS}/{block_key(c)}" for c in dict.fromkeys(cids)])

    def stats(self) -> StoreStats:
        """One LIST of `blocks/` (1000 objects a request): every holder's blocks."""
        blocks = total = 0
        for _, size, _ in self._list(BLOCKS):
            blocks += 1
            total += size
        return StoreStats(blocks, total)

    # -- holders -------------------------------------------------------------------------
    def _me(self) -> str:
        if self.holder is None:
            raise StateError(f"{self!r} has no holder id: it cannot hold or release blocks")
        return self.holder

    def hold(self, cids: Iterable[CID]) -> None:
        """PUT refs/<cid>/<holder> for each block (concurrently); idempotent."""
        me = self._me()
        paths = [f"{HOLDS}/{block_key(c)}/{me}" for c in dict.fromkeys(cids)]
        with self._order.holding():
            self._map(lambda p: self._put(p, b""), paths)
            self._marked_at = max(self._marked_at, time.monotonic())

    def confirm(self, cids: Iterable[CID]) -> list[CID]:
        """Missing blocks among `cids`, checked after any concurrent deleter is done with them."""
        cids = list(dict.fromkeys(cids))
        if not cids:
            return []
        if self._live_deleters():
            wait = self._marked_at + self.timing.settle - time.monotonic()
            if wait > 0:
                log.info("another node is deleting from %s: confirming held blocks in %.1f s",
                         self.settings.describe(), wait)
                time.sleep(wait)  # the protocol's bound, not a stand-in for synchronisation
        return [cid for cid, there in zip(cids, self.has_many(cids), strict=True) if not there]

    def _live_deleters(self) -> list[str]:
        now = datetime.now(UTC)
        ttl = timedelta(seconds=self.timing.lease_ttl)
        return [_last(path) for path, _, modified in self._list(LEASES)
                if _last(path) != self.holder and modified + ttl > now]

    def holders(self, cid: CID) -> list[str]:
        """Every holder with a marker on `cid` (one LIST)."""
        return [_last(path) for path, _, _ in self._list(f"{HOLDS}/{block_key(cid)}")]

    def release(self, cids: Iterable[CID]) -> list[CID]:
        """Drop this holder's markers; delete the blocks no holder marks (module docstring)."""
        me = self._me()
        cids = list(dict.fromkeys(cids))
        if not cids:
            return []
        with self._order.releasing(), self._lease(me):
            self._delete_keys([f"{HOLDS}/{block_key(c)}/{me}" for c in cids])
            return self._delete_unheld(cids)

    def _delete_unheld(self, cids: list[CID]) -> list[CID]:
        """Guarded deletes, a few LISTs at a time so each DELETE goes out within the window."""
        deleted: list[CID] = []
        step = self.settings.concurrency * 4
        renewed = time.monotonic()
        for i in range(0, len(cids), step):
            chunk = cids[i:i + step]
            if time.monotonic() - renewed > self.timing.lease_ttl / 3:
                self._put(f"{LEASES}/{self._me()}", self._lease_body())
                renewed = time.monotonic()
            sent = time.monotonic()
            held = self._map(self.holders, chunk)
            free = [cid for cid, holders in zip(chunk, held, strict=True) if not holders]
            if not free:
                continue
            if time.monotonic() - sent > self.timing.window:
                log.warning("%d unheld blocks left for sweep: listing their markers took over %.1f s",
                            len(free), self.timing.window)
                continue
            try:
                self._delete_keys([f"{BLOCKS}/{block_key(c)}" for c in free], client=self._guarded)
                self._delete_keys([f"{RECORDS}/{block_key(c)}" for c in free])
            except StateError:
                log.warning("guarded delete of %d blocks failed; left for sweep", len(free), exc_info=True)
                continue
            deleted.extend(free)
        return deleted

    def _lease_body(self) -> bytes:
        return json.dumps({"holder": self.holder, "since": time.time()}).encode()

    @contextlib.contextmanager
    def _lease(self, me: str) -> Iterator[None]:
        path = f"{LEASES}/{me}"
        with self._lease_lock:
            self._put(path, self._lease_body())
        try:
            yield
        finally:
            with self._lease_lock:
                self._delete_keys([path])

    # -- dataset records ----------------------------------------------------------------
    def publish(self, cid: CID, record: bytes) -> None:
        """PUT datasets/<cid>."""
        self._check_open()
        self._put(f"{RECORDS}/{block_key(cid)}", record)

    def published(self, cid: CID) -> bytes | None:
        """GET datasets/<cid> (None if absent or over 1 MiB)."""
        self._check_open()
        path = f"{RECORDS}/{block_key(cid)}"
        try:
            data = obstore.get(self._obj, path).bytes().to_bytes()
        except _NOT_FOUND:
            return None
        except _FAILED as exc:
            raise self._fail("GET", path, exc) from exc
        return data if len(data) <= _MAX_RECORD else None

    # -- maintenance -------------------------------------------------------------------
    def held(self) -> Iterator[CID]:
        """Every block this holder has a marker on (one LIST of `refs/`, all holders')."""
        me = self._me()
        for path, _, _ in self._list(HOLDS):
            head, _, holder = path.rpartition("/")
            if holder == me:
                cid = _parse_key(_last(head))
                if cid is not None:
                    yield cid

    def sweep(self, min_age: float = 3600.0) -> list[CID]:
        """Delete blocks that no holder marks and that are older than `min_age` seconds
        (orphans of crashed or timed-out deletes); returns them. LISTs `blocks/` and `refs/`."""
        me = self._me()
        cutoff = datetime.now(UTC) - timedelta(seconds=min_age)
        old: dict[CID, None] = {}
        for path, _, modified in self._list(BLOCKS):
            cid = _parse_key(_last(path))
            if cid is not None and modified < cutoff:
                old[cid] = None
        for path, _, _ in self._list(HOLDS):
            cid = _parse_key(_last(path.rpartition("/")[0]))
            if cid is not None:
                old.pop(cid, None)
        if not old:
            return []
        with self._order.releasing(), self._lease(me):
            return self._delete_unheld(list(old))


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:300] if text else type(exc).__name__
