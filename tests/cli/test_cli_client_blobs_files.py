"""`NodeClient.blobs` and `NodeClient.files`: the same interface as `node.blobs` / `node.files`
(checked structurally), the same results against a real node process as an embedded node gives,
and the blob and file commands on the one client the CLI picks (`--api`, the running node, or
embedded); `--grpc` is refused."""

from __future__ import annotations

import asyncio
import inspect
import json
import os
import subprocess
import sys
import zlib

import blake3
import pytest
import trio

import hoard
from hoard.api.client import NodeClient
from hoard.api.client_blobs import ClientBlobs, RemoteStream
from hoard.api.client_files import ClientFiles
from hoard.api.client_ipfs import ClientIpfs
from hoard.blobs import BlobDigest, BlobStat
from hoard.errors import InvalidArgumentError, NotFoundError
from hoard.files import CrcMismatchError, FileBlock, FileInfo, FileWrite
from hoard.node.node import BlobsApi, FilesApi, IpfsApi
from hoard.node.streams import NodeStream

pytestmark = pytest.mark.timeout(300)


def _public(cls: type) -> dict[str, inspect.Signature]:
    return {name: inspect.signature(member) for name, member in vars(cls).items()
            if not name.startswith("_") and callable(member)}


def _params(signature: inspect.Signature) -> list[tuple[str, object, object]]:
    return [(p.name, p.kind, p.default) for p in signature.parameters.values()]


@pytest.mark.parametrize(("node_side", "client_side"),
                         [(BlobsApi, ClientBlobs), (FilesApi, ClientFiles), (IpfsApi, ClientIpfs)])
def test_the_client_namespaces_have_the_nodes_methods(node_side, client_side):
    ours, theirs = _public(node_side), _public(client_side)
    assert set(ours) == set(theirs)
    for name, signature in ours.items():
        assert _params(theirs[name]) == _params(signature), name
        node_return, client_return = signature.return_annotation, theirs[name].return_annotation
        if node_return.startswith("NodeStream["):  # a node stream, or the remote stream with its methods
            assert client_return == node_return.replace("NodeStream[", "RemoteStream["), name
        else:
            assert client_return == node_return, name


def test_a_remote_stream_has_the_methods_of_a_node_stream():
    methods = {"close", "__iter__", "__next__", "__aiter__", "__anext__", "__enter__", "__exit__"}
    assert methods <= set(vars(NodeStream))
    assert {name for name in vars(NodeStream) if not name.startswith("_")} == {"close"}
    for name in methods:
        assert _params(inspect.signature(getattr(RemoteStream, name))) == \
            _params(inspect.signature(getattr(NodeStream, name))), name


@pytest.fixture
def remote(running):
    with NodeClient(running.url) as client:
        yield client


@pytest.fixture
def embedded(tmp_path):
    with hoard.Node({"data-dir": str(tmp_path / "embedded")}) as node:
        yield node


def test_blobs_through_the_client_as_through_the_node(remote, embedded, tmp_path):
    data = os.urandom(1_400_000)
    path = tmp_path / "blob.bin"
    path.write_bytes(data)
    sent: list[int] = []
    ours = remote.blobs.put(path, on_progress=sent.append)
    theirs = embedded.blobs.put(path)
    assert isinstance(ours, BlobStat) and isinstance(ours.digest, BlobDigest)
    assert sum(sent) == len(data)
    assert (ours.digest, ours.size, ours.chunks) == (theirs.digest, theirs.size, theirs.chunks)
    assert ours.manifest is not None and ours.manifest.version == theirs.manifest.version
    assert ours.digest.hex() == blake3.blake3(data).hexdigest()
    assert remote.blobs.stat(str(ours.digest)) == BlobStat(ours.digest, len(data), ours.manifest,
                                                           embedded.blobs.stat(ours.digest).chunks)
    assert remote.blobs.stat(ours.digest.hex(), chunks=False).chunks is None
    with remote.blobs.read(ours.digest) as pieces:
        assert b"".join(pieces) == data
    assert remote.blobs.put(iter([data[:10], bytearray(data[10:20])])).digest == BlobDigest.of(data[:20])
    assert remote.blobs.put(b"").size == 0
    with pytest.raises(NotFoundError):
        remote.blobs.read("00" * 32)  # raised by read, as the node's is
    with pytest.raises(NotFoundError):
        remote.blobs.stat("00" * 32)
    with pytest.raises(InvalidArgumentError, match="cannot parse blob digest"):
        remote.blobs.stat("nonsense")
    with pytest.raises(InvalidArgumentError, match="blob source"):
        remote.blobs.put("a str is not a path")
    with pytest.raises(NotFoundError, match="cannot read"):
        remote.blobs.put(tmp_path / "missing")


def test_a_remote_stream_is_read_under_asyncio_and_trio(remote):
    data = os.urandom(3 << 20)
    digest = remote.blobs.put(data).digest

    async def read() -> bytes:
        parts = [piece async for piece in remote.blobs.read(digest)]
        return b"".join(parts)

    assert asyncio.run(read()) == data
    assert trio.run(read) == data
    stream = remote.blobs.read(digest)
    assert len(next(stream)) > 0
    stream.close()
    stream.close()
    assert list(stream) == []


