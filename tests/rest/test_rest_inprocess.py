"""The REST server in-process over an embedded node, to see the node's state after clients go away."""

import os
import time

import httpx
import pytest

import hoard
from hoard.api.rest import RestServer

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def served(tmp_path):
    with (hoard.Node({"data-dir": str(tmp_path / "data")}) as node, RestServer(node, "127.0.0.1", 0) as server,
          httpx.Client(base_url=server.api_url, timeout=30) as http):
        yield node, http


def wait_until(predicate, timeout=10.0):
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def test_an_abandoned_download_closes_its_node_stream(served):
    node, http = served
    cid = http.post("/data", content=os.urandom(30 << 20)).text
    for _ in range(3):
        with http.stream("GET", f"/data/{cid}") as response:
            pieces = response.iter_raw(1 << 20)
            next(pieces)
    assert wait_until(lambda: not node.components.data.open_streams), node.components.data.open_streams
    assert len(http.get(f"/data/{cid}").content) == 30 << 20


def test_an_abandoned_upload_cancels_its_session(served):
    node, http = served
    before = http.get("/space").json()

    def body():
        for _ in range(20):
            yield os.urandom(1 << 20)
        raise ConnectionAbortedError("gone")

    with pytest.raises((ConnectionAbortedError, httpx.HTTPError)):
        http.post("/data", content=body(), headers={"content-length": str(100 << 20)})
    assert wait_until(lambda: not node.components.data.sessions.uploads and http.get("/space").json() == before)


def test_server_stops_and_the_port_is_free_again(tmp_path):
    with hoard.Node({"data-dir": str(tmp_path / "d")}) as node:
        server = RestServer(node, "127.0.0.1", 0)
        server.start()
        port = server.port
        assert httpx.get(server.api_url + "/space", timeout=30).status_code == 200
        server.stop()
        server.stop()  # idempotent
        again = RestServer(node, "127.0.0.1", port)
        with again:
            assert httpx.get(again.api_url + "/space", timeout=30).status_code == 200
