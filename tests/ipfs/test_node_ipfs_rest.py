"""The IPFS REST paths on an in-process app: adds and CAR imports that cannot fit the quota are
refused with 507 and store nothing; a tar body becomes a directory; bad input is 400."""

from __future__ import annotations

import io
import random
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from hoard import Node
from hoard.api.rest.app import create_app

pytestmark = pytest.mark.timeout(120)

QUOTA = 1 << 20


@pytest.fixture
def client(tmp_path: Path) -> Iterator[tuple[Node, TestClient]]:
    with Node({"data-dir": str(tmp_path / "n"), "storage-quota": QUOTA}) as node, \
            TestClient(create_app(node), base_url="http://127.0.0.1") as http:
        yield node, http


def _data(size: int, seed: int) -> bytes:
    return random.Random(seed).randbytes(size)


def test_add_past_the_quota_is_507_and_stores_nothing(client: tuple[Node, TestClient]) -> None:
    node, http = client
    refused = http.post("/api/storage/v1/ipfs/add", content=_data(QUOTA + 1000, 1))
    assert refused.status_code == 507 and refused.headers["x-hoard-error"] == "quota"
    assert node.space().total_blocks == 0 and node.ipfs.list() == []
    fits = http.post("/api/storage/v1/ipfs/add", content=_data(QUOTA - 100_000, 2))  # with its dag-pb framing
    assert fits.status_code == 200, fits.text
    again = http.post("/api/storage/v1/ipfs/add", content=_data(QUOTA - 100_000, 3))  # no room left for another
    assert again.status_code == 507 and len(node.ipfs.list()) == 1
    used = node.space().quota_used_bytes
    node.ipfs.remove(fits.json()["cid"])
    assert used > 0 and node.space().total_blocks == 0 and node.space().quota_used_bytes == 0


def test_tar_body_is_a_directory_and_bad_input_is_400(client: tuple[Node, TestClient], tmp_path: Path) -> None:
    node, http = client
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, body in (("a.txt", b"a\n"), ("sub/b.bin", _data(5000, 3))):
            info = tarfile.TarInfo(name)
            info.size = len(body)
            tar.addfile(info, io.BytesIO(body))
    added = http.post("/api/storage/v1/ipfs/add?filename=tree", content=buf.getvalue(),
                      headers={"content-type": "application/x-tar"})
    assert added.status_code == 200, added.text
    entry = added.json()
    assert entry["filename"] == "tree" and entry["size"] == 5002 and entry["cid"].startswith("Qm")
    node.ipfs.download(entry["cid"], tmp_path / "out")
    assert (tmp_path / "out" / "a.txt").read_bytes() == b"a\n" and (tmp_path / "out" / "sub" / "b.bin").exists()

    evil = io.BytesIO()
    with tarfile.open(fileobj=evil, mode="w") as tar:
        info = tarfile.TarInfo("../escape")
        info.size = 1
        tar.addfile(info, io.BytesIO(b"x"))
    refused = http.post("/api/storage/v1/ipfs/add", content=evil.getvalue(),
                        headers={"content-type": "application/x-tar"})
    assert refused.status_code == 400
    assert http.post("/api/storage/v1/ipfs/add?raw-leaves=true", content=b"x").status_code == 400  # needs CIDv1
    assert http.post("/api/storage/v1/ipfs/add?raw-leaves=maybe&cid-version=1", content=b"x").status_code == 400
    assert http.post("/api/storage/v1/ipfs/car", content=b"not a car").status_code == 400
    assert http.get("/api/storage/v1/ipfs/roots/not-a-cid").status_code == 400
    assert http.delete("/api/storage/v1/ipfs/roots/QmVwbizVfPcGsYEr7p889oXoZyeL6ypZ1ZL9uDtcRJifF5").status_code == 404
    assert [e["cid"] for e in http.get("/api/storage/v1/ipfs/roots").json()] == [entry["cid"]]
