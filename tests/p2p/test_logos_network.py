"""Datasets of both formats between node processes on 127.0.0.1: network reads, fetches, and a
dataset made incomplete by a single-block delete, filled again by a fetch."""

import time

import pytest

from hoard.content.formats.logos import block_cid
from hoard.ids import CID

pytestmark = pytest.mark.timeout(180)


def wait_fetched(node, cid):
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        mine = [f for f in node.call("fetches") if f["cid"] == cid]
        if mine and not mine[0]["active"]:
            return mine[0]
        time.sleep(0.05)  # polling the observable outcome, bounded by the deadline
    raise AssertionError(f"the fetch of {cid} did not finish")


@pytest.mark.parametrize("fmt", ["logos", "hoard"])
def test_a_dataset_travels_verified_and_a_deleted_block_is_fetched_again(spawn, random_bytes, tmp_path, fmt):
    a, b = spawn("a", **{"dataset-format": fmt}), spawn("b", **{"dataset-format": fmt})
    data = random_bytes(1_000_003)
    cid = a.upload_bytes(data)
    assert CID.parse(cid).codec == (0xCD01 if fmt == "logos" else 0x71)
    b.call("connect", a.peer_id, a.addrs)
    manifest = b.call("download_manifest", cid)
    assert manifest["datasetSize"] == len(data) and ("chunker" in manifest) == (fmt == "hoard")
    out = tmp_path / "net.bin"
    assert b.call("download_stream", cid, str(out), 0, False) == len(data)  # unpadded, verified per block
    assert out.read_bytes() == data and b.call("exists", cid) is False

    b.call("fetch", cid)
    done = wait_fetched(b, cid)
    assert "error" not in done and done["received"] == done["total"] == 16
    assert b.call("verify", cid) == {"cid": cid, "blocks": 16, "bytes": len(data)}

    second = data[65536:131072]
    block = str(block_cid(second) if fmt == "logos" else CID.of(second))
    b.call("delete", block)  # as Logos: the block goes although the dataset uses it
    assert b.call("exists", block) is False and b.call("exists", cid) is True
    with pytest.raises(RuntimeError, match=block):
        b.call("verify", cid)
    with pytest.raises(RuntimeError, match="not found"):
        b.call("download_stream", cid, str(tmp_path / "broken.bin"))
    b.call("fetch", cid)  # the dataset is incomplete: the fetch stores the missing block again
    wait_fetched(b, cid)
    assert b.call("exists", block) is True
    assert b.call("download_stream", cid, str(out)) == len(data) and out.read_bytes() == data
    b.call("delete", cid)
    assert b.call("space")["totalBlocks"] == 0
