"""`gdp_init("host:port")`: libgdp attached to a running node's gRPC log service.

The node (`hoard node start`) hosts and signs: it writes with the keys in its data dir and
opens logs it does not host through its peers, as for every `hoard.v1.LogService` client
(`LogsClient`, the client the `hoard log` commands use). What GDP's API adds on top is done
here, on the client side:

* a handle's record count, checks of its mode, and GDP's statuses for them;
* `append_async`: one sender thread per handle, appends in the order they were made, each
  answered with GDP_EVENT_CREATED (or FAILURE) once durable;
* subscribe and multiread: one `Subscribe` stream per request, on a thread and a channel of
  its own, so `unsubscribe` can end it by closing that channel (no EOS then, as GDP's); a
  multiread's first answer is awaited by the call itself, so its errors (404, 402) are the
  call's status, as embedded; a subscription's relative start (0: new records, -N: the last N)
  is turned into a record number when the call is made, so what is appended after the call
  returns is delivered however soon the stream starts; a stream that breaks ends with
  GDP_EVENT_SHUTDOWN;
* open information: the node signs, so a writable open needs the node to hold the log's key
  (else GDP_STAT_SKEY_REQUIRED); the keys and callbacks of an open info are not sent to it.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from typing import Any

from hoard.capi.gdp_session import (
    FINAL_EVENTS,
    MULTIREAD,
    READ,
    STATUS_OF_EVENT,
    Handle,
    OpenSpec,
    Post,
    Record,
    Request,
    node_config,
)
from hoard.capi.gdp_status import (
    NAK_BADOPT,
    NAK_LOST_SUBSCR,
    SKEY_REQUIRED,
    GdpError,
    acknak,
    status_of,
)
from hoard.errors import HoardError, LogError
from hoard.logs.events import EVENT_CREATED, EVENT_DATA, EVENT_FAILURE, EVENT_SHUTDOWN
from hoard.logs.names import LogName

_LOCAL_STATUS = {"BAD_IOMODE", "NULL_GCL", "READONLY", "SKEY_REQUIRED", "GCL_NAME_INVALID", "CRYPTO_SIGFAIL"}


def _record(message: Any, data: bytes | None = None) -> Record:
    return Record(int(message.recno), int(message.ts), bytes(message.data if data is None else data),
                  bytes(message.signature))


def _event_status(message: Any) -> int:
    if message.type in STATUS_OF_EVENT:
        return STATUS_OF_EVENT[message.type]
    if message.gdp_stat in _LOCAL_STATUS:
        return status_of(LogError(message.error or "failed", status=int(message.stat), gdp_stat=message.gdp_stat))
    return acknak(int(message.stat) if message.stat else 500)


class Attached:
    """The node at `address`; every handle shares its `LogsClient` for unary calls."""

    def __init__(self, address: str) -> None:
        from hoard.api.auth import load_token
        from hoard.api.grpc.logs import LogsClient

        self.address = address
        self.token = load_token(node_config())
        self.client = LogsClient(address, token=self.token)
        try:
            self.client.list()  # reachable, and the token (if any) is accepted
        except BaseException:
            self.client.close()
            raise

    def describe(self) -> str:
        return f"node at {self.address}"

    def new_client(self) -> Any:
        from hoard.api.grpc.logs import LogsClient

        return LogsClient(self.address, token=self.token)

    def create(self, name: LogName | None, metadata: bytes) -> Handle:
        from hoard.logs.metadata import Metadata

        entries = list(Metadata.parse(metadata)) if metadata else []
        info = self.client.create(entries, None if name is None else str(name))
        return RemoteHandle(self, LogName.from_printable(info.name), int(info.nrecs), 3)

    def open(self, name: LogName, mode: int, spec: OpenSpec) -> Handle:
        info = self.client.info(str(name))
        if mode & 2 and not info.writable:
            raise GdpError(SKEY_REQUIRED, f"the node at {self.address} does not hold the key of log {name}")
        return RemoteHandle(self, LogName.from_printable(info.name), int(info.nrecs), mode)

    def close(self) -> None:
        self.client.close()


class RemoteHandle(Handle):
    def __init__(self, node: Attached, name: LogName, nrecs: int, mode: int) -> None:
        super().__init__(name, nrecs, mode)
        self.node = node
        self.printable = str(name)
        self._appends: queue.Queue[tuple[bytes, Post] | None] | None = None
        self._sender: threading.Thread | None = None
        self._threads: list[threading.Thread] = []

    def append(self, data: bytes) -> Record:
        records = self.node.client.append(self.printable, [data])
        return _record(records[0], data)

    def append_async(self, data: bytes, post: Post) -> None:
        with self.lock:
            if self._appends is None:
                self._appends = queue.Queue()
                self._sender = threading.Thread(target=self._send, args=(self._appends,),
                                                name=f"libgdp-append-{self.printable[:8]}", daemon=True)
                self._sender.start()
            self._appends.put((data, post))

    def _send(self, jobs: queue.Queue[tuple[bytes, Post] | None]) -> None:
        while (job := jobs.get()) is not None:
            data, post = job
            try:
                record = self.append(data)
            except Exception as exc:  # noqa: BLE001 - reported as the request's event
                post(EVENT_FAILURE, status_of(exc), None)
            else:
                post(EVENT_CREATED, STATUS_OF_EVENT[EVENT_CREATED], record)

    def read(self, recno: int | None, ts: int | None) -> Record:
        self.check_readable()
        return _record(self.node.client.read(self.printable, recno=recno, ts=ts))

    def request(self, kind: int, start: int | None, ts: int | None, numrecs: int, post: Post,
                request: Request) -> None:
        self.check_readable()
        if kind == READ:
            self._read_async(start or 0, post, request)
            return
        if numrecs < 0:
            raise GdpError(NAK_BADOPT, "numrecs < 0")
        if kind != MULTIREAD and ts is None and (start or 0) <= 0:
            # "new records" and "the last N" mean as of this call: pin the start to a record
            # number now, so a record appended right after the call returns is not missed
            nrecs = int(self.node.client.info(self.printable).nrecs)
            start = max(1, nrecs + 1 + (start or 0))
        client = self.node.new_client()
        events = client.subscribe(self.printable, start or 0, numrecs, multiread=kind == MULTIREAD, start_ts=ts)
        first = None
        if kind == MULTIREAD:  # a snapshot answers at once: its errors are the call's
            try:
                first = next(events)
            except BaseException:
                client.close()
                raise
        request.cancel = client.close
        with self.lock:
            self.requests.append(request)
        thread = threading.Thread(target=self._stream, args=(client, events, first, post, request),
                                  name=f"libgdp-sub-{self.printable[:8]}", daemon=True)
        self._threads.append(thread)
        thread.start()

    def _stream(self, client: Any, events: Iterator[Any], first: Any, post: Post, request: Request) -> None:
        try:
            if first is not None:
                self._deliver(first, post)
                if first.type in FINAL_EVENTS:
                    return
            for message in events:
                self._deliver(message, post)
                if message.type in FINAL_EVENTS:
                    return
            if not request.cancelled:
                post(EVENT_SHUTDOWN, NAK_LOST_SUBSCR, None)
        except HoardError:
            if not request.cancelled:  # the node went away or the stream broke
                post(EVENT_SHUTDOWN, NAK_LOST_SUBSCR, None)
        finally:
            self.finish(request)
            client.close()

    def _deliver(self, message: Any, post: Post) -> None:
        record = _record(message.record) if message.type == EVENT_DATA or message.HasField("record") else None
        post(int(message.type), _event_status(message), record)

    def _read_async(self, recno: int, post: Post, request: Request) -> None:
        with self.lock:
            self.requests.append(request)

        def run() -> None:
            try:
                record = self.read(recno, None)
            except Exception as exc:  # noqa: BLE001 - the request's one event
                post(EVENT_FAILURE, status_of(exc), None)
            else:
                post(EVENT_DATA, STATUS_OF_EVENT[EVENT_DATA], record)
            finally:
                self.finish(request)

        thread = threading.Thread(target=run, name=f"libgdp-read-{self.printable[:8]}", daemon=True)
        self._threads.append(thread)
        thread.start()

    def metadata(self) -> list[tuple[int, bytes]]:
        info = self.node.client.info(self.printable)
        return [(int(e.id), bytes(e.value)) for e in info.metadata]

    def close(self) -> None:
        """Wait for queued appends (their events are delivered), then end every request."""
        with self.lock:
            jobs, sender = self._appends, self._sender
            self._appends = self._sender = None
        if jobs is not None and sender is not None:
            jobs.put(None)
            sender.join()
        self.unsubscribe(0, 0)
        for thread in self._threads:
            if thread is not threading.current_thread():
                thread.join(timeout=10)
