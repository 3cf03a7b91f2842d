"""`hoard.v1.LogService` over a node: GDP logs for clients in any language (proto/hoard/v1/logs.proto).

Thin, as the other servicers: validate, call the node's log API (`log_create`, `log_open`,
`log_list`), map errors (`LogError` carries its gRPC status). The node signs appends with the
writer key it holds and verifies what it reads; handles are kept open in a small cache, so
repeated calls on a log (local or remote) do not reopen it. `LogsClient` is the matching
client (the CLI uses the REST routes, through `NodeClient.logs`).
"""

from __future__ import annotations

import builtins
import collections
import contextlib
import threading
from collections.abc import Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, Self, cast

import grpc

from hoard.api.grpc.protos import load
from hoard.api.grpc.status import status_on_error
from hoard.api.grpc.streams import StreamQueue
from hoard.errors import HoardError, LogError, StateError, error_for
from hoard.logs import EVENT_CREATED, EVENT_EOS, EVENT_SHUTDOWN, Datum, Event, Log, parse_name
from hoard.logs.events import EVENT_DATA, EVENT_FAILURE, EVENT_MISSING, STAT_DATA, STAT_EOS, STAT_MISSING
from hoard.logs.subscriptions import check_numrecs, plan_multiread_at, plan_subscribe_at, start_point

if TYPE_CHECKING:
    from hoard.node.node import NodeBase

messages, services = load("hoard/v1/logs.proto")

SERVICE_NAME = "hoard.v1.LogService"
HANDLES = 64  # open log handles kept per servicer
APPEND_TIMEOUT = 300.0  # seconds an Append waits for its records to be durable


@contextlib.contextmanager
def log_status(context: grpc.ServicerContext, op: str) -> Iterator[None]:
    """`status_on_error`, plus the GDP status of a LogError in the trailing metadata
    (`gdp-status`, and `gdp-stat` when it has one), so clients get 402 apart from 400."""
    with status_on_error(context, op):
        try:
            yield
        except LogError as exc:
            trailer = [("gdp-status", str(exc.code))]
            gdp_stat = exc.fields.get("gdp_stat")
            if isinstance(gdp_stat, str):
                trailer.append(("gdp-stat", gdp_stat))
            context.set_trailing_metadata(tuple(trailer))
            raise


def record_message(datum: Datum, with_data: bool = True) -> Any:
    return messages.Record(recno=datum.recno, ts=datum.ts, data=datum.data if with_data else b"",
                           signature=datum.sig, prevhash=datum.prevhash)


def event_message(event: Event) -> Any:
    out = messages.LogEvent(type=event.type, stat=event.stat)
    if event.datum is not None:
        out.record.CopyFrom(record_message(event.datum))
    if event.error is not None:
        out.error = event.error.message
        gdp_stat = event.error.fields.get("gdp_stat")
        if isinstance(gdp_stat, str):
            out.gdp_stat = gdp_stat
    return out


if TYPE_CHECKING:  # the generated base, loaded at run time, only answers UNIMPLEMENTED
    _Servicer = object
else:
    _Servicer = services.LogServiceServicer


