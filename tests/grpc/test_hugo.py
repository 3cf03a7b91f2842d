"""hugo.v1.storage.StorageService against a real node, through a client generated from the spec."""

import os
import zlib

import grpc
import pytest
from _grpc_node import RPC_TIMEOUT

pytestmark = pytest.mark.timeout(180)


def crc(data: bytes) -> int:
    return zlib.crc32(data)


def write(storage, stubs, ino: int, data: bytes, index: int | None = None, crc32: int | None = None) -> int:
    request = stubs.hugo.WriteBlock.Request(ino=ino, block_data=data, crc32=crc(data) if crc32 is None else crc32)
    if index is not None:
        request.block_idx = index
    return storage.Write(request, timeout=RPC_TIMEOUT).block_idx


def stream_write(storage, stubs, ino: int, blocks: list[bytes]) -> list[int]:
    requests = [stubs.hugo.StreamWrite.Request(header=stubs.hugo.StreamWrite.Header(ino=ino))]
    requests += [stubs.hugo.StreamWrite.Request(block=b) for b in blocks]
    return list(storage.StreamWrite(iter(requests), timeout=RPC_TIMEOUT).block_idx)


def request(stubs, ino: int, start=None, end=None, version=None):
    r = stubs.hugo.Read.Request(ino=ino)
    if start is not None:
        r.start_block_idx.CopyFrom(stubs.hugo.Range(val=start))
    if end is not None:
        r.end_block_idx.CopyFrom(stubs.hugo.Range(val=end))
    if version is not None:
        r.history_version = version
    return r


def read(storage, stubs, ino: int, **kw) -> list[tuple[int, bytes]]:
    """(index, data) of each block from Read, checking each block's len and crc32."""
    blocks = storage.Read(request(stubs, ino, **kw), timeout=RPC_TIMEOUT).blocks
    for b in blocks:
        assert b.len == len(b.data) and b.crc32 == crc(b.data)
    return [(b.index, b.data) for b in blocks]


def stream_read(storage, stubs, ino: int, **kw) -> list[tuple[int, bytes]]:
    out = []
    for message in storage.StreamRead(request(stubs, ino, **kw), timeout=RPC_TIMEOUT):
        b = message.block
        assert b.len == len(b.data) and b.crc32 == crc(b.data)
        out.append((b.index, b.data))
    return out


def rpc_error(call) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as info:
        call()
    return info.value


def test_write_without_index_appends_and_creates_the_file(storage, stubs, ino):
    assert write(storage, stubs, ino, b"zero") == 0
    assert write(storage, stubs, ino, b"one") == 1
    assert read(storage, stubs, ino) == [(0, b"zero"), (1, b"one")]


def test_write_at_an_index_overwrites_that_block(storage, stubs, ino):
    write(storage, stubs, ino, b"a")
    write(storage, stubs, ino, b"b")
    assert write(storage, stubs, ino, b"B", index=1) == 1
    assert read(storage, stubs, ino) == [(0, b"a"), (1, b"B")]


def test_write_at_an_index_creates_that_block(storage, stubs, ino):
    assert write(storage, stubs, ino, b"first", index=0) == 0
    assert write(storage, stubs, ino, b"far", index=5) == 5
    assert read(storage, stubs, ino) == [(0, b"first"), (5, b"far")]  # holes are absent
    assert write(storage, stubs, ino, b"next") == 6  # appends after the highest index


def test_stream_write_appends_blocks_in_order_and_returns_their_indices(storage, stubs, ino):
    write(storage, stubs, ino, b"head")
    blocks = [os.urandom(100_000 + i) for i in range(5)]
    assert stream_write(storage, stubs, ino, blocks) == [1, 2, 3, 4, 5]
    assert read(storage, stubs, ino) == [(0, b"head")] + list(enumerate(blocks, start=1))


