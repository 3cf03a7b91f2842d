"""The Logos camelCase JSON of the node's results, written once.

The node returns typed values (hoard.node.results, `Manifest`, `ChannelState`, ...); REST, the
C ABI and the CLI's `--json` turn them into the JSON the Logos Storage API defines (field
names and order as Logos has them, plus hoard's own fields) with these functions and nothing
else, so the three stay byte-compatible with each other and with the contract. The
`*_from_json` functions read the same JSON back into the same types (the REST client).
"""

from __future__ import annotations

import base64
import sys
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from hoard.blobs.digest import BlobDigest
from hoard.blobs.service import BlobStat, ChunkMeta
from hoard.content.manifest import Manifest
from hoard.errors import InvalidArgumentError, LogError
from hoard.files.model import FileInfo, FileWrite
from hoard.ids.cid import CID
from hoard.ids.peer import PeerId
from hoard.logs import (
    EVENT_CREATED,
    EVENT_DATA,
    EVENT_EOS,
    EVENT_FAILURE,
    EVENT_MISSING,
    EVENT_SHUTDOWN,
    EVENT_SUCCESS,
    Datum,
    Event,
    Log,
    LogInfo,
    LogName,
    Metadata,
    Tail,
    parse_name,
)
from hoard.node.results import (
    CarImport,
    ConnectedPeer,
    Dataset,
    DebugInfo,
    FetchInfo,
    FetchProgress,
    FetchStarted,
    IpfsRoot,
    LogSummary,
    PeerInfo,
    RoutingTable,
    Space,
    TableNode,
    TransferEvent,
    VerifyReport,
)
from hoard.transfer.builtin import TransferPolicy
from hoard.transfer.manager import channel_summary, parse_channel_id
from hoard.transfer.types import ChannelState, EventCode, Status

if TYPE_CHECKING:  # google.protobuf loads only when a Logos manifest is coded
    from hoard.content.formats.logos_manifest import LogosManifest

JSON = dict[str, Any]


def manifest_json(manifest: Manifest | LogosManifest) -> JSON:
    """A manifest: `{treeCid, datasetSize, blockSize, filename, mimetype, protected}` (Logos; a
    Logos-format dataset's manifest has exactly these), plus, for hoard's format, `blockCount`,
    `chunker` and `digest` (BLAKE3 of the content, hex)."""
    if not isinstance(manifest, Manifest):  # a LogosManifest
        return {"treeCid": str(manifest.tree_cid), "datasetSize": manifest.dataset_size,
                "blockSize": manifest.block_size, "filename": manifest.filename, "mimetype": manifest.mimetype,
                "protected": False}
    return {
        "treeCid": str(manifest.index), "datasetSize": manifest.dataset_size, "blockSize": manifest.block_size,
        "filename": manifest.filename, "mimetype": manifest.mimetype, "protected": manifest.protected,
        "blockCount": manifest.block_count, "chunker": manifest.chunker, "digest": manifest.digest.hex(),
    }


def dataset_json(dataset: Dataset) -> JSON:
    """A stored dataset: `{cid, manifest}`, plus hoard's `cached: true, expires` for cached data."""
    out: JSON = {"cid": str(dataset.cid),
                 "manifest": None if dataset.manifest is None else manifest_json(dataset.manifest)}
    if dataset.error is not None:
        out["error"] = dataset.error  # hoard: the stored manifest no longer decodes (manifest is null)
    if dataset.cached:
        out["cached"] = True
        out["expires"] = dataset.expires
    return out


def datasets_json(datasets: list[Dataset]) -> list[JSON]:
    """`list()`: `[{cid, manifest}, ...]`."""
    return [dataset_json(d) for d in datasets]


def space_json(space: Space) -> JSON:
    """`{totalBlocks, quotaMaxBytes, quotaUsedBytes, quotaReservedBytes}`."""
    return {"totalBlocks": space.total_blocks, "quotaMaxBytes": space.quota_max_bytes,
            "quotaUsedBytes": space.quota_used_bytes, "quotaReservedBytes": space.quota_reserved_bytes}


