"""The fetching side of the bulk path: a `BlockChannel` over a TLS 1.3 connection of its own.

`BulkChannelOpener(host, certificate, fallback=StreamChannelOpener(host))` is a
`ChannelOpener`: give it to a `BlockFetcher` and fetches use the bulk path where the peer
offers it, and the `fallback` (the libp2p stream) where it does not, or where the bulk
connection cannot be made. Callers do not change.

Opening a channel to a peer:

1. ask for an offer on `/hoard/bulk/1` over the existing libp2p connection, sending our
   certificate (a peer that does not speak the protocol: fall back, and do not ask it again
   for `retry_after` seconds);
2. connect TCP to the offered port on the IP of that libp2p connection; TLS 1.3 with SNI = the
   offer's name, our certificate, ALPN `/hoard/bulk/1`;
3. check the server's certificate names the peer we asked (the libp2p TLS extension), send
   the one-time token, wait for READY.

Then want-lists go out from the trio thread and a reader thread of the channel receives,
decrypts (OpenSSL, GIL released) and parses the reply frames, handing them to the trio side in
batches. The fetcher verifies every block against its CID, as on any channel.
"""

from __future__ import annotations

import collections
import logging
import socket
import ssl
import struct
import threading
import time
from collections.abc import Sequence
from typing import Any

import trio

from hoard.errors import PeerError
from hoard.framing import LEN, ProtocolError
from hoard.ids.cid import CID
from hoard.ids.peer import PeerId
from hoard.net.host import Host
from hoard.net.wire import (
    MAX_FRAME,
    BlockChannel,
    ChannelOpener,
    FrameReader,
    Reply,
    encode_want,
)

from .offer import (
    BULK_PROTOCOL,
    MAX_CONTROL_FRAME,
    READY,
    Offer,
    decode_offer_reply,
    encode_request,
    token_frame,
)
from .tls import ALPN, BulkCertificate, client_context, peer_of

__all__ = ["BulkBlockChannel", "BulkChannelOpener"]

logger = logging.getLogger(__name__)

BLOCK = 0x02
DONT_HAVE = 0x03
MAX_CID = 64
_REPLY = struct.Struct(">BIB")
_RAW = 1 << 20                       # bytes asked of the socket per read
_PLAIN = MAX_FRAME + 4 + (256 << 10)  # decrypted bytes held: always room for a whole frame


class _Connection:
    """A client TLS connection: a raw TCP socket and an `ssl.SSLObject` over memory BIOs, so
    one thread can read while others write, each holding the TLS state only for the CPU work."""

    def __init__(self, sock: socket.socket, context: ssl.SSLContext, server_name: str) -> None:
        self.sock = sock
        self._in = ssl.MemoryBIO()
        self._out = ssl.MemoryBIO()
        self.tls = context.wrap_bio(self._in, self._out, server_hostname=server_name)
        self._tls_lock = threading.Lock()   # the SSLObject: one user at a time
        self._send_lock = threading.Lock()  # whole records go out in order
        self._read: Any = self.tls.read  # read(n, buffer) -> int (typeshed knows only read(n) -> bytes)
        self._backlog = False  # received bytes not yet decrypted (the last `plain` filled up)

    def handshake(self) -> None:
        while True:
            try:
                self.tls.do_handshake()
                break
            except ssl.SSLWantReadError:
                self._flush()
                data = self.sock.recv(65536)
                if not data:
                    raise PeerError("the bulk server closed the connection during the handshake") from None
                self._in.write(data)
        self._flush()

    def _flush(self) -> None:
        data = self._out.read()
        if data:
            self.sock.sendall(data)

    def send(self, data: bytes) -> None:
        with self._send_lock:
            with self._tls_lock:
                self.tls.write(data)
                out = self._out.read()
            self.sock.sendall(out)

    def receive_into(self, raw: memoryview, plain: memoryview) -> int:
        """Decrypt into `plain` what the connection has: what is left from the last call when
        `plain` filled up then, else what the next socket read completes. Returns the plaintext
        length (0 is possible: a partial record); EOFError at the end of the connection."""
        if not self._backlog:
            n = self.sock.recv_into(raw)
            if not n:
                raise EOFError
            with self._tls_lock:
                self._in.write(raw[:n])
        got = 0
        self._backlog = True
        with self._tls_lock:
            while got < len(plain):
                try:
                    count: int = self._read(len(plain) - got, plain[got:])
                except ssl.SSLWantReadError:
                    self._backlog = False  # everything received is decrypted: read the socket next
                    break
                except ssl.SSLZeroReturnError:
                    raise EOFError from None
                if not count:
                    raise EOFError
                got += count
            pending = self._out.pending
        if pending:  # a post-handshake message to answer
            with self._send_lock, self._tls_lock:
                self._flush()
        return got

    def close(self) -> None:
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()


