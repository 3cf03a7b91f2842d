"""The JSON payloads of the REST API, as pydantic models (they generate the OpenAPI schemas).

Field names are the Logos Storage ones (DIGEST §1.3, §1.8). Models that carry a node's own
JSON (manifests, debug info) allow extra fields, so what the node adds passes through.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["DataItem", "DataList", "DebugInfo", "FetchStarted", "Manifest", "PeerIdRead", "PeerRecord", "Progress",
           "SPRRead", "Space", "StorageVersion", "VerifyResult"]


class Manifest(BaseModel):
    """A dataset's manifest (`ManifestItem` in the Logos API, plus hoard's own fields)."""

    model_config = ConfigDict(extra="allow")

    treeCid: str = Field(description="CID of the root of the dataset's block index")
    datasetSize: int = Field(ge=0, description="Length of the content in bytes")
    blockSize: int = Field(ge=0, description="Size of blocks (fixed chunking) or the target size (content-defined)")
    filename: str | None = Field(None, description="The original name of the content, if given")
    mimetype: str | None = Field(None, description="The content's MIME type, if given")
    protected: bool = Field(False, description="Always false: hoard does not erasure-code datasets")
    blockCount: int | None = Field(None, ge=0, description="Number of blocks (hoard)")
    chunker: str | None = Field(None, description="How the content was split: `fixed` or `fastcdc-...` (hoard)")
    digest: str | None = Field(None, description="BLAKE3-256 of the whole content, hex (hoard)")


class DataItem(BaseModel):
    """A dataset: its manifest CID and manifest."""

    cid: str
    manifest: Manifest


class ListedData(DataItem):
    """A stored dataset as `GET /data` lists it: hoard adds `cached` and `expires` (seconds since
    the epoch) for data kept only until then (fetched, not uploaded or kept)."""

    manifest: Manifest | None  # type: ignore[assignment]  # null for a damaged manifest (see `error`)
    cached: bool | None = None
    expires: float | None = None
    error: str | None = Field(None, description="hoard: why the stored manifest does not decode (manifest is null)")


class DataList(BaseModel):
    """Every dataset stored by the node."""

    content: list[ListedData]


class FetchStarted(DataItem):
    """A background fetch that has started: the dataset and the id to follow it by."""

    downloadId: int = Field(ge=0, description="Id for .../network/progress/{downloadId} and DELETE .../network/{downloadId}")


class Progress(BaseModel):
    """Progress of a background fetch. An unknown id answers `{"active": false}` only."""

    active: bool
    received: int | None = Field(None, ge=0, description="Blocks received and stored")
    total: int | None = Field(None, ge=0, description="Blocks in the dataset")
    bytes: int | None = Field(None, ge=0, description="Bytes received and stored")
    error: str | None = Field(None, description="Why the fetch ended early (failed or cancelled)")


class Space(BaseModel):
    """Storage space of the node's repo."""

    totalBlocks: int = Field(ge=0, description="Number of blocks stored")
    quotaMaxBytes: int = Field(ge=0, description="The storage quota (`storage-quota`)")
    quotaUsedBytes: int = Field(ge=0, description="Bytes of stored datasets")
    quotaReservedBytes: int = Field(ge=0, description="Bytes written by uploads and fetches not yet finished")


class SPRRead(BaseModel):
    """The node's signed peer record."""

    spr: str


class PeerIdRead(BaseModel):
    """The node's libp2p peer id."""

    id: str


class StorageVersion(BaseModel):
    version: str
    revision: str


class DebugInfo(BaseModel):
    """Node information (Logos `DebugInfo`, plus `repo` and `announceAddresses`)."""

    model_config = ConfigDict(extra="allow")

    id: str
    addrs: list[str]
    spr: str
    announceAddresses: list[str] = []
    libp2pPubKey: str = Field("", description="The node's libp2p public key, hex")
    table: dict[str, Any] = Field(description="The routing table: `{localNode, nodes}`")
    repo: str
    storage: StorageVersion


class PeerRecord(BaseModel):
    """What the node knows of a peer."""

    model_config = ConfigDict(extra="allow")

    peerId: str
    seqNo: int = Field(ge=0)
    addresses: list[Any]


class VerifyResult(BaseModel):
    """Outcome of re-reading a dataset and checking every block against its CID."""

    cid: str
    blocks: int = Field(ge=0)
    bytes: int = Field(ge=0)
