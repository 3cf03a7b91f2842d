"""`hoard verify --all` re-reads every stored dataset and names the ones that fail."""

from __future__ import annotations

import json
import os

import pytest

import hoard
from hoard.node.config import Config
from hoard.node.repo import Repo
from hoard.store.base import Batch

pytestmark = pytest.mark.timeout(120)


def _upload(data_dir: str, tmp_path, name: str, data: bytes) -> str:
    (tmp_path / name).write_bytes(data)
    with hoard.Node({"data-dir": data_dir}) as node:
        return str(node.upload_file(node.upload_init(str(tmp_path / name))))


def test_verify_all_names_the_damaged_dataset_and_fails(hoard_cli, tmp_path):
    data_dir = str(tmp_path / "data")
    good = _upload(data_dir, tmp_path, "good.bin", os.urandom(200_000))
    before = _refs(data_dir)
    bad = _upload(data_dir, tmp_path, "bad.bin", os.urandom(200_000))
    assert hoard_cli("--data-dir", data_dir, "verify", "--all").exit_code == 0

    with hoard.Node({"data-dir": data_dir}) as node:  # which blocks does `bad` hold, and not `good`?
        report = node.verify(bad)
    assert report.blocks >= 2
    repo = Repo(Config.from_dict({"data-dir": data_dir}))
    try:
        store = repo.store
        victim = next(k for k in set(dict(store.meta_iter("refs"))) - before  # a data block of `bad` only
                      if len(store.get(_cid(k)) or b"") == 65536)
        store.commit(Batch().delete(_cid(victim)))  # the store never overwrites a block: replace it
        store.commit(Batch().put(_cid(victim), b"\0" * 65536))  # same size, wrong bytes
    finally:
        repo.close()

    result = hoard_cli("--data-dir", data_dir, "--json", "verify", "--all")
    assert result.exit_code == 5
    out = json.loads(result.stdout)
    assert out["failed"] == 1
    by_cid = {r["cid"]: r for r in out["datasets"]}
    assert by_cid[good]["ok"] is True
    assert by_cid[bad]["ok"] is False and "does not match" in by_cid[bad]["error"]
    text = hoard_cli("--data-dir", data_dir, "verify", "--all")
    assert f"FAILED: {bad}" in text.stdout and "1 of 2 datasets verified" in text.stdout


def test_verify_wants_a_cid_or_all(hoard_cli, tmp_path):
    result = hoard_cli("--data-dir", str(tmp_path / "d"), "verify")
    assert result.exit_code == 2 and "either a CID or --all" in result.stderr


def _refs(data_dir: str) -> set[bytes]:
    repo = Repo(Config.from_dict({"data-dir": data_dir}))
    try:
        return set(dict(repo.store.meta_iter("refs")))
    finally:
        repo.close()


def _cid(key: bytes):
    from hoard.ids.cid import CID

    return CID(key)
