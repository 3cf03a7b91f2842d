"""UnixFS import/export: CIDs equal kubo's (`ipfs add`) and Helia's (CIDv1, raw leaves)."""

from __future__ import annotations

import hashlib
import random
from pathlib import Path

import pytest

from hoard.content.formats import dagpb
from hoard.content.formats.unixfs import (
    DIRECTORY,
    HAMT_SHARD,
    ImportOptions,
    export,
    import_bytes,
    import_path,
    list_directory,
    load,
    read_file,
)
from hoard.errors import IntegrityError, InvalidArgumentError
from hoard.ids.cid import CID
from ipfs.peers import HeliaPeer, KuboPeer

KIB = 1024
# 0, 1, one chunk, one chunk + 1, and past 174 chunks (a second layer of internal nodes)
SIZES = [0, 1, 256 * KIB, 256 * KIB + 1, 45 * KIB * KIB + 12345]


def _data(size: int, seed: int = 7) -> bytes:
    return random.Random(seed * 1_000_003 + size).randbytes(size)


def _import(data: bytes, options: ImportOptions) -> tuple[CID, dict[CID, bytes]]:
    blocks: dict[CID, bytes] = {}
    root = import_bytes(data, blocks.__setitem__, options)
    assert root.size == len(data)
    return root.cid, blocks


def _tree(root: Path) -> Path:
    (root / "sub" / "deeper").mkdir(parents=True)
    (root / "empty-dir").mkdir()
    (root / "a.txt").write_bytes(b"hello\n")
    (root / "B.bin").write_bytes(_data(300 * KIB, 1))
    (root / "a b").write_bytes(b"")
    (root / "\u00e4-umlaut").write_bytes(_data(5, 2))
    (root / ".hidden").write_bytes(b"x")
    (root / "sub" / "one").write_bytes(_data(1, 3))
    (root / "sub" / "deeper" / "big").write_bytes(_data(600 * KIB, 4))
    return root


def _same_tree(a: Path, b: Path) -> None:
    names_a = sorted(p.relative_to(a).as_posix() for p in a.rglob("*"))
    names_b = sorted(p.relative_to(b).as_posix() for p in b.rglob("*"))
    assert names_a == names_b
    for name in names_a:
        if (a / name).is_file():
            assert (a / name).read_bytes() == (b / name).read_bytes(), name


@pytest.mark.parametrize("size", SIZES)
def test_file_cid_equals_kubo_add(kubo: KuboPeer, tmp_path: Path, size: int) -> None:
    data = _data(size)
    src = tmp_path / "f"
    src.write_bytes(data)
    cid, blocks = _import(data, ImportOptions.kubo())
    assert str(cid) == kubo.add(src)
    assert cid.version == 0
    assert b"".join(read_file(cid, blocks.__getitem__)) == data


@pytest.mark.parametrize("size", SIZES)
def test_file_cid_equals_helia_v1_raw_leaves(helia: HeliaPeer, tmp_path: Path, size: int) -> None:
    data = _data(size)
    src = tmp_path / "f"
    src.write_bytes(data)
    cid, blocks = _import(data, ImportOptions.kubo_v1())
    assert cid.to_base32() == helia.add_file(src)
    assert b"".join(read_file(cid, blocks.__getitem__)) == data


def test_helia_defaults_1mib_chunks_1024_links(helia: HeliaPeer, tmp_path: Path) -> None:
    data = _data(3 * KIB * KIB + 5)
    src = tmp_path / "f"
    src.write_bytes(data)
    cid, _ = _import(data, ImportOptions(cid_version=1, raw_leaves=True, chunk_size=KIB * KIB, max_links=1024))
    assert cid.to_base32() == helia.add_file(src, chunk_size=None, max_children=None)


def test_directory_cid_equals_kubo_and_helia(kubo: KuboPeer, helia: HeliaPeer, tmp_path: Path) -> None:
    root = _tree(tmp_path / "tree")
    blocks: dict[CID, bytes] = {}
    v0 = import_path(root, blocks.__setitem__, ImportOptions.kubo())
    assert str(v0.cid) == kubo.add(root)
    v1 = import_path(root, blocks.__setitem__, ImportOptions.kubo_v1())
    assert v1.cid.to_base32() == helia.add_dir(root)

    names = [e.name for e in list_directory(v0.cid, blocks.__getitem__)]
    assert names == sorted(names, key=str.encode)
    for cid, out in ((v0.cid, tmp_path / "out0"), (v1.cid, tmp_path / "out1")):
        export(cid, blocks.__getitem__, out)
        _same_tree(root, out)
        assert (out / "empty-dir").is_dir()


