"""Nodes as a network, each node its own process on 127.0.0.1 (issue 3)."""

import hashlib

import pytest

pytestmark = pytest.mark.timeout(180)


def digest(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_download_by_cid_from_a_connected_node(spawn, random_bytes, tmp_path):
    a, b = spawn("a"), spawn("b")
    data = random_bytes(50_000_000)
    cid = a.upload_bytes(data)
    b.call("connect", a.peer_id, a.addrs)
    assert b.call("download_manifest", cid)["datasetSize"] == 50_000_000
    out = tmp_path / "out.bin"
    assert b.call("download_stream", cid, str(out), 0, False) == len(data)
    assert out.read_bytes() == data
    assert b.call("exists", cid) is False  # a network read streams; it does not store


def test_node_finds_provider_through_the_dht(spawn, random_bytes, tmp_path):
    b = spawn("b")
    a = spawn("a", **{"bootstrap-node": [b.spr]})
    data = random_bytes(3_000_000)
    cid = a.upload_bytes(data)
    c = spawn("c", **{"bootstrap-node": [b.spr]})  # C knows only B
    out = tmp_path / "out.bin"
    assert c.call("download_stream", cid, str(out), 0, False) == len(data)
    assert out.read_bytes() == data


def test_connect_without_addresses_uses_the_dht(spawn):
    b = spawn("b")
    a = spawn("a", **{"bootstrap-node": [b.spr]})
    c = spawn("c", **{"bootstrap-node": [b.spr]})
    c.call("connect", a.peer_id)
    assert a.peer_id in c.call("net.peers")
    info = c.call("peer_debug", a.peer_id)
    assert info["peerId"] == a.peer_id and info["addresses"]
    with pytest.raises(RuntimeError, match="peer not found"):
        c.call("connect", "12D3KooWQEKAeG9bj5uua6knrZSFo6vczQJZw2pXHBJhKrviuboZ")
    with pytest.raises(RuntimeError, match="invalid address"):
        c.call("connect", a.peer_id, ["not/a/multiaddr"])


def test_fetch_stores_in_background_with_progress(spawn, random_bytes, tmp_path):
    a, b = spawn("a"), spawn("b")
    data = random_bytes(8_000_000)
    cid = a.upload_bytes(data)
    b.call("connect", a.peer_id, a.addrs)
    manifest = b.call("fetch", cid)
    assert manifest["datasetSize"] == len(data)
    import time

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        fetches = b.call("fetches")
        if fetches and not fetches[0]["active"]:
            break
        time.sleep(0.05)  # polling the observable outcome, bounded by the deadline
    assert fetches[0]["received"] == fetches[0]["total"] == -(-len(data) // manifest["blockSize"])
    assert "error" not in fetches[0]
    out = tmp_path / "local.bin"
    assert b.call("download_stream", cid, str(out)) == len(data)  # now local
    assert out.read_bytes() == data


def test_download_draws_from_two_providers_and_survives_losing_one(spawn, random_bytes, tmp_path):
    data = random_bytes(64_000_000)
    a1, a2 = spawn("a1"), spawn("a2")
    cid = a1.upload_bytes(data)
    assert a2.upload_bytes(data) == cid
    b = spawn("b")
    b.call("connect", a1.peer_id, a1.addrs)
    b.call("connect", a2.peer_id, a2.addrs)
    out = tmp_path / "out.bin"
    b.send("download_slowly", cid, str(out))
    assert "progress" in b.read()
    import time

    deadline = time.monotonic() + 60
    while a1.call("served")["blocks"] < 20 and time.monotonic() < deadline:
        time.sleep(0.02)  # wait (bounded) until B draws data from a1 too, then kill a1 mid-download
    served_by_a1 = a1.call("served")["blocks"]
    a1.kill()
    answer = b.read()
    assert answer.get("ok") == len(data), answer
    assert out.read_bytes() == data
    assert served_by_a1 > 0 and a2.call("served")["blocks"] > 0


def test_corrupted_blocks_are_rejected_and_the_bad_peer_logged(spawn, random_bytes, tmp_path):
    data = random_bytes(16_000_000)  # enough batches that both providers are asked for data
    bad, good = spawn("bad"), spawn("good")
    cid = bad.upload_bytes(data)
    assert good.upload_bytes(data) == cid
    bad.call("corrupt", cid)
    b = spawn("b")
    b.call("connect", bad.peer_id, bad.addrs)
    b.call("connect", good.peer_id, good.addrs)
    out = tmp_path / "out.bin"
    assert b.call("download_stream", cid, str(out), 0, False) == len(data)
    assert out.read_bytes() == data
    assert bad.peer_id in b.log()  # the bad peer is named in B's log (WARNING from the fetcher)


def test_restart_keeps_peer_id_and_data_and_readvertises(spawn, random_bytes, tmp_path):
    b = spawn("b")
    a = spawn("a", **{"bootstrap-node": [b.spr]})
    data = random_bytes(2_000_000)
    cid = a.upload_bytes(data)
    peer = a.peer_id
    a.close()
    a2 = spawn("a", **{"bootstrap-node": [b.spr]})
    assert a2.peer_id == peer
    assert a2.call("exists", cid)
    c = spawn("c", **{"bootstrap-node": [b.spr]})
    out = tmp_path / "out.bin"
    assert c.call("download_stream", cid, str(out), 0, False) == len(data)
    assert out.read_bytes() == data
