"""Dataset manifests and block indexes (dag-cbor).

A manifest node:
    {"version": 1, "datasetSize": int, "blockSize": int, "blockCount": int,
     "chunker": "fixed" | "fastcdc-v2020(min,avg,max)", "filename": str|null,
     "mimetype": str|null, "digest": bytes (BLAKE3-256 of the whole content),
     "index": CID (root of the block index), "protected": false}

The block index is a tree of dag-cbor nodes, FANOUT entries per node:
    leaf:     {"blocks": [[CID, size], ...]}
    interior: {"children": [[CID, bytes, count], ...]}
so a byte offset or a block number finds its block by descending one path.
"""

from __future__ import annotations

import mimetypes
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Callable

from hoard.content import dag
from hoard.errors import IntegrityError, NotFoundError
from hoard.ids.cid import CID, DAG_CBOR

FORMAT_VERSION = 1
FANOUT = 1024


@dataclass(frozen=True)
class Manifest:
    """A dataset's manifest: what `upload_*` returns the CID of."""

    dataset_size: int
    block_size: int
    block_count: int
    chunker: str
    digest: bytes
    index: CID
    filename: str | None = None
    mimetype: str | None = None
    protected: bool = False

    def to_node(self) -> dict[str, Any]:
        return {
            "version": FORMAT_VERSION, "datasetSize": self.dataset_size, "blockSize": self.block_size,
            "blockCount": self.block_count, "chunker": self.chunker, "digest": self.digest,
            "index": self.index, "filename": self.filename, "mimetype": self.mimetype,
            "protected": self.protected,
        }

    def encode(self) -> tuple[CID, bytes]:
        return dag.encode_node(self.to_node())

    @classmethod
    def decode(cls, data: bytes, cid: CID | None = None) -> Manifest:
        node = dag.decode(data, "manifest")
        try:
            if node["version"] != FORMAT_VERSION:
                raise IntegrityError(f"unsupported manifest version {node['version']}")
            index = node["index"]
            if not isinstance(index, CID):
                raise TypeError("index is not a link")
            return cls(
                dataset_size=int(node["datasetSize"]), block_size=int(node["blockSize"]),
                block_count=int(node["blockCount"]), chunker=str(node["chunker"]),
                digest=bytes(node["digest"]), index=index, filename=node.get("filename"),
                mimetype=node.get("mimetype"), protected=bool(node.get("protected", False)),
            )
        except IntegrityError:
            raise
        except (KeyError, TypeError, ValueError) as exc:
            raise IntegrityError(f"{cid or 'block'} is not a hoard manifest: {exc}") from exc

    def to_json(self) -> dict[str, Any]:
        """The Logos/Codex JSON view (plus hoard's own `blockCount`, `chunker`, `digest`)."""
        return {
            "treeCid": str(self.index), "datasetSize": self.dataset_size, "blockSize": self.block_size,
            "filename": self.filename, "mimetype": self.mimetype, "protected": self.protected,
            "blockCount": self.block_count, "chunker": self.chunker, "digest": self.digest.hex(),
        }


def guess_mimetype(filename: str | None) -> str | None:
    if not filename:
        return None
    return mimetypes.guess_type(filename, strict=False)[0]


def build_index(entries: list[tuple[CID, int]]) -> tuple[CID, list[tuple[CID, bytes]]]:
    """Build the index tree over (block CID, size) entries; returns (root, all node blocks)."""
    nodes: list[tuple[CID, bytes]] = []
    level: list[tuple[CID, int, int]] = []  # (node cid, bytes, count)
    for start in range(0, max(len(entries), 1), FANOUT):
        part = entries[start:start + FANOUT]
        cid, data = dag.encode_node({"blocks": [[c, s] for c, s in part]})
        nodes.append((cid, data))
        level.append((cid, sum(s for _, s in part), len(part)))
    while len(level) > 1:
        upper: list[tuple[CID, int, int]] = []
        for start in range(0, len(level), FANOUT):
            part = level[start:start + FANOUT]
            cid, data = dag.encode_node({"children": [[c, b, n] for c, b, n in part]})
            nodes.append((cid, data))
            upper.append((cid, sum(b for _, b, _ in part), sum(n for _, _, n in part)))
        level = upper
    return level[0][0], nodes


def decode_index_node(data: bytes, cid: CID) -> dict[str, Any]:
    node = dag.decode(data, f"index node {cid}")
    if not isinstance(node, dict) or not (("blocks" in node) ^ ("children" in node)):
        raise IntegrityError(f"{cid} is not a block-index node")
    return node


Getter = Callable[[CID], "bytes | None"]


def iter_index(root: CID, get: Getter, start_block: int = 0) -> Iterator[tuple[CID, int]]:
    """Yield (block CID, size) from block number `start_block` on, reading nodes with `get`."""

    def load(cid: CID) -> dict[str, Any]:
        data = get(cid)
        if data is None:
            raise NotFoundError(f"block-index node {cid} not found", cid=str(cid))
        return decode_index_node(data, cid)

    def walk(cid: CID, skip: int) -> Iterator[tuple[CID, int]]:
        node = load(cid)
        if "blocks" in node:
            for c, s in node["blocks"][skip:]:
                yield c, s
            return
        for child, _size, count in node["children"]:
            if skip >= count:
                skip -= count
                continue
            yield from walk(child, skip)
            skip = 0

    yield from walk(root, start_block)


def iter_index_nodes(root: CID, get: Getter) -> Iterator[CID]:
    """Every index node CID of the tree (for refcounting and fetching)."""
    stack = [root]
    while stack:
        cid = stack.pop()
        yield cid
        data = get(cid)
        if data is None:
            raise NotFoundError(f"block-index node {cid} not found", cid=str(cid))
        node = decode_index_node(data, cid)
        if "children" in node:
            stack.extend(c for c, _, _ in reversed(node["children"]))


def is_dag(cid: CID) -> bool:
    return cid.codec == DAG_CBOR


def locate(root: CID, offset: int, get: Callable[[CID], bytes | None]) -> tuple[int, int]:
    """(block number, offset inside it) of byte `offset`, descending the block index once."""
    block_no = 0
    cid = root
    while True:
        data = get(cid)
        if data is None:
            raise NotFoundError(f"block-index node {cid} not found", cid=str(cid))
        node = decode_index_node(data, cid)
        if "blocks" in node:
            for _block, size in node["blocks"]:
                if offset < size:
                    return block_no, offset
                offset -= size
                block_no += 1
            return block_no, 0
        for child, nbytes, count in node["children"]:
            if offset < nbytes:
                cid = child
                break
            offset -= nbytes
            block_no += count
        else:
            return block_no, 0