def test_files_through_the_client_as_through_the_node(remote, embedded):
    ino = 777001
    for node in (remote, embedded):
        first = node.files.write(ino, b"one")
        assert first == FileWrite(ino, (0,), 1)
        assert node.files.write(ino, b"two", None, zlib.crc32(b"two")) == FileWrite(ino, (1,), 2)
        assert node.files.stream_write(ino, iter([b"three", b"four"])) == FileWrite(ino, (2, 3), 3)
        assert node.files.write(ino, b"ONE", 0) == FileWrite(ino, (0,), 4)
        with pytest.raises(CrcMismatchError):
            node.files.write(ino, b"bad", None, 1)
        with node.files.read(ino) as blocks:
            assert list(blocks) == [FileBlock(0, b"ONE", zlib.crc32(b"ONE")), FileBlock(1, b"two", zlib.crc32(b"two")),
                                    FileBlock(2, b"three", zlib.crc32(b"three")),
                                    FileBlock(3, b"four", zlib.crc32(b"four"))]
        with node.files.read(ino, 1, 2, 3) as blocks:
            assert [b.data for b in blocks] == [b"two", b"three"]
        info = node.files.stat(ino)
        assert isinstance(info, FileInfo)
        assert (info.ino, info.version, info.latest, info.blocks, info.size, info.next_index) == (ino, 4, 4, 4, 15, 4)
        assert node.files.stat(ino, 1).size == 3
        with pytest.raises(NotFoundError, match="no version 9"):
            node.files.stat(ino, 9)
        with pytest.raises(NotFoundError):
            node.files.read(ino + 1)

        def failing():
            yield b"kept out"
            raise InvalidArgumentError("the source fails")

        with pytest.raises(InvalidArgumentError, match="the source fails"):
            node.files.stream_write(ino, failing())
        assert node.files.stat(ino).version == 4  # nothing of the failed write


def _hoard(node, *args: str, input: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([sys.executable, "-m", "hoard.cli.main", *args], input=input, capture_output=True,
                          timeout=120, check=False, env=node.env)


def test_the_cli_takes_api_for_blobs_and_files(running, tmp_path):
    other = str(tmp_path / "not-the-nodes-dir")  # nothing runs here: --api alone names the node
    api = ["--data-dir", other, "--api", running.url]
    data = os.urandom(700_000)
    source = tmp_path / "in.bin"
    source.write_bytes(data)
    put = _hoard(running, *api, "--json", "blob", "put", str(source))
    assert put.returncode == 0, put.stderr
    stat = json.loads(put.stdout)
    assert stat["hex"] == blake3.blake3(data).hexdigest() and stat["manifest"]  # REST carries the manifest
    shown = _hoard(running, *api, "blob", "stat", stat["digest"])
    assert b"size: 700000" in shown.stdout and stat["manifest"].encode() in shown.stdout, shown.stderr
    cat = _hoard(running, *api, "blob", "cat", stat["digest"])
    assert cat.returncode == 0 and cat.stdout == data, cat.stderr
    piped = _hoard(running, *api, "blob", "put", "-", input=b"from stdin")
    assert piped.stdout.strip().splitlines()[-1].decode() == str(BlobDigest.of(b"from stdin")), piped.stderr
    written = _hoard(running, *api, "--json", "file", "write", "31337", str(source))
    assert json.loads(written.stdout) == {"ino": 31337, "indices": [0, 1], "version": 1}, written.stderr
    patched = _hoard(running, *api, "--json", "file", "write", "31337", "--index", "1", "-", input=b"tail")
    assert json.loads(patched.stdout)["version"] == 2, patched.stderr
    read = _hoard(running, *api, "file", "read", "31337")
    assert read.stdout == data[:512 << 10] + b"tail", read.stderr
    old = _hoard(running, *api, "file", "read", "31337", "--version", "1")
    assert old.stdout == data
    missing = _hoard(running, *api, "file", "read", "31337", "--version", "5")
    assert missing.returncode == 3 and b"no version 5" in missing.stderr
    assert not (tmp_path / "not-the-nodes-dir").exists()  # no embedded node was opened there
    for family in ("blob", "file"):
        refused = _hoard(running, *api, family, "--grpc", running.grpc_address, "read" if family == "file" else "stat",
                         "1" if family == "file" else "00" * 32)
        assert refused.returncode == 2 and b"--api" in refused.stderr, refused.stderr
        assert b"--grpc" not in _hoard(running, family, "--help").stdout


def test_the_cli_finds_the_node_running_on_the_data_dir(running, tmp_path):
    data = b"found through node.json " * 1000
    source = tmp_path / "in.bin"
    source.write_bytes(data)
    put = running.cli("--json", "blob", "put", str(source))
    assert put.returncode == 0, put.stderr
    digest = json.loads(put.stdout)["digest"]
    assert running.cli("blob", "cat", digest).stdout == data
    with NodeClient(running.url) as client:  # the running node stored it
        assert client.blobs.stat(digest).size == len(data)


def test_an_error_in_the_middle_of_a_read_is_raised_by_the_pull_that_meets_it(remote, embedded):
    from hoard.errors import IntegrityError
    from hoard.ids.cid import CID

    for node in (remote, embedded):
        node.files.stream_write(777002, iter([b"readable", b"lost"]))
        node.delete(CID.of(b"lost"))  # the second block's bytes are gone
        with node.files.read(777002) as blocks, pytest.raises(IntegrityError):
            for _ in blocks:
                pass
