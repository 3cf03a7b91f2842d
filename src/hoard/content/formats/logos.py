"""The Logos Storage dataset format, so that the same bytes get the CIDs Logos gives them.

Pure: no store access; blocks are handed to a `put_block(cid, data)` callable.

Layout of a dataset (logos-storage-nim `storage/node.nim` `store`, nim-codex `codex/chunker.nim`):

1. The bytes are cut into blocks of `block_size` (64 KiB by default); the last block is padded
   with zeros to the full size (the chunker's `pad = true`). Every block is exactly block_size.
2. A block's CID is CIDv1, codec codex-block (0xCD02), sha2-256 of the padded block.
3. The blocks' digests are the leaves of Codex's Merkle tree (`logos_tree`); the tree CID is
   codex-root (0xCD03) with the root as its sha2-256 multihash.
4. The manifest (`logos_manifest`) records the tree CID, block size, the unpadded dataset size,
   filename and mimetype; its CID (codex-manifest 0xCD01, sha2-256 of its bytes) is what an
   upload returns. The manifest is stored as a block; the block CIDs are not in it.
5. A download reads `ceil(datasetSize / blockSize)` blocks and returns the first datasetSize
   bytes (the padding is dropped: `LogosManifest.block_length`).

Verification: the manifest is verified by its CID. The blocks are not listed anywhere, so a
block from a peer comes with its Merkle proof and is verified by `verify_block`: it must be
block_size bytes, and the proof must lead from sha256(block) to the tree CID's root at the
block's index, in a tree of exactly blocks_count leaves. A store keeps, per dataset, either the
tree (`MerkleTree.encode`) or each block's proof, to serve blocks with proofs (Logos keeps
`(treeCid, index) -> (blockCid, proof)`).

Filename and mimetype, as Logos's library upload records them (library/storage_thread_requests/
requests/node_upload_request.nim): the filename is Nim's `splitFile` name & ext of the path
given to upload_init, and the mimetype is Nim's `std/mimetypes` lookup of the extension
(`_nim_mimetypes`), absent when the extension is unknown or there is none.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from hoard.content.formats._nim_mimetypes import NIM_MIMETYPES
from hoard.content.formats.logos_manifest import (
    DEFAULT_BLOCK_SIZE,
    MAX_BLOCK_SIZE,
    LogosManifest,
    name_problem,
)
from hoard.content.formats.logos_tree import MerkleProof, MerkleTree, tree_cid
from hoard.errors import IntegrityError, InvalidArgumentError, StateError
from hoard.ids.cid import CID, CODEX_BLOCK
from hoard.limits import MAX_DATASET_BLOCKS

__all__ = [
    "DEFAULT_BLOCK_SIZE",
    "MAX_BLOCK_SIZE",
    "LogosDataset",
    "LogosDatasetWriter",
    "LogosManifest",
    "MerkleProof",
    "MerkleTree",
    "block_cid",
    "encode_dataset",
    "logos_file_meta",
    "nim_mimetype",
    "nim_split_file",
    "pad",
    "tree_cid",
    "verify_block",
]

_ASCII_LOWER: Final = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


def pad(block: bytes | bytearray | memoryview, block_size: int = DEFAULT_BLOCK_SIZE) -> bytes:
    """`block` padded with zeros to `block_size` bytes (the last block of a dataset)."""
    if len(block) > block_size:
        raise InvalidArgumentError(f"a block of {len(block)} bytes does not fit a block size of {block_size}")
    return bytes(block) + bytes(block_size - len(block))


def block_cid(padded: bytes | memoryview) -> CID:
    """The CID of a (padded) block: CIDv1 codex-block, sha2-256."""
    return CID.sha256(padded, CODEX_BLOCK)


def verify_block(manifest: LogosManifest, index: int, data: bytes | memoryview, proof: MerkleProof) -> CID:
    """Check block `index` of `manifest`'s dataset, as it arrived with `proof`; return its CID.

    Raises IntegrityError if the block has the wrong size or is not that leaf of the tree.
    """
    if len(data) != manifest.block_size:
        raise IntegrityError(f"block {index} of {manifest.tree_cid} is {len(data)} bytes, "
                             f"expected {manifest.block_size}", cid=str(manifest.tree_cid), index=index)
    if proof.index != index or proof.leaves_count != manifest.blocks_count:
        raise IntegrityError(f"proof is for block {proof.index} of {proof.leaves_count}, expected block {index} "
                             f"of {manifest.blocks_count}", cid=str(manifest.tree_cid), index=index)
    cid = block_cid(data)
    proof.verify(cid, manifest.tree_cid)
    return cid


# -- filename and mimetype, as Nim computes them -------------------------------------------------
def nim_split_file(path: str) -> tuple[str, str, str]:
    """Nim's `os.splitFile` on POSIX: `(dir, name, ext)`, ext with its dot.

    The extension starts at the last dot that is neither the first character of the name, nor
    the last character of the path, nor followed by another dot.
    """
    name_pos = dot_pos = 0
    directory = name = ext = ""
    for i in range(len(path) - 1, -1, -1):
        if path[i] == "/" or i == 0:
            if path[i] == "/":
                directory = path[:i] if i >= 1 else path[:1]
                name_pos = i + 1
            if dot_pos > i:
                name, ext = path[name_pos:dot_pos], path[dot_pos:]
            else:
                name = path[name_pos:]
            break
        if path[i] == "." and 0 < i < len(path) - 1 and path[i - 1] != "/" and path[i + 1] != "." and dot_pos == 0:
            dot_pos = i
    return directory, name, ext


def nim_mimetype(ext: str) -> str | None:
    """The mimetype Nim's `newMimetypes().getMimetype(ext, "")` gives, or None.

    A leading dot is ignored and the extension is lowercased (ASCII only, as Nim's toLowerAscii).
    """
    key = ext.removeprefix(".")
    return NIM_MIMETYPES.get(key.translate(_ASCII_LOWER)) or None


def logos_file_meta(filepath: str) -> tuple[str | None, str | None]:
    """The (filename, mimetype) Logos's upload_init records for `filepath` (either may be None)."""
    if not filepath:
        return None, None
    _, name, ext = nim_split_file(filepath)
    return name + ext, nim_mimetype(ext[1:]) if ext else None


# -- building a dataset ---------------------------------------------------------------------------
@dataclass(frozen=True)
class LogosDataset:
    """A dataset written in the Logos format: its manifest (and CID and bytes) and its tree."""

    manifest: LogosManifest
    manifest_cid: CID
    manifest_bytes: bytes
    tree: MerkleTree


class LogosDatasetWriter:
    """Cuts a byte stream into a Logos dataset, as Logos's `node.store` does.

    `write` as often as needed (piece boundaries do not matter); every full block is handed to
    `put_block(cid, padded_block)` as soon as it is complete. `finish` pads and hands over the
    last block, builds the tree, then hands over the manifest block and returns the dataset.
    An empty stream is refused, as Logos refuses it.
    """

    def __init__(self, put_block: Callable[[CID, bytes], None], block_size: int = DEFAULT_BLOCK_SIZE,
                 filename: str | None = None, mimetype: str | None = None) -> None:
        if type(block_size) is not int or not 1 <= block_size <= MAX_BLOCK_SIZE:
            raise InvalidArgumentError(f"block size {block_size!r} is outside 1..{MAX_BLOCK_SIZE}")
        problem = name_problem("filename", filename) or name_problem("mimetype", mimetype)
        if problem:
            raise InvalidArgumentError(problem)
        self._put = put_block
        self.block_size = block_size
        self.filename = filename
        self.mimetype = mimetype
        self._pending = bytearray()
        self._leaves: list[bytes] = []
        self._size = 0
        self._finished = False

    @property
    def size(self) -> int:
        """Bytes written so far."""
        return self._size

    def _emit(self, block: bytes) -> None:
        if len(self._leaves) >= MAX_DATASET_BLOCKS:
            raise InvalidArgumentError(f"the dataset has more than {MAX_DATASET_BLOCKS} blocks")
        cid = block_cid(block)
        self._put(cid, block)
        self._leaves.append(cid.digest)

    def write(self, data: bytes | bytearray | memoryview) -> None:
        """Add bytes to the dataset."""
        if self._finished:
            raise StateError("the Logos dataset is already finished")
        view = memoryview(data).cast("B")
        self._size += len(view)
        bs = self.block_size
        if self._pending:
            take = min(bs - len(self._pending), len(view))
            self._pending += view[:take]
            view = view[take:]
            if len(self._pending) < bs:
                return
            self._emit(bytes(self._pending))
            self._pending.clear()
        full = len(view) - len(view) % bs
        for start in range(0, full, bs):
            self._emit(bytes(view[start:start + bs]))
        self._pending += view[full:]

    def finish(self) -> LogosDataset:
        """Store the last block and the manifest; return the dataset."""
        if self._finished:
            raise StateError("the Logos dataset is already finished")
        self._finished = True
        if self._pending:
            self._emit(pad(self._pending, self.block_size))
            self._pending.clear()
        if not self._leaves:
            raise InvalidArgumentError("an empty dataset cannot be stored in the Logos format (Logos refuses it too)")
        tree = MerkleTree.from_leaves(self._leaves)
        manifest = LogosManifest(tree.root_cid, self._size, self.block_size, self.filename, self.mimetype)
        cid, data = manifest.encode()
        self._put(cid, data)
        return LogosDataset(manifest, cid, data, tree)


def encode_dataset(data: bytes | memoryview, put_block: Callable[[CID, bytes], None],
                   block_size: int = DEFAULT_BLOCK_SIZE, filename: str | None = None,
                   mimetype: str | None = None) -> LogosDataset:
    """Write `data` as one Logos dataset (see `LogosDatasetWriter`)."""
    writer = LogosDatasetWriter(put_block, block_size, filename, mimetype)
    writer.write(data)
    return writer.finish()

