"""The repo: a node's data dir, its lock, its store and its identity.

Layout of `data-dir`:
  repo/        the LMDB environment: blocks and catalog (with `repo-kind: s3`, the catalog only)
  cache/       repo-kind s3: the on-disk read cache in front of the bucket (`storage-cache` bytes)
  key          the libp2p private key (`net-privkey`, mode 0600)
  keys/        log writer keys
  LOCK         held (flock) by the process that has the repo open
  node.json    written by a running node: pid, API and gRPC addresses (read by the CLI)
"""

from __future__ import annotations

import fcntl
import json
import os
from pathlib import Path
from typing import Any

from hoard.content.repo import ContentStore
from hoard.errors import InvalidArgumentError, RepoLockedError
from hoard.ids.peer import Identity
from hoard.node.config import Config
from hoard.store import BlobStore, BlockStore, Catalog, LmdbBlockStore, MemoryBlockStore, local_views, open_blobstore

RUNTIME_FILE = "node.json"


class Repo:
    """Opens (creating on first use) the data dir; holds its lock until `close()`."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.path = config.data_dir.resolve()
        try:
            self.path.mkdir(mode=0o700, parents=True, exist_ok=True)
            (self.path / "keys").mkdir(mode=0o700, exist_ok=True)
            (self.path / "keys").chmod(0o700)  # private even in a repo created before it was enforced
        except OSError as exc:
            raise InvalidArgumentError(f"cannot create data-dir {self.path}: {exc.strerror}", path=str(self.path)) from exc
        if not os.access(self.path, os.W_OK):
            raise InvalidArgumentError(f"data-dir {self.path} is not writable", path=str(self.path))
        self._lock_fh = open(self.path / "LOCK", "a+")  # noqa: SIM115 - held for the repo's life
        try:
            fcntl.flock(self._lock_fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            self._lock_fh.close()
            info = read_runtime_info(self.path)
            who = f" (pid {info['pid']})" if info and "pid" in info else ""
            raise RepoLockedError(f"data-dir {self.path} is in use by another hoard process{who}", path=str(self.path)) from exc
        try:
            self.identity = Identity.load_or_create(config.key_path)
            self.store, self.blobs, self.catalog = _open_stores(config, self.path, str(self.identity.peer_id))
            try:
                if self.blobs is None:
                    self.content = ContentStore(self.store, config.storage_quota, config.block_ttl)
                else:
                    self.content = ContentStore(self.blobs, config.storage_quota, config.block_ttl,
                                                catalog=self.catalog)
            except BaseException:
                self._close_stores()
                raise
        except BaseException:
            fcntl.flock(self._lock_fh, fcntl.LOCK_UN)
            self._lock_fh.close()
            raise
        self.keys_dir = self.path / "keys"

    def write_runtime_info(self, info: dict[str, Any]) -> None:
        path = self.path / RUNTIME_FILE
        tmp = path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)  # private, like every repo file
        with os.fdopen(fd, "w") as fh:
            fh.write(json.dumps({"pid": os.getpid(), **info}))
        os.replace(tmp, path)

    def clear_runtime_info(self) -> None:
        try:
            (self.path / RUNTIME_FILE).unlink()
        except FileNotFoundError:
            pass

    def _close_stores(self) -> None:
        try:
            if self.blobs is not None:
                self.blobs.close()
        finally:
            self.store.close()

    def close(self) -> None:
        if self._lock_fh.closed:
            return
        try:
            self.clear_runtime_info()
            self._close_stores()
        finally:
            fcntl.flock(self._lock_fh, fcntl.LOCK_UN)
            self._lock_fh.close()


def _open_stores(config: Config, path: Path, holder: str) -> tuple[BlockStore, BlobStore | None, Catalog]:
    """The repo's local store, and, with `repo-kind: s3`, the bucket's blob store (with its read
    cache) beside the catalog in the local store. `storage-url` goes only with repo-kind s3."""
    if config.repo_kind != "s3":
        if config.storage_url is not None:
            raise InvalidArgumentError("storage-url needs repo-kind s3", key="storage-url")
        store: BlockStore = MemoryBlockStore() if config.repo_kind == "memory" else LmdbBlockStore(path / "repo")
        return store, None, local_views(store)[1]
    if not config.storage_url:
        raise InvalidArgumentError("repo-kind s3 needs storage-url (s3://bucket/prefix?endpoint=...)",
                                   key="storage-url")
    if not config.storage_url.startswith("s3://"):
        raise InvalidArgumentError(f"storage-url must be an s3:// URL, not {config.storage_url!r}", key="storage-url")
    cache_dir = path / "cache" if config.storage_cache else None
    blobs = open_blobstore(config.storage_url, holder=holder, cache_bytes=config.storage_cache, cache_dir=cache_dir)
    try:
        store = LmdbBlockStore(path / "repo")
    except BaseException:
        blobs.close()
        raise
    return store, blobs, local_views(store)[1]


def read_runtime_info(data_dir: Path) -> dict[str, Any] | None:
    """What a running node wrote about itself, or None."""
    try:
        info = json.loads((Path(data_dir) / RUNTIME_FILE).read_text())
    except (OSError, ValueError):
        return None
    return info if isinstance(info, dict) else None
