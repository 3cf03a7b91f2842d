"""Which blocks a transfer moves, as the sender walks them and as the recipient expects them.

A transfer's base CID is either a dataset's manifest or any other block:

* a **manifest** (a dag-cbor block that decodes as one): the manifest, then the block-index
  nodes level by level, then the data blocks the selector chooses, in block-index order;
* **any other block**: that block alone (the selector does not apply).

Each CID is moved once per channel even if the dataset repeats it. This is the traversal a
graphsync selector would make: the structure above the chosen blocks travels with them, so
the recipient can check every block against what it already holds before it accepts it.

`SendPlan` is the sender's list; `ReceivePlan` is the recipient's growing set of expected
CIDs: a block is accepted only if an earlier block (or the base CID itself) names it, with the
size the index gives. Both read the store through a plain `get_many(cids)` callable and do
blocking I/O: run them in a thread.
"""

from __future__ import annotations

from collections.abc import Callable, Container, Iterable, Iterator, Sequence
from dataclasses import dataclass, field

from hoard.content.index import IndexNode, decode_index_node, load_index
from hoard.content.manifest import Manifest, is_dag
from hoard.errors import HoardError, IntegrityError, NotFoundError
from hoard.ids.cid import CID
from hoard.limits import MAX_DATASET_BLOCKS, MAX_INDEX_DEPTH
from hoard.transfer.selector import Selector
from hoard.transfer.wire import TransferProtocolError

__all__ = ["GetMany", "PlannedBlock", "ReceivePlan", "SendPlan", "build_send_plan", "read_manifest"]

GetMany = Callable[[Sequence[CID]], "list[bytes | None]"]


def read_manifest(cid: CID, data: bytes) -> Manifest | None:
    """The manifest `data` holds, or None when the block is not a hoard manifest."""
    if not is_dag(cid):
        return None
    try:
        return Manifest.decode(data, cid)
    except HoardError:
        return None


def _bounds(selector: Selector) -> tuple[int, int]:
    return (0, 1 << 63) if selector is None else (selector.start, selector.end)


@dataclass
class PlannedBlock:
    """One block to send: `data` is filled for the manifest and index nodes, loaded later for data."""

    cid: CID
    size: int
    data: bytes | None = None


@dataclass
class SendPlan:
    """The blocks to send, in order, each CID once; `total_size` is the sum of their sizes."""

    blocks: list[PlannedBlock]
    total_size: int
    manifest: Manifest | None = None

    def batches(self, skip: frozenset[CID] | set[CID], max_bytes: int = 4 << 20,
                max_blocks: int = 256) -> Iterator[list[PlannedBlock]]:
        """The blocks not in `skip`, in groups of about `max_bytes` (for batched store reads)."""
        batch: list[PlannedBlock] = []
        size = 0
        for block in self.blocks:
            if block.cid in skip:
                continue
            batch.append(block)
            size += block.size
            if size >= max_bytes or len(batch) >= max_blocks:
                yield batch
                batch, size = [], 0
        if batch:
            yield batch


def build_send_plan(get_many: GetMany, base: CID, selector: Selector) -> SendPlan:
    """The sender's plan for `base` and `selector`, read from the local store.

    Raises NotFoundError when the base block or an index node is missing (data blocks are
    read later, batch by batch). The work is bounded by the distinct index nodes, whatever
    number of positions the index describes.
    """
    root = get_many([base])[0]
    if root is None:
        raise NotFoundError(f"{base} not found in local store", cid=str(base))
    blocks = [PlannedBlock(base, len(root), root)]
    manifest = read_manifest(base, root)
    if manifest is not None:
        tree = load_index(manifest.index, manifest.block_count, manifest.dataset_size, get_many)
        node_cids, data_blocks = tree.select(*_bounds(selector))
        blocks.extend(PlannedBlock(cid, len(data), data)
                      for cid, data in zip(node_cids, get_many(node_cids)) if data is not None and cid != base)
        blocks.extend(PlannedBlock(cid, size) for cid, size in data_blocks.items() if cid != base)
    return SendPlan(blocks, sum(b.size for b in blocks), manifest)


