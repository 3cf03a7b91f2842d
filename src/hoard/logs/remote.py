"""Remote logs over `/hoard/logs/1`: the client's `LogBackend` and the host's stream handler.

A log hosted by node A is used from node B exactly like a local one: B's `LogService` asks
its `remote` hook for a backend when a name is not hosted locally, and gets a
`RemoteLogBackend` for A. Everything client-side stays on B — numbering, append filters,
signing with the writer key, verifying every record received (records from the network are
never trusted), read filters, events — and A's `LogHost` does what it does for local clients:
the hosting checks (including signature verification) and group commit, subscriptions with
the same plans and cursors, fan-out. On A, `LogServer.handle` serves one stream per client
and hands A's `LogHost` a `RecordSink` per subscription that sends its records as messages.

The client end is client.py (`RemoteLogBackend`, `ClientConn`), the host end server.py
(`LogServer`); this module names them for the node and holds `provider_key`. Both ends run a
`Conn` (conn.py): the stream is read and written on the node's trio thread,
messages are handled on a conn thread. The wire format and flow control are in wire.py.

Trust: B checks that the metadata A serves names the log (SHA-256 of the metadata is the
name, or for a log created under a name, XID is that name), so A cannot swap the writer key;
and B verifies the signature and chain of every record. A verifies every append.

Endings: when the stream ends (A stopped, went away, or B's node stopped), every pending call
fails with 503, every unanswered append gets `EVENT_FAILURE` 503 (it may or may not have been
committed: the writer resynchronises on its next refused append), and every subscription
ends with `EVENT_SHUTDOWN`. The backend opens a new stream for the next call.
"""

from __future__ import annotations

from hoard.ids.cid import CID
from hoard.logs.client import CALL_TIMEOUT, ClientConn, RemoteLogBackend, check_binding
from hoard.logs.names import LogName
from hoard.logs.server import LogServer

__all__ = ["CALL_TIMEOUT", "ClientConn", "LogServer", "RemoteLogBackend", "check_binding", "provider_key"]


def provider_key(name: LogName) -> CID:
    """The DHT key a node hosting log `name` provides: a raw CID of `b"/hoard/logs/1/" + name`
    (distinct from any dataset's CID, and from the name itself)."""
    return CID.of(b"/hoard/logs/1/" + name.raw)