def _table_node_json(node: TableNode) -> JSON:
    return {"nodeId": node.node_id, "peerId": node.peer_id, "record": node.record, "address": node.address,
            "seen": node.seen}


def table_json(table: RoutingTable) -> JSON:
    """The routing table: `{localNode: {nodeId, peerId, record, address, seen}, nodes: [...]}`."""
    return {"localNode": _table_node_json(table.local_node), "nodes": [_table_node_json(n) for n in table.nodes]}


def debug_json(debug: DebugInfo) -> JSON:
    """`debug()`: `{id, addrs, spr, announceAddresses, table}`."""
    return {"id": str(debug.peer_id), "addrs": list(debug.addrs), "spr": debug.spr,
            "announceAddresses": list(debug.announce_addresses), "table": table_json(debug.table)}


def peer_json(peer: PeerInfo) -> JSON:
    """`peer_debug()`: `{peerId, seqNo, addresses}`."""
    return {"peerId": str(peer.peer_id), "seqNo": peer.seq_no, "addresses": list(peer.addresses)}


def connected_peer_json(peer: ConnectedPeer) -> JSON:
    """`net.peer_list()` (hoard): `{peerId, addresses, direction, latencyMs, agent}`."""
    return {"peerId": str(peer.peer_id), "addresses": list(peer.addresses), "direction": peer.direction,
            "latencyMs": peer.latency_ms, "agent": peer.agent}


def verify_json(report: VerifyReport) -> JSON:
    """`verify()` (hoard): `{cid, blocks, bytes}`."""
    return {"cid": str(report.cid), "blocks": report.blocks, "bytes": report.bytes}


def progress_json(progress: FetchProgress) -> JSON:
    """A fetch's progress: `{active, received, total, bytes}` (+ `error`); `{active}` alone for
    an unknown fetch."""
    out: JSON = {"active": progress.active}
    for key, value in (("received", progress.received), ("total", progress.total), ("bytes", progress.bytes),
                       ("error", progress.error)):
        if value is not None:
            out[key] = value
    return out


def fetch_started_json(started: FetchStarted) -> JSON:
    """`POST /data/{cid}/network`: `{cid, manifest, downloadId}`."""
    return {"cid": str(started.cid), "manifest": manifest_json(started.manifest), "downloadId": started.download_id}


def fetch_json(fetch: FetchInfo) -> JSON:
    """One remembered fetch: `{downloadId, cid, filename, datasetSize, started}` and its progress."""
    return {"downloadId": fetch.download_id, "cid": str(fetch.cid), "filename": fetch.filename,
            "datasetSize": fetch.dataset_size, "started": fetch.started, **progress_json(fetch.progress)}


def log_json(log: LogSummary) -> JSON:
    """A hosted log: `{name, nrecs}` (the name in its 43-character printable form)."""
    return {"name": str(log.name), "nrecs": log.nrecs}


def log_name(name: LogName) -> str:
    """A log name as text (43-character URL-safe base64)."""
    return str(name)


def channel_json(state: ChannelState) -> JSON:
    """A data-transfer channel's state (CID lists as counts)."""
    return channel_summary(state)


def policy_json(policy: TransferPolicy) -> JSON:
    """The default voucher's policy: `{push, pull, peers}` (`peers` null for any peer)."""
    return policy.to_json()


def ipfs_root_json(root: IpfsRoot) -> JSON:
    """A stored IPFS root (`node.ipfs`); `cid` as kubo prints it (`Qm...` for v0, `bafy...` for v1)."""
    cid = str(root.cid) if root.cid.version == 0 else root.cid.to_base32()
    return {"cid": cid, "format": root.format, "size": root.size, "dagSize": root.dag_size, "blocks": root.blocks,
            "filename": root.filename, "pinned": root.pinned, "added": root.added}