def _connect(ip: str, offer: Offer, context: ssl.SSLContext, peer_id: PeerId, timeout: float) -> _Connection:
    """Blocking: TCP + TLS + certificate check + token + READY. Raises PeerError."""
    try:
        sock = socket.create_connection((ip, offer.port), timeout=timeout)
    except OSError as exc:
        raise PeerError(f"bulk path: cannot connect to {ip}:{offer.port}: {exc}") from exc
    conn = _Connection(sock, context, offer.server_name)
    try:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        conn.handshake()
        if conn.tls.selected_alpn_protocol() != ALPN:
            raise PeerError("bulk path: the server did not agree to ALPN " + ALPN)
        der = conn.tls.getpeercert(binary_form=True)
        named = peer_of(der) if der else None
        if named != peer_id:
            raise PeerError(f"bulk path: the server's certificate names {named}, not {peer_id}; refused")
        conn.send(token_frame(offer.token))
        body = b""
        raw = bytearray(4096)
        plain = bytearray(4096)
        while len(body) < 5:
            body += plain[:conn.receive_into(memoryview(raw), memoryview(plain))]
        if body != LEN.pack(1) + bytes((READY,)):
            raise PeerError("bulk path: the server did not accept the token")
        sock.settimeout(None)
        return conn
    except (OSError, EOFError, ssl.SSLError, ValueError) as exc:
        conn.close()
        raise PeerError(f"bulk path: connection to {ip}:{offer.port} failed: {exc!r}") from exc
    except BaseException:
        conn.close()
        raise


class BulkBlockChannel(BlockChannel):
    """`BlockChannel` over one bulk connection; a reader thread decrypts and parses replies."""

    def __init__(self, peer_id: PeerId, conn: _Connection) -> None:
        self.peer_id = peer_id
        self._conn = conn
        self._token = trio.lowlevel.current_trio_token()
        self._replies: collections.deque[Reply] = collections.deque()
        self._error: PeerError | None = None
        self._waiting = False
        self._lot = trio.lowlevel.ParkingLot()
        self._closed = False
        self.bytes_received = 0
        self.reader_cpu_s = 0.0  # CPU time of the reader thread, when it has ended
        self._thread = threading.Thread(target=self._read_loop, name=f"hoard-bulk-{peer_id}", daemon=True)
        self._thread.start()

    # -- trio side --------------------------------------------------------------------
    async def send_want(self, req_id: int, cids: Sequence[CID]) -> None:
        if self._error is not None:
            raise self._error
        try:
            self._conn.send(encode_want(req_id, cids))  # small: a few KiB, the socket takes it at once
        except (OSError, ssl.SSLError) as exc:
            raise PeerError(f"peer {self.peer_id}: sending want-list on the bulk path failed: {exc!r}",
                            peer_id=str(self.peer_id)) from exc

    async def receive(self) -> Reply:
        while not self._replies:
            if self._error is not None:
                raise self._error
            self._waiting = True
            if self._replies or self._error is not None:
                self._waiting = False
                continue
            await self._lot.park()
        return self._replies.popleft()

    async def aclose(self) -> None:
        await self.abort()

    async def abort(self) -> None:
        if not self._closed:
            self._closed = True
            self._conn.close()

    # -- reader thread ----------------------------------------------------------------
    def _wake(self) -> None:
        if self._waiting:
            self._waiting = False
            try:
                self._token.run_sync_soon(self._lot.unpark_all)
            except trio.RunFinishedError:
                pass

    def _read_loop(self) -> None:
        raw = memoryview(bytearray(_RAW))
        buf = bytearray(_PLAIN)
        view = memoryview(buf)
        start = fill = 0
        try:
            while True:
                if len(buf) - fill < _RAW:  # keep room for what one read can decrypt
                    view[:fill - start] = view[start:fill]
                    fill -= start
                    start = 0
                got = self._conn.receive_into(raw, view[fill:])
                fill += got
                self.bytes_received += got
                start, replies = _parse(view, start, fill)
                if replies:
                    self._replies.extend(replies)
                    self._wake()
                if start == fill:
                    start = fill = 0
        except EOFError:
            error = PeerError(f"peer {self.peer_id} closed the bulk connection", peer_id=str(self.peer_id))
            if start != fill:
                error = PeerError(f"peer {self.peer_id}: the bulk connection ended inside a frame",
                                  peer_id=str(self.peer_id))
            self._error = error
        except ProtocolError as exc:
            self._error = exc
        except Exception as exc:  # noqa: BLE001 - any failure of the connection ends the channel
            self._error = PeerError(f"peer {self.peer_id}: bulk connection failed: {exc!r}", peer_id=str(self.peer_id))
        finally:
            self.reader_cpu_s = time.thread_time()
            self._waiting = True
            self._wake()


