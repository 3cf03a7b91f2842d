"""Two node processes on 127.0.0.1: connect, peer info, and data from the network through REST."""

import os
import time

import httpx
import pytest
from harness import Daemon

pytestmark = pytest.mark.timeout(300)


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    """Nodes A and B, A connected to B through A's REST API."""
    root = tmp_path_factory.mktemp("pair")
    with (Daemon(root / "a") as a, Daemon(root / "b") as b,
          httpx.Client(base_url=a.api, timeout=120) as http_a, httpx.Client(base_url=b.api, timeout=120) as http_b):
        response = http_a.get(f"/connect/{b.info['peerId']}", params={"addrs": b.info["addrs"]})
        assert response.status_code == 200 and response.text == "Successfully connected to peer"
        yield a, b, http_a, http_b


def wait_inactive(http, cid, download_id, timeout=120.0):
    deadline = time.monotonic() + timeout
    while True:
        progress = http.get(f"/data/{cid}/network/progress/{download_id}").json()
        if not progress["active"] or time.monotonic() > deadline:
            return progress
        time.sleep(0.05)


def test_debug_peer_knows_the_connected_peer(pair):
    _a, b, http_a, _ = pair
    record = http_a.get(f"/debug/peer/{b.info['peerId']}").json()
    assert record["peerId"] == b.info["peerId"]
    assert set(b.info["addrs"]) <= {str(x) for x in record["addresses"]}


def test_network_manifest_and_stream_come_from_the_peer(pair):
    _, _, http_a, http_b = pair
    data = os.urandom(1_500_000)
    cid = http_b.post("/data", content=data, headers={"content-disposition": 'attachment; filename="far.bin"'}).text
    assert http_a.get(f"/data/{cid}").status_code == 404  # not local on A
    body = http_a.get(f"/data/{cid}/network/manifest").json()
    assert body["cid"] == cid and body["manifest"]["filename"] == "far.bin"
    stream = http_a.get(f"/data/{cid}/network/stream")
    assert stream.status_code == 200 and stream.content == data
    assert stream.headers["content-disposition"] == 'attachment; filename="far.bin"'
    assert stream.headers["content-length"] == "1500000"


def test_background_fetch_from_the_peer_reports_progress_and_stores_the_dataset(pair):
    _, _, http_a, http_b = pair
    data = os.urandom(2_000_000)
    cid = http_b.post("/data", content=data).text
    started = http_a.post(f"/data/{cid}/network").json()
    assert started["cid"] == cid and started["manifest"]["datasetSize"] == 2_000_000
    progress = wait_inactive(http_a, cid, started["downloadId"])
    assert progress == {"active": False, "received": 31, "total": 31, "bytes": 2_000_000}
    assert http_a.get(f"/data/{cid}").content == data
    assert http_a.get(f"/data/{cid}/exists").json() == {cid: True}


def test_a_background_fetch_can_be_cancelled(pair):
    _, _, http_a, http_b = pair
    cid = http_b.post("/data", content=os.urandom(64 << 20)).text
    download_id = http_a.post(f"/data/{cid}/network").json()["downloadId"]
    cancel = http_a.delete(f"/data/{cid}/network/{download_id}")
    progress = wait_inactive(http_a, cid, download_id)
    if cancel.status_code == 204:
        assert progress["error"] == "cancelled" and progress["received"] < progress["total"]
        assert http_a.get(f"/data/{cid}/exists").json() == {cid: False}
    else:  # the fetch had already finished: nothing to cancel
        assert cancel.status_code == 404 and progress["received"] == progress["total"]


def test_status_page_lists_the_peer(pair):
    a, b, _, _ = pair
    page = httpx.get(a.url + "/", timeout=30).text
    assert b.info["peerId"] in page and a.info["addrs"][0] in page
