"""hoard's REST routes for logs (`/logs...`) and data transfers (`/transfer...`) against real node
processes: what each answers, their NDJSON streams, their errors, and the same token and Host
checks as every other route."""

from __future__ import annotations

import base64
import json
import os
import struct
import threading

import httpx
import pytest
from harness import Daemon

pytestmark = pytest.mark.timeout(300)


def framed(*records: bytes) -> bytes:
    return b"".join(struct.pack(">I", len(r)) + r for r in records)


def lines(response: httpx.Response) -> list[dict]:
    return [json.loads(line) for line in response.text.splitlines() if line.strip()]


def test_create_open_list_and_writable(http):
    created = http.post("/logs", json={"metadata": [{"id": "SYN", "value": base64.b64encode(b"text").decode()}]})
    assert created.status_code == 200, created.text
    log = created.json()
    name = log["name"]
    assert len(name) == 43 and log["nrecs"] == 0 and log["mode"] == "ra" and log["writable"] is True
    assert {"id": int.from_bytes(b"SYN", "big"), "value": base64.b64encode(b"text").decode()} in log["metadata"]
    assert len(base64.b64decode(log["publicKey"])) == 32
    assert {"name": name, "nrecs": 0} in http.get("/logs").json()
    opened = http.get(f"/logs/{name}", params={"mode": "ro"}).json()
    assert (opened["name"], opened["mode"], opened["publicKey"]) == (name, "ro", log["publicKey"])
    assert http.get(f"/logs/{name}/writable").json() == {"writable": True}
    assert http.get("/logs/someone-elses-log/writable").json() == {"writable": False}


def test_append_then_read_as_ndjson(http):
    name = http.post("/logs", json={"name": "rest-append"}).json()["name"]
    appended = http.post(f"/logs/{name}/records", content=framed(b"one", b"", b"\xff three"),
                         headers={"content-type": "application/octet-stream"})
    assert appended.status_code == 200, appended.text
    events = appended.json()
    assert [(e["type"], e["stat"], e["record"]["recno"]) for e in events] == [("created", 201, n) for n in (1, 2, 3)]
    assert all("data" not in e["record"] and len(base64.b64decode(e["record"]["sig"])) == 64 for e in events)
    read = http.get(f"/logs/{name}/records")
    assert read.headers["content-type"].startswith("application/x-ndjson")
    got = lines(read)
    assert [e["type"] for e in got] == ["data", "data", "data", "eos"]
    assert [base64.b64decode(e["record"]["data"]) for e in got[:3]] == [b"one", b"", b"\xff three"]
    assert got[1]["record"]["prevhash"] != got[0]["record"]["prevhash"]  # the chain, as the node stores it
    last = lines(http.get(f"/logs/{name}/records", params={"start": -1, "count": 1}))
    assert [(e["type"], e.get("record", {}).get("recno")) for e in last] == [("data", 3), ("eos", None)]
    at = lines(http.get(f"/logs/{name}/records", params={"ts": got[1]["record"]["ts"], "count": 1}))
    assert at[0]["record"]["recno"] == 2


def test_a_subscription_streams_new_records_then_eos(http):
    name = http.post("/logs", json={"name": "rest-follow"}).json()["name"]
    got: list[dict] = []
    opened = threading.Event()

    def follow() -> None:
        with http.stream("GET", f"/logs/{name}/records", params={"start": 0, "count": 2, "follow": "true"}) as r:
            assert r.status_code == 200
            opened.set()
            got.extend(json.loads(line) for line in r.iter_lines() if line.strip())

    reader = threading.Thread(target=follow)
    reader.start()
    assert opened.wait(30)
    for data in (b"first", b"second"):  # the subscription may begin after either: both are read back
        assert http.post(f"/logs/{name}/records", content=framed(data)).status_code == 200
    reader.join(60)
    assert not reader.is_alive()
    assert [e["type"] for e in got if e["type"] != "ping"] == ["data", "data", "eos"]
    assert [base64.b64decode(e["record"]["data"]) for e in got if e["type"] == "data"] == [b"first", b"second"]


def test_log_errors_answer_before_any_record(http):
    name = http.post("/logs", json={"name": "rest-errors"}).json()["name"]
    past = http.get(f"/logs/{name}/records", params={"start": 5})
    assert past.status_code == 404 and past.headers["x-hoard-error"] == "404" and "past the last" in past.text
    missing = http.get("/logs/nobody-has-this-log")
    assert missing.status_code == 404 and "no log named" in missing.text
    assert http.post("/logs", json={"name": "rest-errors"}).status_code == 409
    truncated = http.post(f"/logs/{name}/records", content=b"\x00\x00\x00\x09abc")
    assert truncated.status_code == 400 and "past the end" in truncated.text
    assert http.get(f"/logs/{name}/records", params={"count": -1}).status_code == 400
    assert http.get(f"/logs/{name}", params={"mode": "rw"}).status_code == 400
    bad_meta = http.post("/logs", json={"metadata": [{"id": 0, "value": ""}]})
    assert bad_meta.status_code == 400 and bad_meta.headers["x-hoard-error"] == "400"
    assert http.get(f"/logs/{name}/records").status_code == 404  # a multiread of an empty log


