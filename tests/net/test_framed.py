"""hoard.framing's framed-stream helper: the bounded read loop, the outbox and the coalescing
writer, over real py-libp2p streams (TCP + Noise + yamux on 127.0.0.1) and trio memory streams."""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial
from typing import Any

import pytest
import trio
import trio.testing
from _net_kit import trio_test

from hoard.errors import PeerError
from hoard.framing import LEN, Outbox, ProtocolError, VarintFrameReader, read_frames, write_frames
from hoard.ids.peer import Identity
from hoard.net import Host

pytestmark = pytest.mark.timeout(60)

PROTOCOL = "/hoard/test-framed/1"


def frame(body: bytes) -> bytes:
    return LEN.pack(len(body)) + body


@asynccontextmanager
async def libp2p_pair() -> AsyncIterator[tuple[Any, Any]]:
    """(client, server): the two ends of one real libp2p stream between two hosts."""
    streams: trio.MemorySendChannel[Any]
    streams, incoming = trio.open_memory_channel[Any](1)
    done = trio.Event()

    async def handler(stream: Any) -> None:
        await streams.send(stream)
        await done.wait()  # the stream lives while the test uses it

    a, b = Host(Identity.generate()), Host(Identity.generate())
    b.set_handler(PROTOCOL, handler)
    async with a.run(), b.run():
        await a.connect(b.peer_id, b.addrs)
        client = await a.open_stream(b.peer_id, PROTOCOL)
        server = await incoming.receive()
        try:
            yield client, server
        finally:
            done.set()


class MemoryStream:
    """A trio memory stream with the read/write/close/reset methods of a libp2p stream; it
    counts the writes it is given (what the coalescing tests look at)."""

    def __init__(self, stream: trio.abc.HalfCloseableStream) -> None:
        self._stream = stream
        self.writes: list[int] = []

    async def read(self, n: int | None = None) -> bytes:
        return bytes(await self._stream.receive_some(n))

    async def write(self, data: bytes) -> None:
        self.writes.append(len(data))
        await self._stream.send_all(data)

    async def close(self) -> None:
        await self._stream.send_eof()

    async def reset(self) -> None:
        await trio.aclose_forcefully(self._stream)


def memory_pair() -> tuple[MemoryStream, MemoryStream]:
    left, right = trio.testing.memory_stream_pair()
    return MemoryStream(left), MemoryStream(right)


async def collect(stream: Any, max_frame: int = 8 << 20) -> list[bytes]:
    bodies: list[bytes] = []

    async def handle(body: bytes) -> None:
        bodies.append(body)

    await read_frames(stream, max_frame, handle)
    return bodies


# -- the read loop ----------------------------------------------------------------------------

@trio_test()
async def test_frames_arrive_whole_and_in_order_over_libp2p_and_a_clean_close_ends_the_loop() -> None:
    bodies = [b"a", b"b" * 1000, bytes(range(256)) * 12_000, b"last"]  # one of ~3 MiB: many yamux frames
    async with libp2p_pair() as (client, server):
        data = b"".join(frame(b) for b in bodies)

        async def send() -> None:
            await client.write(data[:3])  # a length prefix split across writes
            await client.write(data[3:])
            await client.close()

        async with trio.open_nursery() as nursery:
            nursery.start_soon(send)
            assert await collect(server) == bodies


@trio_test()
async def test_a_frame_over_the_limit_or_empty_is_a_protocol_error() -> None:
    for body_len, data in ((101, frame(b"x" * 101)), (0, LEN.pack(0))):
        client, server = memory_pair()
        await client.write(data)
        with pytest.raises(ProtocolError, match=f"frame of {body_len} bytes"):
            await collect(server, max_frame=100)


@trio_test()
async def test_a_stream_that_ends_inside_a_frame_is_a_peer_error() -> None:
    client, server = memory_pair()
    await client.write(frame(b"whole") + frame(b"cut short")[:-3])
    await client.close()
    got: list[bytes] = []

    async def handle(body: bytes) -> None:
        got.append(body)

    with pytest.raises(PeerError, match="ended inside a frame"):
        await read_frames(server, 100, handle)
    assert got == [b"whole"]


@trio_test()
async def test_a_reset_by_the_peer_is_a_peer_error_not_a_libp2p_exception() -> None:
    async with libp2p_pair() as (client, server):
        await client.write(frame(b"before the reset"))
        got: list[bytes] = []
        reset_done = trio.Event()

        async def handle(body: bytes) -> None:
            got.append(body)
            await client.reset()
            reset_done.set()

        with pytest.raises(PeerError, match="the stream failed") as caught:
            await read_frames(server, 1 << 20, handle)
        assert type(caught.value) is PeerError
        assert got == [b"before the reset"] and reset_done.is_set()


@trio_test()
async def test_an_error_from_the_handler_ends_the_read_loop() -> None:
    client, server = memory_pair()
    await client.write(frame(b"1") + frame(b"2") + frame(b"3"))

    async def handle(body: bytes) -> None:
        if body == b"2":
            raise ProtocolError("the handler refused 2")

    with pytest.raises(ProtocolError, match="refused 2"):
        await read_frames(server, 100, handle)


