"""Bitswap between a hoard host (py-libp2p, this process) and real kubo and Helia peers."""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
import trio

from hoard.content.formats.unixfs import (
    Imported,
    ImportOptions,
    export,
    import_bytes,
    import_path,
    read_file,
)
from hoard.errors import NotFoundError, PeerError
from hoard.ids.cid import CID
from hoard.ids.peer import Identity, PeerId
from hoard.net.bitswap import Bitswap, FetchLimits
from hoard.net.bitswap.bitswap import MAX_INBOUND_STREAMS
from hoard.net.bitswap.message import (
    MessageReader,
    ProtocolViolation,
    Want,
    cid_from_prefix,
    encode_wants,
    frame,
    parse,
    prefix_of,
)
from hoard.net.exchange import BlockExchange, fetch_dag
from hoard.net.host import Host
from ipfs.peers import HeliaPeer, KuboPeer

LIMIT = 90.0


def _run(body: Callable[[Host, Bitswap], Awaitable[None]], blocks: dict[CID, bytes] | None = None,
         limits: FetchLimits | None = None) -> None:
    async def main() -> None:
        with trio.fail_after(LIMIT):
            host = Host(Identity.generate())
            async with host.run():
                source = blocks.get if blocks is not None else None
                async with Bitswap(host, source, limits).run() as bitswap:
                    await body(host, bitswap)
    trio.run(main)


def _upload(size: int, options: ImportOptions) -> tuple[bytes, Imported, dict[CID, bytes]]:
    data = os.urandom(size)
    blocks: dict[CID, bytes] = {}
    return data, import_bytes(data, blocks.__setitem__, options), blocks


async def _fetch_file(bitswap: Bitswap, root: CID, provider: PeerId) -> bytes:
    blocks: dict[CID, bytes] = {}
    async with trio.open_nursery() as nursery:
        async for cid, data in fetch_dag(bitswap, root, [provider], nursery):
            blocks[cid] = data
    return b"".join(read_file(root, blocks.__getitem__))


def test_bitswap_is_a_block_exchange() -> None:
    _run(lambda host, bitswap: _check_protocol(bitswap))


async def _check_protocol(bitswap: Bitswap) -> None:
    assert isinstance(bitswap, BlockExchange)
    assert "/ipfs/bitswap/1.2.0" in bitswap.protocols


def test_kubo_fetches_from_hoard(kubo: KuboPeer, tmp_path: Path) -> None:
    data, root, blocks = _upload(3_000_000, ImportOptions.kubo())

    async def body(host: Host, bitswap: Bitswap) -> None:
        addr = str(host.p2p_addrs()[0])
        await trio.to_thread.run_sync(lambda: kubo.connect(addr))
        await trio.to_thread.run_sync(lambda: kubo.download(str(root.cid), tmp_path / "out", timeout=60))
        assert bitswap.stats.blocks_sent == len(blocks)

    _run(body, blocks)
    assert (tmp_path / "out").read_bytes() == data


@pytest.mark.parametrize("options", [ImportOptions.kubo_v1(), ImportOptions.kubo()], ids=["cidv1", "cidv0"])
def test_helia_fetches_from_hoard(helia: HeliaPeer, tmp_path: Path, options: ImportOptions) -> None:
    data, root, blocks = _upload(2_500_000, options)

    async def body(host: Host, bitswap: Bitswap) -> None:
        addr = str(host.p2p_addrs()[0])
        await trio.to_thread.run_sync(lambda: helia.connect(addr))
        await trio.to_thread.run_sync(lambda: helia.cat(str(root.cid), tmp_path / "out", timeout=60))
        assert bitswap.stats.blocks_sent >= len(blocks)

    _run(body, blocks)
    assert (tmp_path / "out").read_bytes() == data


