"""tvix.castore.v1.BlobService against a real node, through a client generated from the spec."""

import os

import blake3
import grpc
import pytest
from _grpc_node import RPC_TIMEOUT

pytestmark = pytest.mark.timeout(180)

MB = 1_000_000


def put(blobs, stubs, data: bytes, piece: int = 1 << 20) -> bytes:
    chunks = (stubs.castore.BlobChunk(data=data[i:i + piece]) for i in range(0, len(data), piece))
    return blobs.Put(chunks, timeout=RPC_TIMEOUT).digest


def read(blobs, stubs, digest: bytes) -> bytes:
    return b"".join(m.data for m in blobs.Read(stubs.castore.ReadBlobRequest(digest=digest), timeout=RPC_TIMEOUT))


def stat(blobs, stubs, digest: bytes, **flags):
    return blobs.Stat(stubs.castore.StatBlobRequest(digest=digest, **flags), timeout=RPC_TIMEOUT)


def rpc_error(call) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as info:
        call()
    return info.value


@pytest.fixture(scope="module")
def big_blob(blobs, stubs):
    """A 20 MB blob, put in uneven pieces; (data, digest the server returned)."""
    data = os.urandom(20 * MB)
    return data, put(blobs, stubs, data, piece=777_777)


def test_put_returns_the_blake3_of_all_the_bytes(big_blob):
    data, digest = big_blob
    assert digest == blake3.blake3(data).digest()


def test_read_returns_the_blob_that_was_put(big_blob, blobs, stubs):
    data, digest = big_blob
    assert read(blobs, stubs, digest) == data


def test_read_sends_pieces_within_the_default_message_limit(big_blob, blobs, stubs):
    _, digest = big_blob
    sizes = [len(m.data) for m in blobs.Read(stubs.castore.ReadBlobRequest(digest=digest), timeout=RPC_TIMEOUT)]
    assert max(sizes) <= 1 << 20 and sum(sizes) == 20 * MB


def test_how_the_client_cuts_its_stream_does_not_change_the_blob(big_blob, blobs, stubs):
    data, digest = big_blob
    assert put(blobs, stubs, data, piece=1 << 20) == digest
    before = [(c.digest, c.size) for c in stat(blobs, stubs, digest, send_chunks=True).chunks]
    assert put(blobs, stubs, data, piece=4096 * 7) == digest
    assert [(c.digest, c.size) for c in stat(blobs, stubs, digest, send_chunks=True).chunks] == before


def test_chunk_list_sums_to_the_blob_size_with_fastcdc_bounds(big_blob, blobs, stubs):
    _, digest = big_blob
    chunks = stat(blobs, stubs, digest, send_chunks=True).chunks
    assert len(chunks) > 1
    assert sum(c.size for c in chunks) == 20 * MB
    assert all(128 << 10 <= c.size <= 512 << 10 for c in chunks[:-1])
    assert 0 < chunks[-1].size <= 512 << 10


def test_each_chunk_is_readable_by_its_digest_and_hashes_to_it(big_blob, blobs, stubs):
    data, digest = big_blob
    offset = 0
    for chunk in stat(blobs, stubs, digest, send_chunks=True).chunks:
        body = read(blobs, stubs, chunk.digest)
        assert len(body) == chunk.size
        assert blake3.blake3(body).digest() == chunk.digest
        assert body == data[offset:offset + chunk.size]
        offset += chunk.size


def test_a_chunk_stats_as_a_blob_without_finer_chunks(big_blob, blobs, stubs):
    _, digest = big_blob
    first = stat(blobs, stubs, digest, send_chunks=True).chunks[0]
    assert list(stat(blobs, stubs, first.digest, send_chunks=True).chunks) == []


def test_single_chunk_blob_has_an_empty_chunk_list(blobs, stubs):
    data = os.urandom(100_000)  # below the 128 KiB minimum chunk: one chunk
    digest = put(blobs, stubs, data)
    assert list(stat(blobs, stubs, digest, send_chunks=True).chunks) == []
    assert read(blobs, stubs, digest) == data


def test_stat_lists_chunks_without_send_chunks_as_tvix_server_does(big_blob, blobs, stubs):
    # DIGEST §4: tvix's gRPC wrapper ignores send_chunks and always returns the backend's chunks
    _, digest = big_blob
    listed = [(c.digest, c.size) for c in stat(blobs, stubs, digest).chunks]
    assert len(listed) > 1 and listed == [(c.digest, c.size) for c in stat(blobs, stubs, digest, send_chunks=True).chunks]


def test_send_bao_is_accepted_and_no_bao_is_sent(big_blob, blobs, stubs):
    _, digest = big_blob
    assert stat(blobs, stubs, digest, send_chunks=True, send_bao=True).bao == b""


def test_empty_blob_round_trips(blobs, stubs):
    digest = blobs.Put(iter([]), timeout=RPC_TIMEOUT).digest
    assert digest == blake3.blake3(b"").digest()
    assert read(blobs, stubs, digest) == b""
    assert list(stat(blobs, stubs, digest, send_chunks=True).chunks) == []


def test_stat_of_a_missing_blob_is_not_found(blobs, stubs):
    error = rpc_error(lambda: stat(blobs, stubs, os.urandom(32)))
    assert error.code() == grpc.StatusCode.NOT_FOUND
    assert "not found" in error.details()


def test_read_of_a_missing_blob_is_not_found(blobs, stubs):
    error = rpc_error(lambda: read(blobs, stubs, os.urandom(32)))
    assert error.code() == grpc.StatusCode.NOT_FOUND


@pytest.mark.parametrize("length", [0, 1, 31, 33, 64])
def test_stat_of_a_digest_that_is_not_32_bytes_is_invalid_argument(blobs, stubs, length):
    error = rpc_error(lambda: stat(blobs, stubs, b"\x01" * length, send_chunks=True))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "invalid digest length" in error.details()


@pytest.mark.parametrize("length", [0, 31, 33])
def test_read_of_a_digest_that_is_not_32_bytes_is_invalid_argument(blobs, stubs, length):
    error = rpc_error(lambda: read(blobs, stubs, b"\x01" * length))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT



def _anon_rss(pid: int) -> int:
    """Resident anonymous memory of a process (LMDB reads are file-backed mmap pages, not this)."""
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("RssAnon:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no RssAnon")


def test_put_and_read_stay_memory_bounded_in_the_node(grpc_node, blobs, stubs):
    import threading

    size = 192 * MB
    piece = os.urandom(MB)
    pid = grpc_node.proc.pid
    baseline = _anon_rss(pid)
    peak = baseline
    done = threading.Event()

    def sample() -> None:  # a measurement, not synchronisation
        nonlocal peak
        while not done.wait(0.02):
            peak = max(peak, _anon_rss(pid))

    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        hasher = blake3.blake3()

        def messages():
            for i in range(size // MB):
                data = i.to_bytes(8, "big") + piece[8:]  # distinct content: nothing deduplicates
                hasher.update(data)
                yield stubs.castore.BlobChunk(data=data)

        digest = blobs.Put(messages(), timeout=RPC_TIMEOUT).digest
        assert digest == hasher.digest()
        read = 0
        for message in blobs.Read(stubs.castore.ReadBlobRequest(digest=digest), timeout=RPC_TIMEOUT):
            read += len(message.data)
        assert read == size
    finally:
        done.set()
        sampler.join()
    assert peak - baseline < size // 2, f"node grew by {(peak - baseline) >> 20} MiB for a {size >> 20} MiB blob"
