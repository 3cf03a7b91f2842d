"""`/hoard/blocks/1` frames: encoding, decoding and the limits a reader enforces."""

from __future__ import annotations

import struct

import pytest
from _net_kit import trio_test

from hoard.errors import PeerError
from hoard.ids.cid import CID
from hoard.net.wire import (
    MAX_FRAME,
    MAX_WANT,
    FrameReader,
    ProtocolError,
    Reply,
    decode_want,
    encode_block,
    encode_dont_have,
    encode_want,
)

pytestmark = pytest.mark.timeout(30)


class BytesStream:
    """A byte source with a stream's `read(n)`, handing out at most `step` bytes per read."""

    def __init__(self, data: bytes, step: int = 7) -> None:
        self.data, self.step = data, step

    async def read(self, n: int | None = None) -> bytes:
        chunk, self.data = self.data[:min(n or self.step, self.step)], self.data[min(n or self.step, self.step):]
        return chunk


async def frames(data: bytes, max_frame: int = MAX_FRAME) -> list[bytes]:
    reader = FrameReader(BytesStream(data), max_frame)
    return [body async for body in _bodies(reader)]


async def _bodies(reader: FrameReader):  # type: ignore[no-untyped-def]
    while (body := await reader.next_body()) is not None:
        yield body


async def replies(data: bytes, step: int = 7) -> list[Reply]:
    reader = FrameReader(BytesStream(data, step))
    out = []
    while (reply := await reader.next_reply()) is not None:
        out.append(reply)
    return out


@trio_test()
async def test_want_round_trips_through_a_fragmented_stream() -> None:
    cids = [CID.of(bytes([i])) for i in range(5)]
    [body] = await frames(encode_want(42, cids))
    assert decode_want(body) == (42, cids)


@pytest.mark.parametrize("step", [1, 7, 100, 70000, 1 << 20])
@trio_test()
async def test_block_and_dont_have_replies_round_trip_whatever_the_read_sizes(step: int) -> None:
    cid = CID.of(b"data")
    big = bytes(range(256)) * 256
    data = (b"".join(encode_block(7, cid.binary, b"data")) + encode_dont_have(8, cid.binary)
            + b"".join(encode_block(9, cid.binary, big)))
    block, missing, large = await replies(data, step)
    assert (block.req_id, block.cid, block.data) == (7, cid.binary, b"data")
    assert (missing.req_id, missing.cid, missing.data) == (8, cid.binary, None)
    assert (large.req_id, large.data) == (9, big)


@trio_test()
async def test_a_frame_over_the_limit_is_a_protocol_error() -> None:
    with pytest.raises(ProtocolError, match="limit"):
        await frames(struct.pack(">I", 1000) + b"x" * 1000, max_frame=999)


@trio_test()
async def test_a_stream_ending_inside_a_frame_is_a_peer_error_not_a_fault() -> None:
    with pytest.raises(PeerError, match="inside a frame") as caught:
        await frames(encode_want(1, [CID.of(b"x")])[:-3])
    assert not isinstance(caught.value, ProtocolError)


def test_want_lists_are_bounded() -> None:
    with pytest.raises(ValueError):
        encode_want(1, [CID.of(b"x")] * (MAX_WANT + 1))
    with pytest.raises(ValueError):
        encode_want(1, [])


def test_a_want_with_a_bad_cid_is_a_protocol_error() -> None:
    body = bytearray(encode_want(1, [CID.of(b"x")])[4:])
    body[8] = 0x00  # the CID's version byte (CIDv1 is required)
    with pytest.raises(ProtocolError, match="bad CID"):
        decode_want(bytes(body))


@trio_test()
async def test_an_unknown_reply_type_is_a_protocol_error() -> None:
    frame = bytearray(encode_dont_have(1, CID.of(b"x").binary))
    frame[4] = 9
    with pytest.raises(ProtocolError, match="unknown reply"):
        await replies(bytes(frame))
