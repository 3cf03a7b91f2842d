"""The bulk path (hoard.net.bulk): TLS 1.3 connections negotiated over libp2p, on 127.0.0.1."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
import trio
from _net_kit import collect, make_blocks, networks, store_with, trio_test

from hoard.errors import PeerError
from hoard.ids.cid import CID
from hoard.ids.peer import Identity, PeerId
from hoard.net import MAX_BLOCK_SIZE, Network, StreamChannelOpener
from hoard.net.bulk import (
    BulkCertificate,
    BulkChannelOpener,
    BulkServer,
    Offer,
    peer_of,
)

pytestmark = [pytest.mark.timeout(120)]

HERE = Path(__file__).parent
SRC = HERE.parents[1] / "src"


@asynccontextmanager
async def peer_process(count: int, *flags: str, size: int = 65536) -> AsyncIterator[dict[str, Any]]:
    """`_bulk_peer.py` in its own process; yields {"spr", "peerId"}; stops it on exit."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(SRC), str(HERE), os.environ.get("PYTHONPATH", "")]))
    proc = await trio.lowlevel.open_process(
        [sys.executable, str(HERE / "_bulk_peer.py"), str(count), str(size), "1", *flags],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env)
    try:
        line = b""
        with trio.fail_after(30):
            while not line.endswith(b"\n"):
                chunk = await proc.stdout.receive_some(4096)
                if not chunk:
                    raise RuntimeError(f"peer process exited early ({await proc.wait()})")
                line += chunk
        yield json.loads(line)
    finally:
        with trio.CancelScope(shield=True):
            await proc.stdin.aclose()
            with trio.move_on_after(10):
                await proc.wait()
            if proc.returncode is None:
                proc.kill()
                await proc.wait()


@asynccontextmanager
async def bulk_server(network: Network, source: Any, **kwargs: Any) -> AsyncIterator[BulkServer]:
    server = BulkServer(network.host, network.host.identity, source, **kwargs)
    async with server.run():
        yield server


@asynccontextmanager
async def bulk_opener(network: Network, identity: Identity | None = None,
                      fallback: bool = True) -> AsyncIterator[BulkChannelOpener]:
    """A BulkChannelOpener for `network`, installed as its fetcher's opener."""
    cert = BulkCertificate.create(identity or network.host.identity)
    try:
        opener = BulkChannelOpener(network.host, cert, StreamChannelOpener(network.host) if fallback else None,
                                   connect_timeout=5.0)
        network.fetcher.opener = opener
        yield opener
    finally:
        cert.remove()


def test_the_certificate_names_its_peer() -> None:
    identity = Identity.generate()
    cert = BulkCertificate.create(identity)
    try:
        assert peer_of(cert.der) == identity.peer_id
        if cert.fd is not None:  # Linux: an anonymous memory file, nothing on any disk
            assert str(cert.path) == f"/proc/self/fd/{cert.fd}"
            assert b"BEGIN CERTIFICATE" in cert.path.read_bytes()
        else:
            assert oct(cert.path.stat().st_mode & 0o777) == "0o600"
        with pytest.raises(PeerError):
            peer_of(cert.der[:-10] + bytes(10))  # a broken signature
    finally:
        cert.remove()
    if cert.fd is not None:
        with pytest.raises(OSError):
            os.fstat(cert.fd)  # closed
    else:
        assert not cert.path.exists()


@pytest.mark.slow
@trio_test(timeout=100)
async def test_a_fetch_over_the_bulk_path_from_another_process() -> None:
    blocks = make_blocks(256)  # 16 MiB
    async with peer_process(256) as info, networks(None) as [client], bulk_opener(client) as opener:
        client.host.learn_spr(info["spr"])
        await client.connect(info["peerId"])
        got = await collect(client.fetch_blocks([cid for cid, _ in blocks], [info["peerId"]]))
        assert got == blocks
        assert opener.opened == {"bulk": 1, "fallback": 0}


@pytest.mark.slow
@trio_test(timeout=100)
async def test_a_peer_without_the_bulk_path_is_fetched_from_over_the_libp2p_stream() -> None:
    blocks = make_blocks(32)
    async with peer_process(32, "--no-bulk") as info, networks(None) as [client], bulk_opener(client) as opener:
        client.host.learn_spr(info["spr"])
        await client.connect(info["peerId"])
        got = await collect(client.fetch_blocks([cid for cid, _ in blocks], [info["peerId"]]))
        assert got == blocks
        assert opener.opened == {"bulk": 0, "fallback": 1}
        # a second fetch does not ask again (remembered for retry_after)
        assert await collect(client.fetch_blocks([blocks[0][0]], [info["peerId"]])) == blocks[:1]
        assert opener.opened == {"bulk": 0, "fallback": 2}


