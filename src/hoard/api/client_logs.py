"""`client.logs`: a running node's GDP logs over its REST API (api/rest/routes_logs.py), with the
methods of `node.logs`, and `RemoteLog`, the handle it returns, with the methods of `hoard.logs.Log`.

The node holds the writer keys and signs appends (a handle here holds no key: `open` takes no
`signing_key`); it verifies what it reads, and the records arrive with their signatures and
prevhashes. Appends are pipelined: `append_async` queues a record and a sender thread posts
what is queued in batches, in order, so thousands of records go in a few requests; each record
then gets its own event. Multireads and subscriptions are streamed responses, read on a thread
of their own. As with a `Log`, callbacks run on one callback thread (per client), and events of
requests made without a callback go to `client.logs.event_next`. A stream the connection drops
ends with `EVENT_SHUTDOWN`, as a remote log's does when its host goes away. Not offered: the
append and read filters (`set_append_filter` runs before signing, which the node does).
"""

from __future__ import annotations

import base64
import builtins
import collections
import json
import logging
import struct
import threading
import urllib.parse
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Self

import httpx

from hoard.api import shapes
from hoard.errors import HoardError, InvalidArgumentError, LogError, StateError
from hoard.logs import (
    EVENT_CREATED,
    EVENT_DATA,
    EVENT_EOS,
    EVENT_SHUTDOWN,
    Datum,
    Event,
    LogName,
    Metadata,
    OpenInfo,
    parse_name,
)
from hoard.logs.events import (
    EVENT_FAILURE,
    STAT_DATA,
    STAT_SHUTDOWN,
    Dispatcher,
    EventQueue,
)
from hoard.logs.log import parse_mode
from hoard.logs.metadata import MetadataInput
from hoard.logs.records import to_ns
from hoard.node.results import LogSummary

if TYPE_CHECKING:
    from hoard.api.client import NodeClient

_log = logging.getLogger("hoard.client")

Callback = Callable[[Event], Any]
BATCH_BYTES = 4 << 20  # records per append request, by size (the node takes up to 16 MiB) ...
BATCH_RECORDS = 8192  # ... and by count
_LENGTH = struct.Struct(">I")
_MODES = {1: "ro", 2: "ao", 3: "ra"}


def _as_log_error(exc: HoardError) -> LogError:
    """`exc` as the LogError a log call reports (its GDP status: the HTTP status it maps to)."""
    if isinstance(exc, LogError):
        return exc
    status = 503 if exc.http_status in (502, 504) else exc.http_status
    return LogError(exc.message, status=status)


def _copy(error: LogError) -> LogError:
    return LogError(error.message, status=error.status, **{k: v for k, v in error.fields.items() if k != "status"})


class _Request:
    """One multiread or subscription: a streamed response read on its own thread."""

    def __init__(self, log: RemoteLog, callback: Callback | None, udata: Any) -> None:
        self.log = log
        self.callback = callback
        self.udata = udata
        self.cancelled = False

    def run(self, response: httpx.Response) -> None:
        ended = False
        try:
            for line in response.iter_lines():
                if self.cancelled:
                    return
                if not line.strip():
                    continue
                data = json.loads(line)
                if not isinstance(data, dict) or data.get("type") == "ping":
                    continue
                event = shapes.log_event_from_json(data, self.log, self.udata)
                self.log._post(self, event)
                if event.type in (EVENT_EOS, EVENT_SHUTDOWN):
                    ended = True
                    return
        except Exception as exc:  # noqa: BLE001 - dropped, closed under it, or nonsense: ended below as lost
            _log.debug("log stream of %s ended: %r", self.log.name, exc)
        finally:
            response.close()
            if not ended and not self.cancelled:
                lost = LogError("the connection to the node was lost", status=STAT_SHUTDOWN)
                self.log._post(self, Event(EVENT_SHUTDOWN, self.log, None, self.udata, STAT_SHUTDOWN, lost))
            self.log._forget(self)


