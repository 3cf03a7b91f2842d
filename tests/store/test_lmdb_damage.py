"""A damaged LMDB file is found on open (never a SIGBUS later), and repo files are private."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from hoard.errors import RepoDamagedError
from hoard.ids import CID
from hoard.store import LmdbBlockStore
from hoard.store.base import Batch

pytestmark = pytest.mark.timeout(120)


def _filled(path: Path) -> Path:
    store = LmdbBlockStore(path)
    batch = Batch()
    for i in range(300):
        data = os.urandom(8000) + i.to_bytes(4, "big")
        batch.put(CID.of(data), data)
    store.commit(batch, durable=True)
    store.close()
    return path / "data.mdb"


def _truncate(file: Path, size: int) -> None:
    with open(file, "r+b") as fh:
        fh.truncate(size)


def test_a_truncated_store_is_refused_on_open(tmp_path: Path) -> None:
    file = _filled(tmp_path / "repo")
    _truncate(file, file.stat().st_size // 2)
    with pytest.raises(RepoDamagedError, match="truncated"):
        LmdbBlockStore(tmp_path / "repo")


def test_an_empty_or_foreign_data_file_is_refused(tmp_path: Path) -> None:
    file = _filled(tmp_path / "repo")
    _truncate(file, 0)
    with pytest.raises(RepoDamagedError, match="empty"):
        LmdbBlockStore(tmp_path / "repo")
    file.write_bytes(b"not lmdb at all" * 1000)
    with pytest.raises(RepoDamagedError, match="not an LMDB file"):
        LmdbBlockStore(tmp_path / "repo")


def test_an_intact_store_opens_and_its_files_are_private(tmp_path: Path) -> None:
    file = _filled(tmp_path / "repo")
    os.chmod(file, 0o644)  # a repo written before the fix
    store = LmdbBlockStore(tmp_path / "repo")
    assert store.stats().blocks == 300
    store.close()
    assert stat.S_IMODE(file.stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "repo").stat().st_mode) == 0o700


def test_a_node_refuses_to_start_on_a_truncated_repo_with_a_clear_exit(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    file = _filled(data_dir / "repo")
    _truncate(file, file.stat().st_size // 2)
    hoard = Path(sys.executable).with_name("hoard")
    done = subprocess.run([str(hoard), "--data-dir", str(data_dir), "node", "start"], capture_output=True,
                          timeout=60, check=False)
    assert done.returncode == RepoDamagedError.exit_code, done.stderr
    assert b"truncated" in done.stderr and b"Traceback" not in done.stderr
    assert not (data_dir / "node.json").exists()


def test_a_node_repo_keeps_keys_and_store_private(tmp_path: Path) -> None:
    import hoard

    data_dir = tmp_path / "data"
    (data_dir / "keys").mkdir(parents=True, mode=0o755)  # as an older hoard made it
    with hoard.Node({"data-dir": str(data_dir)}):
        assert stat.S_IMODE((data_dir / "keys").stat().st_mode) == 0o700
        repo_files = [p for p in (data_dir / "repo").iterdir() if p.is_file()]
        assert repo_files and all(stat.S_IMODE(p.stat().st_mode) == 0o600 for p in repo_files)
