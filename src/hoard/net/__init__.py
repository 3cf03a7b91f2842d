"""hoard's network layer: a py-libp2p host (TCP + Noise + yamux), the Kademlia DHT, and the
`/hoard/blocks/1` block exchange. The node owns one `Network` and runs it on its trio thread.

Protocols, message formats, limits and measurements: docs/network.md.
"""

from hoard.net.blocks import BlockServer, BlockSource, ServerStats
from hoard.net.dht import Dht
from hoard.net.fetch import BlockFetcher, BlockStream, FetchLimits, PeerPenalties
from hoard.net.host import Host, parse_listen_addrs, parse_peer_addrs, parse_spr
from hoard.net.network import Network, NetworkConfig
from hoard.net.rawbench import SOURCE_PROTOCOL, RawStreamResult, measure_raw_stream
from hoard.net.tuning import tune_py_libp2p
from hoard.net.wire import (
    BLOCKS_PROTOCOL,
    MAX_BLOCK_SIZE,
    BlockChannel,
    ChannelOpener,
    Reply,
    StreamBlockChannel,
    StreamChannelOpener,
)

__all__ = [
    "BLOCKS_PROTOCOL",
    "BlockChannel",
    "BlockFetcher",
    "BlockServer",
    "BlockSource",
    "BlockStream",
    "ChannelOpener",
    "Dht",
    "FetchLimits",
    "Host",
    "MAX_BLOCK_SIZE",
    "Network",
    "NetworkConfig",
    "PeerPenalties",
    "RawStreamResult",
    "Reply",
    "SOURCE_PROTOCOL",
    "ServerStats",
    "StreamBlockChannel",
    "StreamChannelOpener",
    "measure_raw_stream",
    "parse_listen_addrs",
    "parse_peer_addrs",
    "parse_spr",
    "tune_py_libp2p",
]