class RemoteLog:
    """A log opened through a running node (see the module docstring): `hoard.logs.Log`'s methods."""

    def __init__(self, logs: ClientLogs, data: dict[str, Any]) -> None:
        info, mode, _writable = shapes.log_info_from_json(data)
        self._logs = logs
        self._client = logs._client
        self.name: LogName = info.name
        self.metadata: Metadata = info.metadata
        self.public_key: bytes = info.public_key
        self._mode = parse_mode(mode)
        self._path = f"/logs/{urllib.parse.quote(str(info.name), safe='')}"
        self._pending: collections.deque[tuple[bytes, Callable[[Event], None]]] = collections.deque()
        self._cond = threading.Condition()
        self._inflight = 0
        self._sender: threading.Thread | None = None
        self._requests: list[_Request] = []
        self._closed = False

    def __repr__(self) -> str:
        return f"RemoteLog({str(self.name)!r}, mode={self.mode!r})"

    @property
    def mode(self) -> str:
        return _MODES[self._mode]

    @property
    def nrecs(self) -> int:
        """The number of committed records (asked of the node)."""
        self._check_open()
        return int(self._client._request("GET", self._path, params={"mode": "ro"}).json()["nrecs"])

    # -- checks -------------------------------------------------------------------
    def _check_open(self) -> None:
        if self._closed:
            raise StateError(f"log handle {self.name} is closed")

    def _check_readable(self) -> None:
        self._check_open()
        if not self._mode & 1:
            raise LogError(f"log {self.name} is open append-only", status=403, gdp_stat="BAD_IOMODE")

    # -- appends ------------------------------------------------------------------
    def _submit(self, data: Any, done: Callable[[Event], None]) -> None:
        self._check_open()
        if not self._mode & 2:
            raise LogError(f"log {self.name} is open read-only", status=403, gdp_stat="READONLY")
        if isinstance(data, (bytearray, memoryview)):
            data = bytes(data)
        if not isinstance(data, bytes):
            raise LogError(f"record data is bytes, not {type(data).__name__}", status=400)
        with self._cond:
            self._pending.append((data, done))
            self._inflight += 1
            if self._sender is None:
                self._sender = threading.Thread(target=self._send_loop, name=f"hoard-log-append-{self.name}",
                                                daemon=True)
                self._sender.start()
            self._cond.notify_all()

    def _send_loop(self) -> None:
        while True:
            with self._cond:
                while not self._pending and not self._closed:
                    self._cond.wait()
                if not self._pending:
                    self._sender = None
                    return
                batch: list[tuple[bytes, Callable[[Event], None]]] = []
                size = 0
                while self._pending and len(batch) < BATCH_RECORDS and \
                        (not batch or size + len(self._pending[0][0]) <= BATCH_BYTES):
                    item = self._pending.popleft()
                    batch.append(item)
                    size += len(item[0]) + _LENGTH.size
            self._send(batch)
            with self._cond:
                self._inflight -= len(batch)
                self._cond.notify_all()

    def _send(self, batch: list[tuple[bytes, Callable[[Event], None]]]) -> None:
        body = b"".join(_LENGTH.pack(len(data)) + data for data, _ in batch)
        try:
            answers = self._client._request("POST", self._path + "/records", content=body,
                                            headers={"content-type": "application/octet-stream"}).json()
            if not isinstance(answers, list) or len(answers) != len(batch):
                raise InvalidArgumentError(f"the node answered {len(answers)} results for {len(batch)} records")
            events = [shapes.log_event_from_json(answer, self, None, data) for answer, (data, _) in zip(answers, batch, strict=True)]
        except HoardError as exc:
            error = _as_log_error(exc)
            events = [Event(EVENT_FAILURE, self, None, None, error.status, _copy(error)) for _ in batch]
        for (_, done), event in zip(batch, events, strict=True):
            done(event)

    def append(self, data: bytes) -> Datum:
        """Append a record and wait until it is durably committed; return it as committed."""
        finished = threading.Event()
        box: list[Event] = []

        def done(event: Event) -> None:
            box.append(event)
            finished.set()

        self._submit(data, done)
        finished.wait()
        event = box[0]
        if event.type != EVENT_CREATED or event.datum is None:
            raise _copy(event.error or LogError("the append failed", status=event.stat))
        return event.datum

    def append_async(self, data: bytes, callback: Callback | None = None, udata: Any = None) -> None:
        """Queue an append; its result is one event: EVENT_CREATED (datum = the committed
        record) once it is durable, or EVENT_FAILURE. Errors found before queueing (mode,
        data type) are raised here."""
        def done(event: Event) -> None:
            self._logs._dispatch(callback, Event(event.type, self, event.datum, udata, event.stat, event.error))

        self._submit(data, done)

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every queued append of this handle is settled."""
        with self._cond:
            return self._cond.wait_for(lambda: self._inflight == 0, timeout)

    # -- reads --------------------------------------------------------------------
    def _read_one(self, params: dict[str, Any]) -> Datum:
        response = self._client._request("GET", self._path + "/records", params={**params, "count": 1})
        for line in response.text.splitlines():
            data = json.loads(line) if line.strip() else {}
            if data.get("type") in (None, "ping"):
                continue
            event = shapes.log_event_from_json(data, self)
            if event.type == EVENT_DATA and event.datum is not None:
                return event.datum
            raise event.error or LogError("no record there", status=404)
        raise LogError("no record there", status=404)

    def read_by_recno(self, recno: int) -> Datum:
        """Record `recno`; ≤ 0 counts back from the end (-1 is the last). 404 for 0 and past the end."""
        self._check_readable()
        if isinstance(recno, bool) or not isinstance(recno, int):
            raise LogError(f"a record number is an int, not {type(recno).__name__}", status=400)
        if recno == 0:
            raise LogError("there is no record 0", status=404, gdp_stat="NAK_NOTFOUND")
        return self._read_one({"start": recno})

    def read_by_ts(self, ts: Any) -> Datum:
        """The first record stamped at or after `ts` (int ns, float s, or datetime); 404 if none."""
        self._check_readable()
        return self._read_one({"ts": to_ns(ts)})

    def read_async(self, recno: int, callback: Callback | None = None, udata: Any = None) -> None:
        """Read on the callback thread; exactly one event: EVENT_DATA or EVENT_FAILURE."""
        self._check_readable()

        def job() -> None:
            try:
                event = Event(EVENT_DATA, self, self.read_by_recno(recno), udata, STAT_DATA)
            except LogError as exc:
                event = Event(EVENT_FAILURE, self, None, udata, exc.status, exc)
            except HoardError as exc:
                error = _as_log_error(exc)
                event = Event(EVENT_FAILURE, self, None, udata, error.status, error)
            self._logs._deliver(callback, event)

        self._logs._post(job)

    # -- subscriptions --------------------------------------------------------------
    def _request(self, params: dict[str, Any], callback: Callback | None, udata: Any) -> None:
        self._check_readable()
        request = _Request(self, callback, udata)
        response = self._client._send_stream("GET", self._path + "/records", params=params)
        with self._cond:
            self._requests.append(request)
        threading.Thread(target=request.run, args=(response,), name=f"hoard-log-read-{self.name}",
                         daemon=True).start()

    def subscribe_by_recno(self, start: int, numrecs: int, callback: Callback | None = None,
                           udata: Any = None) -> None:
        """Existing records from `start` (≤ 0 counts back), then new ones as they are
        committed; `numrecs` in all (0: forever), then EVENT_EOS. 402 if numrecs < 0."""
        self._request({"start": start, "count": numrecs, "follow": "true"}, callback, udata)

    def subscribe_by_ts(self, start_ts: Any, numrecs: int, callback: Callback | None = None,
                        udata: Any = None) -> None:
        """As subscribe_by_recno, from the first record at or after `start_ts` (none: new ones)."""
        self._request({"ts": to_ns(start_ts), "count": numrecs, "follow": "true"}, callback, udata)

    def multiread(self, start: int, numrecs: int, callback: Callback | None = None, udata: Any = None) -> None:
        """Existing records only, from `start` (≤ 0 counts back), at most `numrecs` (0: all),
        then EVENT_EOS. 402 if numrecs < 0; 404 if start is past the end (or 0)."""
        self._request({"start": start, "count": numrecs}, callback, udata)

    def multiread_by_ts(self, start_ts: Any, numrecs: int, callback: Callback | None = None,
                        udata: Any = None) -> None:
        """As multiread, from the first record at or after `start_ts` (none: 404)."""
        self._request({"ts": to_ns(start_ts), "count": numrecs}, callback, udata)

    def unsubscribe(self, callback: Callback | None = None, udata: Any = None) -> int:
        """End this handle's subscriptions and multireads matching (callback, udata), None
        matching anything; they get no further events (no EOS). Returns how many ended."""
        self._check_open()
        with self._cond:
            ended = [r for r in self._requests
                     if (callback is None or r.callback == callback) and (udata is None or r.udata == udata)]
            for request in ended:
                request.cancelled = True
                self._requests.remove(request)
        return len(ended)

    def _forget(self, request: _Request) -> None:
        with self._cond:
            if request in self._requests:
                self._requests.remove(request)

    def _post(self, request: _Request, event: Event) -> None:
        """Hand a stream's event to the callback thread (unless the request was cancelled by then)."""
        def job() -> None:
            if not request.cancelled:
                self._logs._deliver(request.callback, event)

        self._logs._post(job)

    # -- close --------------------------------------------------------------------
    def close(self, timeout: float | None = 30.0) -> None:
        """Wait for queued appends to settle, end this handle's requests (no events), and
        release the handle. Idempotent."""
        if self._closed:
            return
        self.flush(timeout)
        with self._cond:
            self._closed = True
            for request in self._requests:
                request.cancelled = True
            self._requests = []
            self._cond.notify_all()
        self._logs._closed_log(self)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class ClientLogs:
    """`client.logs`: the operations of `node.logs`, on a running node."""

    def __init__(self, client: NodeClient) -> None:
        self._client = client
        self._events = EventQueue()
        self._dispatcher: Dispatcher | None = None
        self._open: list[RemoteLog] = []
        self._lock = threading.Lock()

    # -- plumbing -------------------------------------------------------------------
    def _post(self, job: Callable[[], None]) -> None:
        with self._lock:
            if self._dispatcher is None:
                self._dispatcher = Dispatcher("hoard-client-log-callbacks")
            dispatcher = self._dispatcher
        dispatcher.post(job)

    def _deliver(self, callback: Callback | None, event: Event) -> None:
        """On the callback thread: to the request's callback, else to the event queue."""
        if callback is None:
            self._events.put(event)
        else:
            callback(event)

    def _dispatch(self, callback: Callback | None, event: Event) -> None:
        self._post(lambda: self._deliver(callback, event))

    def _handle(self, data: dict[str, Any]) -> RemoteLog:
        handle = RemoteLog(self, data)
        with self._lock:
            self._open.append(handle)
        return handle

    def _closed_log(self, handle: RemoteLog) -> None:
        with self._lock:
            if handle in self._open:
                self._open.remove(handle)

    def close(self) -> None:
        """Close every open handle (queued appends settled first) and stop the callback thread."""
        with self._lock:
            handles = list(self._open)
        for handle in handles:
            handle.close()
        with self._lock:
            dispatcher, self._dispatcher = self._dispatcher, None
        if dispatcher is not None:
            dispatcher.close()
        self._events.close()

    # -- operations (as node.logs) -------------------------------------------------
    def create(self, metadata: MetadataInput = None, name: str | None = None) -> RemoteLog:
        """Create a log hosted by the node; returns it open "ra" (the node keeps the writer key)."""
        entries = [{"id": i, "value": base64.b64encode(v).decode("ascii")} for i, v in Metadata(metadata)]
        return self._handle(self._client._request("POST", "/logs", json={"metadata": entries, "name": name}).json())

    def open(self, name: str | LogName, mode: str = "ra", signing_key: Any = None,
             info: OpenInfo | None = None) -> RemoteLog:
        """Open a log, hosted by the node or (while it is started) by a peer: "ro", "ao" or "ra".
        Writing uses the writer key the node holds: neither `signing_key` nor a key (or key
        callback) in `info` can be sent to it; `info`'s caching choice is the node's."""
        if signing_key is not None or (info is not None and (info.signing_key is not None
                                                             or info.signkey_cb is not None)):
            raise InvalidArgumentError("a running node signs with the writer keys it holds: "
                                       "signing_key is not sent to it")
        text = _MODES[parse_mode(mode)]
        path = f"/logs/{urllib.parse.quote(str(parse_name(name)), safe='')}"
        return self._handle(self._client._request("GET", path, params={"mode": text}).json())

    def event_next(self, log: RemoteLog | None = None, timeout: float | None = None) -> Event | None:
        """The next event of a log request made without a callback; None on timeout."""
        return self._events.next(log, timeout)

    def parse_name(self, value: str | bytes | LogName) -> LogName:
        """A log name from its printable form, raw 32 bytes, or any other string (SHA-256)."""
        return parse_name(value)

    def list(self) -> builtins.list[LogSummary]:
        """The logs the node hosts, with their record counts, in name order."""
        return [shapes.log_summary_from_json(item) for item in self._client._request("GET", "/logs").json()]

    def writable(self, name: str | LogName) -> bool:
        """Whether the node holds the writer key of log `name`."""
        path = f"/logs/{urllib.parse.quote(str(parse_name(name)), safe='')}/writable"
        return bool(self._client._request("GET", path).json()["writable"])
