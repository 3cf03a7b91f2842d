"""The libp2p host: TCP + Noise + yamux only, one connection per peer, at most `max_peers` peers.

`Host` wraps a py-libp2p 0.8.1 `BasicHost` built the one way hoard allows:

- transport TCP only (QUIC lost data in our measurements), security Noise only (`sec_opt` is
  always passed, otherwise py-libp2p also offers plaintext and secio), muxer yamux only
  (mplex is slow; py-libp2p's `create_yamux_muxer_option()` adds mplex as a fallback, so the
  option is built by hand);
- `max_connections_per_peer=1` (otherwise every dial waits 250 ms for a second connection);
- `max_connections=max_peers`: py-libp2p refuses an inbound connection beyond the limit before
  the handshake and closes any connection (either direction) that would exceed it when it
  registers; `high_watermark=max_peers` so its pruner never trims below the limit;
- its AutoConnector (which dials peerstore peers up to half the watermarks) is switched off;
- `agent_string` (Logos's `agent-string`) is the agent version its identify answers carry;
- `announce_addrs` (`announce-addrs`, `hoard node start --announce`) are the addresses the node
  announces (its SPR, DHT provider records, identify's listen addresses, `debug()`); without
  them, `announce_ip` (Logos's `nat: extip:<IP>`) replaces the IP of the bound addresses; without
  either, the bound addresses are announced with a wildcard IP (0.0.0.0, ::) expanded to the
  addresses of the machine's interfaces (loopback included; IPv6 link-local left out);
- a listen port another process already listens on is refused (`PeerError`) before
  py-libp2p binds it: py-libp2p listens with SO_REUSEPORT, so two nodes would otherwise share it.

Creating a `Host` applies `tune_py_libp2p()` (see `hoard.net.tuning`).
"""

from __future__ import annotations

import base64
import errno
import ipaddress
import logging
import socket
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from contextlib import asynccontextmanager
from typing import Any

import multiaddr
import trio
from libp2p import new_host
from libp2p.abc import IHost, INetConn, INetStream, INetwork, INotifee
from libp2p.crypto.x25519 import create_new_key_pair as create_x25519_key_pair
from libp2p.custom_types import TProtocol
from libp2p.identity.identify.identify import ID as IDENTIFY_ID
from libp2p.identity.identify.identify import (
    _mk_identify_protobuf,
    _remote_address_to_multiaddr,
)
from libp2p.network.config import ConnectionConfig
from libp2p.peer.envelope import Envelope, consume_envelope
from libp2p.peer.peer_record import PEER_RECORD_ENVELOPE_DOMAIN
from libp2p.peer.peerinfo import PeerInfo
from libp2p.security.noise.transport import PROTOCOL_ID as NOISE_ID
from libp2p.security.noise.transport import Transport as NoiseTransport
from libp2p.stream_muxer.yamux.yamux import PROTOCOL_ID as YAMUX_ID
from libp2p.stream_muxer.yamux.yamux import Yamux
from libp2p.utils import varint

from hoard.errors import InvalidArgumentError, PeerError
from hoard.ids.peer import SPR_PREFIX, Identity, PeerId

from .tuning import tune_py_libp2p

__all__ = ["Host", "check_ports_free", "expand_wildcards", "interface_ips", "parse_listen_addrs", "parse_peer_addrs",
           "parse_spr", "strip_p2p"]

logger = logging.getLogger(__name__)

DEFAULT_DIAL_TIMEOUT = 10.0
# How long dialled/learned addresses stay in the peerstore (py-libp2p's connect uses 120 s).
ADDR_TTL = 24 * 3600
# -- addresses -----------------------------------------------------------------------------

def _multiaddr(text: str | multiaddr.Multiaddr) -> multiaddr.Multiaddr:
    if isinstance(text, multiaddr.Multiaddr):
        return text
    try:
        return multiaddr.Multiaddr(str(text).strip())
    except Exception as exc:
        raise InvalidArgumentError(f"invalid address {text!r}: {exc}", address=str(text)) from exc