def test_file_written_overwritten_appended_streamed_is_readable_at_each_version(storage, stubs, ino):
    states: list[list[tuple[int, bytes]]] = []
    write(storage, stubs, ino, b"v1-block0")  # version 1: create
    states.append([(0, b"v1-block0")])
    write(storage, stubs, ino, b"v2-block1")  # version 2: append
    states.append(states[-1] + [(1, b"v2-block1")])
    write(storage, stubs, ino, b"v3-block0", index=0)  # version 3: overwrite
    states.append([(0, b"v3-block0"), (1, b"v2-block1")])
    stream_write(storage, stubs, ino, [b"v4-block2", b"v4-block3"])  # version 4: one stream
    states.append(states[-1] + [(2, b"v4-block2"), (3, b"v4-block3")])
    write(storage, stubs, ino, b"v5-block2", index=2)  # version 5: overwrite in the middle
    states.append([(0, b"v3-block0"), (1, b"v2-block1"), (2, b"v5-block2"), (3, b"v4-block3")])
    for version, expected in enumerate(states, start=1):
        assert read(storage, stubs, ino, version=version) == expected, f"version {version}"
        assert stream_read(storage, stubs, ino, version=version) == expected, f"version {version}"
    assert read(storage, stubs, ino) == states[-1]


def test_stream_read_returns_what_read_returns(storage, stubs, ino):
    stream_write(storage, stubs, ino, [os.urandom(300_000) for _ in range(8)])
    assert stream_read(storage, stubs, ino) == read(storage, stubs, ino)
    assert stream_read(storage, stubs, ino, start=2, end=5) == read(storage, stubs, ino, start=2, end=5)


def test_start_and_end_block_indices_are_inclusive(storage, stubs, ino):
    stream_write(storage, stubs, ino, [bytes([i]) for i in range(6)])
    assert [i for i, _ in read(storage, stubs, ino, start=2, end=4)] == [2, 3, 4]
    assert [i for i, _ in read(storage, stubs, ino, start=3)] == [3, 4, 5]
    assert [i for i, _ in read(storage, stubs, ino, end=1)] == [0, 1]
    assert [i for i, _ in read(storage, stubs, ino, start=4, end=4)] == [4]
    assert read(storage, stubs, ino, start=10) == []


def test_start_after_end_is_invalid_argument(storage, stubs, ino):
    write(storage, stubs, ino, b"x")
    error = rpc_error(lambda: read(storage, stubs, ino, start=3, end=2))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_crc_mismatch_is_failed_precondition_and_leaves_the_file_unchanged(storage, stubs, ino):
    write(storage, stubs, ino, b"keep")
    bad = b"rejected"
    error = rpc_error(lambda: write(storage, stubs, ino, bad, index=0, crc32=crc(bad) ^ 1))
    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert error.details() == f"crc32 mismatch, expected {crc(bad) ^ 1}, actual {crc(bad)}"
    error = rpc_error(lambda: write(storage, stubs, ino, bad, crc32=0))  # an append, too
    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert read(storage, stubs, ino) == [(0, b"keep")]
    error = rpc_error(lambda: read(storage, stubs, ino, version=2))  # no version was made
    assert error.code() == grpc.StatusCode.NOT_FOUND


def test_crc_mismatch_on_a_new_inode_does_not_create_it(storage, stubs, ino):
    error = rpc_error(lambda: write(storage, stubs, ino, b"data", crc32=12345))
    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert rpc_error(lambda: read(storage, stubs, ino)).code() == grpc.StatusCode.NOT_FOUND


@pytest.mark.parametrize("version", [0, 3, 2**64 - 1])
def test_reading_a_version_that_does_not_exist_is_not_found(storage, stubs, ino, version):
    write(storage, stubs, ino, b"1")
    write(storage, stubs, ino, b"2")
    for call in (read, stream_read):
        error = rpc_error(lambda call=call: call(storage, stubs, ino, version=version))
        assert error.code() == grpc.StatusCode.NOT_FOUND


def test_reading_a_missing_file_is_not_found(storage, stubs, ino):
    for call in (read, stream_read):
        assert rpc_error(lambda call=call: call(storage, stubs, ino)).code() == grpc.StatusCode.NOT_FOUND


def test_stream_write_must_begin_with_a_header(storage, stubs, ino):
    requests = iter([stubs.hugo.StreamWrite.Request(block=b"no header")])
    error = rpc_error(lambda: storage.StreamWrite(requests, timeout=RPC_TIMEOUT))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert rpc_error(lambda: read(storage, stubs, ino)).code() == grpc.StatusCode.NOT_FOUND


def test_a_second_header_in_a_stream_is_invalid_and_writes_nothing(storage, stubs, ino):
    write(storage, stubs, ino, b"before")
    header = stubs.hugo.StreamWrite.Request(header=stubs.hugo.StreamWrite.Header(ino=ino))
    requests = iter([header, stubs.hugo.StreamWrite.Request(block=b"x"), header])
    error = rpc_error(lambda: storage.StreamWrite(requests, timeout=RPC_TIMEOUT))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert read(storage, stubs, ino) == [(0, b"before")]