def car_import_json(result: CarImport) -> JSON:
    """What a CAR import stored: `{version, roots, blocks, bytes, entries}`."""
    return {"version": result.version, "roots": [str(r) if r.version == 0 else r.to_base32() for r in result.roots],
            "blocks": result.blocks, "bytes": result.bytes, "entries": [ipfs_root_json(e) for e in result.entries]}


def to_json(value: object) -> Any:
    """The JSON of any node result (a dataclass above, a list of them, a CID, a peer ID, ...),
    for frontends that pass results through generically (the C ABI, the CLI's `--json`)."""
    shape = _SHAPES.get(type(value))
    logos = sys.modules.get("hoard.content.formats.logos_manifest")  # loaded if a Logos manifest exists
    if shape is None and logos is not None and isinstance(value, logos.LogosManifest):
        shape = manifest_json
    if shape is not None:
        return shape(value)
    if isinstance(value, list | tuple):
        return [to_json(v) for v in value]
    if value is None or isinstance(value, bool | int | float | str | dict):
        return value
    return str(value)  # CID, PeerId, LogName: their text form


_SHAPES: dict[type, Any] = {
    Manifest: manifest_json, Dataset: dataset_json, Space: space_json, DebugInfo: debug_json, PeerInfo: peer_json,
    VerifyReport: verify_json, FetchProgress: progress_json, FetchStarted: fetch_started_json, FetchInfo: fetch_json,
    LogSummary: log_json, ChannelState: channel_json, TransferPolicy: policy_json,
    IpfsRoot: ipfs_root_json, CarImport: car_import_json,
}


# -- the way back: a remote node's JSON as the same typed results (hoard.api.client) ----------
def _int(data: JSON, key: str) -> int:
    value = data.get(key)
    if not isinstance(value, int) or isinstance(value, bool):
        raise InvalidArgumentError(f"the node answered a bad {key!r}: {value!r:.100}")
    return value


def manifest_from_json(data: JSON) -> Manifest | LogosManifest:
    """A manifest from its JSON (`manifest_json`): a Logos manifest when it has no `chunker`."""
    from hoard.content.formats.logos_manifest import LogosManifest  # google.protobuf: loaded on first use

    try:
        if "chunker" not in data:
            return LogosManifest(CID.parse(data["treeCid"]), _int(data, "datasetSize"), _int(data, "blockSize"),
                                 data.get("filename"), data.get("mimetype"))
        return Manifest(dataset_size=_int(data, "datasetSize"), block_size=_int(data, "blockSize"),
                        block_count=int(data.get("blockCount") or 0), chunker=str(data.get("chunker") or ""),
                        digest=bytes.fromhex(str(data.get("digest") or "")), index=CID.parse(data["treeCid"]),
                        filename=data.get("filename"), mimetype=data.get("mimetype"),
                        protected=bool(data.get("protected", False)))
    except (KeyError, TypeError, ValueError) as exc:
        raise InvalidArgumentError(f"the node answered a bad manifest: {exc}") from exc


def dataset_from_json(data: JSON) -> Dataset:
    """A stored dataset from its JSON (`dataset_json`)."""
    expires = data.get("expires")
    manifest = None if data.get("manifest") is None else manifest_from_json(data["manifest"])
    error = data.get("error")
    return Dataset(CID.parse(data["cid"]), manifest, bool(data.get("cached")),
                   float(expires) if expires is not None else None, None if error is None else str(error))


def space_from_json(data: JSON) -> Space:
    """Space figures from their JSON (`space_json`)."""
    return Space(_int(data, "totalBlocks"), _int(data, "quotaMaxBytes"), _int(data, "quotaUsedBytes"),
                 _int(data, "quotaReservedBytes"))


