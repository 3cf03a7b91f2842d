"""Blobs: tvix castore semantics (BLAKE3 digests, CDC chunks, chunk lists) on the content store."""

from hoard.blobs.digest import EMPTY_BLOB, BlobDigest
from hoard.blobs.service import MAX_STAT_CHUNKS, PIECE_BYTES, BlobService, BlobStat, ChunkMeta

__all__ = ["EMPTY_BLOB", "MAX_STAT_CHUNKS", "PIECE_BYTES", "BlobDigest", "BlobService", "BlobStat", "ChunkMeta"]
