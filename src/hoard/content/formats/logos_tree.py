"""Codex's sha2-256 Merkle tree over a Logos dataset's blocks, its proofs, and their coders.

Ported from nim-codex / logos-storage-nim:
`codex/merkletree/merkletree.nim` (the generic tree: `merkleTreeWorker`, `getProof`,
`reconstructRoot`), `codex/merkletree/codex/codex.nim` (`ByteTreeKey`, `compress`, `rootCid`,
`CodexTree.init`) and `codex/merkletree/codex/coders.nim` (the protobuf of proofs and trees).

The leaves are the 32-byte sha2-256 digests of the padded blocks (the digests inside their
codex-block CIDs). Each layer pairs its nodes left to right with

    compress(x, y, key) = sha256(x || y || key)     (key is one byte)

using key 1 (KeyBottomLayer) on the bottom layer and 0 (KeyNone) above; a layer of odd length
pairs its last node with 32 zero bytes using key 3 (KeyOddAndBottomLayer) on the bottom layer
and 2 (KeyOdd) above. The bottom layer is always compressed once, so a single block's root is
`compress(leaf, zero, 3)`. The tree CID is CIDv1 with codec codex-root (0xCD03) whose
multihash is the root itself, tagged sha2-256.

A block fetched from a peer is verified against the tree, not the manifest (the manifest
names only the tree root): the peer sends the block with its `MerkleProof`, the path of
sibling nodes from the leaf to the root; `MerkleProof.verify` recomputes the root from
sha256(block) and compares it to the tree CID's digest (what Logos's block exchange does in
`validateBlockDelivery`). A proof also names the leaf count, which must equal the manifest's
block count, and its index, which must be the block's.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from google.protobuf.message import Message

from hoard.content.formats import _logos_pb as pb
from hoard.errors import IntegrityError, InvalidArgumentError
from hoard.ids.cid import CID, CODEX_BLOCK, CODEX_ROOT, DIGEST_LEN, SHA2_256
from hoard.limits import MAX_DATASET_BLOCKS

KEY_NONE: Final = 0
KEY_BOTTOM_LAYER: Final = 1
KEY_ODD: Final = 2
KEY_ODD_AND_BOTTOM_LAYER: Final = 3
ZERO: Final = bytes(DIGEST_LEN)
#: Bounds on encoded proofs and trees, as Codex's coders set them (MaxMerkleProofSize/TreeSize).
MAX_PROOF_BYTES: Final = 1 << 20
MAX_TREE_BYTES: Final = 100 << 20


def compress(x: bytes, y: bytes, key: int) -> bytes:
    """Codex's two-to-one compression: sha256(x || y || key byte)."""
    return hashlib.sha256(x + y + bytes((key,))).digest()


def depth(leaves_count: int) -> int:
    """Layers above the leaves (the length of every proof): at least 1, even for one leaf."""
    levels, width = 0, leaves_count
    while True:
        width = (width + 1) // 2
        levels += 1
        if width <= 1:
            return levels


def root_cid(root: bytes) -> CID:
    """The tree CID: codex-root, the root as a sha2-256 multihash."""
    return CID.from_digest(CODEX_ROOT, root, SHA2_256)


def leaf_of(block_cid: CID) -> bytes:
    """The leaf of a block: the sha2-256 digest in its codex-block CID."""
    if block_cid.codec != CODEX_BLOCK or block_cid.hash_code != SHA2_256 or block_cid.version != 1:
        raise InvalidArgumentError(f"{block_cid} is not a Logos block CID (CIDv1 codex-block sha2-256)",
                                   cid=str(block_cid))
    return block_cid.digest


def _check_root_cid(tree_cid: CID) -> bytes:
    if tree_cid.codec != CODEX_ROOT or tree_cid.hash_code != SHA2_256 or tree_cid.version != 1:
        raise InvalidArgumentError(f"{tree_cid} is not a Logos tree CID (CIDv1 codex-root sha2-256)",
                                   cid=str(tree_cid))
    return tree_cid.digest


