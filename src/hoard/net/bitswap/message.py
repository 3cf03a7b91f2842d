"""Bitswap messages (1.0.0, 1.1.0, 1.2.0): length-prefixed protobuf, parsed into checked values.

The protobuf schema is the bitswap spec's `Message` (wantlist, blocks, payload, blockPresences,
pendingBytes); its generated class ships with py-libp2p (`libp2p.bitswap.pb.bitswap_pb2`,
pinned with py-libp2p). On the wire each message is `uvarint(len) body`, at most
MAX_MESSAGE_BYTES. CIDs in entries and presences are binary CIDs (a CIDv0 is its multihash);
a 1.1.0+ block is `(prefix, data)`, its CID rebuilt from the prefix and the hash of the data —
so a block's CID is always computed here, never taken on trust.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field

import blake3
from libp2p.bitswap.pb.bitswap_pb2 import Message

from hoard.errors import InvalidCidError, PeerError
from hoard.framing import Readable, VarintFrameReader
from hoard.ids.cid import BLAKE3, CID, DAG_PB, DIGEST_LEN, SHA2_256

__all__ = ["MAX_BLOCK_BYTES", "MAX_MESSAGE_BYTES", "Inbound", "MessageReader", "Want",
           "cid_from_prefix", "encode_blocks", "encode_presences", "encode_wants", "frame",
           "parse", "prefix_of"]

PROTOCOL_120 = "/ipfs/bitswap/1.2.0"
PROTOCOL_110 = "/ipfs/bitswap/1.1.0"
PROTOCOL_100 = "/ipfs/bitswap/1.0.0"
PROTOCOL_LEGACY = "/ipfs/bitswap"
PROTOCOLS = (PROTOCOL_120, PROTOCOL_110, PROTOCOL_100, PROTOCOL_LEGACY)
#: Protocols whose blocks carry a CID prefix (1.1.0+) and that know presences (1.2.0).
WITH_PREFIX = (PROTOCOL_120, PROTOCOL_110)
WITH_PRESENCES = (PROTOCOL_120,)

MAX_MESSAGE_BYTES = 4 << 20
MAX_BLOCK_BYTES = 2 << 20
#: Entries taken from one received want-list (the rest are ignored).
MAX_ENTRIES = 8192


class ProtocolViolation(PeerError):
    """A peer sent a bitswap message its protocol does not allow."""


@dataclass(frozen=True, slots=True)
class Want:
    cid: CID
    cancel: bool = False
    want_have: bool = False
    send_dont_have: bool = False
    priority: int = 1


@dataclass(slots=True)
class Inbound:
    """A received message, checked: wants, blocks (as received), presences, and what was bad."""

    full: bool = False
    wants: list[Want] = field(default_factory=list)
    blocks: list[tuple[bytes | None, bytes]] = field(default_factory=list)  # (prefix or None, data)
    presences: list[tuple[CID, bool]] = field(default_factory=list)  # (cid, have)
    skipped: int = 0  # entries with CIDs hoard does not handle


def frame(body: bytes) -> bytes:
    n = len(body)
    out = bytearray()
    while n > 0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out) + body


def encode_wants(wants: Iterable[Want], full: bool = False, presences: bool = True) -> bytes:
    msg = Message()
    msg.wantlist.full = full
    for w in wants:
        entry = msg.wantlist.entries.add()
        entry.block = w.cid.binary
        entry.priority = w.priority
        entry.cancel = w.cancel
        if presences:
            entry.wantType = Message.Wantlist.Have if w.want_have else Message.Wantlist.Block
            entry.sendDontHave = w.send_dont_have
    return msg.SerializeToString()


def prefix_of(cid: CID) -> bytes:
    """The 1.1.0 block prefix: version, codec, hash code, digest length (as varints)."""
    if cid.version == 0:
        return bytes([0, DAG_PB, SHA2_256, DIGEST_LEN])
    return cid.binary[:-DIGEST_LEN]


def encode_blocks(blocks: Iterable[tuple[CID, bytes]], with_prefix: bool) -> bytes:
    msg = Message()
    for cid, data in blocks:
        if with_prefix:
            block = msg.payload.add()
            block.prefix = prefix_of(cid)
            block.data = data
        else:
            msg.blocks.append(data)
    return msg.SerializeToString()


def encode_presences(presences: Iterable[tuple[CID, bool]]) -> bytes:
    msg = Message()
    for cid, have in presences:
        p = msg.blockPresences.add()
        p.cid = cid.binary
        p.type = Message.Have if have else Message.DontHave
    return msg.SerializeToString()


def _parse_cid(raw: bytes) -> CID | None:
    try:
        return CID(raw)
    except InvalidCidError:
        return None


def parse(body: bytes) -> Inbound:
    """Decode a message body; CIDs hoard cannot verify are skipped (counted), never trusted."""
    msg = Message()
    try:
        msg.ParseFromString(body)
    except Exception as exc:  # protobuf's DecodeError and friends
        raise ProtocolViolation(f"malformed bitswap message: {exc}") from exc
    out = Inbound(full=msg.wantlist.full if msg.HasField("wantlist") else False)
    for entry in msg.wantlist.entries[:MAX_ENTRIES]:
        cid = _parse_cid(entry.block)
        if cid is None:
            out.skipped += 1
            continue
        out.wants.append(Want(cid, entry.cancel, entry.wantType == Message.Wantlist.Have,
                              entry.sendDontHave, entry.priority))
    out.skipped += max(0, len(msg.wantlist.entries) - MAX_ENTRIES)
    for data in msg.blocks:
        out.blocks.append((None, data))
    for block in msg.payload:
        out.blocks.append((block.prefix, block.data))
    for presence in msg.blockPresences:
        cid = _parse_cid(presence.cid)
        if cid is None:
            out.skipped += 1
            continue
        out.presences.append((cid, presence.type == Message.Have))
    return out


def _hash(code: int, data: bytes) -> bytes | None:
    if code == SHA2_256:
        return hashlib.sha256(data).digest()
    if code == BLAKE3:
        return blake3.blake3(data).digest()
    return None


def cid_from_prefix(prefix: bytes, data: bytes) -> CID | None:
    """The CID of `data` under a 1.1.0 prefix (the hash computed here), or None if hoard does
    not handle that kind of CID."""
    values: list[int] = []
    pos = 0
    for _ in range(4):
        value = shift = 0
        while True:
            if pos >= len(prefix) or shift > 63:
                return None
            byte = prefix[pos]
            pos += 1
            value |= (byte & 0x7F) << shift
            if not byte & 0x80:
                break
            shift += 7
        values.append(value)
    version, codec, code, length = values
    if pos != len(prefix) or length != DIGEST_LEN:
        return None
    digest = _hash(code, data)
    if digest is None:
        return None
    try:
        if version == 0:
            return CID.v0(digest) if codec == DAG_PB and code == SHA2_256 else None
        return CID.from_digest(codec, digest, code) if version == 1 else None
    except InvalidCidError:
        return None


class MessageReader(VarintFrameReader):
    """Reads `uvarint(len) body` messages from a stream, each at most MAX_MESSAGE_BYTES
    (hoard.framing's reader; a message that breaks the bounds is a ProtocolViolation)."""

    what = "bitswap message"
    violation = ProtocolViolation

    def __init__(self, stream: Readable, max_message: int = MAX_MESSAGE_BYTES) -> None:
        super().__init__(stream, max_message)

    async def next(self) -> bytes | None:
        """The next message body, or None at a clean end of stream."""
        return await self.next_body()
