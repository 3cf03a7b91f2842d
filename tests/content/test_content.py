"""Datasets: chunking, manifests, the block index, refcounts, quota, pending recovery, expiry."""

import os

import pytest
from harness.stores import make_content

from hoard.content import CdcChunker, ContentStore, FixedChunker, LocalReader, Manifest, Upload, dag
from hoard.content.index import FANOUT, build_index, walk_index
from hoard.errors import IntegrityError, InvalidArgumentError, NotFoundError, QuotaExceededError
from hoard.ids import CID, DAG_CBOR
from hoard.store import MemoryBlockStore


@pytest.fixture
def content(store_kind: str) -> ContentStore:
    return make_content(store_kind, quota=1 << 30, block_ttl=60)


def upload(content, data, chunker=None, piece=100_000, **kw):
    up = Upload(content, chunker or FixedChunker(), **kw)
    for i in range(0, len(data), piece):
        up.write(data[i:i + piece])
    return up.finish()


def read_all(content, cid):
    return b"".join(bytes(p) for p in LocalReader(content, cid).pieces(1 << 20))


def test_fixed_chunker_splits_exactly_whatever_the_pieces():
    for piece in (1, 1000, 65536, 200_000):
        chunker = FixedChunker(65536)
        data = os.urandom(300_000)
        blocks = [b for i in range(0, len(data), piece) for b in chunker.feed(data[i:i + piece])] + chunker.flush()
        assert [len(b) for b in blocks] == [65536] * 4 + [300_000 - 4 * 65536]
        assert b"".join(blocks) == data


def test_cdc_chunker_is_independent_of_piece_boundaries():
    data = os.urandom(3 << 20)

    def cut(piece):
        chunker = CdcChunker()
        out = [b for i in range(0, len(data), piece) for b in chunker.feed(data[i:i + piece])]
        return out + chunker.flush()

    a, b = cut(1 << 20), cut(77_777)
    assert [len(x) for x in a] == [len(x) for x in b]
    assert b"".join(a) == data
    assert all(len(x) <= 512 << 10 for x in a)


def test_bad_chunk_size_is_rejected():
    with pytest.raises(InvalidArgumentError):
        FixedChunker(-1)
    with pytest.raises(InvalidArgumentError):
        FixedChunker(64 << 20)


def test_dag_cbor_is_canonical_and_links_are_tag_42():
    cid = CID.of(b"x")
    encoded = dag.encode({"b": 1, "a": cid})
    assert encoded == dag.encode({"a": cid, "b": 1})
    assert bytes([0xD8, 42]) in encoded
    assert dag.decode(encoded) == {"a": cid, "b": 1}
    with pytest.raises(IntegrityError):
        dag.decode(b"\xff\x00garbage")


def test_upload_round_trips_and_manifest_json_has_logos_fields(content):
    data = os.urandom(1_000_000)
    cid = upload(content, data, filename="a.txt", mimetype="text/plain")
    assert cid.codec == DAG_CBOR
    view = content.manifest(cid).to_json()
    assert {"treeCid", "datasetSize", "blockSize", "filename", "mimetype", "protected"} <= set(view)
    assert view["datasetSize"] == 1_000_000 and view["blockSize"] == 65536
    assert view["filename"] == "a.txt" and view["mimetype"] == "text/plain" and view["protected"] is False
    assert read_all(content, cid) == data


def test_empty_dataset(content):
    cid = upload(content, b"")
    assert content.manifest(cid).dataset_size == 0
    assert read_all(content, cid) == b""


def test_index_tree_finds_any_block_without_reading_the_rest():
    entries = [(CID.of(i.to_bytes(4, "big")), 10) for i in range(FANOUT * 3 + 5)]
    root, nodes = build_index(entries)
    blocks = dict(nodes)
    reads = []

    def get(cid):
        reads.append(cid)
        return blocks.get(cid)

    nbytes = sum(size for _, size in entries)
    assert list(walk_index(root, len(entries), nbytes, get)) == entries
    reads.clear()
    assert next(walk_index(root, len(entries), nbytes, get, start=FANOUT * 2 + 1)) == entries[FANOUT * 2 + 1]
    assert len(reads) == 2  # the root and one leaf


