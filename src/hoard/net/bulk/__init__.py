"""The bulk path: a dedicated TLS 1.3 connection per block channel, negotiated over libp2p.

The libp2p connection (Noise + yamux) stays the control plane; `/hoard/bulk/1` on it hands out
a one-time endpoint, and blocks flow over TCP + TLS 1.3 (OpenSSL, libp2p's certificate
extension binding each side to its peer ID) in `/hoard/blocks/1` frames. See docs/network.md.

- `BulkServer(host, identity, source)`: offers and serves (`async with server.run(): ...`).
- `BulkChannelOpener(host, certificate, fallback)`: a `ChannelOpener` for `BlockFetcher`.
"""

from hoard.net.bulk.channel import BulkBlockChannel, BulkChannelOpener
from hoard.net.bulk.offer import BULK_PROTOCOL, Offer
from hoard.net.bulk.server import BulkServer, BulkServerStats
from hoard.net.bulk.tls import BulkCertificate, peer_of

__all__ = [
    "BULK_PROTOCOL",
    "BulkBlockChannel",
    "BulkCertificate",
    "BulkChannelOpener",
    "BulkServer",
    "BulkServerStats",
    "Offer",
    "peer_of",
]
