"""A stored Logos dataset's block list: how hoard keeps it, and how a fetcher verifies it.

Pure: no store or network access.

A Logos manifest names only the root of the dataset's Merkle tree, not its blocks. hoard keeps,
per Logos dataset, the ordered leaf list (the 32-byte sha2-256 digests of the padded blocks,
which are the digests inside their codex-block CIDs) in **leaf-list parts**: raw blocks of at
most `PART_LEAVES` leaves each (1 MiB), CIDv1 raw sha2-256, listed in order in the dataset's
catalog entry (docs/storage.md). From the leaves the whole tree (and any block's proof) is
rebuilt with `MerkleTree.from_leaves`.

A node that fetches a Logos dataset from a peer asks it for the leaf list over
`/hoard/logos-tree/1` (request: a length byte and the binary manifest CID; reply: a status byte,
the leaf bytes' length as u32 BE, then the leaves) and accepts it only when
`verified_block_cids` finds that the Merkle root of those leaves is the manifest's treeCid and
that there is one leaf per block. Every block is then fetched by its codex-block CID and checked
against that CID (sha2-256 of the padded block), so each block is verified on arrival.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from typing import TYPE_CHECKING, Final

from hoard.errors import IntegrityError
from hoard.ids.cid import CID, CODEX_MANIFEST, DIGEST_LEN, RAW, SHA2_256

if TYPE_CHECKING:  # they need google.protobuf, loaded only when a Logos manifest or tree is coded
    from hoard.content.formats.logos_manifest import LogosManifest

__all__ = [
    "PART_LEAVES",
    "TREE_PROTOCOL",
    "is_logos_manifest",
    "join_parts",
    "leaf_parts",
    "tree_reply",
    "tree_reply_header",
    "verified_block_cids",
]

#: Leaves per leaf-list part (32 bytes each: 1 MiB parts).
PART_LEAVES: Final = 32768
#: The libp2p protocol a hoard node answers a Logos dataset's leaf list on.
TREE_PROTOCOL: Final = "/hoard/logos-tree/1"
#: Reply header: status byte (0 found, 1 not found), then the leaf bytes' length (u32 BE).
_REPLY: Final = struct.Struct(">BI")
FOUND: Final = 0
NOT_FOUND: Final = 1


def is_logos_manifest(cid: CID) -> bool:
    """Whether `cid` names a Logos manifest (CIDv1 codex-manifest sha2-256)."""
    return cid.version == 1 and cid.codec == CODEX_MANIFEST and cid.hash_code == SHA2_256


def leaf_parts(leaves: Sequence[bytes]) -> list[tuple[CID, bytes]]:
    """The leaf-list parts of a dataset's leaves, in order: (raw sha2-256 CID, bytes)."""
    parts = []
    for start in range(0, len(leaves), PART_LEAVES):
        data = b"".join(leaves[start:start + PART_LEAVES])
        parts.append((CID.sha256(data, RAW), data))
    return parts


def join_parts(parts: Sequence[bytes]) -> bytes:
    """The leaf bytes of a dataset from its parts (each a whole number of leaves)."""
    for part in parts:
        if len(part) % DIGEST_LEN:
            raise IntegrityError(f"a Logos leaf-list part of {len(part)} bytes is not a whole number of leaves")
    return b"".join(parts)


def verified_block_cids(manifest: LogosManifest, leaves: bytes | memoryview) -> list[CID]:
    """The ordered codex-block CIDs of `manifest`'s dataset, from its leaf bytes, checked:
    exactly one leaf per block, and their Merkle root is the manifest's treeCid.

    Raises IntegrityError otherwise.
    """
    from hoard.content.formats.logos_tree import MerkleTree
    expected = manifest.blocks_count * DIGEST_LEN
    if len(leaves) != expected:
        raise IntegrityError(f"leaf list of {manifest.tree_cid} is {len(leaves)} bytes, expected {expected} "
                             f"({manifest.blocks_count} blocks)", cid=str(manifest.tree_cid))
    data = bytes(leaves)
    tree = MerkleTree.from_leaves([data[i:i + DIGEST_LEN] for i in range(0, len(data), DIGEST_LEN)])
    if tree.root_cid != manifest.tree_cid:
        raise IntegrityError(f"leaf list does not match tree {manifest.tree_cid} (its root is {tree.root_cid})",
                             cid=str(manifest.tree_cid))
    return [tree.leaf_cid(i) for i in range(tree.leaves_count)]


def tree_reply_header(found: bool, length: int = 0) -> bytes:
    """The header of a `/hoard/logos-tree/1` reply."""
    return _REPLY.pack(FOUND if found else NOT_FOUND, length)


def tree_reply(header: bytes) -> tuple[bool, int]:
    """(found, leaf bytes that follow) from a reply header; IntegrityError if malformed."""
    if len(header) != _REPLY.size:
        raise IntegrityError("truncated Logos leaf-list reply")
    status, length = _REPLY.unpack(header)
    if status not in (FOUND, NOT_FOUND) or (status == NOT_FOUND and length):
        raise IntegrityError(f"malformed Logos leaf-list reply (status {status})")
    return status == FOUND, length


REPLY_HEADER_SIZE: Final = _REPLY.size