class MerkleTree:
    """All layers of a dataset's tree, bottom (the leaves) first, the root alone on top."""

    __slots__ = ("layers",)

    def __init__(self, layers: list[list[bytes]]) -> None:
        self.layers = layers

    @classmethod
    def from_leaves(cls, leaves: Sequence[bytes]) -> MerkleTree:
        """Build the tree over 32-byte leaves (merkleTreeWorker)."""
        if not leaves:
            raise InvalidArgumentError("a Merkle tree needs at least one leaf (Logos refuses empty datasets)")
        if len(leaves) > MAX_DATASET_BLOCKS:
            raise InvalidArgumentError(f"{len(leaves)} blocks is more than the limit of {MAX_DATASET_BLOCKS}")
        if any(len(leaf) != DIGEST_LEN for leaf in leaves):
            raise InvalidArgumentError(f"every leaf must be a {DIGEST_LEN}-byte sha2-256 digest")
        layers = [list(leaves)]
        bottom = True
        while bottom or len(layers[-1]) > 1:
            below = layers[-1]
            pair_key, odd_key = (KEY_BOTTOM_LAYER, KEY_ODD_AND_BOTTOM_LAYER) if bottom else (KEY_NONE, KEY_ODD)
            above = [compress(below[i], below[i + 1], pair_key) for i in range(0, len(below) - 1, 2)]
            if len(below) % 2:
                above.append(compress(below[-1], ZERO, odd_key))
            layers.append(above)
            bottom = False
        return cls(layers)

    @classmethod
    def from_block_cids(cls, block_cids: Sequence[CID]) -> MerkleTree:
        """Build the tree over the ordered codex-block CIDs of a dataset."""
        return cls.from_leaves([leaf_of(cid) for cid in block_cids])

    @property
    def leaves_count(self) -> int:
        return len(self.layers[0])

    @property
    def root(self) -> bytes:
        return self.layers[-1][0]

    @property
    def root_cid(self) -> CID:
        return root_cid(self.root)

    def leaf_cid(self, index: int) -> CID:
        """The codex-block CID of block `index`."""
        return CID.from_digest(CODEX_BLOCK, self.layers[0][index], SHA2_256)

    def proof(self, index: int) -> MerkleProof:
        """The proof of leaf `index` (getProof): its sibling at each layer, zero where none."""
        if not 0 <= index < self.leaves_count:
            raise InvalidArgumentError(f"leaf index {index} is outside 0..{self.leaves_count - 1}")
        path, k = [], index
        for layer in self.layers[:-1]:
            sibling = k ^ 1
            path.append(layer[sibling] if sibling < len(layer) else ZERO)
            k >>= 1
        return MerkleProof(index, self.leaves_count, tuple(path))

    def encode(self) -> bytes:
        """The CodexTree protobuf: mcodec, leaf count, then every node layer by layer."""
        nodes = [node for layer in self.layers for node in layer]
        return pb.encode("Tree", {"mcodec": SHA2_256, "leaves_count": self.leaves_count, "nodes": nodes})

    @classmethod
    def decode(cls, data: bytes, tree_cid: CID | None = None) -> MerkleTree:
        """Read an encoded tree, rebuild it from its leaves and check every node (and the root
        against `tree_cid` when given). IntegrityError if anything disagrees."""
        what = "Logos Merkle tree"
        if len(data) > MAX_TREE_BYTES:
            raise IntegrityError(f"invalid {what}: {len(data)} bytes is more than {MAX_TREE_BYTES}")
        got = pb.fields("Tree", pb.parse("Tree", bytes(data), what), what)
        if got.get(1) != SHA2_256:
            raise IntegrityError(f"invalid {what}: hash code {got.get(1)} is not sha2-256 (0x12)")
        count = got.get(2, 0)
        if not 1 <= count <= MAX_DATASET_BLOCKS:
            raise IntegrityError(f"invalid {what}: {count} leaves is outside 1..{MAX_DATASET_BLOCKS}")
        nodes = [_node(node, what) for node in got.get(3, [])]
        if len(nodes) < count:
            raise IntegrityError(f"invalid {what}: {len(nodes)} nodes for {count} leaves")
        tree = cls.from_leaves(nodes[:count])
        if [node for layer in tree.layers for node in layer] != nodes:
            raise IntegrityError(f"invalid {what}: its nodes are not the tree of its leaves")
        if tree_cid is not None and tree.root != _check_root_cid(tree_cid):
            raise IntegrityError(f"Merkle tree does not match {tree_cid}", cid=str(tree_cid))
        return tree


