"""Blobs (castore semantics) on the content store, and through an embedded node."""

import os

import blake3
import pytest

import hoard
from hoard.blobs import EMPTY_BLOB, BlobDigest, BlobService
from hoard.content import ContentStore
from hoard.errors import InvalidArgumentError, NotFoundError, QuotaExceededError
from hoard.store import MemoryBlockStore

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def content():
    return ContentStore(MemoryBlockStore(), quota=1 << 30, block_ttl=3600)


@pytest.fixture
def blobs(content):
    return BlobService(content)


def pieces(data: bytes, size: int):
    return (data[i:i + size] for i in range(0, len(data), size))


def test_put_returns_the_blake3_of_the_content_and_stores_a_dataset(blobs, content):
    data = os.urandom(2_000_000)
    stat = blobs.put(pieces(data, 65_537))
    assert bytes(stat.digest) == blake3.blake3(data).digest()
    assert stat.size == len(data)
    assert content.dataset_info(stat.manifest) is not None
    assert content.manifest(stat.manifest).chunker == "fastcdc-v2020(131072,262144,524288)"


def test_stat_lists_chunks_in_order_summing_to_the_size(blobs):
    data = os.urandom(3_000_000)
    digest = blobs.put([data]).digest
    chunks = blobs.stat(digest).chunks
    assert sum(c.size for c in chunks) == len(data)
    offset = 0
    for chunk in chunks:
        assert chunk.digest == BlobDigest.of(data[offset:offset + chunk.size])
        assert b"".join(blobs.read(chunk.digest)) == data[offset:offset + chunk.size]
        offset += chunk.size


def test_stat_without_chunks_does_not_list_them(blobs):
    digest = blobs.put([os.urandom(1_000_000)]).digest
    assert blobs.stat(digest, chunks=False).chunks is None


def test_a_one_chunk_blob_stats_with_an_empty_list(blobs):
    digest = blobs.put([b"small"]).digest
    assert blobs.stat(digest).chunks == ()
    assert b"".join(blobs.read(digest)) == b"small"


def test_read_pieces_are_at_most_the_piece_size(blobs):
    data = os.urandom(5_000_000)
    digest = blobs.put([data]).digest
    sizes = [len(p) for p in blobs.read(digest, piece_bytes=1 << 20)]
    assert max(sizes) <= 1 << 20 and sum(sizes) == len(data)


def test_the_empty_blob_is_always_present(blobs):
    assert blobs.stat(EMPTY_BLOB).size == 0
    assert list(blobs.read(EMPTY_BLOB)) == []


def test_missing_blobs_are_not_found(blobs):
    digest = BlobDigest(os.urandom(32))
    with pytest.raises(NotFoundError):
        blobs.stat(digest)
    with pytest.raises(NotFoundError):
        blobs.read(digest)


@pytest.mark.parametrize("raw", [b"", b"\0" * 31, b"\0" * 33])
def test_a_digest_must_be_32_bytes(raw):
    with pytest.raises(InvalidArgumentError, match="invalid digest length"):
        BlobDigest(raw)


def test_digests_parse_from_bytes_b3_base64_and_hex():
    digest = BlobDigest.of(b"hello")
    assert BlobDigest.parse(bytes(digest)) == digest
    assert BlobDigest.parse(str(digest)) == digest
    assert BlobDigest.parse(digest.hex()) == digest
    assert str(digest).startswith("b3:")
    with pytest.raises(InvalidArgumentError):
        BlobDigest.parse("b3:not base64!")


def test_a_put_that_fails_midway_keeps_nothing(blobs, content):
    before = content.space()

    def failing():
        yield os.urandom(3_000_000)
        raise RuntimeError("source broke")

    with pytest.raises(RuntimeError):
        blobs.put(failing())
    after = content.space()
    assert (after.total_blocks, after.quota_used_bytes, after.quota_reserved_bytes) == \
        (before.total_blocks, before.quota_used_bytes, before.quota_reserved_bytes)


def test_a_put_over_quota_keeps_nothing():
    content = ContentStore(MemoryBlockStore(), quota=1_000_000, block_ttl=3600)
    with pytest.raises(QuotaExceededError):
        BlobService(content).put([os.urandom(20_000_000)])
    assert content.space().total_blocks == 0 and content.ingest.stored().bytes == 0


@pytest.fixture
def node(tmp_path):
    with hoard.Node({"data-dir": str(tmp_path / "data")}) as n:
        yield n


