"""The block index of a hoard dataset: built (`build_index`), walked and checked, in one place.

A block index (see `manifest.py`) is a tree of dag-cbor nodes: leaves list `(block CID, size)`,
interior nodes list `(child CID, bytes, count)`. The same subtree may sit at many positions
(a file of zeros repeats one leaf thousands of times), so a tree of a few kilobytes can
describe billions of positions. Everything here therefore works on the **unique** nodes:

* `IndexTree` loads each distinct node once (from the store or from peers, level by level
  through `frontier()` / `add()`), checks it against what its parent declared (entry count,
  byte count, fan-out, depth) and answers `unique_blocks()` without expanding positions;
* `IndexTree.entry(i)` and `IndexTree.blocks_view()` reach position `i` by descending one path
  (O(depth · log fan-out)), so a reader streams a dataset of any declared size in bounded memory;
* `walk_index` and `locate` read a stored index lazily, holding one path of nodes (a local
  reader of a dataset whose distinct nodes are too many to hold), with the same checks.

Work and memory are proportional to the distinct nodes a peer actually sent, never to the
positions they claim; hoard.limits bounds the rest (fan-out, depth, blocks per dataset).
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, overload

from hoard.content import dag
from hoard.errors import IntegrityError, NotFoundError
from hoard.ids.cid import CID
from hoard.limits import MAX_DATASET_BLOCKS, MAX_INDEX_DEPTH, MAX_INDEX_FANOUT

__all__ = ["FANOUT", "IndexNode", "IndexTree", "build_index", "decode_index_node", "load_index", "locate",
           "walk_index"]

FANOUT = 1024  # entries per node that `build_index` writes
GetMany = Callable[[Sequence[CID]], "list[bytes | None]"]
Getter = Callable[[CID], "bytes | None"]


def build_index(entries: list[tuple[CID, int]]) -> tuple[CID, list[tuple[CID, bytes]]]:
    """Build the index tree over (block CID, size) entries; returns (root, all node blocks)."""
    nodes: list[tuple[CID, bytes]] = []
    level: list[tuple[CID, int, int]] = []  # (node cid, bytes, count)
    for start in range(0, max(len(entries), 1), FANOUT):
        part = entries[start:start + FANOUT]
        cid, data = dag.encode_node({"blocks": [[c, s] for c, s in part]})
        nodes.append((cid, data))
        level.append((cid, sum(s for _, s in part), len(part)))
    while len(level) > 1:
        upper: list[tuple[CID, int, int]] = []
        for start in range(0, len(level), FANOUT):
            group = level[start:start + FANOUT]
            cid, data = dag.encode_node({"children": [[c, b, n] for c, b, n in group]})
            nodes.append((cid, data))
            upper.append((cid, sum(b for _, b, _ in group), sum(n for _, _, n in group)))
        level = upper
    return level[0][0], nodes


@dataclass(frozen=True)
class IndexNode:
    """One decoded, type-checked index node.

    `entries` holds `(cid, bytes, count)` for every entry; a leaf's entries are its blocks
    (count 1 each). `starts` and `offsets` are the running position and byte offset of each
    entry, for descending by position or by byte offset with a binary search.
    """

    cid: CID
    leaf: bool
    entries: tuple[tuple[CID, int, int], ...]
    starts: tuple[int, ...]
    offsets: tuple[int, ...]

    @property
    def count(self) -> int:
        return sum(n for _, _, n in self.entries)

    @property
    def nbytes(self) -> int:
        return sum(b for _, b, _ in self.entries)


def _int(value: Any, what: str, cid: CID, *, low: int) -> int:
    if type(value) is not int or value < low:
        raise IntegrityError(f"block-index node {cid}: {what} must be an integer >= {low}, not {value!r}",
                             cid=str(cid))
    return value


def decode_index_node(data: bytes, cid: CID) -> IndexNode:
    """Decode and type-check one index node; raises IntegrityError for anything malformed."""
    node = dag.decode(data, f"block-index node {cid}")
    if not isinstance(node, dict) or len(node) != 1 or not ({"blocks", "children"} >= node.keys()):
        raise IntegrityError(f"{cid} is not a block-index node", cid=str(cid))
    leaf = "blocks" in node
    raw = node["blocks"] if leaf else node["children"]
    if not isinstance(raw, list) or len(raw) > MAX_INDEX_FANOUT or (not leaf and not raw):
        raise IntegrityError(f"block-index node {cid}: {len(raw) if isinstance(raw, list) else 'no'} entries "
                             f"(1..{MAX_INDEX_FANOUT} allowed)", cid=str(cid))
    entries: list[tuple[CID, int, int]] = []
    for item in raw:
        if not isinstance(item, list) or len(item) != (2 if leaf else 3) or not isinstance(item[0], CID):
            raise IntegrityError(f"block-index node {cid}: malformed entry {item!r:.80}", cid=str(cid))
        if leaf:
            entries.append((item[0], _int(item[1], "a block size", cid, low=0), 1))
        else:
            entries.append((item[0], _int(item[1], "a byte count", cid, low=0),
                            _int(item[2], "a block count", cid, low=1)))
    starts, offsets = [0], [0]
    for _, nbytes, count in entries:
        starts.append(starts[-1] + count)
        offsets.append(offsets[-1] + nbytes)
    return IndexNode(cid, leaf, tuple(entries), tuple(starts), tuple(offsets))


@dataclass
class IndexTree:
    """The distinct nodes of one dataset's block index, each checked against its parent.

    Build it with the manifest's root, block count and size; feed it nodes with `add()` for
    every CID `frontier()` names (or use `load_index`). A node whose CID appears under several
    parents must be declared identically by each (same count and bytes), or it is a lie.
    """

    root: CID
    count: int
    nbytes: int
    nodes: dict[CID, IndexNode] = field(default_factory=dict)
    _declared: dict[CID, tuple[int, int, int]] = field(default_factory=dict)  # cid -> (count, bytes, depth)

    def __post_init__(self) -> None:
        if not 0 <= self.count <= MAX_DATASET_BLOCKS:
            raise IntegrityError(f"a dataset of {self.count} blocks is outside 0..{MAX_DATASET_BLOCKS}")
        self._declared[self.root] = (self.count, self.nbytes, 0)

    # -- loading ---------------------------------------------------------------------
    def frontier(self) -> list[CID]:
        """Declared nodes not loaded yet (load these next)."""
        return [cid for cid in self._declared if cid not in self.nodes]

    @property
    def complete(self) -> bool:
        return len(self.nodes) == len(self._declared)

    def add(self, cid: CID, data: bytes) -> IndexNode:
        """Check a verified node's bytes against its declaration and learn its children."""
        declared = self._declared.get(cid)
        if declared is None:
            raise IntegrityError(f"{cid} is not a node of this block index", cid=str(cid))
        if cid in self.nodes:
            return self.nodes[cid]
        count, nbytes, depth = declared
        node = decode_index_node(data, cid)
        if node.leaf and count == 0 and cid == self.root and not node.entries:
            pass  # the empty dataset: one empty leaf
        elif node.count != count or node.nbytes != nbytes:
            raise IntegrityError(
                f"block-index node {cid} holds {node.count} blocks / {node.nbytes} bytes; "
                f"its parent says {count} / {nbytes}", cid=str(cid))
        if not node.leaf:
            if depth + 1 > MAX_INDEX_DEPTH:
                raise IntegrityError(f"block index deeper than {MAX_INDEX_DEPTH} levels at {cid}", cid=str(cid))
            for child, child_bytes, child_count in node.entries:
                want = (child_count, child_bytes)
                seen = self._declared.get(child)
                if seen is None:
                    self._declared[child] = (child_count, child_bytes, depth + 1)
                elif seen[:2] != want:
                    raise IntegrityError(f"block-index node {child} is declared as {want} and as {seen[:2]}",
                                         cid=str(child))
        self.nodes[cid] = node
        return node

    def load_local(self, get_many: GetMany) -> None:
        """Load every node from a store; raises NotFoundError for a missing one."""
        while frontier := self.frontier():
            for cid, data in zip(frontier, get_many(frontier)):
                if data is None:
                    raise NotFoundError(f"block-index node {cid} not found", cid=str(cid))
                self.add(cid, data)

    def load_available(self, get_many: GetMany) -> list[CID]:
        """Load what a store holds of the tree; returns the nodes it lacks (for releasing a
        partial dataset). Malformed nodes count as lacking."""
        lacking: list[CID] = []
        while frontier := [c for c in self.frontier() if c not in lacking]:
            for cid, data in zip(frontier, get_many(frontier)):
                try:
                    if data is None:
                        raise NotFoundError(f"block-index node {cid} not found", cid=str(cid))
                    self.add(cid, data)
                except (NotFoundError, IntegrityError):
                    lacking.append(cid)
        return lacking

    def loaded_blocks(self) -> dict[CID, int]:
        """The distinct data blocks named by the leaves loaded so far, with their sizes."""
        out: dict[CID, int] = {}
        for node in self.nodes.values():
            if node.leaf:
                for cid, size, _ in node.entries:
                    out.setdefault(cid, size)
        return out

    # -- reading ---------------------------------------------------------------------
    def node_cids(self) -> list[CID]:
        """Every distinct index node, root first."""
        return list(self._declared)

    def unique_blocks(self) -> dict[CID, int]:
        """Every distinct data block with its size, in order of first appearance."""
        self._require_complete()
        out: dict[CID, int] = {}
        for node in self._dfs_unique():
            if node.leaf:
                for cid, size, _ in node.entries:
                    out.setdefault(cid, size)
        return out

    def select(self, lo: int, hi: int) -> tuple[list[CID], dict[CID, int]]:
        """The index nodes a block range `[lo, hi)` reaches (level by level, each once) and the
        distinct data blocks in it (in position order, each once).

        A node wholly inside the range is expanded once however often it repeats; only the
        nodes straddling an end of the range (two per level at most) are walked by position.
        """
        self._require_complete()
        nodes: dict[CID, None] = {}
        blocks: dict[CID, int] = {}
        whole: set[CID] = set()
        level = [(self.root, 0)]
        while level:
            upper: list[tuple[CID, int]] = []
            for cid, start in level:
                count = self._declared[cid][0]
                inside = count == 0 or (lo <= start and start + count <= hi)
                if not inside and (start + count <= lo or start >= hi):
                    continue
                if inside:
                    if cid in whole:
                        continue
                    whole.add(cid)
                nodes.setdefault(cid)
                node = self.nodes[cid]
                for i, (child, size, child_count) in enumerate(node.entries):
                    position = start + node.starts[i]
                    if node.leaf:
                        if inside or lo <= position < hi:
                            blocks.setdefault(child, size)
                    elif inside or (position < hi and position + child_count > lo):
                        upper.append((child, position))
            level = upper
        return list(nodes), blocks

    def entry(self, position: int) -> tuple[CID, int]:
        """(block CID, size) at block number `position`, descending one path."""
        if not 0 <= position < self.count:
            raise IndexError(position)
        node = self.nodes[self.root]
        while True:
            i = bisect.bisect_right(node.starts, position) - 1
            cid, size, _ = node.entries[i]
            if node.leaf:
                return cid, size
            position -= node.starts[i]
            node = self.nodes[cid]

    def locate(self, offset: int) -> tuple[int, int]:
        """(block number, offset inside it) of byte `offset`; (count, 0) at or past the end."""
        if offset >= self.nbytes:
            return self.count, 0
        node, block_no = self.nodes[self.root], 0
        while True:
            i = bisect.bisect_right(node.offsets, offset) - 1
            offset -= node.offsets[i]
            block_no += node.starts[i]
            if node.leaf:
                return block_no, offset
            node = self.nodes[node.entries[i][0]]

    def iter_entries(self, start: int = 0) -> Iterator[tuple[CID, int]]:
        """(block CID, size) from block number `start` on, in order (lazy)."""
        self._require_complete()
        for position in range(start, self.count):
            yield self.entry(position)

    def blocks_view(self) -> Sequence[CID]:
        """The dataset's block CIDs by position, as a lazy sequence (nothing is expanded)."""
        self._require_complete()
        return _BlocksView(self)

    def _dfs_unique(self) -> Iterator[IndexNode]:
        seen: set[CID] = set()
        stack = [self.root]
        while stack:
            cid = stack.pop()
            if cid in seen:
                continue
            seen.add(cid)
            node = self.nodes[cid]
            yield node
            if not node.leaf:
                stack.extend(c for c, _, _ in reversed(node.entries))

    def _require_complete(self) -> None:
        if not self.complete:
            missing = self.frontier()[0]
            raise NotFoundError(f"block-index node {missing} not loaded", cid=str(missing))