def _table_node_from_json(data: JSON) -> TableNode:
    return TableNode(str(data.get("nodeId", "")), str(data.get("peerId", "")), str(data.get("record", "")),
                     str(data.get("address", "")), bool(data.get("seen", False)))


def debug_from_json(data: JSON) -> DebugInfo:
    """Debug info from its JSON (`debug_json`; the REST `/debug/info` adds fields, ignored here)."""
    table = data.get("table") or {}
    local = table.get("localNode") or {}
    return DebugInfo(PeerId(str(data["id"])), tuple(data.get("addrs") or ()), str(data.get("spr", "")),
                     tuple(data.get("announceAddresses") or ()),
                     RoutingTable(_table_node_from_json(local), tuple(_table_node_from_json(n)
                                                                      for n in table.get("nodes") or ())))


def peer_from_json(data: JSON) -> PeerInfo:
    """A peer's record from its JSON (`peer_json`)."""
    return PeerInfo(PeerId(str(data["peerId"])), _int(data, "seqNo"), tuple(str(a) for a in data.get("addresses") or ()))


def connected_peer_from_json(data: JSON) -> ConnectedPeer:
    """A connected peer from its JSON (`connected_peer_json`)."""
    latency = data.get("latencyMs")
    return ConnectedPeer(PeerId(str(data["peerId"])), tuple(str(a) for a in data.get("addresses") or ()),
                         str(data.get("direction") or "unknown"), float(latency) if latency is not None else None,
                         str(data["agent"]) if data.get("agent") is not None else None)


def verify_from_json(data: JSON) -> VerifyReport:
    """A verify report from its JSON (`verify_json`)."""
    return VerifyReport(CID.parse(data["cid"]), _int(data, "blocks"), _int(data, "bytes"))


def progress_from_json(data: JSON) -> FetchProgress:
    """A fetch's progress from its JSON (`progress_json`)."""
    return FetchProgress(bool(data.get("active")), data.get("received"), data.get("total"), data.get("bytes"),
                         data.get("error"))


def fetch_started_from_json(data: JSON) -> FetchStarted:
    """A started fetch from its JSON (`fetch_started_json`)."""
    return FetchStarted(CID.parse(data["cid"]), manifest_from_json(data["manifest"]), _int(data, "downloadId"))


def ipfs_root_from_json(data: JSON) -> IpfsRoot:
    """A stored IPFS root from its JSON (`ipfs_root_json`)."""
    filename = data.get("filename")
    return IpfsRoot(CID.parse(data["cid"]), str(data["format"]), _int(data, "size"), _int(data, "dagSize"),
                    _int(data, "blocks"), None if filename is None else str(filename), bool(data.get("pinned")),
                    float(data["added"]))


def car_import_from_json(data: JSON) -> CarImport:
    """A CAR import's result from its JSON (`car_import_json`)."""
    return CarImport(_int(data, "version"), tuple(CID.parse(r) for r in data["roots"]), _int(data, "blocks"),
                     _int(data, "bytes"), tuple(ipfs_root_from_json(e) for e in data["entries"]))


# -- logs and transfers over REST (routes_logs.py / routes_transfer.py, and back in the client) ---
def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _unb64(data: JSON, key: str) -> bytes:
    try:
        return base64.b64decode(str(data.get(key) or ""), validate=True)
    except ValueError as exc:
        raise InvalidArgumentError(f"the node answered a bad {key!r}: {exc}") from exc


def log_summary_from_json(data: JSON) -> LogSummary:
    """A hosted log from its JSON (`log_json`)."""
    return LogSummary(parse_name(str(data["name"])), _int(data, "nrecs"))


def log_info_json(log: Log, nrecs: int, writable: bool) -> JSON:
    """An open log: `{name, nrecs, metadata: [{id, value (base64)}], publicKey (base64), mode, writable}`."""
    return {"name": str(log.name), "nrecs": nrecs,
            "metadata": [{"id": i, "value": _b64(v)} for i, v in log.metadata], "publicKey": _b64(log.public_key),
            "mode": log.mode, "writable": writable}