def test_hoard_fetches_from_kubo(kubo: KuboPeer, tmp_path: Path) -> None:
    data = os.urandom(2_000_000)
    (tmp_path / "src").write_bytes(data)
    cid = CID.parse(kubo.add(tmp_path / "src"))
    kubo_id = PeerId(kubo.info.peer_id)

    async def body(host: Host, bitswap: Bitswap) -> None:
        await host.connect(kubo_id, [kubo.info.addr])
        assert await bitswap.find_providers(cid, timeout=10) == [kubo_id]
        assert await _fetch_file(bitswap, cid, kubo_id) == data

    _run(body)


def test_hoard_fetches_from_helia(helia: HeliaPeer, tmp_path: Path) -> None:
    data = os.urandom(3_100_000)
    (tmp_path / "src").write_bytes(data)
    cid = CID.parse(helia.add_file(tmp_path / "src", chunk_size=None, max_children=None))  # 1 MiB blocks
    helia_id = PeerId(helia.info.peer_id)

    async def body(host: Host, bitswap: Bitswap) -> None:
        await host.connect(helia_id, [helia.info.addr])
        assert await _fetch_file(bitswap, cid, helia_id) == data

    _run(body)


@pytest.mark.parametrize("which", ["kubo", "helia"])
def test_missing_block_is_not_found(request: pytest.FixtureRequest, which: str) -> None:
    peer: KuboPeer | HeliaPeer = request.getfixturevalue(which)
    peer_id = PeerId(peer.info.peer_id)
    missing = CID.sha256(os.urandom(64))

    async def body(host: Host, bitswap: Bitswap) -> None:
        await host.connect(peer_id, [peer.info.addr])
        async with trio.open_nursery() as nursery:
            stream = bitswap.fetch([missing], [peer_id], nursery)
            with pytest.raises(NotFoundError):
                async for _ in stream:
                    pass
            await stream.aclose()

    _run(body, limits=FetchLimits(request_timeout=20))


def test_two_hoard_hosts_exchange_blake3_blocks() -> None:
    blocks = {CID.of(b): b for b in (os.urandom(n) for n in (1, 1000, 300_000))}

    async def main() -> None:
        with trio.fail_after(LIMIT):
            a, b = Host(Identity.generate()), Host(Identity.generate())
            async with a.run(), b.run(), Bitswap(a, blocks.get).run(), Bitswap(b).run() as fetcher:
                await b.connect(a.peer_id, a.addrs)
                wanted = list(blocks) + [next(iter(blocks))]  # a repeat is yielded twice
                got = []
                async with trio.open_nursery() as nursery:
                    async for cid, data in fetcher.fetch(wanted, [a.peer_id], nursery):
                        cid.verify(data)
                        got.append(cid)
                assert got == wanted
    trio.run(main)


@pytest.mark.parametrize("protocol", ["/ipfs/bitswap/1.1.0", "/ipfs/bitswap/1.0.0"])
def test_older_protocols_with_kubo(kubo: KuboPeer, tmp_path: Path, protocol: str) -> None:
    """kubo fetches from, and serves to, a hoard host that speaks only 1.1.0 or 1.0.0."""
    data, root, blocks = _upload(1_200_000, ImportOptions.kubo())
    theirs = os.urandom(900_000)
    (tmp_path / "theirs").write_bytes(theirs)
    their_cid = CID.parse(kubo.add(tmp_path / "theirs"))
    kubo_id = PeerId(kubo.info.peer_id)

    async def main() -> None:
        with trio.fail_after(LIMIT):
            host = Host(Identity.generate())
            async with host.run(), Bitswap(host, blocks.get, protocols=[protocol]).run() as bitswap:
                addr = str(host.p2p_addrs()[0])
                await trio.to_thread.run_sync(lambda: kubo.connect(addr))
                await trio.to_thread.run_sync(lambda: kubo.download(str(root.cid), tmp_path / "out", timeout=60))
                assert bitswap.stats.blocks_sent == len(blocks)
                assert await _fetch_file(bitswap, their_cid, kubo_id) == theirs
                assert bitswap.peer_protocol(kubo_id) == protocol
    trio.run(main)
    assert (tmp_path / "out").read_bytes() == data


