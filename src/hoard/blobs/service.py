"""castore semantics on the content store: Put, Stat and Read blobs by BLAKE3 digest.

A blob is a dataset: `put` uploads with the CDC chunker (FastCDC v2020, 128/256/512 KiB) and
returns the digest of all the bytes; the `digests` index of the content store finds the
dataset again. Any dataset is a blob (whatever chunker made it), and so is any raw block,
addressed by its own digest: that is how a chunk listed by `stat` is read on its own.

Everything here is blocking (LMDB, hashing); the node runs it in threads.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from hoard.blobs.digest import EMPTY_BLOB, BlobDigest
from hoard.content import CdcChunker, ContentStore, LocalReader, Upload
from hoard.errors import NotFoundError
from hoard.ids.cid import CID

PIECE_BYTES = 1 << 20  # what `read` yields at most per piece (castore: "manageable" messages)
#: The longest chunk list `stat` gives: castore's Stat answer is one unary message and the proto
#: has no paging, so a list must fit the gRPC server's 32 MiB send limit (about 43 bytes an
#: entry: 700,000 chunks is ~30 MB, a blob of ~170 GiB at 256 KiB chunks). A longer blob is
#: answered `[]`, castore's "no finer chunking": its clients then read it whole.
MAX_STAT_CHUNKS = 700_000


@dataclass(frozen=True)
class ChunkMeta:
    """One chunk of a blob: its digest (readable as a blob of its own) and size."""

    digest: BlobDigest
    size: int


@dataclass(frozen=True)
class BlobStat:
    """What is known about a stored blob.

    `manifest` is the dataset's manifest CID (None for a blob that is a single raw block, or
    for the empty blob when no dataset holds it). `chunks` follows castore: `()` when the blob
    is one chunk (or the list is longer than MAX_STAT_CHUNKS), the chunks in order otherwise,
    and None when they were not asked for.
    """

    digest: BlobDigest
    size: int
    manifest: CID | None
    chunks: tuple[ChunkMeta, ...] | None

    def to_json(self) -> dict[str, object]:
        return {"digest": str(self.digest), "hex": self.digest.hex(), "size": self.size,
                "manifest": None if self.manifest is None else str(self.manifest),
                "chunks": None if self.chunks is None else
                [{"digest": str(c.digest), "hex": c.digest.hex(), "size": c.size} for c in self.chunks]}


class BlobService:
    """Blobs over a ContentStore. Thread-safe as the content store is."""

    def __init__(self, content: ContentStore) -> None:
        self.content = content

    def put(self, pieces: Iterable[bytes | memoryview]) -> BlobStat:
        """Store the concatenation of `pieces` as a blob; piece boundaries do not matter.

        Memory stays bounded (blocks are written in batches as they complete). On any error,
        including one raised by `pieces`, nothing of this put is kept.
        """
        upload = Upload(self.content, CdcChunker())
        try:
            for piece in pieces:
                upload.write(piece)
            manifest_cid = upload.finish()
        except BaseException:
            upload.cancel()
            raise
        manifest = self.content.manifest(manifest_cid)
        return BlobStat(BlobDigest(manifest.digest), manifest.dataset_size, manifest_cid, None)

    def _dataset(self, digest: BlobDigest) -> CID | None:
        cid = self.content.manifest_by_digest(bytes(digest))
        if cid is None or self.content.dataset_info(cid) is None:
            return None
        return cid

    def stat(self, digest: BlobDigest, chunks: bool = True) -> BlobStat:
        """The blob's size, dataset and (with `chunks`) chunk list. NotFoundError if absent."""
        manifest_cid = self._dataset(digest)
        if manifest_cid is not None:
            manifest = self.content.manifest(manifest_cid)
            listing: tuple[ChunkMeta, ...] | None = None
            if chunks:
                listing = () if not 1 < manifest.block_count <= MAX_STAT_CHUNKS else tuple(
                    ChunkMeta(BlobDigest.from_cid(cid), size) for cid, size in self.content.iter_blocks(manifest))
            return BlobStat(digest, manifest.dataset_size, manifest_cid, listing)
        size = self.content.ingest.size(digest.cid)
        if size is not None:
            return BlobStat(digest, size, None, () if chunks else None)
        if digest == EMPTY_BLOB:
            return BlobStat(digest, 0, None, () if chunks else None)
        raise NotFoundError(f"blob {digest} not found", digest=str(digest))

    def read(self, digest: BlobDigest, piece_bytes: int = PIECE_BYTES) -> Iterator[bytes]:
        """The blob's bytes in order, in pieces of at most `piece_bytes`. NotFoundError if absent.

        Raises before returning when the blob is absent; then reads lazily, a few blocks at a
        time. Small blocks are joined so pieces are close to `piece_bytes`.
        """
        cid = self._dataset(digest)
        if cid is None:
            cid = digest.cid
            if not self.content.ingest.present(cid):
                if digest == EMPTY_BLOB:
                    return iter(())
                raise NotFoundError(f"blob {digest} not found", digest=str(digest))
        reader = LocalReader(self.content, cid)
        return _coalesce(reader.pieces(piece_bytes), piece_bytes)


def _bytes(piece: bytes | memoryview) -> bytes:
    """`piece` as bytes: without a copy when it is, or views all of, a bytes object."""
    if isinstance(piece, memoryview) and isinstance(piece.obj, bytes) and piece.nbytes == len(piece.obj):
        return piece.obj
    return piece if isinstance(piece, bytes) else piece.tobytes()


def _coalesce(pieces: Iterable[bytes | memoryview], target: int) -> Iterator[bytes]:
    """Join consecutive pieces into pieces of up to `target` bytes (one copy each; none for a
    piece that is a whole block on its own). Fewer, larger messages cost less than the copy:
    sending each CDC block as its own message was measured slower."""
    held: list[bytes | memoryview] = []
    size = 0
    for piece in pieces:
        if size + len(piece) > target and held:
            yield _bytes(held[0]) if len(held) == 1 else b"".join(held)
            held, size = [], 0
        held.append(piece)
        size += len(piece)
    if held:
        yield _bytes(held[0]) if len(held) == 1 else b"".join(held)
