"""REST and gRPC safety against a real in-process server: Host, Origin, token, upload bounds,
slow clients; and the gRPC token interceptor."""

from __future__ import annotations

import socket
import threading
import time

import grpc
import httpx
import pytest

import hoard
from hoard.api.grpc import serve
from hoard.api.grpc.client import GrpcClient
from hoard.api.rest import RestServer
from hoard.errors import HoardError
from hoard.limits import REST_MAX_UPLOADS, REST_MIN_BLOCK_SIZE

pytestmark = pytest.mark.timeout(120)

TOKEN = "s3cret-token"


@pytest.fixture
def plain(tmp_path):
    """A node without a token; CORS allows one origin, and one extra Host name."""
    config = {"data-dir": str(tmp_path / "data"), "api-cors-origin": ["http://app.example:3000"],
              "api-allowed-hosts": ["node.internal"]}
    with (hoard.Node(config) as node, RestServer(node, "127.0.0.1", 0) as server,
          httpx.Client(base_url=server.api_url, timeout=30) as http):
        yield server, http


@pytest.fixture
def guarded(tmp_path):
    """A node requiring a token (from a file), with REST and gRPC servers."""
    (tmp_path / "token").write_text(TOKEN + "\n")
    config = {"data-dir": str(tmp_path / "data"), "api-token-file": str(tmp_path / "token")}
    with hoard.Node(config) as node, RestServer(node, "127.0.0.1", 0) as server:
        grpc_server, port = serve(node, "127.0.0.1", 0)
        try:
            yield server, f"127.0.0.1:{port}"
        finally:
            grpc_server.stop(grace=1).wait()


def test_foreign_host_names_are_refused(plain):
    server, http = plain
    assert http.get("/debug/info", headers={"host": "evil.example"}).status_code == 403
    assert http.delete("/data/zDvZRwzm", headers={"host": "evil.example:8080"}).status_code == 403
    port = server.port
    for host in (f"localhost:{port}", f"127.0.0.1:{port}", f"node.internal:{port}", f"a.localhost:{port}"):
        assert http.get("/debug/info", headers={"host": host}).status_code == 200, host


def test_cross_origin_state_changes_are_refused_unless_allowed(plain):
    server, http = plain
    evil = {"origin": "http://evil.example"}
    assert http.post("/data", content=b"x" * 10, headers=evil).status_code == 403
    assert http.post("/debug/chronicles/loglevel", params={"level": "DEBUG"}, headers=evil).status_code == 403
    assert http.post("/data", content=b"x", headers={"sec-fetch-site": "cross-site"}).status_code == 403
    assert http.get("/data", headers=evil).status_code == 200  # reading: no CORS headers, so a page cannot
    assert "access-control-allow-origin" not in http.get("/data", headers=evil).headers
    preflight = http.options("/data", headers={**evil, "access-control-request-method": "POST"})
    assert preflight.status_code == 403
    allowed = {"origin": "http://app.example:3000"}
    ok = http.post("/data", content=b"y" * 10, headers=allowed)
    assert ok.status_code == 200 and ok.headers["access-control-allow-origin"] == "http://app.example:3000"
    preflight = http.options("/data", headers={**allowed, "access-control-request-method": "POST",
                                               "access-control-request-headers": "content-type"})
    assert preflight.status_code == 204 and "POST" in preflight.headers["access-control-allow-methods"]
    same = {"origin": server.url}  # the status page posting to its own node
    assert http.post("/data", content=b"z" * 10, headers=same).status_code == 200


def test_small_block_sizes_are_refused(plain):
    _server, http = plain
    refused = http.post("/data", content=b"x" * 100, params={"blockSize": 1})
    assert refused.status_code == 400 and str(REST_MIN_BLOCK_SIZE) in refused.text
    for size in (0, REST_MIN_BLOCK_SIZE):
        assert http.post("/data", content=b"x" * 100, params={"blockSize": size}).status_code == 200


def test_concurrent_uploads_are_capped(plain):
    server, http = plain
    release = threading.Event()
    started = threading.Semaphore(0)
    results: list[int] = []

    def slow_body():
        yield b"a" * 1000
        started.release()
        release.wait(60)
        yield b"b" * 1000

    def upload():
        with httpx.Client(base_url=server.api_url, timeout=60) as client:
            results.append(client.post("/data", content=slow_body()).status_code)

    threads = [threading.Thread(target=upload) for _ in range(REST_MAX_UPLOADS)]
    for thread in threads:
        thread.start()
    for _ in threads:
        assert started.acquire(timeout=30)
    try:
        deadline = time.monotonic() + 30
        while True:  # the server counts an upload once its request reached the app
            busy = http.post("/data", content=b"c" * 10)
            if busy.status_code == 503 or time.monotonic() > deadline:
                break
        assert busy.status_code == 503 and busy.headers["retry-after"] == "1"
        for other in ("/blobs", "/files/7/stream", "/ipfs/add", "/ipfs/car"):  # every body upload counts
            assert http.post(other, content=b"c" * 10).status_code == 503, other
        assert http.get("/data").status_code == 200  # everything else still answers
    finally:
        release.set()
        for thread in threads:
            thread.join(60)
    assert results == [200] * REST_MAX_UPLOADS
    assert http.post("/data", content=b"d" * 10).status_code == 200


def test_a_client_slow_to_send_its_headers_is_disconnected(plain, monkeypatch):
    import hoard.api.rest.server as rest_server

    monkeypatch.setattr(rest_server, "REST_HEADER_TIMEOUT", 0.5)
    server, _http = plain
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(b"GET /api/storage/v1/data HTTP/1.1\r\nHost: 127.0.0.1\r\n")  # never finished
        sock.settimeout(10)
        started = time.monotonic()
        assert sock.recv(100) == b""  # closed by the server
        assert time.monotonic() - started < 9


def test_a_stalled_upload_body_is_dropped(plain, monkeypatch):
    from hoard.api.rest import security

    monkeypatch.setattr(security, "REST_BODY_IDLE_TIMEOUT", 0.5)
    server, http = plain
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(b"POST /api/storage/v1/data HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 100000\r\n\r\n"
                     + b"x" * 10)
        sock.settimeout(10)
        data = b""
        while chunk := sock.recv(4096):  # the server answers (or closes) instead of waiting
            data += chunk
    assert not data or not data.startswith(b"HTTP/1.1 200")
    assert http.get("/space").json()["quotaUsedBytes"] == 0  # nothing of it was kept


def test_a_token_is_required_by_rest_and_grpc(guarded):
    server, grpc_address = guarded
    with httpx.Client(base_url=server.api_url, timeout=30) as http:
        refused = http.get("/data")
        assert refused.status_code == 401 and refused.headers["www-authenticate"].startswith("Bearer")
        assert http.get("/data", headers={"authorization": "Bearer wrong"}).status_code == 401
        assert http.get("/data", headers={"authorization": f"Bearer {TOKEN}"}).status_code == 200
    with GrpcClient(grpc_address) as client, pytest.raises(HoardError):
        client.blobs.put(b"data")
    with grpc.insecure_channel(grpc_address) as channel:
        call = channel.unary_unary("/tvix.castore.v1.BlobService/Stat")
        with pytest.raises(grpc.RpcError) as info:
            call(b"", timeout=10)
        assert info.value.code() == grpc.StatusCode.UNAUTHENTICATED
    with GrpcClient(grpc_address, token=TOKEN) as client:
        stat = client.blobs.put(b"data")
        assert client.blobs.stat(stat.digest).size == 4