@trio_test()
async def test_varint_frames_split_anywhere_and_empty_ones_are_read_and_bounds_hold() -> None:
    client, server = memory_pair()
    body = bytes(range(256)) * 2  # 512 bytes: a two-byte varint (0x80 0x04)
    for piece in (b"\x80", b"\x04" + body[:100], body[100:] + b"\x00" + b"\x03ab", b"c"):
        await client.write(piece)
    await client.close()
    reader = VarintFrameReader(server, 1000)
    assert [await reader.next_body() for _ in range(4)] == [body, b"", b"abc", None]

    for data, error, match in ((b"\xff" * 10 + b"\x01", ProtocolError, "varint too long"),
                               (b"\xe9\x07" + b"x" * 1001, ProtocolError, "frame of 1001 bytes"),
                               (b"\x80", PeerError, "ended inside a frame")):
        client, server = memory_pair()
        await client.write(data)
        await client.close()
        with pytest.raises(error, match=match):
            await VarintFrameReader(server, 1000).next_body()


# -- the outbox and the coalescing writer -----------------------------------------------------

@trio_test()
async def test_queued_frames_go_out_joined_into_writes_of_at_most_about_max_bytes() -> None:
    client, server = memory_pair()
    outbox = Outbox()
    bodies = [bytes([i % 256]) * 1000 for i in range(50)]
    for body in bodies:
        assert outbox.put(frame(body))
    assert outbox.queued_bytes == 50 * 1004
    outbox.close()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(partial(write_frames, client, outbox, name="test", max_bytes=10_000))
        received = await collect_until(server, len(bodies))
    assert received == bodies
    # 10 frames (10,040 bytes) reach the 10,000-byte mark: five writes instead of fifty
    assert client.writes == [10 * 1004] * 5
    assert outbox.queued_bytes == 0


async def collect_until(stream: Any, count: int) -> list[bytes]:
    bodies: list[bytes] = []
    with trio.CancelScope() as scope:
        async def handle(body: bytes) -> None:
            bodies.append(body)
            if len(bodies) == count:
                scope.cancel()

        await read_frames(stream, 1 << 20, handle)
    return bodies


@trio_test()
async def test_frames_in_parts_and_their_notes_are_reported_after_the_write_that_carried_them() -> None:
    client, server = memory_pair()
    outbox = Outbox()
    reports: list[list[object]] = []
    outbox.put(frame(b"control"))
    outbox.put((LEN.pack(8), b"data ", b"one"), note="one")
    outbox.put((LEN.pack(8), b"data two"), note="two")
    outbox.close()
    assert not outbox.put(frame(b"too late"))
    await write_frames(client, outbox, name="test", written=reports.append)  # returns once closed and empty
    await client.close()
    assert await collect(server) == [b"control", b"data one", b"data two"]
    assert reports == [["one", "two"]]
    assert client.writes == [4 + 7 + 4 + 8 + 4 + 8]


@trio_test()
async def test_appends_wait_for_room_in_flight_and_what_follows_them_waits_too() -> None:
    client, server = memory_pair()
    outbox = Outbox(max_inflight=1, max_inflight_bytes=1 << 20)
    outbox.put(frame(b"append 1"), append=True)
    outbox.put(frame(b"append 2"), append=True)
    outbox.put(frame(b"after"))
    async with trio.open_nursery() as nursery:
        nursery.start_soon(partial(write_frames, client, outbox, name="test"))
        assert await collect_until(server, 1) == [b"append 1"]
        await trio.testing.wait_all_tasks_blocked()  # the writer waits: for room, not for frames
        assert outbox.inflight == 1 and client.writes == [len(frame(b"append 1"))]
        assert outbox.queued_bytes == len(frame(b"append 2")) + len(frame(b"after"))
        outbox.answered(len(frame(b"append 1")))
        assert await collect_until(server, 2) == [b"append 2", b"after"]
        outbox.close()


@trio_test()
async def test_a_thread_puts_frames_and_waits_for_room_until_the_writer_wrote_them() -> None:
    client, server = memory_pair()
    outbox = Outbox(trio.lowlevel.current_trio_token(), threading.get_ident())
    big = b"x" * 300_000
    waited: list[bool] = []

    def producer() -> None:
        for _ in range(4):
            outbox.put(frame(big))
            waited.append(outbox.wait_room(500_000, timeout=20))

    async with trio.open_nursery() as nursery:
        nursery.start_soon(partial(write_frames, client, outbox, name="test"))
        nursery.start_soon(trio.to_thread.run_sync, producer)
        assert await collect_until(server, 4) == [big] * 4
        outbox.close()
    assert waited == [True] * 4
    assert outbox.queued_bytes == 0


@trio_test()
async def test_wait_room_times_out_while_the_peer_reads_nothing_and_close_releases_it() -> None:
    outbox = Outbox(trio.lowlevel.current_trio_token(), threading.get_ident())
    outbox.put(frame(b"y" * 1000))
    assert not await trio.to_thread.run_sync(outbox.wait_room, 500, 0.05)
    outbox.close()
    assert await trio.to_thread.run_sync(outbox.wait_room, 500, 5.0)


@trio_test()
async def test_a_failed_write_is_a_peer_error_naming_the_stream() -> None:
    async with libp2p_pair() as (client, server):
        await client.reset()
        outbox = Outbox()
        outbox.put(frame(b"into a reset stream"))
        with pytest.raises(PeerError, match="logs to peer X: write failed"):
            await write_frames(client, outbox, name="logs to peer X")
        del server