def _parse(view: memoryview, start: int, fill: int) -> tuple[int, list[Reply]]:
    """Whole reply frames in view[start:fill]: (new start, replies)."""
    out: list[Reply] = []
    while fill - start >= 4:
        (length,) = LEN.unpack_from(view, start)
        if length < _REPLY.size or length > MAX_FRAME:
            raise ProtocolError(f"reply frame of {length} bytes")
        end = start + 4 + length
        if end > fill:
            break
        kind, req_id, cid_len = _REPLY.unpack_from(view, start + 4)
        head = start + 4 + _REPLY.size
        if cid_len > MAX_CID or _REPLY.size + cid_len > length:
            raise ProtocolError("bad CID length in reply")
        cid = bytes(view[head:head + cid_len])
        if kind == BLOCK:
            out.append(Reply(req_id, cid, bytes(view[head + cid_len:end])))
        elif kind == DONT_HAVE and head + cid_len == end:
            out.append(Reply(req_id, cid, None))
        else:
            raise ProtocolError(f"unknown reply type {kind}" if kind != DONT_HAVE else "trailing bytes after DONT_HAVE")
        start = end
    return start, out


class BulkChannelOpener:
    """A `ChannelOpener` that uses a peer's bulk path when it offers one, else `fallback`."""

    def __init__(self, host: Host, certificate: BulkCertificate, fallback: ChannelOpener | None = None, *,
                 connect_timeout: float = 10.0, retry_after: float = 600.0) -> None:
        self.host = host
        self.certificate = certificate
        self.fallback = fallback
        self.connect_timeout = connect_timeout
        self.retry_after = retry_after
        self._context = client_context(certificate)
        self._no_bulk: dict[PeerId, float] = {}  # peer -> when to ask it again
        self.opened: dict[str, int] = {"bulk": 0, "fallback": 0}

    async def open(self, peer_id: PeerId) -> BlockChannel:
        if self._no_bulk.get(peer_id, 0.0) <= time.monotonic():
            try:
                channel = await self.open_bulk(peer_id)
            except PeerError as exc:
                if self.fallback is None:
                    raise
                logger.info("bulk path to %s unavailable (%s); using the libp2p stream", peer_id, exc.message)
                self._no_bulk[peer_id] = time.monotonic() + self.retry_after
            else:
                self.opened["bulk"] += 1
                return channel
        if self.fallback is None:
            raise PeerError(f"peer {peer_id} offers no bulk path", peer_id=str(peer_id))
        self.opened["fallback"] += 1
        return await self.fallback.open(peer_id)

    async def request_offer(self, peer_id: PeerId) -> tuple[str, Offer]:
        """(the peer's IP on our libp2p connection, an offer); PeerError when it makes none."""
        stream: Any = await self.host.open_stream(peer_id, BULK_PROTOCOL)
        try:
            remote = stream.get_remote_address()
            await stream.write(encode_request(self.certificate.der))
            with trio.fail_after(self.connect_timeout):
                body = await FrameReader(stream, MAX_CONTROL_FRAME).next_body()
            await stream.close()
        except BaseException:
            with trio.CancelScope(shield=True):
                try:
                    await stream.reset()
                except Exception:  # noqa: BLE001, S110 - already gone
                    pass
            raise
        if body is None:
            raise PeerError(f"peer {peer_id} closed {BULK_PROTOCOL} without an offer", peer_id=str(peer_id))
        answer = decode_offer_reply(body)
        if isinstance(answer, str):
            raise PeerError(f"peer {peer_id} refused a bulk offer: {answer}", peer_id=str(peer_id))
        if not remote:
            raise PeerError(f"no address for peer {peer_id}'s connection", peer_id=str(peer_id))
        return str(remote[0]), answer

    async def open_bulk(self, peer_id: PeerId) -> BulkBlockChannel:
        """A bulk channel to the peer, or PeerError (no fallback here)."""
        try:
            ip, offer = await self.request_offer(peer_id)
        except trio.TooSlowError as exc:
            raise PeerError(f"peer {peer_id} made no bulk offer in time", peer_id=str(peer_id)) from exc
        conn = await self.connect(ip, offer, peer_id)
        return BulkBlockChannel(peer_id, conn)

    async def connect(self, ip: str, offer: Offer, peer_id: PeerId) -> _Connection:
        """Open the TLS connection for an offer (in a thread); PeerError when refused."""
        return await trio.to_thread.run_sync(_connect, ip, offer, self._context, peer_id, self.connect_timeout,
                                             abandon_on_cancel=True)
