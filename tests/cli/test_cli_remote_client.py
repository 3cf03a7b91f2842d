"""`NodeClient` (hoard/api/client.py), the REST client with `hoard.Node`'s operations and typed
results, against a real node process: progress callbacks, pushed uploads, cancellation, the
same result types as an embedded node, and HTTP errors mapped back to hoard errors."""

import os
import time

import httpx
import pytest

from hoard.api.client import NodeClient, api_base, error_from_response
from hoard.errors import (
    HoardError,
    InvalidArgumentError,
    InvalidCidError,
    LogError,
    NotFoundError,
    QuotaExceededError,
    StateError,
)
from hoard.node.results import DebugInfo, Space, VerifyReport

pytestmark = pytest.mark.timeout(300)


@pytest.fixture
def remote(running):
    with NodeClient(running.url) as node:
        yield node


def test_upload_file_and_download_report_progress(remote, tmp_path):
    src = tmp_path / "f.bin"
    data = os.urandom(3_500_000)
    src.write_bytes(data)
    sent = []
    cid = remote.upload_file(remote.upload_init(str(src)), on_progress=sent.append)
    assert sum(sent) == len(data) and len(sent) > 1
    received = []
    assert remote.download_stream(cid, None, 0, True, on_progress=received.append) == len(data)
    assert b"".join(received) == data


def test_pushed_upload_streams_chunks(remote):
    session = remote.upload_init("pushed.txt")
    for i in range(20):
        remote.upload_chunk(session, bytes([i]) * 100_000)
    cid = remote.upload_finalize(session)
    manifest = remote.download_manifest(cid)
    assert manifest.dataset_size == 2_000_000 and manifest.filename == "pushed.txt"
    assert manifest.mimetype == "text/plain"
    assert [d.manifest for d in remote.list() if d.cid == cid] == [manifest]


def test_empty_pushed_upload_is_refused_as_logos_refuses_it(remote):
    before = remote.space()
    with pytest.raises(InvalidArgumentError, match="empty"):
        remote.upload_finalize(remote.upload_init("empty.bin"))
    after = remote.space()
    assert (after.total_blocks, after.quota_used_bytes) == (before.total_blocks, before.quota_used_bytes)


def test_cancelled_upload_stores_nothing(remote):
    before = remote.space()
    session = remote.upload_init("cancelled.bin")
    for _ in range(10):
        remote.upload_chunk(session, os.urandom(1 << 20))
    remote.upload_cancel(session)
    deadline = time.monotonic() + 30  # the node drops the blocks when it sees the body cut short
    while remote.space() != before and time.monotonic() < deadline:
        time.sleep(0.05)
    assert remote.space() == before


def test_download_to_a_file_replaces_it_atomically(remote, tmp_path):
    cid = remote.upload_finalize(_pushed(remote, b"abc" * 1000))
    target = tmp_path / "t.bin"
    target.write_bytes(b"old")
    assert remote.download_stream(cid, str(target)) == 3000
    assert target.read_bytes() == b"abc" * 1000


def test_download_to_an_unwritable_path_is_invalid_argument(remote, tmp_path):
    cid = remote.upload_finalize(_pushed(remote, b"x"))
    with pytest.raises(InvalidArgumentError):
        remote.download_stream(cid, str(tmp_path / "no" / "such" / "dir" / "f"))


def test_errors_map_back_to_hoard_errors(remote):
    with pytest.raises(InvalidCidError):
        remote.exists("bad")
    with pytest.raises(NotFoundError):
        remote.download_manifest("zdqAuPSaNbU6GzVdi2k6NyZifuoA44h1x4crFgnnSjh59yPzF")
    with pytest.raises(InvalidArgumentError):
        remote.log_level("LOUD")


def test_fetch_start_progress_cancel(remote):
    cid = remote.upload_finalize(_pushed(remote, os.urandom(70_000)))
    started = remote.fetch_start(cid)
    assert started.cid == cid and remote.fetch_progress(started.download_id, cid).received == 2
    with pytest.raises(NotFoundError):
        remote.fetch_cancel(started.download_id, cid)


def test_results_are_the_typed_values_of_the_node(remote):
    space, debug = remote.space(), remote.debug()
    assert isinstance(space, Space) and space.quota_max_bytes > 0
    assert isinstance(debug, DebugInfo) and debug.peer_id == remote.peer_id() and debug.spr == remote.spr()
    cid = remote.upload_finalize(_pushed(remote, b"verify me"))
    assert remote.verify(cid) == VerifyReport(cid, 1, 9)


@pytest.mark.parametrize("status, code, expected", [
    (400, "invalid-cid", InvalidCidError), (404, "not-found", NotFoundError), (507, "quota", QuotaExceededError),
    (409, "state", StateError), (404, None, NotFoundError), (507, None, QuotaExceededError), (422, None, InvalidArgumentError),
    (418, None, HoardError), (404, "404", LogError),
])
def test_error_from_response(status, code, expected):
    headers = {"x-hoard-error": code} if code else {}
    error = error_from_response(httpx.Response(status, text="what happened", headers=headers))
    assert type(error) is expected and error.message == "what happened"


@pytest.mark.parametrize("url, base", [
    ("http://127.0.0.1:8080", "http://127.0.0.1:8080/api/storage/v1"),
    ("127.0.0.1:8080/", "http://127.0.0.1:8080/api/storage/v1"),
    ("http://h:1/api/codex/v1/", "http://h:1/api/codex/v1"),
])
def test_api_base(url, base):
    assert api_base(url) == base


def _pushed(remote, data):
    session = remote.upload_init("")
    remote.upload_chunk(session, data)
    return session
