"""Network downloads between two node processes over the bulk path (issue 16), and the fallback."""

import os

import pytest

pytestmark = pytest.mark.timeout(120)

HOARD_FORMAT = {"dataset-format": "hoard"}  # hoard's datasets, fetched on /hoard/blocks/1


def test_a_network_download_goes_over_the_bulk_path(spawn, tmp_path):
    a, b = spawn("a", **HOARD_FORMAT), spawn("b", **HOARD_FORMAT)
    data = os.urandom(6_000_000)
    cid = a.upload_bytes(data)
    b.call("connect", a.peer_id, a.addrs)
    out = tmp_path / "out.bin"
    assert b.call("download_stream", cid, str(out), 0, False) == len(data)
    assert out.read_bytes() == data
    fetcher, provider = b.call("net.exchange_stats"), a.call("net.exchange_stats")
    assert fetcher["bulk"]["opened"]["bulk"] >= 1 and fetcher["bulk"]["opened"]["fallback"] == 0
    assert provider["bulk"]["served"]["connections"] >= 1
    assert provider["bulk"]["served"]["bytes_sent"] >= len(data)
    assert provider["blocks"]["bytes_sent"] < len(data)  # the libp2p stream carried at most the manifest


def test_a_provider_without_the_bulk_path_is_fetched_over_the_libp2p_stream(spawn, tmp_path):
    a = spawn("a", bulk=False, **HOARD_FORMAT)
    b = spawn("b", **{"bulk-port": 0}, **HOARD_FORMAT)
    data = os.urandom(3_000_000)
    cid = a.upload_bytes(data)
    b.call("connect", a.peer_id, a.addrs)
    out = tmp_path / "out.bin"
    assert b.call("download_stream", cid, str(out), 0, False) == len(data)
    assert out.read_bytes() == data
    assert "bulk" not in a.call("net.exchange_stats")
    fetcher = b.call("net.exchange_stats")["bulk"]
    assert fetcher["opened"]["bulk"] == 0 and fetcher["opened"]["fallback"] >= 1
    assert a.call("net.exchange_stats")["blocks"]["bytes_sent"] >= len(data)
