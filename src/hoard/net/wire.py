"""`/hoard/blocks/1` on the wire, and the channel interface the block fetcher talks through.

Every message is a frame: a 4-byte big-endian length, then that many bytes of body. The first
body byte is the message type:

```
WANT       0x01  req:u32  count:u16  count × (cidlen:u8 cid)        client → server, count ≤ 256
BLOCK      0x02  req:u32  cidlen:u8 cid  data (the rest of the body)  server → client, data ≤ 4 MiB
DONT_HAVE  0x03  req:u32  cidlen:u8 cid                               server → client
```

The server answers each WANT with exactly one BLOCK or DONT_HAVE per CID, in the order asked,
and serves the WANTs of one stream in the order received, so a client may keep several WANTs
outstanding on one stream (pipelining) and match replies to requests by position. A frame
longer than `MAX_FRAME` is a protocol error and ends the stream.

The fetcher only sees `BlockChannel` and `ChannelOpener`: a faster bulk transport can be added
by implementing those two, without touching the fetcher or its callers.
"""

from __future__ import annotations

import abc
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from hoard.errors import PeerError
from hoard.framing import LEN, ProtocolError, Readable
from hoard.framing import FrameReader as _FrameReader
from hoard.ids.cid import CID
from hoard.ids.peer import PeerId
from hoard.limits import MAX_BLOCK_BYTES

__all__ = [
    "BLOCKS_PROTOCOL",
    "MAX_BLOCK_SIZE",
    "MAX_FRAME",
    "MAX_WANT",
    "BlockChannel",
    "ChannelOpener",
    "FrameReader",
    "ProtocolError",
    "Reply",
    "StreamBlockChannel",
    "StreamChannelOpener",
    "decode_want",
    "encode_block",
    "encode_dont_have",
    "encode_want",
]

BLOCKS_PROTOCOL = "/hoard/blocks/1"
MAX_BLOCK_SIZE = MAX_BLOCK_BYTES  # every block size an upload accepts is served
MAX_WANT = 256
MAX_CID = 64  # hoard CIDs are 36 bytes; the field allows a little more
MAX_FRAME = 1 + 4 + 1 + MAX_CID + MAX_BLOCK_SIZE

WANT = 0x01
BLOCK = 0x02
DONT_HAVE = 0x03

_LEN = LEN
_WANT = struct.Struct(">BIH")
_REPLY = struct.Struct(">BIB")


@dataclass(frozen=True, slots=True)
class Reply:
    """One answer to one wanted CID: `data` is None for DONT_HAVE."""

    req_id: int
    cid: bytes
    data: bytes | None


# -- encoding ------------------------------------------------------------------------------

def encode_want(req_id: int, cids: Sequence[CID]) -> bytes:
    if not 0 < len(cids) <= MAX_WANT:
        raise ValueError(f"a want-list holds 1..{MAX_WANT} CIDs, not {len(cids)}")
    parts = [b""]
    for cid in cids:
        binary = cid.binary
        parts.append(bytes((len(binary),)))
        parts.append(binary)
    body_len = _WANT.size + sum(len(p) for p in parts)
    parts[0] = _LEN.pack(body_len) + _WANT.pack(WANT, req_id, len(cids))
    return b"".join(parts)


def encode_block(req_id: int, cid: bytes, data: bytes) -> list[bytes]:
    """A BLOCK frame as two parts (header, data), so the caller can join several frames at once."""
    return [_LEN.pack(_REPLY.size + len(cid) + len(data)) + _REPLY.pack(BLOCK, req_id, len(cid)) + cid, data]


def encode_dont_have(req_id: int, cid: bytes) -> bytes:
    return _LEN.pack(_REPLY.size + len(cid)) + _REPLY.pack(DONT_HAVE, req_id, len(cid)) + cid


# -- decoding ------------------------------------------------------------------------------

class FrameReader(_FrameReader):
    """Frames of `/hoard/blocks/1`; `next_reply` parses a BLOCK/DONT_HAVE header in place."""

    def __init__(self, stream: Readable, max_frame: int = MAX_FRAME) -> None:
        super().__init__(stream, max_frame)

    async def next_reply(self) -> Reply | None:
        """The next BLOCK or DONT_HAVE, or None at a clean end of stream."""
        length = await self._next_length()
        if length is None:
            return None
        if length < _REPLY.size:
            raise ProtocolError("short reply frame")
        first, offset = self._chunks[0], self._offset
        if len(first) - offset >= _REPLY.size:  # the usual case: parse in place
            kind, req_id, cid_len = _REPLY.unpack_from(first, offset)
            self._offset += _REPLY.size
            self._available -= _REPLY.size
            if self._offset == len(first):
                self._chunks.popleft()
                self._offset = 0
        else:
            kind, req_id, cid_len = _REPLY.unpack(self._take(_REPLY.size))
        if cid_len > MAX_CID or _REPLY.size + cid_len > length:
            raise ProtocolError("bad CID length in reply")
        cid = self._take(cid_len)
        rest = length - _REPLY.size - cid_len
        if kind == BLOCK:
            return Reply(req_id, cid, self._take(rest))
        if kind == DONT_HAVE and rest == 0:
            return Reply(req_id, cid, None)
        raise ProtocolError(f"unknown reply type {kind}" if kind != DONT_HAVE else "trailing bytes after DONT_HAVE")


