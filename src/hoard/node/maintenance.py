"""Repo maintenance: re-verification of stored content."""

from __future__ import annotations

from typing import Any

from hoard.content import ContentStore
from hoard.content.index import load_index
from hoard.errors import IntegrityError, NotFoundError
from hoard.ids.cid import CID


def verify_dataset(content: ContentStore, cid: CID) -> dict[str, Any]:
    """Check every block of a dataset (or one block) against its CID. Raises IntegrityError."""
    info = content.dataset_info(cid)
    if info is None:
        data = content.blobs.get(cid)
        if data is None:
            raise NotFoundError(f"{cid} not found in local store", cid=str(cid))
        cid.verify(data)
        return {"cid": str(cid), "blocks": 1, "bytes": len(data)}
    if info.format == "logos":
        blocks, nbytes = content.verify_logos(cid)
        return {"cid": str(cid), "blocks": blocks, "bytes": nbytes}
    manifest = content.manifest(cid)
    cid.verify(content.blobs.get(cid) or b"")
    tree = load_index(manifest.index, manifest.block_count, manifest.dataset_size, content.blobs.get_many)
    for node in tree.node_cids():
        node.verify(content.blobs.get(node) or b"")
    for block, size in tree.unique_blocks().items():  # each distinct block once, however often it repeats
        data = content.blobs.get(block)
        if data is None:
            raise NotFoundError(f"block {block} of {cid} is missing", cid=str(block))
        if len(data) != size:
            raise IntegrityError(f"block {block} has {len(data)} bytes, index says {size}", cid=str(block))
        block.verify(data)
    return {"cid": str(cid), "blocks": tree.count, "bytes": tree.nbytes}
