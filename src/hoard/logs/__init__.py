"""Signed append-only logs with GDP v0.8 semantics (names, metadata, records, subscriptions).

The Node wraps `LogService`; see docs/logs.md for the semantics and every choice made.
Layers, bottom up: names → metadata → records (signing, hash chain) → store (`LogStore`:
persistence and the hosting checks) → subscriptions (the sans-IO request engine) → host
(`LogHost`: group commit and fan-out) → log/service (the client side: `Log`, `LogService`).
Across nodes: wire (`/hoard/logs/1` messages) → conn (a stream between trio and threads) →
remote (`RemoteLogBackend` for clients, `LogServer` for hosts); the node plugs them in.
"""

from hoard.logs.events import (
    EVENT_CREATED,
    EVENT_DATA,
    EVENT_EOS,
    EVENT_FAILURE,
    EVENT_MISSING,
    EVENT_SHUTDOWN,
    EVENT_SUCCESS,
    Event,
)
from hoard.logs.host import LogBackend, LogHost, RecordSink
from hoard.logs.log import MODE_AO, MODE_RA, MODE_RO, Log
from hoard.logs.metadata import CID, CTM, LOC, PUB, SYN, XID, XTM, Metadata
from hoard.logs.names import LogName, parse_name
from hoard.logs.records import Datum
from hoard.logs.service import LogService, OpenInfo
from hoard.logs.store import LogInfo, LogStore, Tail

__all__ = [
    "CID", "CTM", "Datum", "EVENT_CREATED", "EVENT_DATA", "EVENT_EOS", "EVENT_FAILURE", "EVENT_MISSING",
    "EVENT_SHUTDOWN", "EVENT_SUCCESS", "Event", "LOC", "Log", "LogBackend", "LogHost", "LogInfo", "LogName",
    "LogService", "LogStore", "MODE_AO", "MODE_RA", "MODE_RO", "Metadata", "OpenInfo", "PUB", "RecordSink", "SYN",
    "Tail", "XID", "XTM", "parse_name",
]
