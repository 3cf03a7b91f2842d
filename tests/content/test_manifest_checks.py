"""Manifests are validated completely when decoded: types, sizes and safe names."""

from __future__ import annotations

from typing import Any

import pytest

from hoard.content import ContentStore, FixedChunker, Manifest, Upload, dag
from hoard.content.manifest import escape_text, name_problem
from hoard.errors import IntegrityError, InvalidArgumentError
from hoard.ids import CID, DAG_CBOR
from hoard.limits import MAX_BLOCK_BYTES, MAX_DATASET_BLOCKS
from hoard.store import MemoryBlockStore

INDEX = CID.of(b"index", DAG_CBOR)


def _node(**changes: Any) -> dict[str, Any]:
    node = Manifest(100, 64, 2, "fixed", b"\1" * 32, INDEX, "a.txt", "text/plain").to_node()
    for key, value in changes.items():
        if value is _DROP:
            del node[key]
        else:
            node[key] = value
    return node


_DROP = object()


def test_a_valid_manifest_round_trips() -> None:
    manifest = Manifest(100, 64, 2, "fixed", b"\1" * 32, INDEX, "ü b.txt", "text/plain; charset=utf-8")
    _, data = manifest.encode()
    assert Manifest.decode(data) == manifest
    cdc = Manifest(10 << 20, 256 << 10, 40, "fastcdc-v2020(131072,262144,524288)", b"\1" * 32, INDEX)
    assert Manifest.decode(cdc.encode()[1]) == cdc


@pytest.mark.parametrize("changes", [
    {"filename": 7}, {"filename": {"a": 1}}, {"filename": ["x"]}, {"filename": b"x"},
    {"filename": "../etc/passwd"}, {"filename": "a/b"}, {"filename": "a\\b"}, {"filename": ".."}, {"filename": ""},
    {"filename": "\x1b[2Jpwned"}, {"filename": "evil\u202etxt.exe"}, {"filename": "a\nb"}, {"filename": "x" * 256},
    {"mimetype": 3}, {"mimetype": "text"}, {"mimetype": "text/\x1b[31m"}, {"mimetype": "t/" + "x" * 300},
    {"datasetSize": "100"}, {"datasetSize": -1}, {"datasetSize": 2 * MAX_BLOCK_BYTES + 1}, {"datasetSize": 1.5},
    {"blockSize": 0}, {"blockSize": MAX_BLOCK_BYTES + 1}, {"blockSize": True},
    {"blockCount": MAX_DATASET_BLOCKS + 1}, {"blockCount": -1}, {"blockCount": None},
    {"chunker": "zstd"}, {"chunker": 5}, {"chunker": "fastcdc-v2020(9,1,5)"},
    {"digest": b"short"}, {"digest": "00" * 32}, {"index": "not a link"}, {"index": CID.of(b"raw")},
    {"version": 2}, {"version": True}, {"protected": 1}, {"extra": 1},
    {"index": _DROP}, {"filename": _DROP, "digest": _DROP},
])
def test_a_malformed_manifest_is_refused_at_decode(changes: dict[str, Any]) -> None:
    with pytest.raises(IntegrityError, match="not a valid hoard manifest"):
        Manifest.decode(dag.encode(_node(**changes)))


def test_non_map_and_oversized_manifests_are_refused() -> None:
    for node in ([1, 2], "manifest", 5):
        with pytest.raises(IntegrityError):
            Manifest.decode(dag.encode(node))
    with pytest.raises(IntegrityError, match="bytes"):
        Manifest.decode(dag.encode(_node(padding=b"x" * 5000)))


def test_uploads_refuse_names_a_manifest_may_not_carry() -> None:
    content = ContentStore(MemoryBlockStore(), quota=1 << 30, block_ttl=60)
    with pytest.raises(InvalidArgumentError, match="filename"):
        Upload(content, FixedChunker(), filename="../x")
    up = Upload(content, FixedChunker(), filename="fine.txt")
    up.write(b"data")
    up.filename = "bad\x07name"  # set after opening, as a frontend may
    with pytest.raises(InvalidArgumentError, match="control characters"):
        up.finish()
    assert content.space().to_json()["quotaUsedBytes"] == 0  # the session's blocks were released


def test_names_are_shown_escaped() -> None:
    assert escape_text("a\x1b[2Jb\u202e") == "a\\x1b[2Jb\\u202e"
    assert escape_text("fine ü.txt") == "fine ü.txt"
    assert name_problem("ok.txt") is None
    problem = name_problem("\x1b]0;x\x07")
    assert problem is not None and "\x1b" not in problem