class LogServicer(_Servicer):
    """hoard.v1.LogService backed by a `hoard.Node`."""

    def __init__(self, node: NodeBase) -> None:
        self.node = node.as_sync()  # gRPC handlers run on gRPC's threads: the blocking face
        self._handles: collections.OrderedDict[tuple[str, str], Log] = collections.OrderedDict()
        self._lock = threading.Lock()

    def _open(self, name: str, mode: str) -> Log:
        key = (str(parse_name(name)), mode)
        with self._lock:
            handle = self._handles.get(key)
            if handle is not None:
                self._handles.move_to_end(key)
                return handle
        handle = self.node.logs.open(key[0], mode)
        with self._lock:
            self._handles[key] = handle
            while len(self._handles) > HANDLES:  # dropped, not closed: a Subscribe may still use it
                self._handles.popitem(last=False)
        return handle

    def _info(self, handle: Log) -> Any:
        metadata = [messages.MetadataEntry(id=i, value=v) for i, v in handle.metadata]
        writable = self.node.logs.writable(handle.name)
        return messages.LogInfo(name=str(handle.name), nrecs=handle.nrecs, metadata=metadata,
                                public_key=handle.public_key, writable=writable)

    def Create(self, request: Any, context: grpc.ServicerContext) -> Any:
        with log_status(context, "Create"):
            created = self.node.logs.create([(e.id, e.value) for e in request.metadata], request.name or None)
            with self._lock:
                self._handles[(str(created.name), "ra")] = created
            return self._info(created)

    def Info(self, request: Any, context: grpc.ServicerContext) -> Any:
        with log_status(context, "Info"):
            return self._info(self._open(request.name, "ro"))

    def List(self, request: Any, context: grpc.ServicerContext) -> Any:
        with log_status(context, "List"):
            return messages.ListLogsResponse(logs=[messages.LogInfo(name=str(i.name), nrecs=i.nrecs)
                                                   for i in self.node.logs.list()])

    def Append(self, request: Any, context: grpc.ServicerContext) -> Any:
        with log_status(context, "Append"):
            handle = self._open(request.name, "ao")
            results: builtins.list[Event | None] = [None] * len(request.data)
            remaining = [len(request.data)]
            finished = threading.Event()
            lock = threading.Lock()

            def on_event(event: Event) -> None:
                results[event.udata] = event
                with lock:
                    remaining[0] -= 1
                    if remaining[0] == 0:
                        finished.set()

            if not request.data:
                finished.set()
            for i, data in enumerate(request.data):
                handle.append_async(data, on_event, udata=i)
            if not finished.wait(APPEND_TIMEOUT):
                raise LogError("the appends did not complete in time", status=504)
            for event in results:
                assert event is not None
                if event.type != EVENT_CREATED:
                    assert event.error is not None
                    raise event.error
            return messages.AppendResponse(records=[record_message(e.datum, False) for e in results if e and e.datum])

    def Read(self, request: Any, context: grpc.ServicerContext) -> Any:
        with log_status(context, "Read"):
            handle = self._open(request.name, "ro")
            if request.WhichOneof("at") == "ts":
                return record_message(handle.read_by_ts(request.ts))
            return record_message(handle.read_by_recno(request.recno))

    def Subscribe(self, request: Any, context: grpc.ServicerContext) -> Iterator[Any]:
        """Records the client asks for, paced by what it reads.

        Records that exist when the client gets to them are read one by one as it takes them
        (a multiread, and a subscription catching up), so a large range costs the node one record
        at a time. A subscription that has caught up then takes new records as they are
        committed, through a `StreamQueue`: a client that stops reading is ended with
        RESOURCE_EXHAUSTED instead of the node buffering every record for it.
        """
        kinds = (messages.SubscribeRequest.SUBSCRIBE, messages.SubscribeRequest.MULTIREAD)
        if request.kind not in kinds:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT,
                          f"unknown Subscribe kind {request.kind} (SUBSCRIBE = 0, MULTIREAD = 1)")
        by_ts = request.WhichOneof("from") == "start_ts"
        with log_status(context, "Subscribe"):
            check_numrecs(request.numrecs)
            handle = self._open(request.name, "ro")
            nrecs = handle.nrecs
            if by_ts:
                first: int | None = _first_at_or_after(handle, request.start_ts)
            else:
                first = start_point(request.start, nrecs)
            if request.kind == messages.SubscribeRequest.MULTIREAD:
                plan = plan_multiread_at(first, request.numrecs, nrecs)
            else:
                plan = plan_subscribe_at(nrecs + 1 if first is None else first, request.numrecs)
        recno = plan.first
        known = nrecs  # records known to exist (asked again only when reached: a remote log answers over the network)
        while plan.last is None or recno <= plan.last:
            if request.kind == messages.SubscribeRequest.SUBSCRIBE and recno > known:
                known = handle.nrecs
                if recno > known:
                    break  # caught up: new records come from the subscription below
            event = _read_event(handle, recno)
            if event.type == EVENT_FAILURE:
                yield event_message(event)
                return
            yield event_message(event)
            recno += 1
        else:
            yield event_message(Event(EVENT_EOS, handle, None, None, STAT_EOS))
            return
        yield from self._follow(handle, recno, None if plan.last is None else plan.last - recno + 1, context)

    def _follow(self, handle: Log, start: int, count: int | None, context: grpc.ServicerContext) -> Iterator[Any]:
        """New records from `start` (`count` of them, None: forever), then EOS."""
        events: StreamQueue[Event] = StreamQueue(context, "Subscribe")

        def callback(event: Event) -> None:
            events.put(event, len(event.datum.data) if event.datum is not None else 0)
            if event.type in (EVENT_EOS, EVENT_SHUTDOWN):
                events.end()

        with log_status(context, "Subscribe"):
            handle.subscribe_by_recno(start, count or 0, callback)
        try:
            for event in events:
                yield event_message(event)
                if event.type in (EVENT_EOS, EVENT_SHUTDOWN):
                    return
        finally:
            events.close()
            try:
                handle.unsubscribe(callback)
            except StateError:
                pass  # the handle or the node closed meanwhile


