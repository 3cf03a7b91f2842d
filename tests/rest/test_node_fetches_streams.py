"""The node operations the REST API is built on (node/components/fetch.py, data.py), on an embedded node:
background fetches with progress, read streams from any offset, uploads with metadata."""

import os
import time

import pytest

import hoard
from hoard.content import CdcChunker, ContentStore, FixedChunker, Upload
from hoard.content.download import LocalReader as RangeReader
from hoard.content.index import locate
from hoard.errors import InvalidArgumentError, InvalidCidError, NotFoundError
from hoard.ids.cid import CID
from hoard.node.results import FetchProgress
from hoard.store import MemoryBlockStore

pytestmark = pytest.mark.timeout(120)

UNKNOWN = "zdqAuPSaNbU6GzVdi2k6NyZifuoA44h1x4crFgnnSjh59yPzF"


@pytest.fixture
def node(tmp_path):
    with hoard.Node({"data-dir": str(tmp_path / "data")}) as n:
        yield n


def store_bytes(node, data, filename=None, mimetype=None, chunk_size=0):
    session = node.upload_open(filename, mimetype, chunk_size)
    node.upload_chunk(session, data)
    return node.upload_finalize(session)


def test_upload_open_records_filename_and_mimetype(node):
    cid = store_bytes(node, b"x" * 1000, "a.bin", "image/png")
    manifest = node.download_manifest(cid)
    assert (manifest.filename, manifest.mimetype, manifest.dataset_size) == ("a.bin", "image/png", 1000)
    cid = store_bytes(node, b"y")
    assert node.download_manifest(cid).filename is None and node.download_manifest(cid).mimetype is None


def test_upload_open_refuses_non_string_metadata(node):
    with pytest.raises(InvalidArgumentError):
        node.upload_open(5, None)


def test_fetch_of_a_stored_dataset_completes_at_once(node):
    data = os.urandom(300_000)
    cid = store_bytes(node, data)
    started = node.fetch_start(cid)
    assert started.cid == cid and started.manifest.dataset_size == 300_000
    assert node.fetch_progress(started.download_id) == FetchProgress(False, received=5, total=5, bytes=300_000)
    assert node.fetches()[0].download_id == started.download_id


def test_fetch_of_unknown_or_invalid_cid_fails(node):
    with pytest.raises(NotFoundError):
        node.fetch_start(UNKNOWN)
    with pytest.raises(InvalidCidError):
        node.fetch_start("nope")


def test_fetch_progress_of_unknown_id_is_inactive_and_cancel_is_not_found(node):
    assert node.fetch_progress(12345) == FetchProgress(active=False)
    with pytest.raises(NotFoundError):
        node.fetch_cancel(12345)


def partly_stored(node, data, blocks_present):
    """A dataset whose manifest and index are in the node's store with only its first
    `blocks_present` blocks, not yet registered: what a fetch in progress leaves."""
    from hoard.content.index import load_index

    side = ContentStore(MemoryBlockStore(), 1 << 40, 3600)
    upload = Upload(side, FixedChunker())
    upload.write(data)
    cid = upload.finish()
    manifest = side.manifest(cid)
    store = node.components.context.content.blobs
    tree = load_index(manifest.index, manifest.block_count, manifest.dataset_size, side.blobs.get_many)
    for block in [cid, *tree.node_cids()]:
        store.put(block, side.blobs.get(block))
    for block, _size in list(side.iter_blocks(manifest))[:blocks_present]:
        store.put(block, side.blobs.get(block))
    return str(cid)


def wait_for(predicate, timeout=30.0):
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.02)


def test_a_fetch_runner_feeds_progress_and_can_be_cancelled(node):
    """The fetch component's `runner`; progress is what it reports, cancel stops it."""
    import trio

    cid = partly_stored(node, os.urandom(200_000), 0)
    fed = []

    async def runner(cid_, manifest, fetch):
        fetch.advance(1, 65536)
        fed.append(fetch.id)
        await trio.sleep_forever()  # a fetch waiting on the network

    network_runner, node.components.fetch.runner = node.components.fetch.runner, runner
    try:
        download_id = node.fetch_start(cid).download_id
        wait_for(lambda: fed)
        assert node.fetch_progress(download_id, cid) == FetchProgress(True, received=1, total=4, bytes=65536)
        node.fetch_cancel(download_id, cid)
        wait_for(lambda: not node.fetch_progress(download_id, cid).active)
        progress = node.fetch_progress(download_id, cid)
        assert progress.error == "cancelled" and progress.received == 1
        with pytest.raises(NotFoundError):
            node.fetch_cancel(download_id, cid)
    finally:
        node.components.fetch.runner = network_runner


