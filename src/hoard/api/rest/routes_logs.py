"""GDP logs over REST (hoard's addition, under the API base): what `node.logs` offers.

* `GET /logs` — the logs the node hosts (`[{name, nrecs}]`).
* `POST /logs` — create one (`{metadata: [{id, value (base64)}], name}`); the node keeps its writer key.
* `GET /logs/{name}?mode=ro|ao|ra` — open it (here or, while started, at a peer): name, record
  count, metadata, public key, whether the node holds the writer key.
* `GET /logs/{name}/writable` — whether the node holds the writer key (`{writable}`).
* `POST /logs/{name}/records` — append records, signed by the node: the body is the records,
  each a 4-byte big-endian length then its bytes; the answer is one event per record, in order
  (`created` with the committed record's number, time, signature and prevhash, or `failure`).
* `GET /logs/{name}/records?start&count&follow&ts` — records as NDJSON events: existing ones
  (a multiread), or with `follow=true` new ones as they are committed (a subscription), then
  `eos`. `ts` (ns) starts at the first record stamped at or after it instead of `start`.

Every call goes through the node's typed surface: `node.logs.create/open/list/writable`, then
the `Log` handle the node returned. Handles are kept open in a small cache (as the gRPC
service does), so repeated calls on one log do not reopen it. Blocking handle calls run in a
thread, never on the server's loop.

Bounds: an append body is at most `APPEND_MAX_BYTES` and `APPEND_MAX_RECORDS` records. A
stream reads existing records a few at a time as the client takes them; new records of a
subscription wait in a queue of at most `STREAM_MAX_QUEUED` events / `STREAM_MAX_QUEUED_BYTES`,
past which the stream ends with a failure and `shutdown`, instead of the node buffering for a
client that does not read. An idle stream sends `{"type": "ping"}` every `PING_SECONDS`.
"""

from __future__ import annotations

import asyncio
import base64
import collections
import json
import struct
import threading
from collections.abc import AsyncIterator, Callable
from typing import Annotated, Any

import anyio
from fastapi import APIRouter, Body, Path, Query, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field

from hoard.api import shapes
from hoard.api.rest.responses import TEXT
from hoard.api.rest.responses import errors as common_errors
from hoard.errors import InvalidArgumentError, LogError, StateError
from hoard.logs import EVENT_DATA, EVENT_EOS, EVENT_SHUTDOWN, Event, Log, parse_name
from hoard.logs.events import EVENT_FAILURE, EVENT_MISSING, STAT_DATA, STAT_EOS, STAT_MISSING, STAT_SHUTDOWN
from hoard.logs.subscriptions import check_numrecs, plan_multiread_at, plan_subscribe_at, start_point
from hoard.node.async_node import AsyncNode

HANDLES = 64  # open log handles kept
APPEND_MAX_BYTES = 16 << 20  # one append request's body
APPEND_MAX_RECORDS = 65_536
APPEND_TIMEOUT = 300.0  # seconds an append request waits for its records to be durable
READ_AHEAD_BYTES = 1 << 20  # existing records read per thread hop, by size ...
READ_AHEAD_RECORDS = 256  # ... and by count
STREAM_MAX_QUEUED = 4096
STREAM_MAX_QUEUED_BYTES = 16 << 20
PING_SECONDS = 10.0
NDJSON = "application/x-ndjson"
_LENGTH = struct.Struct(">I")
_INT64 = (1 << 63) - 1

LogNamePath = Annotated[str, Path(description="A log name (43-character form), or any text (named by its SHA-256)")]


class MetadataEntry(BaseModel):
    model_config = ConfigDict(strict=True)  # JSON as typed: 0 is not false

    id: int | str = Field(description="A metadata id: a number or a FourCC such as SYN")
    value: str = Field(description="The value, base64")


class CreateLog(BaseModel):
    model_config = ConfigDict(strict=True)  # JSON as typed: 0 is not false

    metadata: list[MetadataEntry] = Field(default_factory=list)
    name: str | None = Field(default=None, description="Create the log under this name (else named by its metadata)")