def log_info_from_json(data: JSON) -> tuple[LogInfo, str, bool]:
    """An open log from its JSON (`log_info_json`): its info (the tail's hash and time unknown: zero), mode, writable."""
    from hoard.logs.records import ZERO_HASH

    try:
        metadata = Metadata([(int(e["id"]), _unb64(e, "value")) for e in data["metadata"]])
        info = LogInfo(parse_name(str(data["name"])), metadata, _unb64(data, "publicKey"),
                       Tail(_int(data, "nrecs"), ZERO_HASH, 0))
        return info, str(data["mode"]), bool(data.get("writable"))
    except (KeyError, TypeError, ValueError) as exc:
        raise InvalidArgumentError(f"the node answered a bad log: {exc}") from exc


def datum_json(datum: Datum) -> JSON:
    """A log record: `{recno, ts (ns), data, sig, prevhash}` (bytes as base64)."""
    return {"recno": datum.recno, "ts": datum.ts, "data": _b64(datum.data), "sig": _b64(datum.sig),
            "prevhash": _b64(datum.prevhash)}


def datum_from_json(data: JSON) -> Datum:
    """A log record from its JSON (`datum_json`)."""
    return Datum(_int(data, "recno"), _int(data, "ts"), _unb64(data, "data"), _unb64(data, "sig"),
                 _unb64(data, "prevhash"))


def channel_state_json(state: ChannelState) -> JSON:
    """A channel's whole state (REST): `channel_json` plus the CIDs behind its counts
    (`receivedCids`, `sentCids`, `queuedCids`)."""
    return {**channel_json(state), "receivedCids": [str(c) for c in state.received_cids],
            "sentCids": [str(c) for c in state.sent_cids], "queuedCids": [str(c) for c in state.queued_cids]}


def channel_from_json(data: JSON) -> ChannelState:
    """A channel's state from its JSON (`channel_state_json`)."""
    try:
        return ChannelState.from_dict({
            "transfer_id": data["transferId"], "initiator": data["initiator"], "responder": data["responder"],
            "base_cid": data["baseCid"], "selector": data["selector"], "sender": data["sender"],
            "recipient": data["recipient"], "self_peer": data["selfPeer"], "vouchers": data["vouchers"],
            "voucher_results": data["voucherResults"], "total_size": data["totalSize"],
            "status": data["statusCode"], "sent": data["sent"], "received": data["received"],
            "queued": data["queued"], "message": data["message"], "received_cids": data["receivedCids"],
            "sent_cids": data["sentCids"], "queued_cids": data["queuedCids"]})
    except (KeyError, TypeError) as exc:
        raise InvalidArgumentError(f"the node answered a bad channel: {exc!r}") from exc


def policy_from_json(data: JSON) -> TransferPolicy:
    """The transfer policy from its JSON (`policy_json`)."""
    return TransferPolicy.from_json(data)


def transfer_event_json(event: TransferEvent) -> JSON:
    """A channel event (`node.transfer.wait`): `{channelId, event, code, status, statusCode, message, timestamp (ns)}`."""
    return {"channelId": str(event.channel_id), "event": event.code.name, "code": int(event.code),
            "status": event.status.name, "statusCode": int(event.status), "message": event.message,
            "timestamp": int(event.timestamp.timestamp() * 1_000_000) * 1000}


def transfer_event_from_json(data: JSON) -> TransferEvent:
    """A channel event from its JSON (`transfer_event_json`)."""
    try:
        return TransferEvent(parse_channel_id(str(data["channelId"])), EventCode(_int(data, "code")),
                             Status(_int(data, "statusCode")), str(data.get("message") or ""),
                             datetime.fromtimestamp(_int(data, "timestamp") / 1e9, tz=UTC))
    except (KeyError, ValueError) as exc:
        raise InvalidArgumentError(f"the node answered a bad transfer event: {exc!r}") from exc