def decode_want(body: bytes) -> tuple[int, list[CID]]:
    """(req id, CIDs) of a WANT body; ProtocolError if it is not one."""
    if len(body) < _WANT.size or body[0] != WANT:
        raise ProtocolError("expected a WANT frame")
    _t, req_id, count = _WANT.unpack_from(body)
    if not 0 < count <= MAX_WANT:
        raise ProtocolError(f"want-list of {count} CIDs (limit {MAX_WANT})")
    pos = _WANT.size
    cids = []
    try:
        for _ in range(count):
            n = body[pos]
            if pos + 1 + n > len(body):
                raise ProtocolError("truncated CID in want-list")
            cids.append(CID(body[pos + 1:pos + 1 + n]))
            pos += 1 + n
    except IndexError as exc:
        raise ProtocolError("truncated want-list") from exc
    except PeerError:
        raise
    except Exception as exc:  # InvalidCidError
        raise ProtocolError(f"bad CID in want-list: {exc}") from exc
    if pos != len(body):
        raise ProtocolError("trailing bytes after want-list")
    return req_id, cids


# -- the channel interface ----------------------------------------------------------------

class BlockChannel(abc.ABC):
    """One client conversation with one peer: send want-lists, receive replies in order."""

    peer_id: PeerId

    @abc.abstractmethod
    async def send_want(self, req_id: int, cids: Sequence[CID]) -> None:
        """Ask for blocks (≤ MAX_WANT). May be called while earlier wants are unanswered."""

    @abc.abstractmethod
    async def receive(self) -> Reply:
        """The next reply. Raises PeerError (or a subclass) when the peer closes or fails."""

    @abc.abstractmethod
    async def aclose(self) -> None:
        """Finish politely (all wants answered). Idempotent."""

    @abc.abstractmethod
    async def abort(self) -> None:
        """Drop the conversation at once (reset). Idempotent."""


class ChannelOpener(Protocol):
    """Opens a `BlockChannel` to a peer; raises PeerError when it cannot."""

    async def open(self, peer_id: PeerId) -> BlockChannel: ...


class StreamBlockChannel(BlockChannel):
    """`BlockChannel` over one libp2p stream speaking `/hoard/blocks/1`."""

    def __init__(self, peer_id: PeerId, stream: object) -> None:
        self.peer_id = peer_id
        self._stream = stream
        self._reader = FrameReader(stream)  # type: ignore[arg-type]
        self._closed = False

    async def send_want(self, req_id: int, cids: Sequence[CID]) -> None:
        try:
            await self._stream.write(encode_want(req_id, cids))  # type: ignore[attr-defined]
        except Exception as exc:
            raise PeerError(f"peer {self.peer_id}: sending want-list failed: {exc or type(exc).__name__}",
                            peer_id=str(self.peer_id)) from exc

    async def receive(self) -> Reply:
        try:
            reply = await self._reader.next_reply()
        except PeerError:
            raise
        except Exception as exc:
            raise PeerError(f"peer {self.peer_id}: stream failed: {exc or type(exc).__name__}",
                            peer_id=str(self.peer_id)) from exc
        if reply is None:
            raise PeerError(f"peer {self.peer_id} closed the block stream", peer_id=str(self.peer_id))
        return reply

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            await self._stream.close()  # type: ignore[attr-defined]
        except Exception:  # noqa: BLE001 - any failure to close: reset instead
            await self.abort()

    async def abort(self) -> None:
        self._closed = True
        try:
            await self._stream.reset()  # type: ignore[attr-defined]
        except Exception:  # noqa: BLE001, S110 - the stream may be gone already
            pass


class StreamChannelOpener:
    """Opens `StreamBlockChannel`s through a host (anything with `open_stream(peer_id, protocol)`)."""

    def __init__(self, host: object) -> None:
        self._host = host

    async def open(self, peer_id: PeerId) -> BlockChannel:
        stream = await self._host.open_stream(peer_id, BLOCKS_PROTOCOL)  # type: ignore[attr-defined]
        return StreamBlockChannel(peer_id, stream)