def test_a_failing_runner_ends_the_fetch_with_its_error(node):
    cid = partly_stored(node, os.urandom(100_000), 1)
    # the node is not started: the network's runner fails, and the fetch reports why
    download_id = node.fetch_start(cid).download_id
    wait_for(lambda: not node.fetch_progress(download_id).active)
    progress = node.fetch_progress(download_id)
    assert progress.error and progress.received < progress.total == 2
    assert node.fetches()[0].download_id == download_id and node.fetches()[0].progress.error == progress.error


def test_without_a_runner_a_dataset_not_stored_cannot_be_fetched(node):
    from hoard.errors import StateError

    cid = partly_stored(node, os.urandom(100_000), 1)
    network_runner, node.components.fetch.runner = node.components.fetch.runner, None
    try:
        with pytest.raises(StateError):
            node.fetch_start(cid)
    finally:
        node.components.fetch.runner = network_runner


@pytest.mark.parametrize("offset, length", [(0, None), (0, 10), (65535, 2), (65536, 65536), (199_999, None),
                                            (100_000, 10**9), (200_000, None), (250_000, 5)])
def test_stream_reads_any_byte_range(node, offset, length):
    data = os.urandom(200_000)
    cid = store_bytes(node, data, "r.bin", "application/octet-stream")
    opened = node.stream_open(cid, offset, length)
    expected = data[offset:] if length is None else data[offset:offset + length]
    assert opened.size == 200_000 and opened.length == len(expected) and opened.filename == "r.bin"
    out = b""
    while piece := node.stream_read(opened.id, 50_000):
        out += piece
    assert out == expected
    node.stream_close(opened.id)
    node.stream_close(opened.id)  # closing twice is fine


def test_streams_of_the_same_cid_are_independent(node):
    data = os.urandom(100_000)
    cid = store_bytes(node, data)
    a, b = node.stream_open(cid), node.stream_open(cid, 50_000)
    assert node.stream_read(a.id, 10) == data[:10]
    assert node.stream_read(b.id, 10) == data[50_000:50_010]
    assert node.stream_read(a.id, 10) == data[10:20]


def test_stream_errors(node):
    with pytest.raises(NotFoundError):
        node.stream_open(UNKNOWN)
    with pytest.raises(InvalidCidError):
        node.stream_open("nope")
    cid = store_bytes(node, b"abc")
    with pytest.raises(InvalidArgumentError):
        node.stream_open(cid, -1)
    with pytest.raises(NotFoundError):
        node.stream_read("999", 10)


def test_range_reader_over_content_defined_blocks():
    """Variable-size blocks: the index is descended by bytes, not by block size."""
    content = ContentStore(MemoryBlockStore(), 1 << 40, 3600)
    data = os.urandom(3_000_000)
    upload = Upload(content, CdcChunker(16 * 1024, 32 * 1024, 64 * 1024))
    upload.write(data)
    cid = upload.finish()
    manifest = content.manifest(cid)
    assert manifest.block_count > 40
    sizes = [s for _, s in content.iter_blocks(manifest)]
    assert len(set(sizes)) > 1
    for offset in (0, 1, sizes[0] - 1, sizes[0], sum(sizes[:7]) + 3, len(data) - 1):
        reader = RangeReader(content, cid, offset, 100_000)
        out = b""
        while piece := reader.read(7_777):
            out += piece
        assert out == data[offset:offset + 100_000], offset


def test_locate_in_a_multi_level_index():
    """More blocks than one index node holds (1024): the interior nodes are descended."""
    content = ContentStore(MemoryBlockStore(), 1 << 40, 3600)
    upload = Upload(content, FixedChunker(1024))
    data = os.urandom(1024 * 2500 + 17)
    upload.write(data)
    cid = upload.finish()
    manifest = content.manifest(cid)
    for offset in (0, 1023, 1024, 1024 * 1024, 1024 * 2049 + 5, 1024 * 2500 + 16):
        assert locate(manifest.index, manifest.block_count, manifest.dataset_size, offset,
                      content.blobs.get) == (offset // 1024, offset % 1024)
    assert RangeReader(content, cid, 1024 * 2049 + 5, 4).read(10) == data[1024 * 2049 + 5:1024 * 2049 + 9]
    single = CID.of(b"block")
    content.blobs.put(single, b"block")
    assert RangeReader(content, single, 1, 3).read(10) == b"loc"