def test_identical_content_is_stored_once(content):
    data = os.urandom(500_000)
    a = upload(content, data, filename="a")
    before = content.space()
    b = upload(content, data, filename="b")
    assert a != b
    assert content.space().quota_used_bytes - before.quota_used_bytes < 2000  # only a new manifest


def test_shared_blocks_survive_deleting_one_dataset(content):
    data = os.urandom(300_000)
    a = upload(content, data, filename="a")
    b = upload(content, data, filename="b")
    content.delete(a)
    assert read_all(content, b) == data
    content.delete(b)
    assert content.space().total_blocks == 0 and content.space().quota_used_bytes == 0


def test_deleting_a_dataset_block_deletes_it_and_the_dataset_reads_incomplete(content):
    cid = upload(content, os.urandom(200_000))
    block, _size = next(content.iter_blocks(content.manifest(cid)))
    before = content.space()
    assert content.delete(block) == "block"  # as Logos: a single block goes even if a dataset uses it
    assert not content.blobs.has(block)
    assert content.space().total_blocks == before.total_blocks - 1
    with pytest.raises(NotFoundError, match=str(block)):
        LocalReader(content, cid).read(1 << 20)
    content.delete(cid)  # the incomplete dataset still deletes whole
    assert content.space().total_blocks == 0 and content.space().quota_used_bytes == 0


def test_deleting_a_block_an_upload_holds_is_refused(content):
    up = Upload(content, FixedChunker(65536))
    data = os.urandom(200_000)
    up.write(data)
    up.flush()
    block = CID.of(data[:65536])  # the upload's first block
    with pytest.raises(InvalidArgumentError, match="in progress"):
        content.delete(block)
    up.cancel()


def test_delete_unknown_is_not_found(content):
    with pytest.raises(NotFoundError):
        content.delete(CID.of(b"nothing"))


def test_quota_exceeded_leaves_nothing_behind():
    content = ContentStore(MemoryBlockStore(), quota=1_000_000, block_ttl=60)
    upload(content, os.urandom(300_000))
    before = content.space()
    with pytest.raises(QuotaExceededError):
        upload(content, os.urandom(900_000), piece=10_000_000)
    assert content.space() == before


def test_cancel_removes_what_the_session_stored(content):
    before = content.space()
    up = Upload(content)
    up.write(os.urandom(20 << 20))  # over one batch: blocks are stored as pending
    up.flush()
    assert content.space().quota_reserved_bytes > 0
    up.cancel()
    assert content.space() == before


def test_recover_deletes_orphaned_pending_blocks():
    store = MemoryBlockStore()
    content = ContentStore(store, quota=1 << 30, block_ttl=60)
    keep = upload(content, os.urandom(100_000))
    up = Upload(content)
    up.write(os.urandom(20 << 20))  # stored as pending, never finished: as after a crash
    up.flush()
    assert store.stats().blocks > content.space().total_blocks
    reopened = ContentStore(store, quota=1 << 30, block_ttl=60)
    space = reopened.space()
    assert space.quota_reserved_bytes == 0
    assert store.stats().blocks == space.total_blocks
    assert [d.cid for d in reopened.datasets()] == [keep]


def test_cached_datasets_expire_after_ttl_and_pinned_ones_stay(content):
    pinned = upload(content, os.urandom(100_000))
    cached = upload(content, os.urandom(100_000), pinned=False)
    info = content.dataset_info(cached)
    assert content.expire(now=info.expires - 1) == []
    assert content.expire(now=info.expires + 1) == [cached]
    assert [d.cid for d in content.datasets()] == [pinned]


def test_reuploading_a_cached_dataset_pins_it(content):
    data = os.urandom(100_000)
    cid = upload(content, data, pinned=False)
    assert upload(content, data) == cid
    assert content.dataset_info(cid).pinned


def test_manifest_of_raw_block_is_invalid(content):
    with pytest.raises(InvalidArgumentError):
        content.manifest(CID.of(b"raw"))


def test_manifest_decode_rejects_non_manifests():
    _, data = dag.encode_node({"blocks": []})
    with pytest.raises(IntegrityError):
        Manifest.decode(data)