class _BlocksView(Sequence[CID]):
    def __init__(self, tree: IndexTree) -> None:
        self._tree = tree

    def __len__(self) -> int:
        return self._tree.count

    @overload
    def __getitem__(self, i: int) -> CID: ...
    @overload
    def __getitem__(self, i: slice) -> Sequence[CID]: ...

    def __getitem__(self, i: int | slice) -> CID | Sequence[CID]:
        if isinstance(i, slice):
            return [self._tree.entry(p)[0] for p in range(*i.indices(len(self)))]
        if i < 0:
            i += len(self)
        return self._tree.entry(i)[0]


def load_index(root: CID, count: int, nbytes: int, get_many: GetMany) -> IndexTree:
    """The whole block index of a dataset held in a local store."""
    tree = IndexTree(root, count, nbytes)
    tree.load_local(get_many)
    return tree


# -- lazy walks: one path of nodes in memory ------------------------------------------------
def _load(get: Getter, cid: CID, count: int, nbytes: int, depth: int) -> IndexNode:
    """Read and check one node against what its parent (or the manifest) declared."""
    if depth > MAX_INDEX_DEPTH:
        raise IntegrityError(f"block index deeper than {MAX_INDEX_DEPTH} levels at {cid}", cid=str(cid))
    data = get(cid)
    if data is None:
        raise NotFoundError(f"block-index node {cid} not found", cid=str(cid))
    node = decode_index_node(bytes(data), cid)
    if not (depth == 0 and count == 0 and node.leaf and not node.entries) \
            and (node.count != count or node.nbytes != nbytes):
        raise IntegrityError(f"block-index node {cid} holds {node.count} blocks / {node.nbytes} bytes; "
                             f"its parent says {count} / {nbytes}", cid=str(cid))
    return node


