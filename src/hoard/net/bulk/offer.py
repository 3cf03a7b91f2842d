"""`/hoard/bulk/1`: the libp2p protocol by which a fetching node asks a peer for a bulk endpoint,
and the few frames of the bulk connection that `/hoard/blocks/1` does not have.

On the libp2p stream (framed like every hoard protocol: 4-byte big-endian length, then the body):

```
REQUEST  0x01  cert (DER, ≤ 4 KiB)                       client → server
OFFER    0x02  port:u16  name (16 bytes)  token (32 bytes) server → client
REFUSED  0x03  reason (UTF-8, ≤ 512 bytes)               server → client
```

`cert` is the client's bulk certificate; its libp2p extension must name the stream's peer.
The offer is valid once, for `OFFER_TTL` seconds, to that peer presenting that certificate.
The client then opens TCP to `port` on the IP of the libp2p connection and runs TLS 1.3 with
SNI = the name in hex and ALPN `/hoard/bulk/1`. Inside TLS, the first frames are:

```
TOKEN    0x10  token (32 bytes)                           client → server
READY    0x11                                             server → client
```

then `/hoard/blocks/1`'s WANT / BLOCK / DONT_HAVE frames, exactly as on the libp2p stream.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from hoard.framing import LEN, ProtocolError

__all__ = [
    "BULK_PROTOCOL",
    "NAME_BYTES",
    "OFFER_TTL",
    "TOKEN_BYTES",
    "Offer",
    "decode_offer_reply",
    "decode_request",
    "encode_offer",
    "encode_refused",
    "encode_request",
    "ready_frame",
    "token_frame",
]

BULK_PROTOCOL = "/hoard/bulk/1"
MAX_CERT = 4096
MAX_REASON = 512
MAX_CONTROL_FRAME = 1 + MAX_CERT
NAME_BYTES = 16
TOKEN_BYTES = 32
OFFER_TTL = 30.0

REQUEST = 0x01
OFFER = 0x02
REFUSED = 0x03
TOKEN = 0x10
READY = 0x11

_OFFER = struct.Struct(f">BH{NAME_BYTES}s{TOKEN_BYTES}s")


@dataclass(frozen=True)
class Offer:
    """Where and how to open one bulk connection."""

    port: int
    name: bytes
    token: bytes

    @property
    def server_name(self) -> str:
        """The SNI that selects this offer on the server."""
        return self.name.hex()


def _frame(body: bytes) -> bytes:
    return LEN.pack(len(body)) + body


def encode_request(cert_der: bytes) -> bytes:
    if not 0 < len(cert_der) <= MAX_CERT:
        raise ValueError(f"a bulk certificate is 1..{MAX_CERT} bytes")
    return _frame(bytes((REQUEST,)) + cert_der)


def decode_request(body: bytes) -> bytes:
    """The certificate of a REQUEST body; ProtocolError if it is not one."""
    if len(body) < 2 or body[0] != REQUEST:
        raise ProtocolError("expected a bulk REQUEST")
    return body[1:]


def encode_offer(offer: Offer) -> bytes:
    return _frame(_OFFER.pack(OFFER, offer.port, offer.name, offer.token))


def encode_refused(reason: str) -> bytes:
    return _frame(bytes((REFUSED,)) + reason.encode()[:MAX_REASON])


def decode_offer_reply(body: bytes) -> Offer | str:
    """An `Offer`, or the reason the server refused; ProtocolError for anything else."""
    if body[:1] == bytes((OFFER,)) and len(body) == _OFFER.size:
        _t, port, name, token = _OFFER.unpack(body)
        if port == 0:
            raise ProtocolError("bulk offer with port 0")
        return Offer(port, name, token)
    if body[:1] == bytes((REFUSED,)) and len(body) <= 1 + MAX_REASON:
        return body[1:].decode(errors="replace")
    raise ProtocolError("expected a bulk OFFER or REFUSED")


def token_frame(token: bytes) -> bytes:
    return _frame(bytes((TOKEN,)) + token)


def ready_frame() -> bytes:
    return _frame(bytes((READY,)))
