"""CAR files: hoard's CARs import into Helia, Helia's CARs import into hoard, every block verified."""

from __future__ import annotations

import io
import random
from pathlib import Path

import pytest

from hoard.content.car import (
    encode_section,
    export_car,
    import_car,
    iter_car,
    read_car,
    walk_dag,
    write_car,
)
from hoard.content.formats.unixfs import (
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
from ipfs.peers import HeliaPeer


def _data(size: int, seed: int) -> bytes:
    return random.Random(seed).randbytes(size)


@pytest.mark.parametrize(("options", "version"), [
    (ImportOptions.kubo_v1(), 1), (ImportOptions.kubo(), 1), (ImportOptions.kubo_v1(), 2)])
def test_hoard_car_imports_into_helia(helia: HeliaPeer, tmp_path: Path,
                                      options: ImportOptions, version: int) -> None:
    data = _data(1_300_000, version * 10 + options.cid_version)
    blocks: dict[CID, bytes] = {}
    root = import_bytes(data, blocks.__setitem__, options)
    car = tmp_path / "hoard.car"
    with open(car, "wb") as f:
        export_car(f, root.cid, blocks.__getitem__, version=version)
    assert helia.import_car(car) == [root.cid.to_base32() if root.cid.version else str(root.cid)]
    for cid in blocks:
        assert helia.has_block(str(cid))
    helia.cat(str(root.cid), tmp_path / "out", timeout=10)
    assert (tmp_path / "out").read_bytes() == data


def test_helia_car_imports_into_hoard(helia: HeliaPeer, tmp_path: Path) -> None:
    src = tmp_path / "src.bin"
    data = _data(2_000_000, 3)
    src.write_bytes(data)
    cid = helia.add_file(src)
    car = tmp_path / "helia.car"
    helia.export_car(cid, car)
    blocks: dict[CID, bytes] = {}
    with open(car, "rb") as f:
        header, count = import_car(f, blocks.__setitem__)
    assert header.version == 1
    assert [r.to_base32() for r in header.roots] == [cid]
    assert count == len(blocks) == 9  # 8 raw leaves of 256 KiB and their parent
    assert b"".join(read_file(header.roots[0], blocks.__getitem__)) == data


def test_helia_directory_car_exports_from_hoard(helia: HeliaPeer, tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    (tree / "d").mkdir(parents=True)
    (tree / "d" / "x").write_bytes(_data(400_000, 4))
    (tree / "y").write_bytes(b"y")
    cid = helia.add_dir(tree)
    car = tmp_path / "dir.car"
    helia.export_car(cid, car)
    blocks: dict[CID, bytes] = {}
    with open(car, "rb") as f:
        header, _ = import_car(f, blocks.__setitem__)
    export(header.roots[0], blocks.__getitem__, tmp_path / "out")
    assert (tmp_path / "out" / "d" / "x").read_bytes() == (tree / "d" / "x").read_bytes()
    assert (tmp_path / "out" / "y").read_bytes() == b"y"
    ours: dict[CID, bytes] = {}
    assert import_path(tree, ours.__setitem__, ImportOptions.kubo_v1()).cid == header.roots[0]
    assert set(ours) == set(blocks)


def _car_bytes(version: int = 1) -> tuple[bytes, CID, dict[CID, bytes]]:
    blocks: dict[CID, bytes] = {}
    root = import_bytes(_data(600_000, 5), blocks.__setitem__, ImportOptions.kubo())
    buf = io.BytesIO()
    export_car(buf, root.cid, blocks.__getitem__, version=version)
    return buf.getvalue(), root.cid, blocks


@pytest.mark.parametrize("version", [1, 2])
def test_round_trip(version: int) -> None:
    raw, root, blocks = _car_bytes(version)
    header, it = read_car(io.BytesIO(raw))
    assert header.version == version and header.roots == (root,)
    assert dict(it) == blocks


def test_tampered_block_is_refused() -> None:
    raw, _, _ = _car_bytes()
    bad = bytearray(raw)
    bad[-10] ^= 1
    _, it = read_car(io.BytesIO(bytes(bad)))
    with pytest.raises(IntegrityError):
        list(it)


@pytest.mark.parametrize("cut", [5, 100, -3])
def test_truncated_car_is_refused(cut: int) -> None:
    raw, _, _ = _car_bytes()
    with pytest.raises(InvalidArgumentError):
        _, it = read_car(io.BytesIO(raw[:cut]))
        list(it)


def test_bad_headers_and_sections() -> None:
    cid = CID.sha256(b"x")
    with pytest.raises(InvalidArgumentError):
        read_car(io.BytesIO(b"\x05hello"))
    with pytest.raises(InvalidArgumentError):
        write_car(io.BytesIO(), [], [])
    buf = io.BytesIO()
    write_car(buf, [cid], [])
    ok = buf.getvalue()
    # a section whose CID kind hoard does not verify (identity multihash)
    identity = b"\x01\x55\x00\x01x"
    section = bytes([len(identity) + 1]) + identity + b"x"
    with pytest.raises(InvalidArgumentError):
        list(read_car(io.BytesIO(ok + section))[1])
    assert list(read_car(io.BytesIO(ok + encode_section(cid, b"x")))[1]) == [(cid, b"x")]


def test_streamed_car_equals_written_car() -> None:
    raw, root, blocks = _car_bytes(1)
    assert b"".join(iter_car([root], walk_dag(root, blocks.__getitem__))) == raw


def test_helia_hamt_directory_exports_from_hoard(helia: HeliaPeer, tmp_path: Path) -> None:
    """A HAMT-sharded directory (Helia shards past a threshold, as kubo does past 256 KiB)."""
    tree = tmp_path / "many"
    (tree / "sub").mkdir(parents=True)
    for i in range(300):
        (tree / f"file-{i:03}").write_bytes(f"{i}\n".encode())
    (tree / "sub" / "inner").write_bytes(_data(1000, 6))
    cid = helia.add_dir(tree, shard_threshold=1000)
    car = tmp_path / "hamt.car"
    helia.export_car(cid, car)
    blocks: dict[CID, bytes] = {}
    with open(car, "rb") as f:
        header, _ = import_car(f, blocks.__setitem__)
    root = header.roots[0]
    assert load(root, blocks.__getitem__).unixfs.type == HAMT_SHARD  # type: ignore[union-attr]
    names = [e.name for e in list_directory(root, blocks.__getitem__)]
    assert names == sorted(p.name for p in tree.iterdir())
    export(root, blocks.__getitem__, tmp_path / "out")
    for i in (0, 150, 299):
        assert (tmp_path / "out" / f"file-{i:03}").read_bytes() == f"{i}\n".encode()
    assert (tmp_path / "out" / "sub" / "inner").read_bytes() == (tree / "sub" / "inner").read_bytes()