def _is_tcp(addr: multiaddr.Multiaddr) -> bool:
    names = [p.name for p in addr.protocols()]
    return len(names) >= 2 and names[0] in ("ip4", "ip6", "dns", "dns4", "dns6") and names[1] == "tcp"


def strip_p2p(addr: multiaddr.Multiaddr) -> multiaddr.Multiaddr:
    """The address without its `/p2p/<peer id>` part, if it has one."""
    named = _p2p_of(addr)
    return addr.decapsulate(multiaddr.Multiaddr(f"/p2p/{named}")) if named else addr


def _p2p_of(addr: multiaddr.Multiaddr) -> str | None:
    try:
        return addr.value_for_protocol("p2p") or None
    except Exception:  # noqa: BLE001 - multiaddr raises several kinds for an address without /p2p
        return None


def parse_listen_addrs(addrs: Iterable[str | multiaddr.Multiaddr]) -> list[multiaddr.Multiaddr]:
    """Listen multiaddrs, each `/ip4|ip6/<host>/tcp/<port>` (port 0 picks a free port)."""
    out = []
    for text in addrs:
        addr = _multiaddr(text)
        names = [p.name for p in addr.protocols()]
        if names not in (["ip4", "tcp"], ["ip6", "tcp"]):
            raise InvalidArgumentError(
                f"invalid address {str(text)!r}: hoard listens on /ip4|ip6/<host>/tcp/<port> only", address=str(text))
        out.append(addr)
    if not out:
        raise InvalidArgumentError("no listen address given")
    return out


def parse_peer_addrs(addrs: Iterable[str | multiaddr.Multiaddr], peer_id: PeerId | None = None) -> list[multiaddr.Multiaddr]:
    """Dialable multiaddrs for a peer, without their `/p2p/<id>` suffix.

    A multiaddr that does not parse, is not TCP, or names another peer in `/p2p/` is an
    `InvalidArgumentError("invalid address ...")`.
    """
    out = []
    for text in addrs:
        addr = _multiaddr(text)
        named = _p2p_of(addr)
        if named and peer_id is not None and str(named) != str(peer_id):
            raise InvalidArgumentError(
                f"invalid address {str(text)!r}: it names peer {named}, not {peer_id}", address=str(text))
        addr = strip_p2p(addr)
        if not _is_tcp(addr):
            raise InvalidArgumentError(f"invalid address {str(text)!r}: hoard dials TCP addresses only", address=str(text))
        out.append(addr)
    return out


def parse_spr(text: str) -> tuple[Envelope, PeerId, list[multiaddr.Multiaddr], int]:
    """Verify a signed peer record (`spr:...`): (envelope, peer id, addresses, seq)."""
    raw = str(text).strip()
    raw = raw.removeprefix(SPR_PREFIX)
    try:
        envelope, record = consume_envelope(base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)),
                                            PEER_RECORD_ENVELOPE_DOMAIN)
    except Exception as exc:
        raise InvalidArgumentError(f"invalid signed peer record: {str(text)[:60]}...", spr=str(text)) from exc
    return envelope, PeerId(record.peer_id), list(record.addrs), record.seq


def interface_ips(version: int) -> list[str]:
    """The IP addresses (4 or 6) of this machine's interfaces, loopback first; IPv6 link-local
    addresses are left out (they need a zone to be dialled)."""
    import ifaddr  # installed with py-libp2p

    found: list[ipaddress.IPv4Address | ipaddress.IPv6Address] = []
    for adapter in ifaddr.get_adapters():
        for ip in adapter.ips:
            raw = ip.ip[0] if isinstance(ip.ip, tuple) else ip.ip
            try:
                parsed = ipaddress.ip_address(raw)
            except ValueError:
                continue
            if parsed.version == version and not parsed.is_link_local and parsed not in found:
                found.append(parsed)
    found.sort(key=lambda a: (not a.is_loopback, a.packed))
    return [str(a) for a in found]