def test_a_wrong_block_is_never_yielded() -> None:
    """A server whose source returns other bytes for a CID: the fetch drops it and fails."""
    good = os.urandom(5000)
    cid = CID.sha256(good)
    lying = {cid: os.urandom(5000)}

    async def main() -> None:
        with trio.fail_after(LIMIT):
            a, b = Host(Identity.generate()), Host(Identity.generate())
            limits = FetchLimits(request_timeout=1.5)
            async with a.run(), b.run(), Bitswap(a, lying.get).run(), Bitswap(b, limits=limits).run() as fetcher:
                await b.connect(a.peer_id, a.addrs)
                async with trio.open_nursery() as nursery:
                    stream = fetcher.fetch([cid], [a.peer_id], nursery)
                    with pytest.raises(PeerError, match="no provider left"):
                        async for _ in stream:
                            pass
                assert fetcher.stats.unwanted_blocks == 1
    trio.run(main)


@pytest.mark.parametrize("body", [
    b"\xff\xff",                                   # not protobuf
    b"\x0a\x05\x0a\x03\x0a\x01\x00",               # a want for a 1-byte "CID": skipped
])
def test_message_parsing(body: bytes) -> None:
    if body.startswith(b"\xff"):
        with pytest.raises(ProtocolViolation):
            parse(body)
    else:
        msg = parse(body)
        assert msg.wants == [] and msg.skipped == 1


def test_message_reader_bounds() -> None:
    class Chunks:
        def __init__(self, *chunks: bytes) -> None:
            self.chunks = list(chunks)

        async def read(self, n: int | None = None) -> bytes:
            return self.chunks.pop(0) if self.chunks else b""

    async def main() -> None:
        assert await MessageReader(Chunks(frame(b"ab")[:1], b"a", b"b" + frame(b"c"))).next() == b"ab"
        with pytest.raises(ProtocolViolation):
            await MessageReader(Chunks(frame(b"x" * 100)), max_message=10).next()
        with pytest.raises(PeerError):
            await MessageReader(Chunks(frame(b"abc")[:-1])).next()
        assert await MessageReader(Chunks()).next() is None
    trio.run(main)


def test_prefix_round_trip() -> None:
    data = b"block"
    for cid in (CID.sha256(data), CID.of(data), CID.v0(CID.sha256(data).digest)):
        assert cid_from_prefix(prefix_of(cid), data) == cid
    assert cid_from_prefix(b"\x01\x55\x00\x05", data) is None  # identity hash: not handled


def test_directory_trees_over_bitswap(kubo: KuboPeer, helia: HeliaPeer, tmp_path: Path) -> None:
    """kubo and Helia fetch a directory hoard imported; hoard fetches the one kubo added."""
    tree = tmp_path / "tree"
    (tree / "sub").mkdir(parents=True)
    (tree / "sub" / "big").write_bytes(os.urandom(700_000))
    (tree / "small").write_bytes(b"small\n")
    (tree / "empty").mkdir()
    blocks: dict[CID, bytes] = {}
    v0 = import_path(tree, blocks.__setitem__, ImportOptions.kubo())
    v1 = import_path(tree, blocks.__setitem__, ImportOptions.kubo_v1())
    kubo_id = PeerId(kubo.info.peer_id)
    theirs = tmp_path / "theirs"
    (theirs / "d").mkdir(parents=True)
    (theirs / "d" / "f").write_bytes(os.urandom(300_000))
    their_cid = CID.parse(kubo.add(theirs))

    async def body(host: Host, bitswap: Bitswap) -> None:
        addr = str(host.p2p_addrs()[0])
        await trio.to_thread.run_sync(lambda: kubo.connect(addr))
        await trio.to_thread.run_sync(lambda: kubo.download(str(v0.cid), tmp_path / "k", timeout=60))
        await trio.to_thread.run_sync(lambda: helia.connect(addr))
        await trio.to_thread.run_sync(lambda: helia.get_tree(v1.cid.to_base32(), tmp_path / "h", timeout=60))
        got: dict[CID, bytes] = {}
        async with trio.open_nursery() as nursery:
            async for cid, data in fetch_dag(bitswap, their_cid, [kubo_id], nursery):
                got[cid] = data
        export(their_cid, got.__getitem__, tmp_path / "from-kubo")

    _run(body, blocks)
    for out in (tmp_path / "k", tmp_path / "h"):
        assert (out / "sub" / "big").read_bytes() == (tree / "sub" / "big").read_bytes()
        assert (out / "small").read_bytes() == b"small\n"
        assert (out / "empty").is_dir()
    assert (tmp_path / "from-kubo" / "d" / "f").read_bytes() == (theirs / "d" / "f").read_bytes()


