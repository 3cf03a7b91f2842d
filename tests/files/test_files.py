"""hugo files on the content store: versions, CRC32, ranges, shared blocks, and through a node."""

import os
import zlib

import pytest
from harness.stores import make_content

import hoard
from hoard.content import ContentStore
from hoard.errors import InvalidArgumentError, NotFoundError, QuotaExceededError
from hoard.files import CrcMismatchError, FileStore
from hoard.store import MemoryBlockStore

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def content(store_kind: str) -> ContentStore:
    return make_content(store_kind, quota=1 << 30, block_ttl=3600)


@pytest.fixture
def files(content):
    return FileStore(content)


def blocks(files, ino, **kw):
    return [(b.index, b.data) for b in files.read(ino, **kw)]


def test_each_write_makes_a_version_and_old_versions_stay_readable(files):
    assert files.write(1, b"a").version == 1
    assert files.write(1, b"b").version == 2
    assert files.write(1, b"A", index=0).version == 3
    assert files.stream_write(1, [b"c", b"d"]).version == 4
    assert blocks(files, 1, version=1) == [(0, b"a")]
    assert blocks(files, 1, version=2) == [(0, b"a"), (1, b"b")]
    assert blocks(files, 1, version=3) == [(0, b"A"), (1, b"b")]
    assert blocks(files, 1) == [(0, b"A"), (1, b"b"), (2, b"c"), (3, b"d")]


def test_stat_describes_each_version(files):
    files.write(2, b"xx")
    files.write(2, b"yyy")
    files.write(2, b"z", index=0)
    v1, v2, v3 = (files.stat(2, v) for v in (1, 2, 3))
    assert (v1.blocks, v1.size, v1.next_index, v1.latest) == (1, 2, 1, 3)
    assert (v2.blocks, v2.size, v2.next_index) == (2, 5, 2)
    assert (v3.blocks, v3.size, v3.next_index) == (2, 4, 2)
    assert files.stat(2) == v3


def test_crc_mismatch_writes_nothing(files, content):
    files.write(3, b"keep")
    before = content.ingest.stored()
    with pytest.raises(CrcMismatchError, match="crc32 mismatch, expected 7, actual") as info:
        files.write(3, b"other", index=0, crc32=7)
    assert info.value.grpc_status == "FAILED_PRECONDITION"
    assert content.ingest.stored() == before
    assert blocks(files, 3) == [(0, b"keep")] and files.stat(3).latest == 1


def test_a_matching_crc_is_accepted(files):
    assert files.write(4, b"data", crc32=zlib.crc32(b"data")).index == 0


def test_blocks_shared_by_files_and_versions_are_stored_once(files, content):
    block = os.urandom(100_000)
    files.write(5, block)
    stored = content.ingest.stored()
    files.write(5, block, index=0)
    files.stream_write(6, [block, block])
    assert content.ingest.stored().blocks == stored.blocks
    assert content.ingest.stored().bytes == stored.bytes
    assert blocks(files, 6) == [(0, block), (1, block)]


def test_file_blocks_are_committed_not_pending_and_survive_recovery(files, content):
    files.stream_write(7, [os.urandom(50_000) for _ in range(3)])
    assert content.space().quota_reserved_bytes == 0
    content.recover()
    assert len(blocks(files, 7)) == 3


def test_a_file_block_survives_deleting_a_dataset_that_shares_it(content, files):
    from hoard.blobs import BlobService

    data = b"shared block"
    files.write(8, data)
    blob = BlobService(content).put([data])
    content.delete(blob.manifest)
    assert blocks(files, 8) == [(0, data)]


def test_ranges_are_inclusive_and_holes_are_absent(files):
    files.stream_write(9, [bytes([i]) for i in range(5)])
    files.write(9, b"far", index=70_000)  # another index window
    assert [i for i, _ in blocks(files, 9, start=1, end=3)] == [1, 2, 3]
    assert [i for i, _ in blocks(files, 9, start=4)] == [4, 70_000]
    assert [i for i, _ in blocks(files, 9, start=5, end=69_999)] == []
    assert files.write(9, b"next").index == 70_001
    with pytest.raises(InvalidArgumentError):
        files.read(9, start=3, end=2)


def test_missing_files_and_versions_are_not_found(files):
    with pytest.raises(NotFoundError):
        files.read(10)
    files.write(10, b"x")
    for version in (0, 2):
        with pytest.raises(NotFoundError, match=f"no version {version}"):
            files.read(10, version=version)


def test_a_stream_write_that_fails_midway_changes_nothing(files, content):
    files.write(11, b"before")
    before = content.ingest.stored()

    def failing():
        for _ in range(3):
            yield os.urandom(4_000_000)  # a first batch is stored by the third
        raise RuntimeError("client went away")

    with pytest.raises(RuntimeError):
        files.stream_write(11, failing())
    assert content.ingest.stored() == before
    assert blocks(files, 11) == [(0, b"before")] and files.stat(11).latest == 1


def test_an_empty_stream_write_makes_no_version(files):
    files.write(12, b"x")
    result = files.stream_write(12, [])
    assert result.indices == () and result.version == 1


def test_a_write_over_quota_changes_nothing():
    content = ContentStore(MemoryBlockStore(), quota=100_000, block_ttl=3600)
    files = FileStore(content)
    with pytest.raises(QuotaExceededError):
        files.write(1, os.urandom(200_000))
    with pytest.raises(NotFoundError):
        files.read(1)
    assert content.ingest.stored().bytes == 0


@pytest.mark.parametrize("bad", [-1, 2**64, "1", 1.0, True])
def test_inode_numbers_are_unsigned_64_bit_integers(files, bad):
    with pytest.raises(InvalidArgumentError):
        files.write(bad, b"x")


def test_blocks_over_hugos_32_mib_are_refused(files):
    with pytest.raises(InvalidArgumentError, match="maximum file block size"):
        files.write(13, b"\0" * ((32 << 20) + 1))
    with pytest.raises(InvalidArgumentError, match="maximum file block size"):
        files.stream_write(13, iter([b"ok", b"\0" * ((32 << 20) + 1)]))
    with pytest.raises(NotFoundError):
        files.stat(13)  # nothing was written


def test_node_file_api_round_trip(tmp_path):
    with hoard.Node({"data-dir": str(tmp_path / "data")}) as node:
        assert node.files.write(1, b"one", crc32=zlib.crc32(b"one")).index == 0
        assert node.files.stream_write(1, iter([b"two", b"three"])).indices == (1, 2)
        assert [(b.index, b.data, b.crc32) for b in node.files.read(1, start=1)] == \
            [(1, b"two", zlib.crc32(b"two")), (2, b"three", zlib.crc32(b"three"))]
        assert node.files.stat(1).latest == 2
        with pytest.raises(CrcMismatchError):
            node.files.write(1, b"x", crc32=1)
        with pytest.raises(NotFoundError):
            node.files.read(1, version=3)


def test_node_stream_write_that_fails_midway_leaves_the_file_unchanged(tmp_path):
    def blocks():
        yield b"a"
        yield b"b"
        raise RuntimeError("client went away")

    with hoard.Node({"data-dir": str(tmp_path / "data")}) as node:
        node.files.write(1, b"kept")
        with pytest.raises(RuntimeError):
            node.files.stream_write(1, blocks())
        assert [(b.index, b.data) for b in node.files.read(1)] == [(0, b"kept")]
        assert node.files.stat(1).latest == 1
