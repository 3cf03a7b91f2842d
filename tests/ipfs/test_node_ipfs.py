"""The node's IPFS features against real kubo and Helia: `node.ipfs` (add, download, CAR),
`hoard upload --unixfs` / `hoard download` / `hoard car` from the CLI, the trustless gateway of a
running node process, and bitswap both ways with kubo."""

from __future__ import annotations

import hashlib
import io
import json
import random
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner
from harness import Daemon

from hoard import Node
from hoard.cli.main import cli
from hoard.content.car import read_car
from hoard.errors import InvalidArgumentError, NotFoundError
from hoard.ids.cid import CID
from ipfs.peers import HeliaPeer, KuboPeer

pytestmark = pytest.mark.timeout(300)


def _data(size: int, seed: int) -> bytes:
    return random.Random(seed).randbytes(size)


def _text(cid: CID) -> str:
    return str(cid) if cid.version == 0 else cid.to_base32()


@pytest.fixture
def node(tmp_path: Path) -> Iterator[Node]:
    with Node({"data-dir": str(tmp_path / "node")}) as n:
        yield n


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Daemon]:
    """A real `hoard node start` process on 127.0.0.1 (CLI commands on its data dir go through REST)."""
    with Daemon(tmp_path_factory.mktemp("ipfs-node")) as proc:
        yield proc


def _hoard(*args: str) -> str:
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.stdout


def _tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _make_dir(root: Path) -> Path:
    (root / "sub").mkdir(parents=True)
    (root / "a.bin").write_bytes(_data(700_000, 1))
    (root / "sub" / "b.txt").write_bytes(b"hello from hoard\n")
    (root / "empty").write_bytes(b"")
    return root


def test_unixfs_cids_equal_kubo_and_helia(node: Node, kubo: KuboPeer, helia: HeliaPeer, tmp_path: Path) -> None:
    src = tmp_path / "f.bin"
    src.write_bytes(_data(1_500_000, 7))  # 6 chunks: a balanced tree with one internal node
    v0 = node.ipfs.add(src)
    assert str(v0.cid) == kubo.add(src)
    assert (v0.format, v0.size, v0.filename, v0.pinned) == ("unixfs", 1_500_000, "f.bin", True)
    v1 = node.ipfs.add(src, cid_version=1, raw_leaves=True)
    assert v1.cid.to_base32() == helia.add_file(src)
    tree = _make_dir(tmp_path / "d")
    assert str(node.ipfs.add(tree).cid) == kubo.add(tree)
    assert node.ipfs.add(tree, cid_version=1, raw_leaves=True).cid.to_base32() == helia.add_dir(tree)
    with pytest.raises(InvalidArgumentError):
        node.ipfs.add(src, cid_version=0, raw_leaves=True)  # kubo refuses this too


def test_download_writes_file_and_tree_back(node: Node, tmp_path: Path) -> None:
    tree = _make_dir(tmp_path / "d")
    root = node.ipfs.add(tree)
    assert node.ipfs.download(str(root.cid), tmp_path / "out") == root.size
    assert _tree(tmp_path / "out") == _tree(tree)
    assert (tmp_path / "out" / "empty").exists()
    with pytest.raises(InvalidArgumentError):
        node.ipfs.download(root.cid, tmp_path / "out")  # never overwrites
    with pytest.raises(NotFoundError):
        node.ipfs.download("QmVwbizVfPcGsYEr7p889oXoZyeL6ypZ1ZL9uDtcRJifF5", tmp_path / "none")


def test_roots_share_blocks_and_remove_frees_only_their_own(node: Node, tmp_path: Path) -> None:
    tree = _make_dir(tmp_path / "d")
    file_root = node.ipfs.add(tree / "a.bin")
    dir_root = node.ipfs.add(tree)
    again = node.ipfs.add(tree)  # stored already: not counted twice
    assert again.cid == dir_root.cid and again.added == dir_root.added
    used = node.space().quota_used_bytes
    node.ipfs.remove(dir_root.cid)
    assert node.ipfs.has(file_root.cid) and not node.ipfs.has(dir_root.cid)
    assert 0 < node.space().quota_used_bytes < used
    assert [r.cid for r in node.ipfs.list()] == [file_root.cid]
    node.ipfs.remove(file_root.cid)
    assert node.space().quota_used_bytes == 0 and node.space().total_blocks == 0
    with pytest.raises(NotFoundError):
        node.ipfs.remove(file_root.cid)


def test_hoard_car_imports_into_helia(node: Node, helia: HeliaPeer, tmp_path: Path) -> None:
    data = _data(1_300_000, 11)
    src = tmp_path / "c.bin"
    src.write_bytes(data)
    root = node.ipfs.add(src, cid_version=1, raw_leaves=True)
    car = tmp_path / "hoard.car"
    written = node.ipfs.car_export(root.cid, car)
    assert written == car.stat().st_size
    assert helia.import_car(car) == [root.cid.to_base32()]
    helia.cat(root.cid.to_base32(), tmp_path / "out", timeout=10)
    assert (tmp_path / "out").read_bytes() == data


