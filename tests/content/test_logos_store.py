"""Logos-format datasets in the content store: upload through the ingest path, catalog entry,
reads of datasetSize bytes, verification, deletes (whole datasets and single blocks)."""

import os

import pytest
from harness.stores import make_content

from hoard.content import ContentStore, LocalReader
from hoard.content.formats.logos import block_cid, pad
from hoard.content.formats.logos_dataset import PART_LEAVES, is_logos_manifest, leaf_parts, verified_block_cids
from hoard.content.formats.logos_manifest import LogosManifest
from hoard.content.formats.logos_tree import MerkleTree
from hoard.content.upload import LogosUpload
from hoard.errors import IntegrityError, InvalidArgumentError, NotFoundError, QuotaExceededError
from hoard.store import MemoryBlockStore

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def content(store_kind: str) -> ContentStore:
    return make_content(store_kind, quota=64 << 20, block_ttl=60)


def upload(content, data, block_size=65536, piece=100_000, filename=None, mimetype=None):
    up = LogosUpload(content, block_size, filename, mimetype)
    for i in range(0, len(data), piece):
        up.write(data[i:i + piece])
    return up.finish()


def read_all(content, cid, offset=0, length=None):
    reader = LocalReader(content, cid, offset, length)
    return b"".join(iter(lambda: reader.read(1 << 20), b""))


def test_hello_world_has_the_logos_cid(content):
    cid = upload(content, b"Hello World!", filename="hello.txt", mimetype="text/plain")
    assert str(cid) == "zDvZRwzmAkhzDRPH5EW242gJBNZ2T7aoH2v1fVH66FxXL4kSbvyM"
    info = content.dataset_info(cid)
    assert info.format == "logos" and info.size == 12 and len(info.parts) == 1
    assert read_all(content, cid) == b"Hello World!"


def test_blocks_are_padded_and_reads_stop_at_dataset_size(content):
    data = os.urandom(3 * 65536 + 123)
    cid = upload(content, data)
    manifest = content.logos_manifest(cid)
    blocks = content.logos_blocks(cid)
    assert manifest.blocks_count == len(blocks) == 4 and manifest.dataset_size == len(data)
    assert blocks[-1] == block_cid(pad(data[3 * 65536:]))
    assert content.blobs.get(blocks[-1]) == pad(data[3 * 65536:])
    assert read_all(content, cid) == data
    assert read_all(content, cid, 65530, 20) == data[65530:65550]
    assert read_all(content, cid, len(data) - 5) == data[-5:]
    assert read_all(content, blocks[-1]) == pad(data[3 * 65536:])  # a block reads whole, padded
    assert content.verify_logos(cid) == (4, len(data))


def test_the_leaf_list_spans_parts_and_is_checked_against_the_tree(content):
    data = os.urandom(PART_LEAVES + 5)  # one-byte blocks: two leaf-list parts
    cid = upload(content, data, block_size=1, piece=7_000)
    info = content.dataset_info(cid)
    assert len(info.parts) == 2
    assert read_all(content, cid) == data
    manifest = content.logos_manifest(cid)
    leaves = content.logos_leaves(cid)
    assert verified_block_cids(manifest, leaves)[:2] == [block_cid(data[:1]), block_cid(data[1:2])]
    bad = bytearray(leaves)
    bad[0] ^= 1
    with pytest.raises(IntegrityError, match="does not match tree"):
        verified_block_cids(manifest, bytes(bad))
    with pytest.raises(IntegrityError, match="expected"):
        verified_block_cids(manifest, leaves[:-32])


def test_leaf_parts_round_trip_through_the_tree():
    leaves = [os.urandom(32) for _ in range(5)]
    tree = MerkleTree.from_leaves(leaves)
    manifest = LogosManifest(tree.root_cid, 5 * 10, 10)
    [(part_cid, part)] = leaf_parts(leaves)
    part_cid.verify(part)
    assert verified_block_cids(manifest, part) == [tree.leaf_cid(i) for i in range(5)]


def test_an_empty_upload_is_refused_and_leaves_nothing(content):
    up = LogosUpload(content)
    with pytest.raises(InvalidArgumentError, match="empty"):
        up.finish()
    assert content.space().total_blocks == 0 and content.space().quota_reserved_bytes == 0


def test_quota_counts_the_padded_blocks(content):
    small = ContentStore(MemoryBlockStore(), quota=100_000, block_ttl=60)
    with pytest.raises(QuotaExceededError):
        upload(small, os.urandom(70_000))  # two padded blocks: 131072 bytes
    assert small.space().total_blocks == 0 and small.space().quota_used_bytes == 0


def test_deleting_a_dataset_keeps_blocks_another_dataset_uses(content):
    data = os.urandom(4 * 65536)
    first = upload(content, data, filename="a.bin")
    second = upload(content, data, filename="b.bin")  # same blocks, another manifest
    assert first != second and is_logos_manifest(first)
    content.delete(first)
    assert content.dataset_info(first) is None and read_all(content, second) == data
    content.delete(second)
    assert content.space().total_blocks == 0 and content.space().quota_used_bytes == 0


def test_a_single_block_deletes_and_the_dataset_reads_incomplete(content):
    data = os.urandom(3 * 65536)
    cid = upload(content, data)
    block = content.logos_blocks(cid)[1]
    assert content.delete(block) == "block"
    assert not content.blobs.has(block)
    with pytest.raises(NotFoundError, match=str(block)):
        read_all(content, cid)
    with pytest.raises(NotFoundError, match=str(block)):
        content.verify_logos(cid)
    session = content.ingest.session()  # what a fetch does: the block stored again fills the dataset
    session.write([(block, data[65536:131072])])
    content.commit_logos(session, cid, content.blobs.get(cid), content.logos_manifest(cid),
                         leaf_parts([b.digest for b in content.logos_blocks(cid)]), pinned=False)
    assert read_all(content, cid) == data and content.verify_logos(cid) == (3, len(data))
    content.delete(cid)
    assert content.space().total_blocks == 0 and content.space().quota_used_bytes == 0


def test_a_block_an_upload_in_progress_holds_is_not_deleted(content):
    data = os.urandom(2 * 65536)
    up = LogosUpload(content)
    up.write(data)
    up.flush()
    with pytest.raises(InvalidArgumentError, match="in progress"):
        content.delete(block_cid(data[:65536]))
    up.cancel()
    assert content.space().total_blocks == 0


def test_a_deleted_leaf_list_part_is_stored_again_by_a_refill(content):
    data = os.urandom(2 * 65536)
    cid = upload(content, data)
    manifest, [part] = content.logos_manifest(cid), content.dataset_info(cid).parts
    parts = leaf_parts([b.digest for b in content.logos_blocks(cid)])
    assert content.delete(part) == "block" and not content.is_complete(cid)
    with pytest.raises(NotFoundError, match="block list"):
        read_all(content, cid)
    session = content.ingest.session()  # a fetch learnt the leaves from a peer
    content.commit_logos(session, cid, content.blobs.get(cid), manifest, parts, pinned=False)
    assert content.is_complete(cid) and read_all(content, cid) == data
    content.delete(cid)
    assert content.space().total_blocks == 0 and content.space().quota_used_bytes == 0
