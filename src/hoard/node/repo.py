"""The repo: a node's data dir, its lock, its store and its identity.

Layout of `data-dir`:
  repo/        the LMDB environment (blocks and all metadata)
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
from hoard.store import BlockStore, LmdbBlockStore, MemoryBlockStore

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
        self.identity = Identity.load_or_create(config.key_path)
        self.store: BlockStore = (MemoryBlockStore() if config.repo_kind == "memory"
                                  else LmdbBlockStore(self.path / "repo"))
        self.content = ContentStore(self.store, config.storage_quota, config.block_ttl)
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

    def close(self) -> None:
        if self._lock_fh.closed:
            return
        try:
            self.clear_runtime_info()
            self.store.close()
        finally:
            fcntl.flock(self._lock_fh, fcntl.LOCK_UN)
            self._lock_fh.close()


def read_runtime_info(data_dir: Path) -> dict[str, Any] | None:
    """What a running node wrote about itself, or None."""
    try:
        info = json.loads((Path(data_dir) / RUNTIME_FILE).read_text())
    except (OSError, ValueError):
        return None
    return info if isinstance(info, dict) else None
