"""`node.add(...)` and `node.cat(cid)`: one call each to store bytes or a file and to read them back."""

import asyncio
import os

import pytest

from hoard import Node
from hoard.errors import NotFoundError

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def node(tmp_path):
    with Node({"data-dir": str(tmp_path / "data")}) as opened:
        yield opened


def test_add_bytes_and_a_file_then_cat(node, tmp_path):
    data = os.urandom(3 * (1 << 20) + 17)
    cid = node.add(data, filename="blob.bin", mimetype="application/x-test")
    assert node.cat(cid) == data
    manifest = node.download_manifest(cid)
    assert manifest.filename == "blob.bin" and manifest.dataset_size == len(data)

    path = tmp_path / "notes.txt"
    path.write_bytes(b"hello, hoard\n")
    file_cid = node.add(path)
    assert node.cat(str(file_cid)) == b"hello, hoard\n"
    assert node.download_manifest(file_cid).filename == "notes.txt"
    assert node.add(str(path)) == file_cid  # the same content and name: the same dataset
    assert {d.cid for d in node.list()} == {cid, file_cid}


def test_the_async_face_has_them_too(node):
    async def main():
        anode = node.as_async()
        cid = await anode.add(bytearray(b"x" * 70_000))
        return await anode.cat(cid)

    assert asyncio.run(main()) == b"x" * 70_000


def test_cat_of_what_is_not_here_is_not_found(node):
    with pytest.raises(NotFoundError):
        node.cat("zdqAuPSaNbU6GzVdi2k6NyZifuoA44h1x4crFgnnSjh59yPzF")


def test_a_missing_file_stores_nothing(node, tmp_path):
    with pytest.raises(NotFoundError):
        node.add(tmp_path / "missing.bin")
    assert node.list() == []