def test_export_verifies_every_block(tmp_path: Path) -> None:
    data = _data(700 * KIB)
    cid, blocks = _import(data, ImportOptions.kubo())
    leaf = next(c for c, b in blocks.items() if c != cid and len(b) > 1000)
    tampered = dict(blocks)
    tampered[leaf] = blocks[leaf][:-1] + bytes([blocks[leaf][-1] ^ 1])
    with pytest.raises(IntegrityError):
        b"".join(read_file(cid, tampered.__getitem__))
    with pytest.raises(IntegrityError):
        export(cid, tampered.__getitem__, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_export_refuses_unsafe_names_and_existing_targets(tmp_path: Path) -> None:
    blocks: dict[CID, bytes] = {}
    leaf = import_bytes(b"x", blocks.__setitem__, ImportOptions.kubo())
    for bad in ("..", "a/b", "", "."):
        node = dagpb.encode_node([dagpb.PBLink(leaf.cid, bad, leaf.dag_size)], b"\x08\x01")
        cid = CID.v0(hashlib.sha256(node).digest())
        blocks[cid] = node
        with pytest.raises(InvalidArgumentError, match="unsafe"):
            export(cid, blocks.__getitem__, tmp_path / f"out{len(blocks)}")
    (tmp_path / "exists").write_bytes(b"keep")
    with pytest.raises(InvalidArgumentError, match="exists"):
        export(leaf.cid, blocks.__getitem__, tmp_path / "exists")
    assert (tmp_path / "exists").read_bytes() == b"keep"


@pytest.mark.parametrize("bad", [
    b"\x0a\x00\x12\x00",            # Data before a link
    b"\x12\x02\x12\x00",            # link without Hash
    b"\x1a\x00",                    # unknown field
    b"\x0a\x05ab",                  # truncated
    b"\x0a\x80\x00",                # non-minimal varint
    b"\x0a\x00\x0a\x00",            # Data twice
])
def test_dagpb_decoder_is_strict(bad: bytes) -> None:
    with pytest.raises(InvalidArgumentError):
        dagpb.decode_node(bad)


def test_import_options_are_checked() -> None:
    with pytest.raises(InvalidArgumentError):
        ImportOptions(cid_version=0, raw_leaves=True)
    with pytest.raises(InvalidArgumentError):
        ImportOptions(chunk_size=0)
    with pytest.raises(InvalidArgumentError):
        ImportOptions(max_links=1)


@pytest.mark.parametrize("entries", [4095, 4096])
def test_large_directory_shards_exactly_as_kubo(kubo: KuboPeer, tmp_path: Path, entries: int) -> None:
    """30-character names + 34-byte CIDs: 4096 entries reach kubo's 256 KiB threshold exactly."""
    tree = tmp_path / "big"
    tree.mkdir()
    for i in range(entries):
        (tree / f"{i:030d}").write_bytes(b"x")
    blocks: dict[CID, bytes] = {}
    ours = import_path(tree, blocks.__setitem__, ImportOptions.kubo())
    assert str(ours.cid) == kubo.add(tree)
    root = load(ours.cid, blocks.__getitem__)
    assert root.unixfs is not None
    assert root.unixfs.type == (HAMT_SHARD if entries == 4096 else DIRECTORY)
    assert len(list_directory(ours.cid, blocks.__getitem__)) == entries


def test_hamt_directory_cid_equals_helia(helia: HeliaPeer, tmp_path: Path) -> None:
    tree = _tree(tmp_path / "tree")
    for i in range(300):
        (tree / "sub" / f"n{i}").write_bytes(str(i).encode())
    blocks: dict[CID, bytes] = {}
    options = ImportOptions(cid_version=1, raw_leaves=True, hamt_threshold=1)  # shard every non-empty dir
    ours = import_path(tree, blocks.__setitem__, options)
    assert ours.cid.to_base32() == helia.add_dir(tree, shard_threshold=1)
    export(ours.cid, blocks.__getitem__, tmp_path / "out")
    _same_tree(tree, tmp_path / "out")


def test_symlinks_in_a_directory_are_stored_as_kubo_stores_them(kubo: KuboPeer, tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    tree.mkdir()
    (tree / "target").write_bytes(b"t")
    (tree / "link").symlink_to("target")
    (tree / "dangling").symlink_to("../nowhere")
    blocks: dict[CID, bytes] = {}
    ours = import_path(tree, blocks.__setitem__, ImportOptions.kubo())
    assert str(ours.cid) == kubo.add(tree)
    with pytest.raises(InvalidArgumentError, match="symlink"):
        export(ours.cid, blocks.__getitem__, tmp_path / "out")