def test_an_empty_stream_write_returns_no_indices_and_makes_no_version(storage, stubs, ino):
    write(storage, stubs, ino, b"only")
    assert stream_write(storage, stubs, ino, []) == []
    assert rpc_error(lambda: read(storage, stubs, ino, version=2)).code() == grpc.StatusCode.NOT_FOUND


def test_a_block_larger_than_hugos_32_mib_message_is_refused_and_writes_nothing(storage, stubs, ino):
    data = b"\0" * ((32 << 20) + 1)
    error = rpc_error(lambda: write(storage, stubs, ino, data))
    assert error.code() in (grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.RESOURCE_EXHAUSTED)
    assert rpc_error(lambda: read(storage, stubs, ino)).code() == grpc.StatusCode.NOT_FOUND


def write_with_version(storage, stubs, ino: int, data: bytes, index: int | None = None) -> tuple[int, int]:
    """Write, returning (block_idx, the version named by the `hugo-version` trailer)."""
    request = stubs.hugo.WriteBlock.Request(ino=ino, block_data=data, crc32=crc(data))
    if index is not None:
        request.block_idx = index
    response, call = storage.Write.with_call(request, timeout=RPC_TIMEOUT)
    trailers = dict(call.trailing_metadata())
    return response.block_idx, int(trailers["hugo-version"])


@pytest.mark.parametrize("mib", [8, 32])
def test_blocks_up_to_hugos_32_mib_message_size_are_written_and_read_back(storage, stubs, ino, mib):
    """hugo's gRPC max message size is 32 MiB: a Write of an 8 MiB or a 32 MiB block, then a Read."""
    data = os.urandom(mib << 20)
    assert write(storage, stubs, ino, data) == 0
    assert read(storage, stubs, ino) == [(0, data)]
    assert stream_read(storage, stubs, ino) == [(0, data)]


def test_a_32_mib_block_in_a_stream_write(storage, stubs, ino):
    big, small = os.urandom(32 << 20), b"tail"
    assert stream_write(storage, stubs, ino, [big, small]) == [0, 1]
    assert stream_read(storage, stubs, ino) == [(0, big), (1, small)]


def test_each_write_returns_the_version_it_made_in_the_hugo_version_trailer(storage, stubs, ino):
    assert write_with_version(storage, stubs, ino, b"one") == (0, 1)
    assert write_with_version(storage, stubs, ino, b"two") == (1, 2)
    assert write_with_version(storage, stubs, ino, b"ONE", index=0) == (0, 3)
    requests = [stubs.hugo.StreamWrite.Request(header=stubs.hugo.StreamWrite.Header(ino=ino)),
                stubs.hugo.StreamWrite.Request(block=b"x"), stubs.hugo.StreamWrite.Request(block=b"y")]
    response, call = storage.StreamWrite.with_call(iter(requests), timeout=RPC_TIMEOUT)
    assert list(response.block_idx) == [2, 3]
    assert dict(call.trailing_metadata())["hugo-version"] == "4"
    # the trailer's version is the one history_version reads
    assert read(storage, stubs, ino, version=3) == [(0, b"ONE"), (1, b"two")]
    assert write_with_version(storage, stubs, ino + 20_000_000, b"other file") == (0, 1)  # per file


def test_a_rejected_write_sends_no_version(storage, stubs, ino):
    write(storage, stubs, ino, b"one")
    request = stubs.hugo.WriteBlock.Request(ino=ino, block_data=b"two", crc32=crc(b"two") ^ 1)
    with pytest.raises(grpc.RpcError) as info:
        storage.Write.with_call(request, timeout=RPC_TIMEOUT)
    assert info.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "hugo-version" not in dict(info.value.trailing_metadata() or ())
    assert write_with_version(storage, stubs, ino, b"three") == (1, 2)


def test_a_block_shared_by_files_and_versions_reads_back_everywhere(storage, stubs, ino):
    shared = os.urandom(200_000)
    other = ino + 10_000_000
    write(storage, stubs, ino, shared)
    write(storage, stubs, ino, shared, index=0)  # a new version holding the same block
    stream_write(storage, stubs, other, [shared, shared])
    assert read(storage, stubs, ino, version=1) == [(0, shared)]
    assert read(storage, stubs, ino, version=2) == [(0, shared)]
    assert read(storage, stubs, other) == [(0, shared), (1, shared)]
