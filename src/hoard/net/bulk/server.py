"""The serving side of the bulk path: offers over `/hoard/bulk/1`, blocks over TLS 1.3 on TCP.

`BulkServer(host, identity, source)` registers the `/hoard/bulk/1` handler on a `Host` and,
inside `async with server.run():`, listens on TCP on the IPs the host listens on (`port`, 0:
pick one; the same port on every IP). For each offer it accepts:

1. the request's certificate must verify as a libp2p certificate naming the stream's peer;
2. it stores a one-time offer (name, token, that certificate) valid for `OFFER_TTL` seconds,
   at most `max_offers_per_peer` per peer;
3. a TLS connection whose SNI names the offer takes it (once: the offer is removed then, so a
   name or token cannot be replayed); the client must present exactly the certificate it sent
   (OpenSSL verifies its handshake signature against it), then the token; the server answers
   READY and serves WANTs as `/hoard/blocks/1` does, one reply per CID in order.

Each connection runs in a thread of its own with blocking socket I/O (the TLS records are
encrypted with the GIL released); blocks are read from the source on the trio loop, one hop
per WANT. The server does not verify blocks: the client does.
"""

from __future__ import annotations

import hmac
import logging
import os
import socket
import ssl
import time
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import trio

from hoard.errors import PeerError
from hoard.framing import LEN, ProtocolError
from hoard.ids.cid import CID
from hoard.ids.peer import Identity, PeerId
from hoard.net.blocks import BlockSource
from hoard.net.host import Host
from hoard.net.wire import (
    MAX_BLOCK_SIZE,
    MAX_WANT,
    FrameReader,
    decode_want,
    encode_block,
    encode_dont_have,
)

from .offer import (
    BULK_PROTOCOL,
    MAX_CONTROL_FRAME,
    NAME_BYTES,
    OFFER_TTL,
    TOKEN,
    TOKEN_BYTES,
    Offer,
    decode_request,
    encode_offer,
    encode_refused,
    ready_frame,
)
from .tls import ALPN, BulkCertificate, peer_of, server_context

__all__ = ["BulkServer", "BulkServerStats"]

logger = logging.getLogger(__name__)

_MAX_WANT_FRAME = 1 + 4 + 2 + MAX_WANT * 65
FLUSH_BYTES = 4 << 20
HANDSHAKE_TIMEOUT = 10.0
IDLE_TIMEOUT = 300.0  # an open connection with no WANT for this long is closed


@dataclass
class BulkServerStats:
    """Counters since the server was created."""

    offers: int = 0             # offers made
    refused: int = 0            # offer requests refused
    connections: int = 0        # bulk connections accepted (token checked)
    rejected: int = 0           # TLS connections refused (no such offer, wrong certificate or token)
    active: int = 0
    blocks_sent: int = 0
    bytes_sent: int = 0
    dont_have: int = 0


@dataclass
class _Pending:
    peer: PeerId
    cert_der: bytes
    token: bytes
    expires: float
    context: ssl.SSLContext | None = field(default=None, repr=False)


def _getter(source: BlockSource) -> Callable[[CID], Awaitable[bytes | None]]:
    from hoard.net.blocks import _getter as blocks_getter

    return blocks_getter(source)


class _SyncFrames:
    """Length-prefixed frames from a blocking socket (small frames: WANT and TOKEN)."""

    def __init__(self, sock: ssl.SSLSocket) -> None:
        self._sock = sock
        self._buf = bytearray()

    def next_body(self, max_frame: int) -> bytes | None:
        if not self._fill(4):
            return None
        (length,) = LEN.unpack_from(self._buf)
        if length == 0 or length > max_frame:
            raise ProtocolError(f"frame of {length} bytes (limit {max_frame})")
        if not self._fill(4 + length):
            raise PeerError("the connection ended inside a frame")
        body = bytes(self._buf[4:4 + length])
        del self._buf[:4 + length]
        return body

    def _fill(self, need: int) -> bool:
        while len(self._buf) < need:
            try:
                chunk = self._sock.recv(1 << 16)
            except (ssl.SSLZeroReturnError, ssl.SSLEOFError):
                chunk = b""
            if not chunk:
                if not self._buf:
                    return False
                raise PeerError("the connection ended inside a frame")
            self._buf += chunk
        return True


