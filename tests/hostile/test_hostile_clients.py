"""Heavy and slow REST clients against a real node process: slow headers, an upload flood.
The node keeps answering REST and gRPC within 2 s and its memory stays bounded."""

from __future__ import annotations

import socket
import threading
import time

import httpx
import pytest
from _hostile import assert_healthy, watch
from harness import Daemon

from hoard.limits import REST_HEADER_TIMEOUT, REST_MAX_UPLOADS

pytestmark = pytest.mark.timeout(300)


@pytest.fixture
def node(tmp_path):
    with Daemon(tmp_path / "node") as proc:
        yield proc
        assert proc.proc is not None and proc.proc.poll() is None, "the node died during the attack"


def test_slow_clients_are_dropped_and_do_not_crowd_out_others(node):
    host, port = node.url.removeprefix("http://").rsplit(":", 1)
    sockets = []
    for _ in range(300):
        sock = socket.create_connection((host, int(port)), timeout=10)
        sock.sendall(b"GET /api/storage/v1/space HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")  # and never more
        sockets.append(sock)
    opened = time.monotonic()
    try:
        health = watch(node, lambda: time.monotonic() - opened > 3, min_rounds=5, max_seconds=30)
        assert_healthy(health)
        closed = 0
        for sock in sockets:  # the server closes each after the header timeout
            sock.settimeout(max(REST_HEADER_TIMEOUT + 10 - (time.monotonic() - opened), 1))
            try:
                closed += sock.recv(100) == b""
            except (TimeoutError, OSError):
                pass
        assert closed == len(sockets)
    finally:
        for sock in sockets:
            sock.close()


def test_an_upload_flood_is_capped(node):
    body = b"u" * (4 << 20)
    statuses: list[int] = []
    lock = threading.Lock()

    def upload() -> None:
        with httpx.Client(base_url=node.api, timeout=120) as http:
            status = http.post("/data", content=body).status_code
        with lock:
            statuses.append(status)

    threads = [threading.Thread(target=upload) for _ in range(60)]
    for thread in threads:
        thread.start()
    health = watch(node, lambda: all(not t.is_alive() for t in threads), min_rounds=5, max_seconds=180)
    for thread in threads:
        thread.join(120)
    assert_healthy(health)
    assert len(statuses) == 60 and set(statuses) <= {200, 503}, statuses
    assert statuses.count(200) >= REST_MAX_UPLOADS
    refused = httpx.post(node.api + "/data", content=b"x" * 100, params={"blockSize": 1}, timeout=30)
    assert refused.status_code == 400
