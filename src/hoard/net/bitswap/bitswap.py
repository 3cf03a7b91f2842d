"""IPFS bitswap (/ipfs/bitswap/1.2.0, 1.1.0, 1.0.0) over a hoard `Host`: serve and fetch.

How it talks (as go-bitswap and Helia do): each side sends its messages on a stream it opened
itself, so a want-list goes out on our stream to the peer and the blocks come back on a stream
the peer opens to us. One `Bitswap` handles every inbound stream, serves the wants in it from
the block source, and routes the blocks and presences in it to the fetches waiting for them.

Serving: each peer has a ledger (its wanted CIDs, in order; cancels and full want-lists
applied); a task per busy peer answers it in messages of up to SEND_BATCH_BYTES: the block for
a want-block, HAVE for a want-have, DONT_HAVE where the peer asked for it (1.2.0). A 1.0.0 peer
gets bare blocks, 1.1.0+ gets prefixed blocks.

Fetching: see session.py. Every received block's CID is computed from its bytes; a block no
fetch asked for is dropped and counted.

Built instead of py-libp2p 0.8.1's `libp2p.bitswap` (read in full, see docs/ipfs.md): it answers
wants inline on the requester's stream, which go-bitswap never reads (kubo would not receive
them), stores unrequested blocks, limits blocks to 512 KiB (Helia sends 1 MiB), polls with
sleeps and logs every block at INFO; its generated protobuf class is reused.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import trio
from libp2p.abc import INetStream
from libp2p.custom_types import TProtocol

from hoard.errors import InvalidArgumentError, PeerError
from hoard.ids.cid import CID, DAG_PB, SHA2_256
from hoard.ids.peer import PeerId
from hoard.net.exchange import BlockSource, as_getter

from .message import (
    MAX_BLOCK_BYTES,
    PROTOCOLS,
    WITH_PREFIX,
    WITH_PRESENCES,
    Inbound,
    MessageReader,
    Want,
    cid_from_prefix,
    encode_blocks,
    encode_presences,
    encode_wants,
    frame,
    parse,
)

if TYPE_CHECKING:
    from hoard.net.host import Host

    from .session import FetchLimits, Session

__all__ = ["Bitswap", "BitswapStats"]

logger = logging.getLogger(__name__)

SEND_BATCH_BYTES = 16 * 1024  # as boxo's engine (targetMessageSize): a large block goes out alone
#: Wanted CIDs one peer may have in our ledger at once (the rest are ignored).
MAX_LEDGER = 8192
OPEN_TIMEOUT = 10.0
#: Peer states kept before idle, disconnected peers are forgotten.
MAX_PEER_STATES = 1024
#: Bitswap streams one peer may have open to us at once (kubo and Helia use one).
MAX_INBOUND_STREAMS = 8


@dataclass
class BitswapStats:
    blocks_sent: int = 0
    bytes_sent: int = 0
    blocks_received: int = 0
    bytes_received: int = 0
    unwanted_blocks: int = 0
    dont_have_sent: int = 0
    protocol_errors: int = 0


@dataclass
class _Peer:
    peer_id: PeerId
    stream: INetStream | None = None
    protocol: str | None = None
    lock: trio.Lock = field(default_factory=trio.Lock)
    ledger: OrderedDict[CID, Want] = field(default_factory=OrderedDict)
    inbound_protocol: str | None = None
    inbound_streams: int = 0
    serving: bool = False


class Bitswap:
    """Bitswap over a running `Host`: `async with Bitswap(host, source).run(): ...`."""

    protocols: tuple[str, ...] = PROTOCOLS

    def __init__(self, host: Host, source: BlockSource | None = None,
                 limits: FetchLimits | None = None, protocols: Sequence[str] = PROTOCOLS) -> None:
        from .session import FetchLimits
        unknown = set(protocols) - set(PROTOCOLS)
        if unknown or not protocols:
            raise InvalidArgumentError(f"bitswap protocols must be among {', '.join(PROTOCOLS)}: {sorted(unknown)}")
        self.protocols = tuple(protocols)
        self.host = host
        self.limits = limits or FetchLimits()
        self.stats = BitswapStats()
        self._get: Callable[[CID], Awaitable[bytes | None]] | None = as_getter(source) if source else None
        self._peers: dict[PeerId, _Peer] = {}
        self._sessions: dict[CID, set[Session]] = {}
        self._by_sha256: dict[bytes, CID] = {}  # wanted sha2-256 CIDs by digest (1.0.0 blocks)
        self._presence_waiters: dict[CID, list[tuple[set[PeerId], trio.Event]]] = {}
        self._nursery: trio.Nursery | None = None

    # -- lifecycle ----------------------------------------------------------------------
    @asynccontextmanager
    async def run(self) -> AsyncIterator[Bitswap]:
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            for protocol in self.protocols:
                self.host.libp2p.set_stream_handler(TProtocol(protocol), self._handle)
            try:
                yield self
            finally:
                for protocol in self.protocols:
                    self.host.libp2p.remove_stream_handler(TProtocol(protocol))
                self._nursery = None
                # shielded: a Cancelled raised here would replace an exception on its way out
                with trio.CancelScope(shield=True), trio.move_on_after(2):
                    for peer in self._peers.values():
                        if peer.stream is not None:
                            await peer.stream.reset()
                nursery.cancel_scope.cancel()

    def serve(self, source: BlockSource | None) -> None:
        self._get = as_getter(source) if source else None

    def _require_nursery(self) -> trio.Nursery:
        if self._nursery is None:
            raise PeerError("bitswap is not running")
        return self._nursery

    def _peer(self, peer_id: PeerId) -> _Peer:
        peer = self._peers.get(peer_id)
        if peer is None:
            if len(self._peers) >= MAX_PEER_STATES:
                self._prune()
            peer = self._peers[peer_id] = _Peer(peer_id)
        return peer

    def _prune(self) -> None:
        """Forget idle peers that are no longer connected (their streams died with them)."""
        for peer_id, peer in list(self._peers.items()):
            if not peer.ledger and not peer.serving and not peer.lock.locked() and not peer.inbound_streams \
                    and not self.host.is_connected(peer_id):
                del self._peers[peer_id]

    # -- sending ------------------------------------------------------------------------
    async def _send(self, peer: _Peer, build: Callable[[str], bytes | None]) -> None:
        """Send one message on our stream to the peer (opened on first use); `build` gets the
        negotiated protocol and returns the body (None: nothing to send). A reused stream that
        fails (the connection was replaced since) is reopened once."""
        async with peer.lock:
            for attempt in (1, 2):
                fresh = peer.stream is None
                if peer.stream is None:
                    await self._open(peer)
                assert peer.stream is not None and peer.protocol is not None
                body = build(peer.protocol)
                if body is None:
                    return
                try:
                    await peer.stream.write(frame(body))
                    return
                except Exception as exc:
                    stream, peer.stream = peer.stream, None
                    with trio.move_on_after(1):
                        await stream.reset()
                    if fresh or attempt == 2:
                        raise PeerError(f"bitswap to {peer.peer_id} failed: {exc or type(exc).__name__}",
                                        peer_id=str(peer.peer_id)) from exc

    async def _open(self, peer: _Peer) -> None:
        try:
            with trio.fail_after(OPEN_TIMEOUT):
                stream = await self.host.libp2p.new_stream(
                    peer.peer_id.libp2p, [TProtocol(p) for p in self.protocols])
        except Exception as exc:
            raise PeerError(f"cannot open bitswap to {peer.peer_id}: {exc or type(exc).__name__}",
                            peer_id=str(peer.peer_id)) from exc
        peer.stream, peer.protocol = stream, str(stream.get_protocol())

    async def send_wants(self, peer_id: PeerId, wants: Sequence[Want]) -> None:
        """Send want-list entries (incremental) to a peer."""
        def build(protocol: str) -> bytes:
            presences = protocol in WITH_PRESENCES
            if not presences:  # 1.0.0/1.1.0 know only want-block
                kept = [w for w in wants if not w.want_have or w.cancel]
                return encode_wants(kept, presences=False)
            return encode_wants(wants, presences=True)
        await self._send(self._peer(peer_id), build)

    def peer_protocol(self, peer_id: PeerId) -> str | None:
        peer = self._peers.get(peer_id)
        return peer.protocol if peer else None

    # -- inbound ------------------------------------------------------------------------
    async def _handle(self, stream: INetStream) -> None:
        peer_id = PeerId(stream.muxed_conn.peer_id)
        peer = self._peer(peer_id)
        if peer.inbound_streams >= MAX_INBOUND_STREAMS:
            self.stats.protocol_errors += 1
            with trio.move_on_after(1):
                await stream.reset()
            return
        peer.inbound_protocol = str(stream.get_protocol())
        peer.inbound_streams += 1
        try:
            await self._read_stream(peer, stream)
        finally:
            peer.inbound_streams -= 1

    async def _read_stream(self, peer: _Peer, stream: INetStream) -> None:
        peer_id = peer.peer_id
        reader = MessageReader(stream)
        try:
            while (body := await reader.next()) is not None:
                self._on_message(peer, parse(body))
        except PeerError as exc:
            self.stats.protocol_errors += 1
            logger.info("bitswap stream from %s ended: %s", peer_id, exc)
            with trio.move_on_after(1):
                await stream.reset()
            return
        except Exception as exc:  # noqa: BLE001 - a peer's stream must never take the node down
            logger.info("bitswap stream from %s failed: %s", peer_id, exc or type(exc).__name__)
            with trio.move_on_after(1):
                await stream.reset()
            return
        with trio.move_on_after(1):
            await stream.close()

    def _on_message(self, peer: _Peer, msg: Inbound) -> None:
        if msg.full:
            peer.ledger.clear()
        for want in msg.wants:
            if want.cancel:
                peer.ledger.pop(want.cid, None)
            elif want.cid in peer.ledger or len(peer.ledger) < MAX_LEDGER:
                peer.ledger[want.cid] = want
        if peer.ledger and not peer.serving and self._nursery is not None:
            peer.serving = True
            self._nursery.start_soon(self._serve_peer, peer)
        for prefix, data in msg.blocks:
            self._on_block(peer.peer_id, prefix, data)
        for cid, have in msg.presences:
            self._on_presence(peer.peer_id, cid, have)

    def _on_block(self, peer_id: PeerId, prefix: bytes | None, data: bytes) -> None:
        self.stats.blocks_received += 1
        self.stats.bytes_received += len(data)
        if prefix is not None:
            computed = cid_from_prefix(prefix, data)
            cid = self._wanted_form(computed) if computed is not None else None
        else:  # 1.0.0: a bare block, matched by its sha2-256 digest among the wanted CIDs
            cid = self._by_sha256.get(CID.sha256(data).digest)
        if cid is not None:
            self._wake_presence(cid, peer_id)
        sessions = self._sessions.get(cid) if cid is not None else None
        if cid is None or not sessions:
            self.stats.unwanted_blocks += 1
            return
        for session in list(sessions):
            session.on_block(peer_id, cid, data)

    def _wanted_form(self, cid: CID) -> CID:
        """A dag-pb sha2-256 block answers a want for its CIDv0 and its CIDv1 alike."""
        if cid in self._sessions or cid.codec != DAG_PB or cid.hash_code != SHA2_256:
            return cid
        other = cid.to_v1() if cid.version == 0 else CID.v0(cid.digest)
        return other if other in self._sessions else cid

    def _on_presence(self, peer_id: PeerId, cid: CID, have: bool) -> None:
        if have:
            self._wake_presence(cid, peer_id)
        for session in list(self._sessions.get(cid, ())):
            session.on_presence(peer_id, cid, have)

    def _wake_presence(self, cid: CID, peer_id: PeerId) -> None:
        for peers, event in self._presence_waiters.get(cid, ()):
            peers.add(peer_id)
            event.set()

    # -- serving ------------------------------------------------------------------------
    async def _serve_peer(self, peer: _Peer) -> None:
        try:
            while peer.ledger:
                blocks: list[tuple[CID, bytes]] = []
                presences: list[tuple[CID, bool]] = []
                size = 0
                while peer.ledger and size < SEND_BATCH_BYTES:
                    cid, want = peer.ledger.popitem(last=False)
                    data = await self._lookup(cid)
                    if data is not None and len(data) > MAX_BLOCK_BYTES:
                        data = None
                    if data is None:
                        if want.send_dont_have:
                            presences.append((cid, False))
                    elif want.want_have:
                        presences.append((cid, True))
                    else:
                        blocks.append((cid, data))
                        size += len(data)
                await self._send_answers(peer, blocks, presences)
        except PeerError as exc:
            logger.info("serving bitswap to %s stopped: %s", peer.peer_id, exc)
            peer.ledger.clear()
        finally:
            peer.serving = False

    async def _lookup(self, cid: CID) -> bytes | None:
        if self._get is None:
            return None
        try:
            return await self._get(cid)
        except Exception as exc:  # noqa: BLE001 - a failing source answers DONT_HAVE
            logger.warning("bitswap: block source failed for %s: %s", cid, exc)
            return None

    async def _send_answers(self, peer: _Peer, blocks: list[tuple[CID, bytes]],
                            presences: list[tuple[CID, bool]]) -> None:
        def build_blocks(protocol: str) -> bytes | None:
            return encode_blocks(blocks, with_prefix=protocol in WITH_PREFIX) if blocks else None

        def build_presences(protocol: str) -> bytes | None:
            if protocol not in WITH_PRESENCES:
                return None
            self.stats.dont_have_sent += sum(1 for _, have in presences if not have)
            return encode_presences(presences)

        if blocks:
            await self._send(peer, build_blocks)
            self.stats.blocks_sent += len(blocks)
            self.stats.bytes_sent += sum(len(d) for _, d in blocks)
        if presences:
            await self._send(peer, build_presences)

    # -- fetching -----------------------------------------------------------------------
    def fetch(self, cids: Sequence[CID], providers: Sequence[PeerId], nursery: trio.Nursery) -> Session:
        """Fetch `cids` from `providers`: a stream of verified blocks in order (see session.py)."""
        from .session import Session
        self._require_nursery()
        session = Session(self, cids, providers, self.limits)
        nursery.start_soon(session.run)
        return session

    def _register(self, session: Session, cids: Sequence[CID]) -> None:
        for cid in cids:
            self._sessions.setdefault(cid, set()).add(session)
            if cid.hash_code == SHA2_256:
                self._by_sha256[cid.digest] = cid

    def _unregister(self, session: Session, cids: Sequence[CID]) -> None:
        for cid in cids:
            sessions = self._sessions.get(cid)
            if sessions is not None:
                sessions.discard(session)
                if not sessions:
                    del self._sessions[cid]
                    if self._by_sha256.get(cid.digest) == cid:
                        del self._by_sha256[cid.digest]

    async def find_providers(self, cid: CID, limit: int = 20, timeout: float = 5.0) -> list[PeerId]:
        """Connected peers that answer HAVE (or send the block) to a want-have for `cid`."""
        self._require_nursery()
        found: set[PeerId] = set()
        event = trio.Event()
        entry = (found, event)
        self._presence_waiters.setdefault(cid, []).append(entry)
        # peers asked at once; HAVE answers wake `event`
        try:
            async with trio.open_nursery() as nursery:
                for peer_id in self.host.connected_peers():
                    nursery.start_soon(self._ask_have, peer_id, cid)
            with trio.move_on_after(timeout):
                await event.wait()  # the first HAVE (more may come in while it is set)
        finally:
            waiters = self._presence_waiters.get(cid, [])
            if entry in waiters:
                waiters.remove(entry)
            if not waiters:
                self._presence_waiters.pop(cid, None)
        return sorted(found, key=str)[:limit]

    async def _ask_have(self, peer_id: PeerId, cid: CID) -> None:
        try:
            await self.send_wants(peer_id, [Want(cid, want_have=True, send_dont_have=True)])
        except PeerError as exc:
            logger.debug("bitswap want-have to %s failed: %s", peer_id, exc)

    def snapshot(self) -> dict[str, Any]:
        return {"peers": len(self._peers), "wanted": len(self._sessions), **self.stats.__dict__}