def test_helia_car_imports_with_the_cli_then_downloads(helia: HeliaPeer, tmp_path: Path) -> None:
    data = _data(2_100_000, 5)
    src = tmp_path / "h.bin"
    src.write_bytes(data)
    cid = helia.add_file(src)
    car = tmp_path / "helia.car"
    helia.export_car(cid, car)
    repo = str(tmp_path / "cli-node")
    out = _hoard("--data-dir", repo, "car", "import", str(car))
    assert out.splitlines()[-1] == cid
    _hoard("--data-dir", repo, "download", cid, "-o", str(tmp_path / "back.bin"))
    assert (tmp_path / "back.bin").read_bytes() == data
    listed = json.loads(_hoard("--data-dir", repo, "--json", "ipfs", "ls"))
    assert [(e["cid"], e["size"]) for e in listed] == [(cid, len(data))]


def test_a_bad_car_changes_nothing(node: Node, tmp_path: Path) -> None:
    src = tmp_path / "x.bin"
    src.write_bytes(_data(600_000, 2))
    root = node.ipfs.add(src)
    car = tmp_path / "x.car"
    node.ipfs.car_export(root.cid, car)
    node.ipfs.remove(root.cid)
    raw = bytearray(car.read_bytes())
    raw[-10] ^= 0xFF  # the last block no longer matches its CID
    bad = tmp_path / "bad.car"
    bad.write_bytes(bytes(raw))
    with pytest.raises(Exception, match="does not match"):
        node.ipfs.car_import(bad)
    truncated = tmp_path / "short.car"
    truncated.write_bytes(car.read_bytes()[:-1000])
    with pytest.raises(InvalidArgumentError):
        node.ipfs.car_import(truncated)
    assert node.space().total_blocks == 0 and node.ipfs.list() == []
    assert node.ipfs.car_import(car).entries[0].cid == root.cid


def test_gateway_raw_car_and_head(running: Daemon, helia: HeliaPeer, tmp_path: Path) -> None:
    data = _data(900_000, 9)
    src = tmp_path / "g.bin"
    src.write_bytes(data)
    out = _hoard(*running.cli_args(), "upload", "--unixfs", "--cid-version", "1", "--raw-leaves", str(src))
    cid = out.split()[-1]
    assert cid == helia.add_file(src)  # the same CID Helia computes
    base = running.url
    with httpx.Client(timeout=30) as http:
        raw = http.get(f"{base}/ipfs/{cid}", params={"format": "raw"})
        assert raw.status_code == 200 and raw.headers["content-type"] == "application/vnd.ipld.raw"
        CID.parse(cid).verify(raw.content)
        assert raw.headers["x-content-type-options"] == "nosniff"
        assert "immutable" in raw.headers["cache-control"] and raw.headers["etag"]

        car = http.get(f"{base}/ipfs/{cid}", headers={"accept": "application/vnd.ipld.car"})
        assert car.status_code == 200
        assert car.headers["content-type"].startswith("application/vnd.ipld.car; version=1")
        header, blocks = read_car(io.BytesIO(car.content))  # every block verified
        assert header.roots == (CID.parse(cid),) and len(list(blocks)) == 5
        (tmp_path / "gw.car").write_bytes(car.content)

        head = http.head(f"{base}/ipfs/{cid}", params={"format": "car"})
        assert head.status_code == 200 and head.content == b"" and head.headers["etag"] == car.headers["etag"]
        assert http.head(f"{base}/ipfs/{cid}", params={"format": "raw"}).headers["content-length"] == str(
            len(raw.content))
        assert http.get(f"{base}/ipfs/{cid}", params={"format": "car"},
                        headers={"if-none-match": car.headers["etag"]}).status_code == 304

        absent = "bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy"
        assert http.get(f"{base}/ipfs/{absent}", params={"format": "raw"}).status_code == 404
        assert http.head(f"{base}/ipfs/{absent}", params={"format": "car"}).status_code == 404
        assert http.get(f"{base}/ipfs/not-a-cid", params={"format": "raw"}).status_code == 400
        assert http.get(f"{base}/ipfs/{cid}").status_code == 400  # strict trustless: a format must be asked
        for params in ({"format": "car", "dag-scope": "entity"}, {"format": "car", "entity-bytes": "0:99"},
                       {"format": "car", "car-version": "2"}, {"format": "tar"}):
            refused = http.get(f"{base}/ipfs/{cid}", params=params)
            assert refused.status_code == 400 and refused.text, params
        block = http.get(f"{base}/ipfs/{cid}", params={"format": "car", "dag-scope": "block"})
        assert len(list(read_car(io.BytesIO(block.content))[1])) == 1
    assert helia.import_car(tmp_path / "gw.car") == [cid]
    helia.cat(cid, tmp_path / "via-helia", timeout=10)
    assert hashlib.sha256((tmp_path / "via-helia").read_bytes()).digest() == hashlib.sha256(data).digest()