@trio_test(timeout=60)
async def test_blocks_of_the_largest_size_come_over_the_bulk_path() -> None:
    blocks = make_blocks(12, size=MAX_BLOCK_SIZE)  # each frame larger than the reader's free room
    async with networks(None, None) as [server_net, client], bulk_server(server_net, store_with(blocks)), \
            bulk_opener(client, fallback=False) as opener:
        await client.connect(server_net.peer_id, server_net.addrs)
        got = await collect(client.fetch_blocks([cid for cid, _ in blocks], [server_net.peer_id]))
        assert got == blocks
        assert opener.opened == {"bulk": 1, "fallback": 0}


@trio_test(timeout=60)
async def test_a_corrupted_block_is_detected_and_the_peer_penalised() -> None:
    blocks = make_blocks(16)
    store = store_with(blocks)
    bad_cid = blocks[5][0]

    def corrupting(cid: CID) -> bytes | None:
        data = store.get(cid)
        return data[:-1] + bytes([data[-1] ^ 1]) if cid == bad_cid and data is not None else data

    async with networks(None, None) as [server_net, client], bulk_server(server_net, corrupting) as server, \
            bulk_opener(client, fallback=False):
        await client.connect(server_net.peer_id, server_net.addrs)
        with pytest.raises(PeerError, match="no providers left"):
            await collect(client.fetch_blocks([cid for cid, _ in blocks], [server_net.peer_id]))
        await server.wait_handled(1)
        record = client.penalties.get(server_net.peer_id)
        assert record is not None and record.bad_blocks == 1 and "bad block" in record.last_reason
        assert server.stats.connections == 1


@trio_test(timeout=60)
async def test_a_certificate_for_another_peer_is_refused_in_the_offer() -> None:
    async with networks(None, None) as [server_net, client], bulk_server(server_net, lambda cid: None) as server, \
            bulk_opener(client, identity=Identity.generate(), fallback=False) as opener:
        await client.connect(server_net.peer_id, server_net.addrs)
        with pytest.raises(PeerError, match="another peer"):
            await opener.open(server_net.peer_id)
        assert server.stats.refused == 1 and server.stats.offers == 0


@trio_test(timeout=60)
async def test_a_server_presenting_another_peers_certificate_is_refused() -> None:
    impostor = BulkCertificate.create(Identity.generate())
    try:
        async with networks(None, None) as [server_net, client], \
                bulk_server(server_net, lambda cid: None, certificate=impostor), \
                bulk_opener(client, fallback=False) as opener:
            await client.connect(server_net.peer_id, server_net.addrs)
            with pytest.raises(PeerError, match="certificate names"):
                await opener.open(server_net.peer_id)
    finally:
        impostor.remove()


@trio_test(timeout=60)
async def test_a_client_presenting_another_certificate_than_it_sent_is_refused() -> None:
    async with networks(None, None) as [server_net, client], bulk_server(server_net, lambda cid: None) as server, \
            bulk_opener(client, fallback=False) as opener, bulk_opener(client, fallback=False) as other:
        await client.connect(server_net.peer_id, server_net.addrs)
        ip, offer = await opener.request_offer(server_net.peer_id)
        with pytest.raises(PeerError):  # the same peer's key, but not the certificate it sent
            await other.connect(ip, offer, server_net.peer_id)
        await server.wait_handled(1)
        assert server.stats.rejected == 1 and server.stats.connections == 0


@trio_test(timeout=60)
async def test_the_token_cannot_be_replayed_or_guessed() -> None:
    async with networks(None, None) as [server_net, client], bulk_server(server_net, lambda cid: None) as server, \
            bulk_opener(client, fallback=False) as opener:
        await client.connect(server_net.peer_id, server_net.addrs)
        peer = PeerId(str(server_net.peer_id))
        ip, offer = await opener.request_offer(peer)
        conn = await opener.connect(ip, offer, peer)
        conn.close()
        with pytest.raises(PeerError):
            await opener.connect(ip, offer, peer)  # the same offer again
        ip, offer = await opener.request_offer(peer)
        with pytest.raises(PeerError):
            await opener.connect(ip, Offer(offer.port, offer.name, bytes(32)), peer)  # a wrong token
        with pytest.raises(PeerError):
            await opener.connect(ip, offer, peer)  # the name was used up by the wrong token
        await server.wait_handled(4)
        assert server.stats.connections == 1 and server.stats.rejected == 3
