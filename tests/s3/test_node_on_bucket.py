"""Nodes whose blocks live in a bucket (`repo-kind: s3`): the catalog stays in the data dir,
the blocks go to SeaweedFS; two nodes share one bucket without talking to each other."""

from __future__ import annotations

import os
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

import obstore
import pytest

import hoard
from hoard.errors import InvalidArgumentError, NotFoundError
from hoard.node.config import Config
from hoard.node.repo import Repo

if TYPE_CHECKING:
    from hoard.store.s3_testing import SeaweedServer

pytestmark = pytest.mark.timeout(240)


def _config(data_dir: Path, url: str, **extra: Any) -> dict[str, Any]:
    return {"data-dir": str(data_dir), "repo-kind": "s3", "storage-url": url, "api-port": 0, "grpc-port": 0,
            "listen-addrs": ["/ip4/127.0.0.1/tcp/0"], **extra}


def _objects(s3: SeaweedServer, prefix: str, kind: str) -> dict[str, int]:
    """The objects under `<prefix>/<kind>/` in the bucket: name -> size."""
    client = s3.client(prefix)
    return {item["path"]: item["size"] for batch in obstore.list(client, kind) for item in batch}


def _upload(node: hoard.Node, path: Path, data: bytes) -> hoard.CID:
    path.write_bytes(data)
    return node.upload_file(node.upload_init(str(path)))


def _download(node: hoard.Node, cid: hoard.CID, path: Path) -> bytes:
    node.download_stream(cid, str(path), 0, True)
    return path.read_bytes()


@pytest.mark.parametrize("fmt", ["logos", "hoard"])
def test_blocks_go_to_the_bucket_and_the_catalog_stays_local(s3: SeaweedServer, tmp_path: Path, fmt: str) -> None:
    prefix = f"node-{uuid.uuid4().hex[:10]}"
    data = os.urandom(3 * 65536 + 123)
    with hoard.Node(_config(tmp_path / "a", s3.url(prefix), **{"dataset-format": fmt})) as node:
        cid = _upload(node, tmp_path / "in.bin", data)
        assert [d.cid for d in node.list()] == [cid]
        blocks = _objects(s3, prefix, "blocks")
        assert len(blocks) >= 4  # data blocks and manifest (and index or leaf list)
        space = node.space()
        assert space.quota_used_bytes == sum(blocks.values())  # this node's figures, from its catalog
        assert space.total_blocks == len(blocks)
        assert _download(node, cid, tmp_path / "out.bin") == data
        node.delete(cid)
        assert node.list() == [] and node.space().quota_used_bytes == 0
        assert _objects(s3, prefix, "blocks") == {}  # the last holder's delete removes them
    repo = Repo(Config.from_dict({"data-dir": str(tmp_path / "a"), "repo-kind": "s3", "storage-url": s3.url(prefix)}))
    try:
        assert repo.store.stats().blocks == 0  # the local LMDB file is the catalog alone
    finally:
        repo.close()


@pytest.mark.parametrize("fmt", ["logos", "hoard"])
def test_two_nodes_share_one_bucket(s3: SeaweedServer, tmp_path: Path, fmt: str) -> None:
    prefix = f"shared-{uuid.uuid4().hex[:10]}"
    url = s3.url(prefix)
    data = os.urandom(5 * 65536 + 7)
    with hoard.Node(_config(tmp_path / "a", url, **{"dataset-format": fmt})) as a, \
            hoard.Node(_config(tmp_path / "b", url, **{"dataset-format": fmt})) as b:
        assert a.peer_id() != b.peer_id()  # two holders; the nodes are never connected
        cid = _upload(a, tmp_path / "in.bin", data)
        stored = _objects(s3, prefix, "blocks")
        assert _download(b, cid, tmp_path / "via-b.bin") == data  # B reads the manifest and blocks from the bucket
        assert [d.cid for d in b.list()] == [cid]  # and now holds them
        assert _objects(s3, prefix, "blocks") == stored  # nothing was copied
        a.delete(cid)  # A's delete leaves what B still uses
        assert _objects(s3, prefix, "blocks") == stored
        assert _download(b, cid, tmp_path / "again.bin") == data
        b.delete(cid)  # the last holder's delete removes the blocks
        assert _objects(s3, prefix, "blocks") == {}
        with pytest.raises(NotFoundError):
            b.download_stream(cid, str(tmp_path / "gone.bin"), 0, True)


def test_bad_storage_configuration_is_refused_cleanly(s3: SeaweedServer, tmp_path: Path) -> None:
    with pytest.raises(InvalidArgumentError, match="needs storage-url"):
        hoard.Node({"data-dir": str(tmp_path / "x"), "repo-kind": "s3"}).start()
    with pytest.raises(InvalidArgumentError, match="needs repo-kind s3"):
        hoard.Node({"data-dir": str(tmp_path / "y"), "storage-url": s3.url()}).start()
    with pytest.raises(InvalidArgumentError, match="unknown s3 URL option"):
        hoard.Node(_config(tmp_path / "z", s3.url() + "&colour=blue")).start()
    # the data dir is not left locked: a good configuration opens it next
    with hoard.Node(_config(tmp_path / "z", s3.url())) as node:
        assert node.list() == []
