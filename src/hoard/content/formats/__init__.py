"""Dataset formats besides hoard's own: pure encoders and decoders, no store access.

`logos` is Logos Storage's format (sha2-256 codex-block blocks, Codex's Merkle tree, the protobuf
manifest); see its docstring for the layout and how blocks are verified.
"""

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