def expand_wildcards(addrs: Iterable[multiaddr.Multiaddr]) -> list[multiaddr.Multiaddr]:
    """`addrs` with each /ip4/0.0.0.0 (/ip6/::) address replaced by one per interface address."""
    out: list[multiaddr.Multiaddr] = []
    for addr in addrs:
        parts = str(addr).split("/")  # ["", "ip4", "<ip>", "tcp", "<port>", ...]
        if len(parts) > 2 and parts[2] in ("0.0.0.0", "::"):
            ips = interface_ips(4 if parts[1] == "ip4" else 6)
            out.extend(multiaddr.Multiaddr("/".join(["", parts[1], ip, *parts[3:]])) for ip in ips)
        else:
            out.append(addr)
    return list({str(a): a for a in out}.values())


def check_ports_free(addrs: Iterable[multiaddr.Multiaddr]) -> None:
    """Refuse listen addresses whose port another socket already listens on.

    py-libp2p binds with SO_REUSEPORT, so a second node on the same port would start and share
    it (connections then land on either node at random). A probe socket bound without
    SO_REUSEPORT fails on a port in use; it is closed at once (port 0 needs no probe)."""
    for addr in addrs:
        parts = str(addr).split("/")
        if len(parts) < 5 or parts[3] != "tcp" or parts[4] == "0":
            continue
        family = socket.AF_INET6 if parts[1] == "ip6" else socket.AF_INET
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # TIME_WAIT is no conflict
            try:
                probe.bind((parts[2], int(parts[4])))
            except OSError as exc:
                if exc.errno == errno.EADDRINUSE:
                    raise PeerError(
                        f"cannot listen on {addr}: port {parts[4]} is already in use by another process "
                        f"(another hoard node? choose another port with --listen or listen-addrs)",
                        address=str(addr)) from exc
                raise PeerError(f"cannot listen on {addr}: {exc.strerror or exc}", address=str(addr)) from exc


async def _no_auto_connect() -> None:
    return None


def _identify_handler(host: IHost, agent_string: str | None,
                      announce: Callable[[], list[multiaddr.Multiaddr]] | None) -> Any:
    """py-libp2p's identify answer (length-prefixed, as its own handler sends it) with our agent
    version (py-libp2p puts a process-wide constant there) and, with `announce`, the announced
    addresses as the listen addresses."""

    async def handle(stream: INetStream) -> None:
        observed = None
        try:
            remote = stream.get_remote_address()
            observed = _remote_address_to_multiaddr(remote) if remote else None
        except Exception:  # noqa: BLE001, S110 - the observed address is optional
            pass
        try:
            message = _mk_identify_protobuf(host, observed)
            if agent_string is not None:
                message.agent_version = agent_string
            if announce is not None:
                del message.listen_addrs[:]
                message.listen_addrs.extend(a.to_bytes() for a in announce())
            data = message.SerializeToString()
            await stream.write(varint.encode_uvarint(len(data)) + data)
        except Exception as exc:  # noqa: BLE001 - any failure resets the stream, like py-libp2p's handler
            logger.debug("identify answer failed: %r", exc)
            await stream.reset()
            return
        try:
            await stream.close()
        except Exception:  # noqa: BLE001, S110 - the peer may have gone
            pass

    return handle


class _ConnectionLog(INotifee):
    """Logs each connection opened and closed (INFO), with the peer and its address."""

    @staticmethod
    def _describe(conn: INetConn) -> tuple[str, str]:
        muxed = getattr(conn, "muxed_conn", None)
        peer = str(getattr(muxed, "peer_id", "?"))
        try:
            addrs = ", ".join(str(a) for a in conn.get_transport_addresses())
        except Exception:  # noqa: BLE001 - the address is only for the log line
            addrs = "?"
        return peer, addrs

    async def connected(self, network: INetwork, conn: INetConn) -> None:
        logger.info("connected to %s at %s", *self._describe(conn))

    async def disconnected(self, network: INetwork, conn: INetConn) -> None:
        logger.info("disconnected from %s (%s)", *self._describe(conn))

    async def opened_stream(self, network: INetwork, stream: INetStream) -> None:
        return None

    async def closed_stream(self, network: INetwork, stream: INetStream) -> None:
        return None

    async def listen(self, network: INetwork, multiaddr: multiaddr.Multiaddr) -> None:
        return None

    async def listen_close(self, network: INetwork, multiaddr: multiaddr.Multiaddr) -> None:
        return None


