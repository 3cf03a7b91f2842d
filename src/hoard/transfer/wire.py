"""`/hoard/transfer/1` on the wire: the frames a channel's stream carries.

Every frame is a 4-byte big-endian body length, then the body; the first body byte is the
kind (the framing and its reader are those of all hoard's peer protocols, `hoard.framing`):

```
MSG    0x01  a go-data-transfer message: canonical CBOR (hoard.transfer.messages), ≤ 1 MiB
BLOCK  0x02  cidlen:u8 cid data                 sender → recipient, data ≤ 4 MiB (the largest block)
DONE   0x03  (empty)                            sender → recipient: every selected block was sent
HAVE   0x04  count:u16 count × (cidlen:u8 cid)  recipient → sender: do not send these (≤ 4096 per frame)
TOTAL  0x05  size:u64 blocks:u64                sender → recipient: what the selection holds
ERROR  0x06  utf-8 text (≤ 4 KiB)               either way: the data transport failed; the stream ends
```

A channel's stream is opened by its initiator (New or Restart request) and carries both
directions: messages either way, blocks from whoever sends the data. HAVE frames always come
before the message that starts the data (a pull's New/Restart request, a push's New/Restart
response), so the sender knows what to skip before it sends anything.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Iterator
from typing import Final

from hoard.content.chunker import MAX_BLOCK_SIZE
from hoard.errors import InvalidArgumentError
from hoard.framing import ProtocolError
from hoard.ids.cid import CID

__all__ = [
    "BLOCK",
    "DONE",
    "ERROR",
    "HAVE",
    "MAX_FRAME",
    "MAX_HAVE",
    "MSG",
    "PROTOCOL",
    "TOTAL",
    "TransferProtocolError",
    "decode_block",
    "decode_error",
    "decode_have",
    "decode_total",
    "encode_block",
    "encode_done",
    "encode_error",
    "encode_have",
    "encode_message_frame",
    "encode_total",
]

PROTOCOL: Final = "/hoard/transfer/1"

MSG: Final = 0x01
BLOCK: Final = 0x02
DONE: Final = 0x03
HAVE: Final = 0x04
TOTAL: Final = 0x05
ERROR: Final = 0x06

MAX_CID = 64
MAX_HAVE = 4096  # CIDs per HAVE frame (~150 KB)
MAX_ERROR = 4096
MAX_FRAME: Final = 1 + 1 + MAX_CID + MAX_BLOCK_SIZE  # the largest BLOCK; messages are ≤ 1 MiB

_LEN = struct.Struct(">I")
_BLOCK_HEAD = struct.Struct(">IBB")  # length, kind, cidlen
_TOTAL = struct.Struct(">QQ")
_COUNT = struct.Struct(">H")


class TransferProtocolError(ProtocolError):
    """A peer sent something `/hoard/transfer/1` does not allow."""


def _frame(kind: int, body: bytes = b"") -> bytes:
    return _LEN.pack(1 + len(body)) + bytes((kind,)) + body


def encode_message_frame(data: bytes) -> bytes:
    """A MSG frame around an encoded transfer message."""
    return _frame(MSG, data)


def encode_block(cid: CID, data: bytes) -> tuple[bytes, bytes]:
    """A BLOCK frame as (header, data), so that several can be joined in one write."""
    binary = cid.binary
    if len(data) > MAX_BLOCK_SIZE:
        raise InvalidArgumentError(f"block {cid} is {len(data)} bytes, over the {MAX_BLOCK_SIZE}-byte limit",
                                   cid=str(cid))
    return _BLOCK_HEAD.pack(2 + len(binary) + len(data), BLOCK, len(binary)) + binary, data


def encode_done() -> bytes:
    return _frame(DONE)


def encode_total(size: int, blocks: int) -> bytes:
    return _frame(TOTAL, _TOTAL.pack(size, blocks))


def encode_error(text: str) -> bytes:
    return _frame(ERROR, text.encode("utf-8", "replace")[:MAX_ERROR])


def encode_have(cids: Iterable[CID]) -> Iterator[bytes]:
    """HAVE frames listing `cids`, at most MAX_HAVE per frame (none for no CIDs)."""
    batch: list[bytes] = []
    for cid in cids:
        binary = cid.binary
        batch.append(bytes((len(binary),)) + binary)
        if len(batch) == MAX_HAVE:
            yield _frame(HAVE, _COUNT.pack(len(batch)) + b"".join(batch))
            batch = []
    if batch:
        yield _frame(HAVE, _COUNT.pack(len(batch)) + b"".join(batch))


def _cid(data: bytes, what: str) -> CID:
    try:
        return CID(data)
    except Exception as exc:  # InvalidCidError
        raise TransferProtocolError(f"bad CID in {what}: {exc}") from exc


def decode_block(body: bytes) -> tuple[CID, memoryview]:
    """(cid, data) of a BLOCK body (the kind byte included); `data` is a view of `body`, not a copy."""
    if len(body) < 2:
        raise TransferProtocolError("short BLOCK frame")
    n = body[1]
    if n == 0 or n > MAX_CID or 2 + n > len(body):
        raise TransferProtocolError("bad CID length in BLOCK frame")
    return _cid(body[2:2 + n], "BLOCK frame"), memoryview(body)[2 + n:]


def decode_have(body: bytes) -> list[CID]:
    if len(body) < 3:
        raise TransferProtocolError("short HAVE frame")
    (count,) = _COUNT.unpack_from(body, 1)
    if not 0 < count <= MAX_HAVE:
        raise TransferProtocolError(f"HAVE frame of {count} CIDs (limit {MAX_HAVE})")
    pos, out = 3, []
    for _ in range(count):
        if pos >= len(body):
            raise TransferProtocolError("truncated HAVE frame")
        n = body[pos]
        if n == 0 or n > MAX_CID or pos + 1 + n > len(body):
            raise TransferProtocolError("bad CID length in HAVE frame")
        out.append(_cid(body[pos + 1:pos + 1 + n], "HAVE frame"))
        pos += 1 + n
    if pos != len(body):
        raise TransferProtocolError("trailing bytes after HAVE list")
    return out


def decode_total(body: bytes) -> tuple[int, int]:
    if len(body) != 1 + _TOTAL.size:
        raise TransferProtocolError("bad TOTAL frame")
    size, blocks = _TOTAL.unpack_from(body, 1)
    return size, blocks


def decode_error(body: bytes) -> str:
    if len(body) > 1 + MAX_ERROR:
        raise TransferProtocolError("ERROR frame too long")
    return body[1:].decode("utf-8", "replace")