def walk_index(root: CID, count: int, nbytes: int, get: Getter, start: int = 0) -> Iterator[tuple[CID, int]]:
    """(block CID, size) of a manifest's index (`root`, `count` blocks, `nbytes`) from block
    number `start` on, in order, reading nodes with `get` as the walk reaches them."""
    if not 0 <= count <= MAX_DATASET_BLOCKS:
        raise IntegrityError(f"a dataset of {count} blocks is outside 0..{MAX_DATASET_BLOCKS}")

    def walk(cid: CID, n: int, b: int, depth: int, skip: int) -> Iterator[tuple[CID, int]]:
        node = _load(get, cid, n, b, depth)
        if node.leaf:
            yield from ((block, size) for block, size, _ in node.entries[skip:])
            return
        i = bisect.bisect_right(node.starts, skip) - 1
        skip -= node.starts[i]
        for child, child_bytes, child_count in node.entries[i:]:
            yield from walk(child, child_count, child_bytes, depth + 1, skip)
            skip = 0

    if start < count:
        yield from walk(root, count, nbytes, 0, max(start, 0))


def locate(root: CID, count: int, nbytes: int, offset: int, get: Getter) -> tuple[int, int]:
    """(block number, offset inside it) of byte `offset` in a manifest's index, descending one
    path; (count, 0) at or past the end."""
    if offset >= nbytes:
        return count, 0
    cid, n, b, depth, block_no = root, count, nbytes, 0, 0
    while True:
        node = _load(get, cid, n, b, depth)
        i = bisect.bisect_right(node.offsets, offset) - 1
        offset -= node.offsets[i]
        block_no += node.starts[i]
        if node.leaf:
            return block_no, offset
        cid, b, n = node.entries[i]
        depth += 1