def test_a_blob_put_is_a_dataset_listed_and_downloadable(node, tmp_path):
    data = os.urandom(1_500_000)
    stat = node.blobs.put(data)
    assert stat.manifest in [entry.cid for entry in node.list()]
    out = tmp_path / "out.bin"
    node.download_stream(str(stat.manifest), str(out))
    assert out.read_bytes() == data
    assert node.download_manifest(str(stat.manifest)).digest.hex() == stat.digest.hex()


def test_a_dataset_uploaded_with_logos_operations_in_hoards_format_is_a_blob(tmp_path):
    data = os.urandom(300_000)
    source = tmp_path / "up.bin"
    source.write_bytes(data)
    with hoard.Node({"data-dir": str(tmp_path / "data"), "dataset-format": "hoard"}) as node:
        _uploaded_is_a_blob(node, source, data)


def test_a_logos_format_dataset_is_not_a_blob_but_blobs_work_beside_it(node, tmp_path):
    data = os.urandom(300_000)
    source = tmp_path / "up.bin"
    source.write_bytes(data)
    node.upload_file(node.upload_init(str(source)))  # Logos addressing (sha2-256): no BLAKE3 digest recorded
    with pytest.raises(NotFoundError):
        node.blobs.stat(BlobDigest.of(data))
    stat = node.blobs.put(data)  # castore stores it in its own (BLAKE3) format and finds it by digest
    assert node.blobs.stat(BlobDigest.of(data)).manifest == stat.manifest
    assert b"".join(node.blobs.read(stat.digest)) == data


def _uploaded_is_a_blob(node, source, data):
    cid = node.upload_file(node.upload_init(str(source)))
    digest = BlobDigest.of(data)
    stat = node.blobs.stat(digest)
    assert stat.manifest == cid and stat.size == len(data)
    assert sum(c.size for c in stat.chunks) == len(data)  # its 64 KiB blocks are its chunks
    assert b"".join(node.blobs.read(digest)) == data
    assert b"".join(node.blobs.read(stat.chunks[1].digest)) == data[65536:131072]


def test_blob_put_reads_files_and_iterables(node, tmp_path):
    data = os.urandom(700_000)
    path = tmp_path / "f.bin"
    path.write_bytes(data)
    assert node.blobs.put(path).digest == node.blobs.put(iter(pieces(data, 1000))).digest == BlobDigest.of(data)
    with pytest.raises(InvalidArgumentError):
        node.blobs.put("a string is ambiguous")


def test_blob_read_stream_is_usable_from_asyncio(tmp_path):
    import asyncio

    data = os.urandom(2_000_000)

    async def main():
        async with hoard.AsyncNode({"data-dir": str(tmp_path / "adata")}) as anode:
            stat = await anode.blobs.put(data)
            stream = await anode.blobs.read(stat.digest)
            return b"".join([piece async for piece in stream])

    assert asyncio.run(asyncio.wait_for(main(), 60)) == data


def test_a_closed_read_stream_yields_nothing_more(node):
    digest = node.blobs.put(os.urandom(9_000_000)).digest
    stream = node.blobs.read(digest)
    next(stream)
    stream.close()
    stream.close()
    assert list(stream) == []


def test_a_put_over_quota_through_the_node_keeps_nothing_and_stops_reading(tmp_path):
    produced = []

    def source():
        for _ in range(40):  # 40 MB, far more than the quota
            produced.append(1)
            yield os.urandom(1_000_000)

    with hoard.Node({"data-dir": str(tmp_path / "q"), "storage-quota": 5_000_000}) as node:
        with pytest.raises(QuotaExceededError):
            node.blobs.put(source())
        space = node.space()
        assert space.quota_used_bytes == 0 and space.quota_reserved_bytes == 0
        assert len(produced) < 40  # the put stopped reading its source


@pytest.mark.timeout(120)
def test_a_blob_of_more_than_65536_chunks_lists_them_all(tmp_path):
    # issue 18: such blobs used to answer an empty chunk list
    data = os.urandom(1024) * 70_000  # 70,000 identical 1 KiB blocks: 70 MB, one distinct block
    src = tmp_path / "many.bin"
    src.write_bytes(data)
    with hoard.Node({"data-dir": str(tmp_path / "node"), "dataset-format": "hoard"}) as node:
        node.upload_file(node.upload_init(str(src), chunk_size=1024))
        stat = node.blobs.stat(BlobDigest(blake3.blake3(data).digest()))
    assert stat.chunks is not None and len(stat.chunks) == 70_000
    assert {(bytes(c.digest), c.size) for c in stat.chunks} == {(blake3.blake3(data[:1024]).digest(), 1024)}