# -- the host ------------------------------------------------------------------------------

class Host:
    """A py-libp2p host for a hoard node. Create it, then `async with host.run(): ...`."""

    def __init__(self, identity: Identity, listen_addrs: Sequence[str | multiaddr.Multiaddr] = ("/ip4/127.0.0.1/tcp/0",),
                 max_peers: int = 160, dial_timeout: float = DEFAULT_DIAL_TIMEOUT, *,
                 agent_string: str | None = None, announce_ip: str | None = None,
                 announce_addrs: Sequence[str | multiaddr.Multiaddr] = ()) -> None:
        if max_peers < 1:
            raise InvalidArgumentError(f"max-peers must be at least 1, got {max_peers}", max_peers=max_peers)
        tune_py_libp2p()
        self.identity = identity
        self.peer_id = identity.peer_id
        self.listen_addrs = parse_listen_addrs(listen_addrs)
        self.max_peers = max_peers
        self.dial_timeout = dial_timeout
        key_pair = identity.key_pair
        config = ConnectionConfig(
            max_connections_per_peer=1,
            max_connections=max_peers,
            min_connections=0,
            low_watermark=0,
            high_watermark=max_peers,
            dial_timeout=dial_timeout,
        )
        self.libp2p: IHost = new_host(
            key_pair=key_pair,
            listen_addrs=self.listen_addrs,
            sec_opt={NOISE_ID: NoiseTransport(key_pair, noise_privkey=create_x25519_key_pair().private_key)},
            muxer_opt={TProtocol(YAMUX_ID): Yamux},  # create_yamux_muxer_option() also offers mplex
            connection_config=config,
            enable_mDNS=False,
            enable_upnp=False,
            enable_quic=False,
        )
        # py-libp2p's AutoConnector dials peerstore peers until (low + high watermark) / 2
        # connections are open, even with low_watermark=0. A hoard node dials only whom it is
        # told to (bootstrap, connect, providers, DHT queries), so it is switched off.
        self.libp2p.get_network().auto_connector.maybe_connect = _no_auto_connect  # type: ignore[attr-defined]
        self.libp2p.get_network().register_notifee(_ConnectionLog())
        self.announce_ip = ipaddress.ip_address(announce_ip) if announce_ip else None
        self.explicit_announce = parse_peer_addrs(announce_addrs)
        if agent_string is not None or self.announce_ip is not None or self.explicit_announce or self._wildcard:
            announce = ((lambda: self.announce_addrs)
                        if self.announce_ip is not None or self.explicit_announce or self._wildcard else None)
            self.libp2p.set_stream_handler(IDENTIFY_ID, _identify_handler(self.libp2p, agent_string, announce))
        self._spr: tuple[tuple[str, ...], str] | None = None
        self._agents: dict[str, str | None] = {}  # peer id -> identify agent version, asked once

    @asynccontextmanager
    async def run(self) -> AsyncIterator[Host]:
        """Listen on the configured addresses until the block exits; then close every connection.

        An address that cannot be bound (in use, not local) is a `PeerError` here: py-libp2p
        only logs it and runs without that listener."""
        missing = 0
        check_ports_free(self.listen_addrs)
        async with self.libp2p.run(listen_addrs=self.listen_addrs):
            missing = len(self.listen_addrs) - len(self.addrs)
            if not missing:
                yield self
        if missing:
            raise PeerError(f"cannot listen on {', '.join(map(str, self.listen_addrs))}: "
                            f"{missing} address(es) could not be bound (in use, or not local?)")

    # -- addresses and record ---------------------------------------------------------
    @property
    def addrs(self) -> list[multiaddr.Multiaddr]:
        """The bound listen addresses (real ports where 0 was asked), without `/p2p/`."""
        return list(self.libp2p.get_transport_addrs())

    def p2p_addrs(self) -> list[multiaddr.Multiaddr]:
        """The bound listen addresses with `/p2p/<peer id>`."""
        return list(self.libp2p.get_addrs())

    @property
    def _wildcard(self) -> bool:
        return any(str(a).split("/")[2] in ("0.0.0.0", "::") for a in self.listen_addrs)

    @property
    def announce_addrs(self) -> list[multiaddr.Multiaddr]:
        """The addresses this node announces: `announce_addrs` if given, else the bound ones with
        `announce_ip` as their IP if set, else the bound ones with wildcard IPs expanded."""
        if self.explicit_announce:
            return list(self.explicit_announce)
        if self.announce_ip is None:
            return expand_wildcards(self.addrs)
        proto = "ip4" if self.announce_ip.version == 4 else "ip6"
        out = []
        for addr in self.addrs:
            parts = str(addr).split("/")  # ["", "ip4", "<ip>", "tcp", "<port>", ...]
            out.append(multiaddr.Multiaddr("/".join(["", proto, str(self.announce_ip), *parts[3:]])))
        return out

    def spr(self) -> str:
        """This node's signed peer record (`spr:...`) for its announced addresses; the same text
        until they change, then a new one with a higher seq."""
        addrs = self.announce_addrs
        key = tuple(str(a) for a in addrs)
        if self._spr is None or self._spr[0] != key:
            self._spr = (key, self.identity.signed_peer_record(addrs))
        return self._spr[1]

    # -- peers ------------------------------------------------------------------------
    def connected_peers(self) -> list[PeerId]:
        return [PeerId(p) for p in self.libp2p.get_connected_peers()]

    def is_connected(self, peer_id: PeerId) -> bool:
        return bool(self.libp2p.get_network().get_connections(peer_id.libp2p))

    def known_addrs(self, peer_id: PeerId) -> list[multiaddr.Multiaddr]:
        """Addresses the peerstore holds for a peer (empty when unknown or expired)."""
        try:
            addrs = [strip_p2p(a) for a in self.libp2p.get_peerstore().addrs(peer_id.libp2p)]
            return list({str(a): a for a in addrs}.values())
        except Exception:  # noqa: BLE001 - a peer the peerstore does not know (its errors vary)
            return []

    def learn(self, peer_id: PeerId, addrs: Sequence[multiaddr.Multiaddr]) -> None:
        """Remember addresses for a peer (for dials and DHT answers)."""
        if addrs:
            self.libp2p.get_peerstore().add_addrs(peer_id.libp2p, list(addrs), ADDR_TTL)

    def learn_spr(self, text: str) -> tuple[PeerId, list[multiaddr.Multiaddr]]:
        """Verify an SPR and store it in the peerstore (addresses and seq). Returns (peer, addrs)."""
        envelope, peer_id, addrs, _seq = parse_spr(text)
        self.libp2p.get_peerstore().consume_peer_record(envelope, ADDR_TTL)
        self.learn(peer_id, addrs)
        return peer_id, addrs

    def peer_record(self, peer_id: PeerId) -> tuple[int, list[multiaddr.Multiaddr]] | None:
        """(seq, addresses) of the newest signed record the peerstore holds for the peer, if any."""
        envelope = self.libp2p.get_peerstore().get_peer_record(peer_id.libp2p)
        if envelope is None:
            return None
        record = envelope.record()
        return record.seq, [strip_p2p(a) for a in record.addrs]

    async def connect(self, peer_id: PeerId, addrs: Sequence[str | multiaddr.Multiaddr] | None = None) -> None:
        """Dial a peer (no-op when connected). `addrs` are parsed first (bad → InvalidArgumentError);
        without them the peerstore's addresses are used. A failed dial is a `PeerError`."""
        if peer_id == self.peer_id:
            raise InvalidArgumentError("cannot connect to self", peer_id=str(peer_id))
        parsed = parse_peer_addrs(addrs, peer_id) if addrs is not None else self.known_addrs(peer_id)
        if self.is_connected(peer_id):
            self.learn(peer_id, parsed)
            return
        if not parsed:
            raise PeerError(f"no address to dial peer {peer_id}", peer_id=str(peer_id))
        try:
            with trio.fail_after(self.dial_timeout):
                await self.libp2p.connect(PeerInfo(peer_id.libp2p, parsed))
        except trio.TooSlowError as exc:
            raise PeerError(f"failed to connect to peer {peer_id}: timed out after {self.dial_timeout:g}s",
                            peer_id=str(peer_id)) from exc
        except Exception as exc:
            raise PeerError(f"failed to connect to peer {peer_id}: {exc or type(exc).__name__}",
                            peer_id=str(peer_id)) from exc
        if not self.is_connected(peer_id):  # accepted, then closed at registration (its max-peers)
            raise PeerError(f"failed to connect to peer {peer_id}: the connection was closed", peer_id=str(peer_id))
        self.learn(peer_id, parsed)

    async def peer_details(self, timeout: float = 2.0) -> list[dict[str, Any]]:
        """Each connected peer: `peer_id`, `addrs` (the peerstore's), `direction`, `latency_ms` (one
        ping now; None if it does not answer within `timeout`) and `agent` (its identify answer's
        agent version, asked once per peer and remembered; None if it does not answer)."""
        from libp2p.host.ping import PingService

        pinger = PingService(self.libp2p)
        peers = self.connected_peers()
        out: dict[str, dict[str, Any]] = {}

        async def probe(peer: PeerId) -> None:
            entry = out[str(peer)]
            with trio.move_on_after(timeout):
                try:
                    began = trio.current_time()
                    await pinger.ping(peer.libp2p)
                    entry["latency_ms"] = (trio.current_time() - began) * 1000
                except Exception as exc:  # noqa: BLE001 - a peer without ping: no latency
                    logger.debug("ping %s failed: %r", peer, exc)
            if str(peer) not in self._agents:
                with trio.move_on_after(timeout):
                    self._agents[str(peer)] = await self._ask_agent(peer)
            entry["agent"] = self._agents.get(str(peer))

        for peer in peers:
            conns = self.libp2p.get_network().get_connections(peer.libp2p)
            direction = getattr(getattr(conns[0], "_direction", None), "name", "unknown").lower() if conns else ""
            out[str(peer)] = {"peer_id": peer, "addrs": [str(a) for a in self.known_addrs(peer)],
                              "direction": direction, "latency_ms": None, "agent": None}
        async with trio.open_nursery() as nursery:
            for peer in peers:
                nursery.start_soon(probe, peer)
        return list(out.values())

    async def _ask_agent(self, peer: PeerId) -> str | None:
        """The agent version in the peer's identify answer (None on any failure)."""
        from libp2p.identity.identify.pb.identify_pb2 import Identify
        from libp2p.utils import read_length_prefixed_protobuf

        try:
            stream = await self.libp2p.new_stream(peer.libp2p, [IDENTIFY_ID])
        except Exception:  # noqa: BLE001 - no identify: no agent
            return None
        try:
            message = Identify()
            message.ParseFromString(await read_length_prefixed_protobuf(stream, use_varint_format=True))
            return str(message.agent_version) or None
        except Exception:  # noqa: BLE001
            return None
        finally:
            try:
                await stream.close()
            except Exception:  # noqa: BLE001, S110 - the peer may have gone
                pass

    async def disconnect(self, peer_id: PeerId) -> None:
        await self.libp2p.disconnect(peer_id.libp2p)

    # -- streams ----------------------------------------------------------------------
    def set_handler(self, protocol: str, handler: Any) -> None:
        self.libp2p.set_stream_handler(TProtocol(protocol), handler)

    async def open_stream(self, peer_id: PeerId, protocol: str) -> INetStream:
        """A new stream to a peer on `protocol` (dials if needed). Failure is a `PeerError`."""
        try:
            with trio.fail_after(self.dial_timeout):
                return await self.libp2p.new_stream(peer_id.libp2p, [TProtocol(protocol)])
        except trio.TooSlowError as exc:
            raise PeerError(f"cannot open {protocol} to {peer_id}: timed out", peer_id=str(peer_id)) from exc
        except Exception as exc:
            raise PeerError(f"cannot open {protocol} to {peer_id}: {exc or type(exc).__name__}",
                            peer_id=str(peer_id)) from exc
