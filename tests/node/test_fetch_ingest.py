"""A network fetch goes through the one ingest path: reserved up front, pending, verified, committed."""

from __future__ import annotations

import os
import time

import pytest
from harness import NodeProcess, spawner

pytestmark = pytest.mark.timeout(120)

HOARD_FORMAT = {"dataset-format": "hoard"}  # hoard's dag-cbor/BLAKE3 datasets, fetched on /hoard/blocks/1


@pytest.fixture
def spawn(tmp_path):
    start, nodes = spawner(tmp_path, **HOARD_FORMAT)
    yield start
    for node in nodes:
        node.close()


def _wait_fetch(node: NodeProcess, limit: float = 60.0) -> dict:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        fetches = node.call("fetches")
        if fetches and not fetches[0]["active"]:
            return fetches[0]
        time.sleep(0.05)  # polling the observable outcome, bounded by the deadline
    raise AssertionError(f"the fetch did not end in {limit} s: {fetches}")


def test_a_fetch_over_the_quota_fails_before_fetching_a_block(spawn, tmp_path):
    a = spawn("a")
    b = spawn("b", **{"storage-quota": 1_000_000})
    data = os.urandom(3_000_000)  # 46 blocks
    cid = a.upload_bytes(data)
    b.call("connect", a.peer_id, a.addrs)
    before = a.call("served")
    manifest = b.call("fetch", cid)  # the manifest comes from the network
    assert manifest["datasetSize"] == len(data)
    outcome = _wait_fetch(b)
    assert "quota" in outcome["error"]
    served = a.call("served")
    assert served["bytes"] - before["bytes"] < 64 * 1024  # the manifest and its index, no data block
    space = b.call("space")
    assert space["quotaUsedBytes"] == 0 and space["quotaReservedBytes"] == 0 and space["totalBlocks"] == 0
    assert b.call("exists", cid) is False


def test_a_fetch_commits_a_cached_dataset_and_releases_its_reservation(spawn, tmp_path):
    a, b = spawn("a"), spawn("b", **{"storage-quota": 10_000_000})
    data = os.urandom(4_000_000)
    cid = a.upload_bytes(data)
    b.call("connect", a.peer_id, a.addrs)
    b.call("fetch", cid)
    outcome = _wait_fetch(b)
    assert "error" not in outcome and outcome["received"] == outcome["total"]
    space = b.call("space")
    assert space["quotaReservedBytes"] == 0
    assert len(data) <= space["quotaUsedBytes"] < len(data) + 64 * 1024
    out = tmp_path / "local.bin"
    assert b.call("download_stream", cid, str(out)) == len(data)
    assert out.read_bytes() == data


def test_a_file_upload_over_the_quota_is_refused_by_the_ingest(tmp_path):
    node = NodeProcess(tmp_path / "n", **{"storage-quota": 100_000}, **HOARD_FORMAT)
    try:
        path = tmp_path / "big.bin"
        path.write_bytes(b"x" * 200_000)
        session = node.call("upload_init", str(path))
        with pytest.raises(RuntimeError, match="QuotaExceededError: storage quota exceeded: 200000"):
            node.call("upload_file", session)
        assert node.call("space")["quotaUsedBytes"] == 0
    finally:
        node.close()