_LOG_MEANING = {402: "A bad option: a negative count", 403: "The node does not hold the log's writer key",
                413: "The request, or a record, is too large"}


def errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """The error responses of a log route (GDP statuses are HTTP statuses)."""
    out = common_errors(*(s for s in statuses if s not in _LOG_MEANING))
    for status in statuses:
        if status in _LOG_MEANING:
            out[status] = {"description": _LOG_MEANING[status], **TEXT}
    return out


def _line(value: dict[str, Any]) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode() + b"\n"


class _Handles:
    """Open `Log` handles by (name, mode), the least recently used dropped past HANDLES
    (dropped, not closed: a stream may still use it)."""

    def __init__(self, node: AsyncNode) -> None:
        self._node = node
        self._open: collections.OrderedDict[tuple[str, str], Log] = collections.OrderedDict()
        self._lock = threading.Lock()

    def keep(self, handle: Log) -> None:
        with self._lock:
            self._open[(str(handle.name), handle.mode)] = handle
            while len(self._open) > HANDLES:
                self._open.popitem(last=False)

    async def get(self, name: str, mode: str) -> Log:
        key = (str(parse_name(name)), mode)
        with self._lock:
            handle = self._open.get(key)
            if handle is not None:
                self._open.move_to_end(key)
                return handle
        handle = await self._node.logs.open(key[0], mode)
        self.keep(handle)
        return handle


def logs_router(node: AsyncNode) -> APIRouter:
    """The `/logs...` routes, bound to `node`."""
    router = APIRouter(tags=["Logs"])
    handles = _Handles(node)

    async def info(handle: Log) -> JSONResponse:
        nrecs = await asyncio.to_thread(lambda: handle.nrecs)
        return JSONResponse(shapes.log_info_json(handle, nrecs, await node.logs.writable(handle.name)))

    @router.get("/logs", operation_id="listLogs", summary="The logs this node hosts, with their record counts (hoard)",
                responses={200: {"description": "`[{name, nrecs}]`"}, **errors()})
    async def list_logs() -> Response:
        return JSONResponse([shapes.log_json(summary) for summary in await node.logs.list()])

    @router.post("/logs", operation_id="createLog", summary="Create a log hosted by this node (hoard)",
                 responses={200: {"description": "The new log: `{name, nrecs, metadata, publicKey, mode, writable}`"},
                            **errors(400, 409)})
    async def create_log(body: Annotated[CreateLog, Body()]) -> Response:
        try:
            metadata = [(entry.id, base64.b64decode(entry.value, validate=True)) for entry in body.metadata]
        except ValueError as exc:
            raise InvalidArgumentError(f"metadata values must be base64: {exc}") from exc
        created = await node.logs.create(metadata, body.name)
        handles.keep(created)
        return await info(created)

    @router.get("/logs/{name}", operation_id="openLog",
                summary="Open a log (hosted here or, while started, by a peer); its name, records, metadata (hoard)",
                responses={200: {"description": "`{name, nrecs, metadata, publicKey, mode, writable}`"},
                           **errors(400, 404)})
    async def open_log(name: LogNamePath, mode: Annotated[str, Query(pattern="^(ro|ao|ra)$")] = "ro") -> Response:
        return await info(await handles.get(name, mode))

    @router.get("/logs/{name}/writable", operation_id="logWritable",
                summary="Whether this node holds the writer key of a log (hoard)",
                responses={200: {"description": "`{writable}`"}, **errors(400)})
    async def writable(name: LogNamePath) -> Response:
        return JSONResponse({"writable": await node.logs.writable(name)})

    @router.post("/logs/{name}/records", operation_id="appendLog",
                 summary="Append records, signed by the node; one event per record, in order (hoard)",
                 responses={200: {"description": "`[{type: created|failure, stat, record, error}]`"},
                            **errors(400, 403, 404, 413)},
                 openapi_extra={"requestBody": {"required": True, "content": {"application/octet-stream": {
                     "schema": {"type": "string", "format": "binary",
                                "description": "Records: each a 4-byte big-endian length, then its bytes"}}}}})
    async def append(name: LogNamePath, request: Request) -> Response:
        records = _split(await _body(request))
        handle = await handles.get(name, "ao")
        events = await asyncio.to_thread(_append_all, handle, records)
        return JSONResponse([shapes.log_event_json(e, with_data=False) for e in events])

    @router.get("/logs/{name}/records", operation_id="readLog", response_class=StreamingResponse,
                summary="Records as NDJSON events: existing ones, or with follow=true new ones too (hoard)",
                responses={200: {"description": "One JSON event per line: `data` (with `record`), `failure`, "
                                                "`missing`, `ping`, then `eos` or `shutdown`",
                                 "content": {NDJSON: {"schema": {"type": "string"}}}},
                           **errors(400, 402, 404)})
    async def read(name: LogNamePath,
                   start: Annotated[int, Query(ge=-_INT64, le=_INT64, description="First record (<= 0: from the end)")] = 1,
                   count: Annotated[int, Query(ge=0, le=_INT64, description="How many (0: all, or forever)")] = 0,
                   follow: Annotated[bool, Query(description="Then new records as they are committed")] = False,
                   ts: Annotated[int | None, Query(ge=0, le=_INT64, description="Start at this time (ns) instead")] = None
                   ) -> Response:
        handle = await handles.get(name, "ro")
        plan, nrecs = await asyncio.to_thread(_plan, handle, start, count, follow, ts)
        return StreamingResponse(_stream(handle, plan, nrecs, follow), media_type=NDJSON,
                                 headers={"Cache-Control": "no-store"})

    return router