def tree_cid(block_cids: Sequence[CID]) -> CID:
    """The tree CID of a dataset from its ordered codex-block CIDs."""
    return MerkleTree.from_block_cids(block_cids).root_cid


def _node(node: Message, what: str) -> bytes:
    value = pb.fields("ProofNode", node, what).get(1, b"")
    if len(value) != DIGEST_LEN:
        raise IntegrityError(f"invalid {what}: a node of {len(value)} bytes (expected {DIGEST_LEN})")
    return bytes(value)


@dataclass(frozen=True)
class MerkleProof:
    """The path from leaf `index` of a tree of `leaves_count` leaves to its root, bottom first."""

    index: int
    leaves_count: int
    path: tuple[bytes, ...]

    def reconstruct_root(self, leaf: bytes) -> bytes:
        """The root this proof leads to from `leaf` (reconstructRoot)."""
        width, j, h = self.leaves_count, self.index, leaf
        bottom = KEY_BOTTOM_LAYER
        for sibling in self.path:
            if j & 1:
                h = compress(sibling, h, bottom)
            elif j == width - 1:
                h = compress(h, sibling, bottom + 2)  # a lone last node, paired with zero
            else:
                h = compress(h, sibling, bottom)
            bottom = KEY_NONE
            j >>= 1
            width = (width + 1) >> 1
        return h

    def verify(self, block_cid: CID, tree_cid: CID) -> None:
        """Raise IntegrityError unless the block CID's leaf leads to the tree CID's root."""
        root = _check_root_cid(tree_cid)
        if len(self.path) != depth(self.leaves_count) or not 0 <= self.index < self.leaves_count:
            raise IntegrityError(f"proof for block {self.index} of {self.leaves_count} has the wrong shape",
                                 cid=str(tree_cid))
        if self.reconstruct_root(leaf_of(block_cid)) != root:
            raise IntegrityError(f"block {block_cid} is not block {self.index} of tree {tree_cid}",
                                 cid=str(block_cid), tree=str(tree_cid), index=self.index)

    def encode(self) -> bytes:
        """The CodexProof protobuf: mcodec, index, nleaves, then the path nodes."""
        return pb.encode("Proof", {"mcodec": SHA2_256, "index": self.index, "nleaves": self.leaves_count,
                                   "path": list(self.path)})

    @classmethod
    def decode(cls, data: bytes) -> MerkleProof:
        """Read an encoded proof, checking its hash, bounds and shape. IntegrityError if invalid."""
        what = "Logos Merkle proof"
        if len(data) > MAX_PROOF_BYTES:
            raise IntegrityError(f"invalid {what}: {len(data)} bytes is more than {MAX_PROOF_BYTES}")
        got = pb.fields("Proof", pb.parse("Proof", bytes(data), what), what)
        if got.get(1) != SHA2_256:
            raise IntegrityError(f"invalid {what}: hash code {got.get(1)} is not sha2-256 (0x12)")
        index, count = got.get(2, 0), got.get(3, 0)
        if not 1 <= count <= MAX_DATASET_BLOCKS or not 0 <= index < count:
            raise IntegrityError(f"invalid {what}: index {index} of {count} leaves")
        path = tuple(_node(node, what) for node in got.get(4, []))
        if len(path) != depth(count):
            raise IntegrityError(f"invalid {what}: {len(path)} nodes, a tree of {count} leaves needs {depth(count)}")
        return cls(index, count, path)