class BulkServer:
    """Offers bulk connections to peers over `/hoard/bulk/1` and serves blocks on them."""

    def __init__(self, host: Host, identity: Identity, source: BlockSource, *, port: int = 0,
                 max_connections: int = 64, max_offers_per_peer: int = 8,
                 certificate: BulkCertificate | None = None) -> None:
        if not 0 <= port <= 65535:
            raise ValueError(f"bulk port must be 0..65535, not {port}")
        self.host = host
        self.identity = identity
        self.port = port
        self.stats = BulkServerStats()
        self._get = _getter(source)
        self._max_offers = max_offers_per_peer
        self._limiter = trio.CapacityLimiter(max_connections)
        self._certificate = certificate
        self._cert: BulkCertificate | None = None
        self._base: ssl.SSLContext | None = None
        self._pending: dict[bytes, _Pending] = {}
        self._claimed: weakref.WeakKeyDictionary[Any, _Pending] = weakref.WeakKeyDictionary()
        self._token: trio.lowlevel.TrioToken | None = None
        self._listening = False
        self._handled = 0
        self._handled_lot = trio.lowlevel.ParkingLot()
        self.bound_port = 0
        host.set_handler(BULK_PROTOCOL, self._handle_offer)

    # -- lifecycle --------------------------------------------------------------------
    @asynccontextmanager
    async def run(self) -> AsyncIterator[BulkServer]:
        """Listen for bulk connections until the block exits (the host must be running)."""
        cert = self._certificate
        if cert is None:
            cert = await trio.to_thread.run_sync(BulkCertificate.create, self.identity)
            assert cert is not None
        self._cert = cert
        self._base = server_context(cert, None)
        self._base.sni_callback = self._select
        self._token = trio.lowlevel.current_trio_token()
        listeners = await self._listen()
        try:
            async with trio.open_nursery() as nursery:
                for listener in listeners:
                    nursery.start_soon(self._accept_loop, listener, nursery)
                self._listening = True
                try:
                    yield self
                finally:
                    self._listening = False
                    nursery.cancel_scope.cancel()
        finally:
            for listener in listeners:
                with trio.CancelScope(shield=True):
                    await listener.aclose()
            self._pending.clear()
            if self._certificate is None:
                cert.remove()

    async def _listen(self) -> list[trio.SocketListener]:
        hosts = []
        for addr in self.host.listen_addrs:
            proto = addr.protocols()[0].name
            hosts.append(addr.value_for_protocol(proto))
        if any(h in ("0.0.0.0", "::") for h in hosts):
            hosts = [h for h in hosts if h in ("0.0.0.0", "::")]
        listeners: list[trio.SocketListener] = []
        port = self.port
        try:
            for host in dict.fromkeys(hosts):
                for listener in await trio.open_tcp_listeners(port, host=host):
                    listeners.append(listener)
                    port = listener.socket.getsockname()[1]
        except OSError as exc:
            for listener in listeners:
                await listener.aclose()
            raise PeerError(f"bulk path: cannot listen on port {self.port} of {', '.join(hosts)}: {exc}") from exc
        self.bound_port = port
        return listeners

    # -- offers (on the libp2p stream) ------------------------------------------------
    async def _handle_offer(self, stream: Any) -> None:
        peer = PeerId(stream.muxed_conn.peer_id)
        try:
            body = await FrameReader(stream, MAX_CONTROL_FRAME).next_body()
            if body is None:
                raise ProtocolError("no request")
            cert_der = decode_request(body)
            reply = self._make_offer(peer, cert_der)
            await stream.write(reply)
            await stream.close()
        except Exception as exc:  # noqa: BLE001 - a bad request or a peer gone: reset
            logger.info("bulk offer to %s failed: %r", peer, exc)
            with trio.CancelScope(shield=True):
                try:
                    await stream.reset()
                except Exception:  # noqa: BLE001, S110 - already gone
                    pass

    def _make_offer(self, peer: PeerId, cert_der: bytes) -> bytes:
        if not self._listening:
            return self._refuse("bulk path not listening")
        try:
            named = peer_of(cert_der)
        except PeerError as exc:
            return self._refuse(exc.message)
        if named != peer:
            logger.warning("peer %s asked for a bulk offer with a certificate for %s; refused", peer, named)
            return self._refuse("the certificate names another peer")
        now = time.monotonic()
        for key in [k for k, p in self._pending.items() if p.expires < now]:
            del self._pending[key]
        if sum(1 for p in self._pending.values() if p.peer == peer) >= self._max_offers:
            return self._refuse("too many open bulk offers")
        name, token = os.urandom(NAME_BYTES), os.urandom(TOKEN_BYTES)
        self._pending[name] = _Pending(peer, cert_der, token, now + OFFER_TTL)
        self.stats.offers += 1
        return encode_offer(Offer(self.bound_port, name, token))

    def _refuse(self, reason: str) -> bytes:
        self.stats.refused += 1
        return encode_refused(reason)

    def _select(self, sslobj: Any, server_name: str | None, _ctx: ssl.SSLContext) -> int | None:
        """SNI callback (in the connection's thread): take the offer the name selects."""
        try:
            pending = self._pending.pop(bytes.fromhex(server_name or ""), None)
        except ValueError:
            pending = None
        if pending is None or pending.expires < time.monotonic():
            return ssl.ALERT_DESCRIPTION_ACCESS_DENIED
        assert self._cert is not None
        sslobj.context = server_context(self._cert, pending.cert_der)
        self._claimed[sslobj] = pending
        return None

    # -- connections ------------------------------------------------------------------
    async def _accept_loop(self, listener: trio.SocketListener, nursery: trio.Nursery) -> None:
        while True:
            stream = await listener.accept()
            fd = stream.socket.detach()
            sock = socket.socket(fileno=fd)
            sock.setblocking(True)
            nursery.start_soon(self._run_connection, sock)

    async def _run_connection(self, sock: socket.socket) -> None:
        live = [sock]  # the socket the thread uses (the TLS one once wrapped), shut down on cancel
        try:
            await trio.to_thread.run_sync(self._serve, live, abandon_on_cancel=True,
                                         limiter=self._limiter)
        finally:
            _shutdown(live[-1])
            self._handled += 1
            self._handled_lot.unpark_all()

    async def wait_handled(self, count: int) -> None:
        """Wait until `count` connections have been handled to their end (served, or refused)."""
        while self._handled < count:
            await self._handled_lot.park()

    def _serve(self, live: list[socket.socket]) -> None:
        """One bulk connection, in its own thread: handshake, token, then WANTs until EOF."""
        try:
            self._serve_connection(live)
        finally:
            live[-1].close()

    def _serve_connection(self, live: list[socket.socket]) -> None:
        assert self._base is not None
        sock = live[0]
        sock.settimeout(HANDSHAKE_TIMEOUT)
        pending: _Pending | None = None
        try:
            tls = self._base.wrap_socket(sock, server_side=True)
            live.append(tls)
            pending = self._claimed.pop(tls, None)
            if pending is None or tls.selected_alpn_protocol() != ALPN:
                raise PeerError("no bulk offer for this connection")
            if tls.getpeercert(binary_form=True) != pending.cert_der:
                raise PeerError("the client presented another certificate than it sent")
            frames = _SyncFrames(tls)
            body = frames.next_body(1 + TOKEN_BYTES)
            if body is None or len(body) != 1 + TOKEN_BYTES or body[0] != TOKEN \
                    or not hmac.compare_digest(body[1:], pending.token):
                raise PeerError("wrong bulk token")
            tls.sendall(ready_frame())
        except (OSError, PeerError, ValueError) as exc:
            self.stats.rejected += 1
            who = pending.peer if pending is not None else "an unknown client"
            logger.warning("refused a bulk connection from %s: %s", who, getattr(exc, "message", exc))
            return
        tls.settimeout(IDLE_TIMEOUT)
        self.stats.connections += 1
        self.stats.active += 1
        try:
            self._serve_wants(tls, frames, pending.peer)
        except ProtocolError as exc:
            logger.warning("peer %s broke %s on the bulk path: %s; connection closed", pending.peer,
                           BULK_PROTOCOL, exc.message)
        except (OSError, PeerError, trio.RunFinishedError) as exc:
            logger.debug("bulk connection from %s ended: %r", pending.peer, exc)
        finally:
            self.stats.active -= 1

    def _serve_wants(self, tls: ssl.SSLSocket, frames: _SyncFrames, peer: PeerId) -> None:
        assert self._token is not None
        while True:
            body = frames.next_body(_MAX_WANT_FRAME)
            if body is None:
                return
            req_id, cids = decode_want(body)
            blocks = trio.from_thread.run(self._get_many, cids, trio_token=self._token)
            parts: list[bytes] = []
            pending = 0
            for cid, data in zip(cids, blocks, strict=True):
                if data is None:
                    parts.append(encode_dont_have(req_id, cid.binary))
                    self.stats.dont_have += 1
                    continue
                parts.extend(encode_block(req_id, cid.binary, data))
                pending += len(data)
                self.stats.blocks_sent += 1
                self.stats.bytes_sent += len(data)
                if pending >= FLUSH_BYTES:
                    tls.sendall(b"".join(parts))
                    parts.clear()
                    pending = 0
            if parts:
                tls.sendall(b"".join(parts))

    async def _get_many(self, cids: list[CID]) -> list[bytes | None]:
        out: list[bytes | None] = []
        for cid in cids:
            try:
                data = await self._get(cid)
            except Exception as exc:  # noqa: BLE001 - a failing source answers "don't have"
                logger.warning("block source failed for %s: %r; answered DONT_HAVE", cid, exc)
                data = None
            out.append(data if data is None or len(data) <= MAX_BLOCK_SIZE else None)
        return out


def _shutdown(sock: socket.socket) -> None:
    """Shut the connection down at the OS level (safe from another thread: the thread's
    blocking call returns), without touching the TLS state the thread may be using."""
    try:
        socket.socket.shutdown(sock, socket.SHUT_RDWR)
    except OSError:
        pass

