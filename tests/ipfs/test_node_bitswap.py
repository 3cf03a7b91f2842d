"""A hoard node process and a real kubo peer exchange blocks by bitswap (issue 14)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from harness import NodeProcess

from ipfs.peers import HeliaPeer, KuboPeer

pytestmark = pytest.mark.timeout(180)


@pytest.fixture
def node(tmp_path: Path):
    proc = NodeProcess(tmp_path / "node")
    try:
        yield proc
    finally:
        proc.close()


def _kubo_addr(kubo: KuboPeer) -> tuple[str, list[str]]:
    addr = kubo.info.addr
    return kubo.info.peer_id, [addr[: addr.index("/p2p/")]]


def test_kubo_fetches_by_bitswap_a_file_added_to_a_hoard_node(node: NodeProcess, kubo: KuboPeer,
                                                               tmp_path: Path) -> None:
    data = os.urandom(1_500_000)
    (tmp_path / "src.bin").write_bytes(data)
    root = node.call("ipfs.add", str(tmp_path / "src.bin"))
    kubo.connect(f"{node.addrs[0]}/p2p/{node.peer_id}")
    kubo.download(root["cid"], tmp_path / "out", timeout=60)
    assert (tmp_path / "out").read_bytes() == data
    served = node.call("exchange_stats")["bitswap"]
    assert served["blocks_sent"] >= root["blocks"] and served["bytes_sent"] >= len(data)


def test_a_hoard_node_downloads_a_file_added_in_kubo_from_the_network(node: NodeProcess, kubo: KuboPeer,
                                                                      tmp_path: Path) -> None:
    data = os.urandom(3_000_000)  # CIDv0, twelve dag-pb leaves under one root, streamed in order
    (tmp_path / "theirs.bin").write_bytes(data)
    cid = kubo.add(tmp_path / "theirs.bin")
    node.call("connect", *_kubo_addr(kubo))
    out = tmp_path / "out.bin"
    assert node.call("download_stream", cid, str(out), 0, False) == len(data)
    assert out.read_bytes() == data
    assert node.call("exists", cid) is False  # a network read does not store
    stats = node.call("exchange_stats")["bitswap"]
    assert stats["blocks_received"] >= 13 and stats["bytes_received"] >= len(data)


def test_a_hoard_node_downloads_a_raw_leaves_file_from_helia(node: NodeProcess, helia: HeliaPeer,
                                                             tmp_path: Path) -> None:
    data = os.urandom(2_500_000)  # CIDv1, raw leaves
    (tmp_path / "helia.bin").write_bytes(data)
    cid = helia.add_file(tmp_path / "helia.bin")
    addr = helia.info.addr
    node.call("connect", helia.info.peer_id, [addr[: addr.index("/p2p/")]])
    out = tmp_path / "out.bin"
    assert node.call("download_stream", cid, str(out), 0, False) == len(data)
    assert out.read_bytes() == data


def test_a_network_read_of_a_unixfs_directory_is_refused(node: NodeProcess, kubo: KuboPeer, tmp_path: Path) -> None:
    folder = tmp_path / "dir"
    folder.mkdir()
    (folder / "a.txt").write_bytes(b"a")
    cid = kubo.add(folder)
    node.call("connect", *_kubo_addr(kubo))
    with pytest.raises(RuntimeError, match="not a file"):
        node.call("download_stream", cid, str(tmp_path / "out"), 0, False)
    assert not (tmp_path / "out").exists()


def test_a_hoard_node_fetches_a_kubo_dag_into_its_store(node: NodeProcess, kubo: KuboPeer, tmp_path: Path) -> None:
    data = os.urandom(700_000)
    (tmp_path / "dag.bin").write_bytes(data)
    cid = kubo.add(tmp_path / "dag.bin")
    node.call("connect", *_kubo_addr(kubo))
    root = node.call("ipfs.fetch", cid)
    assert root["cid"] == cid and root["size"] == len(data)
    out = tmp_path / "local.bin"
    assert node.call("ipfs.download", cid, str(out)) == len(data)  # now from the local store
    assert out.read_bytes() == data


def test_an_identify_probe_of_a_node_lists_bitswap_beside_hoard_blocks(node: NodeProcess) -> None:
    import trio
    from libp2p.identity.identify.identify import ID as IDENTIFY_ID
    from libp2p.identity.identify.pb.identify_pb2 import Identify
    from libp2p.network.stream.exceptions import StreamEOF

    from hoard.ids.peer import Identity, PeerId
    from hoard.net.host import Host

    async def probe() -> list[str]:
        with trio.fail_after(30):
            host = Host(Identity.generate())
            async with host.run():
                peer = PeerId(node.peer_id)
                await host.connect(peer, node.addrs)
                stream = await host.open_stream(peer, str(IDENTIFY_ID))
                raw = b""
                try:
                    while chunk := await stream.read(65536):
                        raw += chunk
                except StreamEOF:
                    pass
                length, shift, pos = 0, 0, 0
                while True:  # the answer is varint-length-prefixed
                    byte = raw[pos]
                    length |= (byte & 0x7F) << shift
                    pos += 1
                    shift += 7
                    if byte < 0x80:
                        break
                message = Identify()
                message.ParseFromString(raw[pos:pos + length])
                return list(message.protocols)

    protocols = trio.run(probe)
    for protocol in ("/hoard/blocks/1", "/ipfs/bitswap/1.2.0", "/ipfs/bitswap/1.1.0", "/ipfs/bitswap/1.0.0",
                     "/hoard/bulk/1"):
        assert protocol in protocols
