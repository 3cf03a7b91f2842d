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
from typing import Any

from hoard.content.manifest import Manifest, decode_index_node, is_dag
from hoard.errors import HoardError, NotFoundError
from hoard.ids.cid import CID
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


def _selected(selector: Selector, index: int) -> bool:
    return selector is None or index in selector


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


def _overlaps(selector: Selector, start: int, count: int) -> bool:
    return selector is None or (start < selector.end and start + count > selector.start)


def _index_levels(root: CID, selector: Selector,
                  get_many: GetMany) -> Iterator[list[tuple[CID, bytes, dict[str, Any], int]]]:
    """The index nodes the selection reaches, level by level: (cid, bytes, node, first position)."""
    level = [(root, 0)]
    while level:
        unique = list(dict.fromkeys(cid for cid, _ in level))
        found = dict(zip(unique, get_many(unique)))
        nodes = []
        upper: list[tuple[CID, int]] = []
        for cid, start in level:
            data = found[cid]
            if data is None:
                raise NotFoundError(f"block-index node {cid} not found", cid=str(cid))
            node = decode_index_node(data, cid)
            nodes.append((cid, data, node, start))
            position = start
            for child, _nbytes, count in node.get("children", ()):
                if _overlaps(selector, position, count):
                    upper.append((child, position))
                position += count
        yield nodes
        level = upper


def build_send_plan(get_many: GetMany, base: CID, selector: Selector) -> SendPlan:
    """The sender's plan for `base` and `selector`, read from the local store.

    Raises NotFoundError when the base block or an index node is missing (data blocks are
    read later, batch by batch).
    """
    root = get_many([base])[0]
    if root is None:
        raise NotFoundError(f"{base} not found in local store", cid=str(base))
    blocks = [PlannedBlock(base, len(root), root)]
    seen = {base}
    manifest = read_manifest(base, root)
    if manifest is not None:
        data_blocks: list[PlannedBlock] = []
        for nodes in _index_levels(manifest.index, selector, get_many):
            for cid, data, node, start in nodes:
                if cid not in seen:
                    seen.add(cid)
                    blocks.append(PlannedBlock(cid, len(data), data))
                for position, (block, size) in enumerate(node.get("blocks", ()), start):
                    if _selected(selector, position) and block not in seen:
                        seen.add(block)
                        data_blocks.append(PlannedBlock(block, size))
        blocks.extend(data_blocks)
    return SendPlan(blocks, sum(b.size for b in blocks), manifest)


@dataclass
class ReceivePlan:
    """What the recipient expects: starts with the base CID and grows as blocks name others.

    Index nodes are remembered with the block positions they start at (an identical subtree
    may sit at several positions), so a range selector picks exactly its blocks.
    """

    base: CID
    selector: Selector
    expected: dict[CID, int | None] = field(default_factory=dict)  # cid -> size (None: unknown)
    manifest: Manifest | None = None
    _structure: dict[CID, list[int]] = field(default_factory=dict)  # index node -> start positions
    _expanded: dict[CID, set[int]] = field(default_factory=dict)
    _index_data: dict[CID, bytes] = field(default_factory=dict)
    _root_done: bool = False

    def __post_init__(self) -> None:
        self.expected.setdefault(self.base, None)

    @property
    def is_dataset(self) -> bool:
        return self.manifest is not None

    def is_structure(self, cid: CID) -> bool:
        """Whether `cid` is the base or an index node: a block the plan grows from."""
        return cid == self.base or cid in self._structure

    def accept(self, cid: CID, data: bytes) -> None:
        """Check a verified block against the plan and expand what it names.

        Raises TransferProtocolError for a block nobody asked for or of the wrong size.
        """
        if cid not in self.expected:
            raise TransferProtocolError(f"block {cid} is not part of this transfer")
        size = self.expected[cid]
        if size is not None and size != len(data):
            raise TransferProtocolError(f"block {cid} is {len(data)} bytes; the index says {size}")
        self._expand(cid, data)

    def _expand(self, cid: CID, data: bytes) -> None:
        if cid == self.base and not self._root_done:
            self._root_done = True
            self.manifest = read_manifest(cid, data)
            if self.manifest is not None:
                self._add_index(self.manifest.index, 0)
        if cid in self._structure:
            self._index_data[cid] = data
            for start in self._structure[cid]:
                self._expand_index(cid, data, start)

    def _add_index(self, cid: CID, start: int) -> None:
        starts = self._structure.setdefault(cid, [])
        if start in starts:
            return
        starts.append(start)
        self.expected.setdefault(cid, None)
        data = self._index_data.get(cid)
        if data is not None:
            self._expand_index(cid, data, start)

    def _expand_index(self, cid: CID, data: bytes, start: int) -> None:
        done = self._expanded.setdefault(cid, set())
        if start in done:
            return
        done.add(start)
        node = decode_index_node(data, cid)
        position = start
        if "blocks" in node:
            for block, size in node["blocks"]:
                if _selected(self.selector, position):
                    self.expected.setdefault(block, size)
                position += 1
            return
        for child, _nbytes, count in node["children"]:
            if _overlaps(self.selector, position, count):
                self._add_index(child, position)
            position += count

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
        for cid in self._structure:
            if cid not in self._index_data:
                yield cid

    def missing(self, has_many: Callable[[Sequence[CID]], list[bool]], stored: Container[CID] = ()) -> list[CID]:
        """Expected blocks the local store does not hold (empty when the transfer is whole).

        `stored`: blocks known to be stored already (those this channel received), not looked up.
        """
        wanted = [cid for cid in self.expected if cid not in stored]
        return [cid for cid, have in zip(wanted, has_many(wanted)) if not have] if wanted else []