_EVENT_NAMES = {EVENT_DATA: "data", EVENT_EOS: "eos", EVENT_SHUTDOWN: "shutdown", EVENT_CREATED: "created",
                EVENT_SUCCESS: "success", EVENT_FAILURE: "failure", EVENT_MISSING: "missing"}
_EVENT_TYPES = {name: kind for kind, name in _EVENT_NAMES.items()}


def log_event_json(event: Event, with_data: bool = True) -> JSON:
    """A log event: `{type, stat}`, plus `record` (`datum_json`; `data` left out without
    `with_data`) and for failures `error`, `gdpStat`."""
    out: JSON = {"type": _EVENT_NAMES.get(event.type, str(event.type)), "stat": event.stat}
    if event.datum is not None:
        out["record"] = datum_json(event.datum)
        if not with_data:
            del out["record"]["data"]
    if event.error is not None:
        out["error"] = event.error.message
        gdp_stat = event.error.fields.get("gdp_stat")
        if isinstance(gdp_stat, str):
            out["gdpStat"] = gdp_stat
    return out


def log_event_from_json(data: JSON, log: Any, udata: Any = None, payload: bytes | None = None) -> Event:
    """A log event from its JSON (`log_event_json`), for handle `log`; `payload` is the record's
    data when the JSON left it out."""
    kind = _EVENT_TYPES.get(str(data.get("type")))
    if kind is None:
        raise InvalidArgumentError(f"the node answered an unknown log event: {data.get('type')!r:.50}")
    stat = _int(data, "stat")
    datum = None
    record = data.get("record")
    if isinstance(record, dict):
        if payload is not None and "data" not in record:
            record = {**record, "data": _b64(payload)}
        datum = datum_from_json(record)
    error = None
    if data.get("error") is not None:
        fields = {"gdp_stat": data["gdpStat"]} if isinstance(data.get("gdpStat"), str) else {}
        error = LogError(str(data["error"]), status=stat, **fields)
    return Event(kind, log, datum, udata, stat, error)


# -- blobs and files over REST (routes_blobs.py / routes_files.py, and back in the client) ------
def blob_stat_json(stat: BlobStat) -> JSON:
    """A blob: `{digest (b3:<base64>), hex, size, manifest, chunks: [{digest, hex, size}] | null}`."""
    return stat.to_json()


def blob_stat_from_json(data: JSON) -> BlobStat:
    """A blob from its JSON (`blob_stat_json`)."""
    chunks = data.get("chunks")
    manifest = data.get("manifest")
    return BlobStat(BlobDigest.parse(str(data["digest"])), _int(data, "size"),
                    None if manifest is None else CID.parse(str(manifest)),
                    None if chunks is None else tuple(ChunkMeta(BlobDigest.parse(str(c["digest"])), _int(c, "size"))
                                                      for c in chunks))


def file_write_json(result: FileWrite) -> JSON:
    """A file write: `{ino, indices, version}`."""
    return {"ino": result.ino, "indices": list(result.indices), "version": result.version}


def file_write_from_json(data: JSON) -> FileWrite:
    """A file write from its JSON (`file_write_json`)."""
    version = data.get("version")
    return FileWrite(_int(data, "ino"), tuple(int(i) for i in data["indices"]),
                     None if version is None else _int(data, "version"))


def file_info_json(info: FileInfo) -> JSON:
    """A file at one version: `{ino, version, latest, blocks, size, nextIndex, time}`."""
    return info.to_json()


def file_info_from_json(data: JSON) -> FileInfo:
    """A file's stat from its JSON (`file_info_json`)."""
    return FileInfo(_int(data, "ino"), _int(data, "version"), _int(data, "latest"), _int(data, "blocks"),
                    _int(data, "size"), _int(data, "nextIndex"), float(data["time"]))