def test_fetch_after_reconnect_and_unknown_cid(kubo: KuboPeer, tmp_path: Path) -> None:
    """A new connection to the same peer gets a new bitswap stream; a CID no one has finds no provider."""
    files = []
    for name in ("one", "two"):
        data = os.urandom(400_000)
        (tmp_path / name).write_bytes(data)
        files.append((CID.parse(kubo.add(tmp_path / name)), data))
    kubo_id = PeerId(kubo.info.peer_id)

    async def body(host: Host, bitswap: Bitswap) -> None:
        for cid, data in files:
            await host.connect(kubo_id, [kubo.info.addr])
            assert await _fetch_file(bitswap, cid, kubo_id) == data
            await host.disconnect(kubo_id)
            assert not host.is_connected(kubo_id)
        await host.connect(kubo_id, [kubo.info.addr])
        assert await bitswap.find_providers(CID.sha256(os.urandom(8)), timeout=1) == []

    _run(body)


def test_inbound_streams_per_peer_are_bounded() -> None:
    async def main() -> None:
        with trio.fail_after(LIMIT):
            a, b = Host(Identity.generate()), Host(Identity.generate())
            async with a.run(), b.run(), Bitswap(a).run() as victim:
                await b.connect(a.peer_id, a.addrs)
                streams = [await b.open_stream(a.peer_id, "/ipfs/bitswap/1.2.0") for _ in range(MAX_INBOUND_STREAMS)]
                for s in streams:  # a message on each: the handlers are running once it is read
                    await s.write(frame(encode_wants([Want(CID.sha256(b"x"))])))
                # the next one is reset as soon as it is accepted (its opening or first read fails)
                with pytest.raises(Exception):  # noqa: B017 - py-libp2p raises its own stream errors
                    extra = await b.open_stream(a.peer_id, "/ipfs/bitswap/1.2.0")
                    await extra.write(b"\x00")
                    with trio.move_on_after(5):  # a stream that was not reset would wait here
                        if await extra.read(1) == b"":
                            raise EOFError("reset")
                assert victim.stats.protocol_errors == 1
                for s in streams:
                    await s.close()
    trio.run(main)


def test_want_have_and_dont_have_between_hoard_hosts() -> None:
    """find_providers asks every connected peer; only the one with the block answers HAVE."""
    data = os.urandom(3000)
    cid = CID.sha256(data)
    nothing: dict[CID, bytes] = {}

    async def main() -> None:
        with trio.fail_after(LIMIT):
            a, b, c = (Host(Identity.generate()) for _ in range(3))
            async with a.run(), b.run(), c.run(), Bitswap(a, {cid: data}.get).run(), \
                    Bitswap(b, nothing.get).run() as empty, Bitswap(c).run() as asker:
                await c.connect(a.peer_id, a.addrs)
                await c.connect(b.peer_id, b.addrs)
                assert await asker.find_providers(cid, timeout=10) == [a.peer_id]
                async with trio.open_nursery() as nursery:  # b says DONT_HAVE, a sends it
                    got = [d async for _, d in asker.fetch([cid], [b.peer_id, a.peer_id], nursery)]
                assert got == [data]
                assert empty.stats.dont_have_sent >= 1
    trio.run(main)
