"""The block index walker: checked node by node, bounded by the distinct nodes, never by positions.

The "index bomb" is a tiny index whose interior nodes repeat one child 1,024 times, so three
levels describe a billion positions. A reader must handle it in work proportional to the few
distinct nodes, and must refuse any node that contradicts the counts its parent declared.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hoard.content import dag
from hoard.content.index import IndexTree, build_index, decode_index_node, load_index, locate, walk_index
from hoard.content.manifest import Manifest
from hoard.errors import IntegrityError, NotFoundError
from hoard.ids.cid import CID, DAG_CBOR
from hoard.limits import MAX_DATASET_BLOCKS, MAX_INDEX_FANOUT
from hoard.transfer.plan import ReceivePlan, build_send_plan
from hoard.transfer.selector import BlockRange
from hoard.transfer.wire import TransferProtocolError


def _leaf(blocks: list[tuple[CID, int]]) -> tuple[CID, bytes]:
    return dag.encode_node({"blocks": [[c, s] for c, s in blocks]})


def _interior(children: list[tuple[CID, int, int]]) -> tuple[CID, bytes]:
    return dag.encode_node({"children": [[c, b, n] for c, b, n in children]})


def _bomb(levels: int, leaf_width: int = 64) -> tuple[Manifest, dict[CID, bytes], int]:
    """A well-formed index of one 10-byte block repeated leaf_width * FANOUT**(levels-1) times
    (64 Mi positions, the most a dataset may have, with the defaults)."""
    block = CID.of(b"0123456789")
    store: dict[CID, bytes] = {}
    cid, data = _leaf([(block, 10)] * leaf_width)
    store[cid] = data
    count, nbytes = leaf_width, 10 * leaf_width
    for _ in range(levels - 1):
        cid, data = _interior([(cid, nbytes, count)] * MAX_INDEX_FANOUT)
        store[cid] = data
        count, nbytes = count * MAX_INDEX_FANOUT, nbytes * MAX_INDEX_FANOUT
    store[block] = b"0123456789"
    manifest = Manifest(nbytes, 10, count, "fixed", b"\0" * 32, cid, "zeros")
    return manifest, store, count


def _get_many(store: dict[CID, bytes]):
    return lambda cids: [store.get(c) for c in cids]


def test_index_claiming_more_blocks_than_the_limit_is_refused():
    manifest, _store, count = _bomb(3, leaf_width=MAX_INDEX_FANOUT)  # a billion positions
    assert count > MAX_DATASET_BLOCKS
    with pytest.raises(IntegrityError, match="blocks is outside"):
        IndexTree(manifest.index, manifest.block_count, manifest.dataset_size)
    mcid, mbytes = manifest.encode()
    plan = ReceivePlan(mcid, None)
    plan.accept(mcid, mbytes)  # refused as a manifest: moved as a single block, nothing expanded
    assert not plan.is_dataset and list(plan.expected) == [mcid]


def test_index_bomb_is_walked_by_its_distinct_nodes():
    manifest, store, count = _bomb(3)  # 64 Mi positions in three nodes
    tree = load_index(manifest.index, manifest.block_count, manifest.dataset_size, _get_many(store))
    assert len(tree.node_cids()) == 3
    assert list(tree.unique_blocks()) == [CID.of(b"0123456789")]
    assert len(tree.blocks_view()) == count
    assert tree.entry(count - 1) == (CID.of(b"0123456789"), 10)
    nodes, blocks = tree.select(5, count - 5)
    assert len(nodes) <= 3 * 2 and list(blocks) == [CID.of(b"0123456789")]


@pytest.mark.timeout(20)
@pytest.mark.parametrize("selector", [None, BlockRange(3, 1 << 28), BlockRange(1 << 20, (1 << 20) + 7)])
def test_transfer_receive_plan_handles_an_index_bomb_in_bounded_work(selector):
    manifest, store, _count = _bomb(3)
    mcid, mbytes = manifest.encode()
    plan = ReceivePlan(mcid, selector)
    plan.accept(mcid, mbytes)
    accepted: set[CID] = set()
    while todo := [c for c in store if c in plan.expected and plan.is_structure(c) and c not in accepted]:
        for cid in todo:  # the sender sends the structure level by level
            plan.accept(cid, store[cid])
            accepted.add(cid)
    # the repeated child is expected once, never once per position
    assert len(plan.expected) <= 5
    assert CID.of(b"0123456789") in plan.expected


@pytest.mark.timeout(20)
def test_send_plan_of_an_index_bomb_lists_each_block_once():
    manifest, store, _ = _bomb(3)
    mcid, mbytes = manifest.encode()
    store[mcid] = mbytes
    plan = build_send_plan(_get_many(store), mcid, None)
    assert [b.cid for b in plan.blocks].count(CID.of(b"0123456789")) == 1
    assert len(plan.blocks) == 5


def test_a_node_contradicting_its_parents_count_is_refused():
    block = CID.of(b"x")
    leaf, leaf_bytes = _leaf([(block, 1)] * 3)
    root, root_bytes = _interior([(leaf, 3, 4)])  # says 4 blocks, the leaf holds 3
    tree = IndexTree(root, 4, 3)
    tree.add(root, root_bytes)
    with pytest.raises(IntegrityError, match="its parent says"):
        tree.add(leaf, leaf_bytes)


def test_a_node_declared_twice_with_different_counts_is_refused():
    leaf, _ = _leaf([(CID.of(b"x"), 1)])
    root, root_bytes = _interior([(leaf, 1, 1), (leaf, 2, 1)])
    tree = IndexTree(root, 2, 3)
    with pytest.raises(IntegrityError, match="declared as"):
        tree.add(root, root_bytes)


def test_receive_plan_refuses_a_lying_index_node():
    block = CID.of(b"x")
    leaf, leaf_bytes = _leaf([(block, 1)] * 3)
    root, root_bytes = _interior([(leaf, 3, 5)])
    manifest = Manifest(3, 1, 5, "fixed", b"\0" * 32, root)
    mcid, mbytes = manifest.encode()
    plan = ReceivePlan(mcid, None)
    plan.accept(mcid, mbytes)
    plan.accept(root, root_bytes)
    with pytest.raises(TransferProtocolError, match="its parent says"):
        plan.accept(leaf, leaf_bytes)


@pytest.mark.parametrize("node", [
    {"blocks": [[1, 2]]},
    {"blocks": [["x", 2]]},
    {"children": []},
    {"children": [[CID.of(b"a"), -1, 1]]},
    {"children": [[CID.of(b"a"), 1, 0]]},
    {"blocks": [], "children": []},
    {"blocks": [[CID.of(b"a"), 1.5]]},
    [1, 2, 3],
])
def test_malformed_index_nodes_are_integrity_errors(node):
    cid, data = dag.encode_node(node)
    with pytest.raises(IntegrityError):
        decode_index_node(data, cid)


def test_over_wide_index_node_is_refused():
    cid, data = _leaf([(CID.of(b"a"), 1)] * (MAX_INDEX_FANOUT + 1))
    with pytest.raises(IntegrityError, match="entries"):
        decode_index_node(data, cid)


def test_missing_node_is_not_found():
    leaf, _ = _leaf([(CID.of(b"x"), 1)])
    root, root_bytes = _interior([(leaf, 1, 1)])
    with pytest.raises(NotFoundError):
        load_index(root, 1, 1, _get_many({root: root_bytes}))


@settings(max_examples=60, deadline=None)
@given(sizes=st.lists(st.integers(0, 3), min_size=0, max_size=2500),
       lo=st.integers(0, 2600), span=st.integers(1, 2600))
def test_tree_answers_agree_with_a_plain_walk(sizes, lo, span):
    # blocks drawn from 4 contents, so leaves and subtrees repeat
    entries = [(CID.of(bytes([s]) * (s + 1)), s + 1) for s in sizes]
    store: dict[CID, bytes] = {}
    root, nodes = build_index(entries)
    store.update(nodes)
    tree = load_index(root, len(entries), sum(s for _, s in entries), _get_many(store))
    assert list(tree.iter_entries()) == entries
    assert list(tree.unique_blocks()) == list(dict.fromkeys(c for c, _ in entries))
    hi = lo + span
    _nodes, blocks = tree.select(lo, hi)
    assert list(blocks) == list(dict.fromkeys(c for c, _ in entries[lo:hi]))
    offset = sum(s for _, s in entries[: len(entries) // 2])
    if entries:
        block_no, inside = tree.locate(offset)
        assert sum(s for _, s in entries[:block_no]) + inside == offset
    # the transfer plans agree with the tree on the same selection
    manifest = Manifest(sum(s for _, s in entries), 4, len(entries), "fixed", b"\0" * 32, root)
    mcid, mbytes = manifest.encode()
    store[mcid] = mbytes
    selector = BlockRange(lo, hi)
    send = build_send_plan(_get_many(store), mcid, selector)
    receive = ReceivePlan(mcid, selector)
    for planned in send.blocks:
        assert planned.cid in receive.expected
        receive.accept(planned.cid, store.get(planned.cid) or bytes([0]) * planned.size)
    assert set(receive.expected) == {b.cid for b in send.blocks}
    assert DAG_CBOR == mcid.codec


def test_lazy_walks_check_each_node_against_its_parent():
    """walk_index and locate read one path at a time, with IndexTree's checks: a leaf that
    holds other counts than its parent declares is refused, not trusted."""
    entries = [(CID.of(i.to_bytes(4, "big")), 10) for i in range(2500)]
    root, nodes = build_index(entries)
    blocks = dict(nodes)
    assert list(walk_index(root, 2500, 25_000, blocks.get, start=1500)) == entries[1500:]
    assert locate(root, 2500, 25_000, 24_999, blocks.get) == (2499, 9)
    assert locate(root, 2500, 25_000, 25_000, blocks.get) == (2500, 0)
    with pytest.raises(IntegrityError, match="its parent says"):
        list(walk_index(root, 2500, 25_001, blocks.get))  # the manifest claims a byte more
    leaf_cid, _ = nodes[0]
    _, lying = _leaf(entries[:1023])  # one block short of what the root declares
    swapped = {**blocks, leaf_cid: lying}
    with pytest.raises(IntegrityError, match="its parent says"):
        list(walk_index(root, 2500, 25_000, swapped.get))
    with pytest.raises(NotFoundError):
        locate(root, 2500, 25_000, 5, {root: blocks[root]}.get)