async def _body(request: Request) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > APPEND_MAX_BYTES:
        raise LogError(f"an append request is at most {APPEND_MAX_BYTES} bytes", status=413)
    body = bytearray()
    async for piece in request.stream():
        body += piece
        if len(body) > APPEND_MAX_BYTES:
            raise LogError(f"an append request is at most {APPEND_MAX_BYTES} bytes", status=413)
    return bytes(body)


def _split(body: bytes) -> list[bytes]:
    """The records of an append body (length-prefixed); LogError 400 if it is not exactly that."""
    records: list[bytes] = []
    pos = 0
    while pos < len(body):
        if pos + _LENGTH.size > len(body):
            raise LogError("truncated record length in the append body", status=400)
        (length,) = _LENGTH.unpack_from(body, pos)
        pos += _LENGTH.size
        if pos + length > len(body):
            raise LogError("a record runs past the end of the append body", status=400)
        records.append(body[pos:pos + length])
        pos += length
        if len(records) > APPEND_MAX_RECORDS:
            raise LogError(f"an append request holds at most {APPEND_MAX_RECORDS} records", status=413)
    return records


def _append_all(handle: Log, records: list[bytes]) -> list[Event]:
    """Queue every record (pipelined into the host's group commits) and wait for all (blocking)."""
    results: list[Event | None] = [None] * len(records)
    remaining = [len(records)]
    finished = threading.Event()
    lock = threading.Lock()

    def on_event(event: Event) -> None:
        results[event.udata] = event
        with lock:
            remaining[0] -= 1
            if remaining[0] == 0:
                finished.set()

    if not records:
        finished.set()
    for i, data in enumerate(records):
        try:
            handle.append_async(data, on_event, udata=i)
        except LogError as exc:  # refused before it was queued (too big, ...): reported in place
            on_event(Event(EVENT_FAILURE, handle, None, i, exc.status, exc))
    if not finished.wait(APPEND_TIMEOUT):
        raise LogError("the appends did not complete in time", status=504)
    return [e for e in results if e is not None]


def _plan(handle: Log, start: int, count: int, follow: bool, ts: int | None) -> tuple[Any, int]:
    """What a read stream covers (blocking; errors answer the request, before any record)."""
    check_numrecs(count)
    nrecs = handle.nrecs
    first = _first_at_or_after(handle, ts) if ts is not None else start_point(start, nrecs)
    if follow:
        return plan_subscribe_at(nrecs + 1 if first is None else first, count), nrecs
    return plan_multiread_at(first, count, nrecs), nrecs