@dataclass
class ReceivePlan:
    """What the recipient expects: starts with the base CID and grows as blocks name others.

    An index node the selection reaches is either wholly inside it (`_full`: every block under
    it is expected, whatever positions it sits at) or straddles an end of the range
    (`_partial`, with the positions it starts at; at most two per level). So the work for
    each node received is bounded by its fan-out, however often a hostile index repeats it.
    Every node is checked against the block and byte counts its parent declared.
    """

    base: CID
    selector: Selector
    expected: dict[CID, int | None] = field(default_factory=dict)  # cid -> size (None: unknown)
    manifest: Manifest | None = None
    _declared: dict[CID, tuple[int, int, int]] = field(default_factory=dict)  # node -> (count, bytes, depth)
    _nodes: dict[CID, IndexNode] = field(default_factory=dict)
    _full: set[CID] = field(default_factory=set)
    _partial: dict[CID, set[int]] = field(default_factory=dict)
    _expanded_full: set[CID] = field(default_factory=set)
    _expanded_partial: set[tuple[CID, int]] = field(default_factory=set)
    _root_done: bool = False

    def __post_init__(self) -> None:
        self.expected.setdefault(self.base, None)

    @property
    def is_dataset(self) -> bool:
        return self.manifest is not None

    def is_structure(self, cid: CID) -> bool:
        """Whether `cid` is the base or an index node: a block the plan grows from."""
        return cid == self.base or cid in self._full or cid in self._partial

    def accept(self, cid: CID, data: bytes | memoryview) -> None:
        """Check a verified block against the plan and expand what it names.

        Raises TransferProtocolError for a block nobody asked for, of the wrong size, or an
        index node that contradicts its parent.
        """
        if cid not in self.expected:
            raise TransferProtocolError(f"block {cid} is not part of this transfer")
        size = self.expected[cid]
        if size is not None and size != len(data):
            raise TransferProtocolError(f"block {cid} is {len(data)} bytes; the index says {size}")
        try:
            self._expand(cid, data)
        except IntegrityError as exc:
            raise TransferProtocolError(str(exc)) from exc

    def _expand(self, cid: CID, data: bytes | memoryview) -> None:
        if cid == self.base and not self._root_done:
            self._root_done = True
            self.manifest = read_manifest(cid, bytes(data))
            if self.manifest is not None:
                m = self.manifest
                if not 0 <= m.block_count <= MAX_DATASET_BLOCKS:
                    raise IntegrityError(f"a dataset of {m.block_count} blocks is outside 0..{MAX_DATASET_BLOCKS}")
                self._declare(m.index, m.block_count, m.dataset_size, 0)
                self._reach(m.index, 0)
        if cid in self._declared and cid not in self._nodes:
            count, nbytes, _depth = self._declared[cid]
            node = decode_index_node(bytes(data), cid)
            if (node.count, node.nbytes) != (count, nbytes) and not (count == 0 and not node.entries):
                raise IntegrityError(f"block-index node {cid} holds {node.count} blocks / {node.nbytes} bytes; "
                                     f"its parent says {count} / {nbytes}")
            self._nodes[cid] = node
            if cid in self._full:
                self._expand_full(cid)
            for start in sorted(self._partial.get(cid, ())):
                self._expand_partial(cid, start)

    def _declare(self, cid: CID, count: int, nbytes: int, depth: int) -> None:
        seen = self._declared.get(cid)
        if seen is None:
            if depth > MAX_INDEX_DEPTH:
                raise IntegrityError(f"block index deeper than {MAX_INDEX_DEPTH} levels at {cid}")
            self._declared[cid] = (count, nbytes, depth)
        elif seen[:2] != (count, nbytes):
            raise IntegrityError(f"block-index node {cid} is declared as {(count, nbytes)} and as {seen[:2]}")

    def _reach(self, cid: CID, start: int) -> None:
        """The selection reaches the node `cid` sitting at block position `start`."""
        count = self._declared[cid][0]
        lo, hi = _bounds(self.selector)
        inside = count == 0 or (lo <= start and start + count <= hi)
        if not inside and (start + count <= lo or start >= hi):
            return
        if inside:
            if cid not in self._full:
                self._full.add(cid)
                self.expected.setdefault(cid, None)
                if cid in self._nodes:
                    self._expand_full(cid)
            return
        starts = self._partial.setdefault(cid, set())
        if start not in starts:
            if len(starts) >= 2:  # a node straddles each end of a range at most once
                raise IntegrityError(f"block-index node {cid} straddles the selection at {len(starts) + 1} places")
            starts.add(start)
            self.expected.setdefault(cid, None)
            if cid in self._nodes:
                self._expand_partial(cid, start)

    def _expand_full(self, cid: CID) -> None:
        if cid in self._expanded_full:
            return
        self._expanded_full.add(cid)
        node = self._nodes[cid]
        depth = self._declared[cid][2]
        for child, nbytes, count in node.entries:
            if node.leaf:
                self.expected.setdefault(child, nbytes)
            else:
                self._declare(child, count, nbytes, depth + 1)
                if child not in self._full:
                    self._full.add(child)
                    self.expected.setdefault(child, None)
                    if child in self._nodes:
                        self._expand_full(child)

    def _expand_partial(self, cid: CID, start: int) -> None:
        if (cid, start) in self._expanded_partial:
            return
        self._expanded_partial.add((cid, start))
        node = self._nodes[cid]
        depth = self._declared[cid][2]
        lo, hi = _bounds(self.selector)
        for i, (child, nbytes, count) in enumerate(node.entries):
            position = start + node.starts[i]
            if node.leaf:
                if lo <= position < hi:
                    self.expected.setdefault(child, nbytes)
            else:
                self._declare(child, count, nbytes, depth + 1)
                self._reach(child, position)

    def expand_local(self, get_many: GetMany) -> None:
        """Expand the structure the local store already holds (after a restart, or data we had)."""
        tried: set[CID] = set()
        while True:
            frontier = [c for c in self._pending_structure() if c not in tried]
            if not frontier:
                return
            tried.update(frontier)
            for cid, data in zip(frontier, get_many(frontier)):
                if data is not None:
                    try:
                        self._expand(cid, data)
                    except HoardError:
                        continue  # not what the plan says: the sender will send the right one

    def _pending_structure(self) -> Iterable[CID]:
        if not self._root_done:
            yield self.base
        for cid in [*self._full, *self._partial]:
            if cid not in self._nodes:
                yield cid

    def missing(self, has_many: Callable[[Sequence[CID]], list[bool]], stored: Container[CID] = ()) -> list[CID]:
        """Expected blocks the local store does not hold (empty when the transfer is whole).

        `stored`: blocks known to be stored already (those this channel received), not looked up.
        """
        wanted = [cid for cid in self.expected if cid not in stored]
        return [cid for cid, have in zip(wanted, has_many(wanted)) if not have] if wanted else []
