"""The catalog of IPFS roots: unpinned roots expire after `block-ttl` (as cached datasets do), pinned
ones stay, and a root's blocks shared with another root survive its expiry."""

from __future__ import annotations

import random
import time
from pathlib import Path

import pytest

from hoard import Node

pytestmark = pytest.mark.timeout(120)


def test_unpinned_roots_expire_pinned_ones_stay(tmp_path: Path) -> None:
    tree = tmp_path / "d"
    tree.mkdir()
    src = tree / "f.bin"
    src.write_bytes(random.Random(4).randbytes(600_000))
    with Node({"data-dir": str(tmp_path / "n"), "block-ttl": "1h"}) as node:
        cached = node.ipfs.add(src, cid_version=1, raw_leaves=True, pin=False)
        other = node.ipfs.add(src, pin=False)  # CIDv0: its own blocks
        pinned = node.ipfs.add(tree, cid_version=1, raw_leaves=True)  # holds the file's blocks too
        again = node.ipfs.add(src, cid_version=1, raw_leaves=True, filename="again", pin=False)
        assert again.cid == cached.cid and not again.pinned and again.filename == "f.bin"  # not counted twice
        component = node.components.ipfs
        assert component.expire(now=time.time()) == []  # not old enough
        assert sorted(component.expire(now=time.time() + 3601)) == sorted([cached.cid, other.cid])
        assert [r.cid for r in node.ipfs.list()] == [pinned.cid]
        assert node.ipfs.has(cached.cid) and not node.ipfs.has(other.cid)  # the directory still holds the file
        assert node.space().total_blocks == pinned.blocks
        node.ipfs.download(pinned.cid, tmp_path / "out")
        assert (tmp_path / "out" / "f.bin").read_bytes() == src.read_bytes()