def _first_at_or_after(handle: Log, ts: int) -> int | None:
    """The number of the first record stamped at or after `ts`; None if there is none."""
    try:
        return handle.read_by_ts(ts).recno
    except LogError as exc:
        if _status(exc) == 404:  # no record at or after ts
            return None
        raise


def _read_event(handle: Log, recno: int) -> Event:
    """Record `recno` as the event a subscription delivers (a failure is an event too)."""
    try:
        return Event(EVENT_DATA, handle, handle.read_by_recno(recno), None, STAT_DATA)
    except LogError as exc:
        status = _status(exc)
        return Event(EVENT_MISSING if status == STAT_MISSING else EVENT_FAILURE, handle, None, None, status, exc)


def _status(exc: LogError) -> int:
    """A LogError's GDP status (its `code`)."""
    code: Any = exc.code
    return code if isinstance(code, int) else 500


def add(server: grpc.Server, node: Any) -> None:
    services.add_LogServiceServicer_to_server(LogServicer(node), server)


class LogsClient:
    """The log service of a running node at `address` (host:port). Close it after use.

    `token`: the node's API token (`hoard.api.auth.load_token(config)`), if it requires one.
    """

    def __init__(self, address: str, token: str | None = None) -> None:
        from hoard.api.grpc.client import with_token
        from hoard.api.grpc.server import MAX_RECEIVE_BYTES, MAX_SEND_BYTES

        self.address = address
        self._channel = with_token(grpc.insecure_channel(address, options=[
            ("grpc.max_receive_message_length", MAX_SEND_BYTES),
            ("grpc.max_send_message_length", MAX_RECEIVE_BYTES),
        ]), token)
        self._stub = services.LogServiceStub(self._channel)

    def close(self) -> None:
        self._channel.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _call(self, method: Any, request: Any) -> Any:
        from hoard.api.grpc.client import error_from_rpc

        try:
            return method(request)
        except grpc.RpcError as exc:
            raise _log_error(exc, self.address) or error_from_rpc(exc, self.address) from None

    def create(self, metadata: Iterable[tuple[int, bytes]] = (), name: str | None = None) -> Any:
        entries = [messages.MetadataEntry(id=i, value=v) for i, v in metadata]
        return self._call(self._stub.Create, messages.CreateLogRequest(metadata=entries, name=name or ""))

    def info(self, name: str) -> Any:
        return self._call(self._stub.Info, messages.LogInfoRequest(name=name))

    def list(self) -> builtins.list[Any]:
        return list(self._call(self._stub.List, messages.ListLogsRequest()).logs)

    def append(self, name: str, data: Iterable[bytes]) -> builtins.list[Any]:
        return list(self._call(self._stub.Append, messages.AppendRequest(name=name, data=list(data))).records)

    def read(self, name: str, recno: int | None = None, ts: int | None = None) -> Any:
        request = messages.ReadRequest(name=name, ts=ts) if ts is not None else messages.ReadRequest(name=name,
                                                                                                  recno=recno or 0)
        return self._call(self._stub.Read, request)

    def subscribe(self, name: str, start: int = 1, numrecs: int = 0, *, multiread: bool = False,
                  start_ts: int | None = None) -> Iterator[Any]:
        """LogEvent messages until EOS or SHUTDOWN (closing the iterator cancels the stream)."""
        kind = messages.SubscribeRequest.MULTIREAD if multiread else messages.SubscribeRequest.SUBSCRIBE
        if start_ts is not None:
            request = messages.SubscribeRequest(name=name, kind=kind, start_ts=start_ts, numrecs=numrecs)
        else:
            request = messages.SubscribeRequest(name=name, kind=kind, start=start, numrecs=numrecs)
        responses = self._stub.Subscribe(request)
        try:
            yield from responses
        except grpc.RpcError as exc:
            from hoard.api.grpc.client import error_from_rpc

            raise _log_error(exc, self.address) or error_from_rpc(exc, self.address) from None
        finally:
            responses.cancel()


def _log_error(exc: grpc.RpcError, address: str) -> HoardError | None:
    """The LogError a failed call carries (its GDP status is in the trailing metadata), else None."""
    try:
        # (key, value) pairs, as grpc returns them (its stubs say `_Metadatum` objects)
        pairs = cast("Sequence[tuple[str, str | bytes]]", exc.trailing_metadata() or ())
        trailer = dict(pairs)
    except Exception:  # noqa: BLE001 - a call that failed before any metadata carries none
        return None
    if "gdp-status" not in trailer:
        return None
    fields: dict[str, Any] = {"gdp_stat": trailer["gdp-stat"]} if "gdp-stat" in trailer else {}
    status = str(trailer["gdp-status"])
    if not status.isdigit():
        return None
    return error_for(exc.details() or "log error", code=status, **fields)
