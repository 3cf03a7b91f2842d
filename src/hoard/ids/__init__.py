"""Identifiers: CIDs, peer identity and signed peer records. Pure, no I/O beyond key files."""

from hoard.ids.cid import BLAKE3, CID, DAG_CBOR, RAW
from hoard.ids.peer import Identity, PeerId

__all__ = ["BLAKE3", "CID", "DAG_CBOR", "Identity", "PeerId", "RAW"]
