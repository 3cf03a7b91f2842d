"""Dataset formats besides hoard's own: pure encoders and decoders, no store access.

`logos` is Logos Storage's format (sha2-256 codex-block blocks, Codex's Merkle tree, the protobuf
manifest); see its docstring for the layout and how blocks are verified.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from hoard.content.formats.logos import (
        DEFAULT_BLOCK_SIZE,
        LogosDataset,
        LogosDatasetWriter,
        LogosManifest,
        MerkleProof,
        MerkleTree,
        block_cid,
        encode_dataset,
        logos_file_meta,
        pad,
        tree_cid,
        verify_block,
    )

__all__ = [
    "DEFAULT_BLOCK_SIZE",
    "LogosDataset",
    "LogosDatasetWriter",
    "LogosManifest",
    "MerkleProof",
    "MerkleTree",
    "block_cid",
    "encode_dataset",
    "logos_file_meta",
    "pad",
    "tree_cid",
    "verify_block",
]


def __getattr__(name: str) -> Any:
    """The Logos names load on first use: `logos` needs google.protobuf, which importing another
    format (unixfs, dagpb, logos_dataset) or `hoard` itself must not load."""
    if name in __all__:
        return getattr(importlib.import_module("hoard.content.formats.logos"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
