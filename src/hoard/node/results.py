"""What the node's operations return: frozen dataclasses with typed fields.

These are Python values (CIDs as `CID`, peer IDs as `PeerId`, snake_case names). Their Logos
camelCase JSON, for REST, the C ABI and the CLI's `--json`, is written in one place:
`hoard.api.shapes`. Dataset manifests are `hoard.content.manifest.Manifest` (hoard's format) or
`hoard.content.formats.logos_manifest.LogosManifest` (Logos's, the default); transfer
channels are `hoard.transfer.ChannelState`; the transfer policy is
`hoard.transfer.TransferPolicy`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from hoard.content.manifest import Manifest
from hoard.ids.cid import CID
from hoard.ids.peer import PeerId
from hoard.logs import LogName
from hoard.transfer.types import ChannelID, EventCode, Status

if TYPE_CHECKING:  # google.protobuf loads only when a Logos manifest is coded
    from hoard.content.formats.logos_manifest import LogosManifest


@dataclass(frozen=True)
class Dataset:
    """A stored dataset: its manifest CID and its manifest.

    `manifest` is None, and `error` says why, for a dataset whose stored manifest no longer
    decodes (stored before manifests were validated): it is listed so that it can be deleted.
    """

    cid: CID
    manifest: Manifest | LogosManifest | None
    cached: bool = False  # fetched data kept until `expires` (seconds since the epoch); `keep` stores it
    expires: float | None = None
    error: str | None = None


@dataclass(frozen=True)
class Space:
    """The storage space of the repo (Logos `space`)."""

    total_blocks: int
    """Blocks stored."""
    quota_max_bytes: int
    """The storage quota (`storage-quota`)."""
    quota_used_bytes: int
    """Bytes of stored datasets."""
    quota_reserved_bytes: int
    """Bytes written by uploads and fetches not yet finished."""

    @property
    def free_bytes(self) -> int:
        """Bytes of quota neither used nor reserved (never negative)."""
        return max(self.quota_max_bytes - self.quota_used_bytes - self.quota_reserved_bytes, 0)


@dataclass(frozen=True)
class TableNode:
    """One entry of the routing table (Logos `debug().table`)."""

    node_id: str
    """The Kademlia key of the peer (hex)."""
    peer_id: str
    record: str
    """Its signed peer record (`spr:...`), or "" if unknown."""
    address: str
    seen: bool


@dataclass(frozen=True)
class RoutingTable:
    """The node's routing table: itself and the peers it knows."""

    local_node: TableNode
    nodes: tuple[TableNode, ...]


@dataclass(frozen=True)
class DebugInfo:
    """The node's identity and addresses (Logos `debug`)."""

    peer_id: PeerId
    addrs: tuple[str, ...]
    spr: str
    announce_addresses: tuple[str, ...]
    table: RoutingTable


@dataclass(frozen=True)
class PeerInfo:
    """What the node knows of a peer (Logos `peer_debug`)."""

    peer_id: PeerId
    seq_no: int
    addresses: tuple[str, ...]


@dataclass(frozen=True)
class ConnectedPeer:
    """A peer the node is connected to (`node.net.peer_list()`, `hoard peers`)."""

    peer_id: PeerId
    addresses: tuple[str, ...]
    direction: str  # "inbound", "outbound" or "unknown"
    latency_ms: float | None  # one ping's round trip, None if it did not answer in time
    agent: str | None  # the agent version of its identify answer, None if unknown


@dataclass(frozen=True)
class VerifyReport:
    """A dataset (or block) re-read from disk with every block checked against its CID."""

    cid: CID
    blocks: int
    bytes: int


@dataclass(frozen=True)
class FetchProgress:
    """Progress of a background fetch. An unknown id is `active=False` with no counts."""

    active: bool
    received: int | None = None
    """Blocks received and stored."""
    total: int | None = None
    """Blocks in the dataset."""
    bytes: int | None = None
    """Bytes received and stored."""
    error: str | None = None
    """Why the fetch ended early (failed or cancelled)."""


@dataclass(frozen=True)
class FetchStarted:
    """A background fetch that has started: the dataset's manifest and the id to follow it by."""

    cid: CID
    manifest: Manifest | LogosManifest
    download_id: int


@dataclass(frozen=True)
class FetchInfo:
    """A background fetch the node remembers (`fetches()`)."""

    download_id: int
    cid: CID
    filename: str | None
    dataset_size: int
    started: float
    """When it started (Unix time)."""
    progress: FetchProgress


@dataclass(frozen=True)
class StreamInfo:
    """An open read stream: `size` is the whole content's, `length` what the stream delivers."""

    id: str
    size: int
    offset: int
    length: int
    filename: str | None
    mimetype: str | None


@dataclass(frozen=True)
class LogSummary:
    """A log this node hosts."""

    name: LogName
    nrecs: int


@dataclass(frozen=True)
class TransferEvent:
    """One event of a channel `node.transfer.wait` follows: what happened, the status it left
    the channel in, the channel's message then, and when."""

    channel_id: ChannelID
    code: EventCode
    status: Status
    message: str
    timestamp: datetime


@dataclass(frozen=True)
class IpfsRoot:
    """A stored IPFS root (`node.ipfs`): a UnixFS file or directory, or another DAG a CAR brought."""

    cid: CID
    format: str
    """"unixfs" (a dag-pb or raw root) or "ipld" (another codec)."""
    size: int
    """Content bytes (a UnixFS file's size, a directory's files together)."""
    dag_size: int
    """Bytes of the DAG's distinct blocks."""
    blocks: int
    """Distinct blocks of the DAG."""
    filename: str | None
    pinned: bool
    added: float
    """When it was stored (Unix time)."""


@dataclass(frozen=True)
class CarImport:
    """What `node.ipfs.car_import` stored: the CAR's version and roots, its blocks, the roots recorded."""

    version: int
    roots: tuple[CID, ...]
    blocks: int
    bytes: int
    """Bytes of the CAR's distinct blocks."""
    entries: tuple[IpfsRoot, ...]