def test_transfer_policy_and_channel_errors(http):
    assert http.get("/transfer/channels").json() == []
    assert http.get("/transfer/policy").json() == {"push": False, "pull": True, "peers": None}
    changed = http.post("/transfer/policy", json={"push": True})
    assert changed.json() == {"push": True, "pull": True, "peers": None}
    assert http.get("/transfer/policy").json()["push"] is True
    assert http.post("/transfer/policy", json={"push": False}).json()["push"] is False
    assert http.post("/transfer/policy", json={"peers": ["not a peer"]}).status_code == 400
    bad = http.get("/transfer/channels/nonsense")
    assert bad.status_code == 400 and "not a channel id" in bad.text
    peer = "12D3KooWQEKAeG9bj5uua6knrZSFo6vczQJZw2pXHBJhKrviuboZ"
    unknown = http.get(f"/transfer/channels/{peer}-{peer}-7")
    assert unknown.status_code == 404 and unknown.headers["x-hoard-error"] == "not-found"
    assert http.get(f"/transfer/channels/{peer}-{peer}-7/wait").status_code == 404
    assert http.post("/transfer/channels", json={"peer": peer, "cid": "x", "direction": "sideways"}).status_code == 400


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    nodes = [Daemon(tmp_path_factory.mktemp(f"rest-transfer-{n}"), {"dataset-format": "hoard"}).start()
             for n in ("a", "b")]
    yield nodes
    for node in nodes:
        assert node.stop() == 0, node.stderr_path.read_text(errors="replace")[-3000:]


def test_a_pull_with_its_event_stream(pair):
    a, b = pair
    with httpx.Client(base_url=a.api, timeout=60) as http_a, httpx.Client(base_url=b.api, timeout=60) as http_b:
        cid = http_b.post("/data", content=os.urandom(300_000)).text
        opened = http_a.post("/transfer/channels", json={
            "peer": b.info["peerId"], "cid": cid, "voucher": "rest please", "addrs": b.info["addrs"],
            "selector": {"range": [0, 2]}})
        assert opened.status_code == 200, opened.text
        state = opened.json()
        assert state["isPull"] and state["selector"] == {"range": [0, 2]} and state["status"] in (
            "Requested", "Ongoing", "Completed", "TransferFinished", "Completing", "Finalizing")
        assert base64.b64decode(state["vouchers"][0]["data"]) == b"rest please"
        with http_a.stream("GET", f"/transfer/channels/{state['id']}/wait") as waited:
            assert waited.status_code == 200
            got = [json.loads(line) for line in waited.iter_lines() if line.strip()]
        final = got[-1]
        assert final["type"] == "channel" and final["channel"]["status"] == "Completed"
        events = [e["event"] for e in got if e["type"] == "event"]
        assert all(e["channelId"] == state["id"] and e["timestamp"] > 0 for e in events)
        channel = final["channel"]
        assert len(channel["receivedCids"]) == channel["receivedBlocks"] > 0
        assert http_a.get(f"/transfer/channels/{state['id']}").json() == channel
        assert [c["id"] for c in http_a.get("/transfer/channels").json()] == [state["id"]]
        again = http_a.get(f"/transfer/channels/{state['id']}/wait", params={"timeout": 5})
        assert lines(again) == [{"type": "channel", "channel": channel}]  # ended already: at once
        paused = http_a.post(f"/transfer/channels/{state['id']}/pause")
        assert paused.status_code == 409 and "Invalid transition" in paused.text
        assert http_b.get(f"/transfer/channels/{state['id']}").json()["sent"] == channel["received"]


def test_the_routes_need_the_token_and_a_local_host(tmp_path):
    with Daemon(tmp_path / "t", config={"api-token": "tok-for-logs"}) as node:
        for method, path in (("GET", "/logs"), ("POST", "/logs"), ("GET", "/transfer/channels"),
                             ("GET", "/transfer/policy"), ("GET", "/logs/x/records")):
            assert httpx.request(method, node.api + path, timeout=30).status_code == 401, path
        auth = {"authorization": "Bearer tok-for-logs"}
        assert httpx.get(node.api + "/logs", headers=auth, timeout=30).json() == []
        rebound = httpx.get(node.api + "/logs", headers={**auth, "host": "evil.example"}, timeout=30)
        assert rebound.status_code == 403
