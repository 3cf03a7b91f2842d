"""Several nodes on one bucket: per-node reference markers, deletion by the last holder, and a
dataset written through node A read by node B straight from the bucket (SeaweedFS)."""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING

import blake3
import obstore

from hoard.content.chunker import FixedChunker
from hoard.content.index import build_index, walk_index
from hoard.content.manifest import Manifest
from hoard.ids.cid import CID
from hoard.store import HoldTiming, S3BlobStore
from hoard.store._s3 import LEASES, block_key, parse_s3_url
from hoard.store.blob_testing import block

if TYPE_CHECKING:
    from hoard.store.s3_testing import SeaweedServer as SeaweedS3

FAST = HoldTiming(window=0.5, delete_timeout=1.0, lease_ttl=30.0, margin=0.2)


def two_nodes(s3: SeaweedS3, timing: HoldTiming = FAST) -> tuple[S3BlobStore, S3BlobStore, str]:
    url = s3.url()
    settings = parse_s3_url(url)
    return (S3BlobStore(settings, holder="node-a", timing=timing),
            S3BlobStore(settings, holder="node-b", timing=timing), settings.prefix)


def write_dataset(store: S3BlobStore, content: bytes, block_size: int = 4096) -> tuple[CID, list[CID]]:
    """What an upload does on a shared store: hold, write blocks, index and manifest, confirm."""
    chunker = FixedChunker(block_size)
    blocks = [(CID.of(b), b) for b in [*chunker.feed(content), *chunker.flush()]]
    root, nodes = build_index([(cid, len(data)) for cid, data in blocks])
    manifest = Manifest(len(content), block_size, len(blocks), "fixed", blake3.blake3(content).digest(), root,
                        filename="data.bin")
    manifest_cid, manifest_bytes = manifest.encode()
    every = [*blocks, *nodes, (manifest_cid, manifest_bytes)]
    store.hold([cid for cid, _ in every])
    store.put_many(every)
    assert store.confirm([cid for cid, _ in every]) == []
    return manifest_cid, [cid for cid, _ in every]


def read_dataset(store: S3BlobStore, manifest_cid: CID) -> bytes:
    manifest = Manifest.decode(store.get(manifest_cid) or b"", manifest_cid)
    cids = [cid for cid, _ in walk_index(manifest.index, manifest.block_count, manifest.dataset_size, store.get)]
    return b"".join(data or b"" for data in store.get_many(cids))


def test_a_dataset_written_through_a_reads_through_b(s3: SeaweedS3) -> None:
    a, b, _ = two_nodes(s3)
    content = bytes(range(256)) * 200 + b"tail"
    manifest_cid, _ = write_dataset(a, content)
    assert read_dataset(b, manifest_cid) == content  # no exchange between the two nodes
    a.close()
    b.close()


def test_release_by_one_holder_keeps_blocks_another_holds(s3: SeaweedS3) -> None:
    a, b, _ = two_nodes(s3)
    content = b"shared dataset " * 1000
    manifest_cid, cids = write_dataset(a, content)
    b.hold(cids)  # node B keeps the same dataset
    assert b.confirm(cids) == []
    assert a.release(cids) == []
    assert read_dataset(b, manifest_cid) == content
    assert sorted(b.release(cids)) == sorted(cids)  # the last holder deletes
    assert b.has_many(cids) == [False] * len(cids)
    assert list(a.iter_cids()) == []
    a.close()
    b.close()


def test_a_delete_keeps_blocks_shared_with_another_holders_dataset(s3: SeaweedS3) -> None:
    a, b, _ = two_nodes(s3)
    common = b"C" * 4096
    _, a_cids = write_dataset(a, common + b"only in a" * 100)
    _, b_cids = write_dataset(b, common + b"only in b" * 100)
    shared = set(a_cids) & set(b_cids)
    assert CID.of(common) in shared
    deleted = set(a.release(a_cids))
    assert deleted == set(a_cids) - shared
    assert all(b.has_many(b_cids))
    b.close()
    a.close()


def test_holders_are_listed_per_block(s3: SeaweedS3) -> None:
    a, b, _ = two_nodes(s3)
    cid, data = block(b"two holders")
    a.hold([cid])
    b.hold([cid])
    a.put(cid, data)
    assert sorted(a.holders(cid)) == ["node-a", "node-b"]
    assert list(a.held()) == [cid] and list(b.held()) == [cid]
    a.close()
    b.close()


