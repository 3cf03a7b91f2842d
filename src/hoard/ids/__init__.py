"""Identifiers: CIDs, peer identity and signed peer records. Pure, no I/O beyond key files."""

from hoard.ids.cid import (
    BLAKE3,
    CID,
    CODEX_BLOCK,
    CODEX_MANIFEST,
    CODEX_ROOT,
    DAG_CBOR,
    DAG_PB,
    RAW,
    SHA2_256,
)
from hoard.ids.peer import Identity, PeerId

__all__ = [
    "BLAKE3",
    "CID",
    "CODEX_BLOCK",
    "CODEX_MANIFEST",
    "CODEX_ROOT",
    "DAG_CBOR",
    "DAG_PB",
    "RAW",
    "SHA2_256",
    "Identity",
    "PeerId",
]