def _first_at_or_after(handle: Log, ts: int) -> int | None:
    try:
        return handle.read_by_ts(ts).recno
    except LogError as exc:
        if exc.status == 404:
            return None
        raise


def _read_some(handle: Log, recno: int, last: int | None, known: int) -> list[Event]:
    """Existing records from `recno` (up to `last` and `known`), a few, as events (blocking);
    a failure ends the list."""
    out: list[Event] = []
    size = 0
    while (last is None or recno <= last) and recno <= known and len(out) < READ_AHEAD_RECORDS \
            and size < READ_AHEAD_BYTES:
        try:
            datum = handle.read_by_recno(recno)
        except LogError as exc:
            kind = EVENT_MISSING if exc.status == STAT_MISSING else EVENT_FAILURE
            out.append(Event(kind, handle, None, None, exc.status, exc))
            return out
        out.append(Event(EVENT_DATA, handle, datum, None, STAT_DATA))
        size += len(datum.data)
        recno += 1
    return out


async def _stream(handle: Log, plan: Any, nrecs: int, follow: bool) -> AsyncIterator[bytes]:
    """The events of a read: existing records paced by the client, then (follow) new ones."""
    recno: int = plan.first
    last: int | None = plan.last
    known = nrecs
    while last is None or recno <= last:
        if recno > known:
            if not follow:
                break
            known = await asyncio.to_thread(lambda: handle.nrecs)
            if recno > known:  # caught up: new records come from a subscription
                async for line in _follow(handle, recno, None if last is None else last - recno + 1):
                    yield line
                return
        events = await asyncio.to_thread(_read_some, handle, recno, last, known)
        for event in events:
            yield _line(shapes.log_event_json(event))
            if event.type != EVENT_DATA:
                return
        recno += len(events)
    yield _line(shapes.log_event_json(Event(EVENT_EOS, handle, None, None, STAT_EOS)))


async def _follow(handle: Log, start: int, count: int | None) -> AsyncIterator[bytes]:
    """New records from `start` (`count` of them, None: forever), then EOS; bounded (module docstring)."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[Event] = asyncio.Queue()
    state = {"bytes": 0, "overflow": False}

    def put(event: Event) -> None:  # on the loop
        size = len(event.datum.data) if event.datum is not None else 0
        if state["overflow"]:
            return
        if queue.qsize() >= STREAM_MAX_QUEUED or state["bytes"] + size > STREAM_MAX_QUEUED_BYTES:
            state["overflow"] = True
            error = LogError("the client did not read fast enough", status=STAT_SHUTDOWN)
            queue.put_nowait(Event(EVENT_FAILURE, handle, None, None, error.status, error))
            queue.put_nowait(Event(EVENT_SHUTDOWN, handle, None, None, STAT_SHUTDOWN))
            return
        state["bytes"] += size
        queue.put_nowait(event)

    def callback(event: Event) -> None:  # on the logs' callback thread
        try:
            loop.call_soon_threadsafe(put, event)
        except RuntimeError:  # the server's loop is closed: nobody reads this stream any more
            pass

    await asyncio.to_thread(handle.subscribe_by_recno, start, count or 0, callback)
    try:
        while True:
            try:
                event = await asyncio.wait_for(queue.get(), PING_SECONDS)
            except TimeoutError:
                yield _line({"type": "ping"})
                continue
            if event.datum is not None:
                state["bytes"] -= len(event.datum.data)
            yield _line(shapes.log_event_json(event))
            if event.type in (EVENT_EOS, EVENT_SHUTDOWN):
                return
    finally:
        with anyio.CancelScope(shield=True):  # the stream is being cancelled: unsubscribe all the same
            await anyio.to_thread.run_sync(_unsubscribe, handle, callback)


def _unsubscribe(handle: Log, callback: Callable[[Event], Any]) -> None:
    try:
        handle.unsubscribe(callback)
    except StateError:
        pass  # the handle or the node closed meanwhile


__all__ = ["logs_router"]