def test_simultaneous_releases_delete_once_and_both_succeed(s3: SeaweedS3) -> None:
    # a window wide enough for a loaded CI machine: a LIST->DELETE slower than the window
    # rightly leaves the block for sweep, which this test is not about
    a, b, _ = two_nodes(s3, HoldTiming(window=10.0, delete_timeout=10.0, lease_ttl=60.0, margin=0.2))
    items = [block(b"race %d" % i) for i in range(30)]
    cids = [c for c, _ in items]
    for node in (a, b):
        node.hold(cids)
    a.put_many(items)
    results: dict[str, list[CID]] = {}
    threads = [threading.Thread(target=lambda n=node: results.__setitem__(n.holder, n.release(cids)))
               for node in (a, b)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert set(results) == {"node-a", "node-b"}
    assert a.has_many(cids) == [False] * len(cids)
    assert set(results["node-a"]) | set(results["node-b"]) <= set(cids)
    a.close()
    b.close()


def test_confirm_waits_out_a_live_deleter_and_reports_its_deletions(s3: SeaweedS3) -> None:
    """The interleaving the protocol guards against: node A listed a block's markers before
    node B's marker landed, and its DELETE arrives after B wrote the block."""
    a, b, prefix = two_nodes(s3)
    cid, data = block(b"deleted behind b's back")
    raw = s3.client(prefix)
    obstore.put(raw, f"{LEASES}/node-a", b"{}")  # A is deleting
    b.hold([cid])
    b.put(cid, data)
    obstore.delete(raw, f"blocks/{block_key(cid)}")  # A's late DELETE
    started = time.monotonic()
    assert b.confirm([cid]) == [cid]
    assert time.monotonic() - started >= FAST.settle - 0.5  # waited out A's window
    obstore.delete(raw, f"{LEASES}/node-a")
    b.put(cid, data)  # the caller re-writes what confirm reported
    assert b.confirm([cid]) == []
    a.close()
    b.close()


def test_confirm_without_deleters_does_not_wait(s3: SeaweedS3) -> None:
    slow = HoldTiming(window=30.0, delete_timeout=30.0, lease_ttl=60.0)
    a, b, _ = two_nodes(s3, slow)
    cid, data = block(b"quiet bucket")
    b.hold([cid])
    b.put(cid, data)
    started = time.monotonic()
    assert b.confirm([cid]) == []
    assert time.monotonic() - started < slow.settle
    a.close()
    b.close()


def test_confirm_ignores_the_lease_of_a_crashed_deleter(s3: SeaweedS3) -> None:
    url = s3.url()
    obstore.put(s3.client(parse_s3_url(url).prefix), f"{LEASES}/node-a", b"{}")  # never removed
    b = S3BlobStore(parse_s3_url(url), holder="node-b",
                    timing=HoldTiming(window=30.0, delete_timeout=30.0, lease_ttl=0.0))  # every lease expired
    cid, data = block(b"stale lease")
    b.hold([cid])
    b.put(cid, data)
    started = time.monotonic()
    assert b.confirm([cid]) == []
    assert time.monotonic() - started < b.timing.settle
    b.close()


def test_sweep_removes_unheld_blocks_only(s3: SeaweedS3) -> None:
    a, b, _ = two_nodes(s3)
    kept, kept_data = block(b"held by b")
    orphan, orphan_data = block(b"nobody holds me")
    b.hold([kept])
    a.put_many([(kept, kept_data), (orphan, orphan_data)])
    assert a.sweep(min_age=0) == [orphan]
    assert a.has(kept) and not a.has(orphan)
    assert a.sweep(min_age=0) == []
    a.close()
    b.close()


def test_hold_and_release_need_a_holder_id(s3: SeaweedS3) -> None:
    import pytest

    from hoard.errors import StateError

    anonymous = S3BlobStore(parse_s3_url(s3.url()))
    cid, _ = block(b"whose?")
    with pytest.raises(StateError):
        anonymous.hold([cid])
    with pytest.raises(StateError):
        anonymous.release([cid])
    anonymous.close()