def test_cli_against_a_running_node_car_and_tree(running: Daemon, tmp_path: Path) -> None:
    tree = _make_dir(tmp_path / "t")
    cid = _hoard(*running.cli_args(), "upload", "--unixfs", str(tree)).split()[-1]
    assert cid.startswith("Qm")
    _hoard(*running.cli_args(), "download", cid, "-o", str(tmp_path / "back"))
    assert _tree(tmp_path / "back") == _tree(tree)
    _hoard(*running.cli_args(), "car", "export", cid, "-o", str(tmp_path / "t.car"))
    refused = CliRunner().invoke(cli, [*running.cli_args(), "delete", cid])  # not a dataset: its root stays
    assert refused.exit_code != 0 and "hoard ipfs rm" in refused.output, refused.output
    _hoard(*running.cli_args(), "download", cid, "-o", str(tmp_path / "still"))
    assert _tree(tmp_path / "still") == _tree(tree)
    _hoard(*running.cli_args(), "ipfs", "rm", cid)
    assert _hoard(*running.cli_args(), "car", "import", str(tmp_path / "t.car")).splitlines()[-1] == cid
    _hoard(*running.cli_args(), "download", cid, "-o", str(tmp_path / "again"))
    assert _tree(tmp_path / "again") == _tree(tree)


def _hoard_addr(proc: Daemon) -> str:
    return f"{proc.info['announced'][0]}/p2p/{proc.info['peerId']}"


def test_kubo_fetches_by_bitswap_a_file_uploaded_with_unixfs(running: Daemon, kubo: KuboPeer,
                                                           tmp_path: Path) -> None:
    data = _data(1_200_000, 21)
    src = tmp_path / "k.bin"
    src.write_bytes(data)
    cid = _hoard(*running.cli_args(), "upload", "--unixfs", str(src)).split()[-1]
    kubo.connect(_hoard_addr(running))
    kubo.download(cid, tmp_path / "from-hoard.bin", timeout=60)
    assert (tmp_path / "from-hoard.bin").read_bytes() == data


def test_hoard_downloads_by_bitswap_a_file_kubo_added(running: Daemon, kubo: KuboPeer,
                                                     tmp_path: Path) -> None:
    data = _data(1_100_000, 22)
    src = tmp_path / "kubo.bin"
    src.write_bytes(data)
    cid = kubo.add(src)
    kubo.connect(_hoard_addr(running))
    _hoard(*running.cli_args(), "download", "--network", cid, "-o", str(tmp_path / "from-kubo.bin"))
    assert (tmp_path / "from-kubo.bin").read_bytes() == data


def test_the_client_ipfs_namespace_against_a_running_node(running: Daemon, tmp_path: Path) -> None:
    """`NodeClient.ipfs` does over REST what `node.ipfs` does embedded (the CLI's one client)."""
    from hoard.api.client import NodeClient

    tree = _make_dir(tmp_path / "c")
    data = _data(700_000, 5)
    (tmp_path / "one.bin").write_bytes(data)
    with NodeClient(running.url) as client:
        root = client.ipfs.add(tmp_path / "one.bin", cid_version=1, raw_leaves=True, pin=False)
        assert root.filename == "one.bin" and root.pinned is False and root.size == len(data)
        assert client.ipfs.has(root.cid) and client.ipfs.stat(root.cid) == root
        assert root.cid in [r.cid for r in client.ipfs.list()]
        assert client.ipfs.download(root.cid, tmp_path / "one.out") == len(data)
        assert (tmp_path / "one.out").read_bytes() == data
        first = client.ipfs.block(root.cid)
        assert CID.parse(str(root.cid)).verify(first) is None
        folder = client.ipfs.add(tree)
        assert client.ipfs.car_export(folder.cid, tmp_path / "c.car") > 0
        with pytest.raises(InvalidArgumentError, match="CARv1 only"):
            client.ipfs.car_export(folder.cid, tmp_path / "c2.car", version=2)
        client.ipfs.remove(folder.cid)
        assert not client.ipfs.has(folder.cid)
        imported = client.ipfs.car_import(tmp_path / "c.car")
        assert list(imported.roots) == [folder.cid]
        client.ipfs.download(folder.cid, tmp_path / "c.out")
        assert _tree(tmp_path / "c.out") == _tree(tree)
        client.ipfs.remove(root.cid)
        with pytest.raises(NotFoundError):
            client.ipfs.stat(root.cid)
