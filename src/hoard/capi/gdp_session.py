"""What `gdp_init` opens for libgdp: a node, and handles of its logs.

`gdp_init(NULL)` opens a `hoard.Node` on the data dir the `hoard` CLI would use
($HOARD_DATA_DIR, else data-dir of the $HOARD_CONFIG file, else ./hoard-data), not started: the
logs it hosts, as the CLI's embedded node. Logs are created with the node's `logs.create` and
opened with `node.logs.open(..., info=)` (GDP's open information), so the node's worker, keys,
quota and hosting checks are the same as for every other frontend.

`gdp_init("host:port")` attaches to a running node through its REST API with the client the
CLI uses (`hoard.api.client.NodeClient`: `client.logs` has `node.logs`'s methods and returns
`RemoteLog`s with `Log`'s). The node holds the keys and signs.

Either way a `LogHandle` wraps a `Log` or `RemoteLog`; gdp_exports.py turns C calls into its
methods, and results and events back into C.
"""

from __future__ import annotations

import getpass
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hoard.capi.gdp_status import (
    ACK_CONTENT,
    ACK_CREATED,
    ACK_DELETED,
    ACK_SUCCESS,
    BAD_IOMODE,
    NAK_BADOPT,
    NAK_LOST_SUBSCR,
    NAK_REC_MISSING,
    SKEY_REQUIRED,
    GdpError,
    status_of,
)
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
from hoard.logs.metadata import Metadata
from hoard.logs.names import LogName

if TYPE_CHECKING:
    from hoard.api.client import NodeClient
    from hoard.api.client_logs import RemoteLog
    from hoard.logs import Log
    from hoard.node import Config, Node

SUBSCRIBE, MULTIREAD, READ = 0, 1, 2  # the request kinds of gdp_lib.c
MODES = {1: "ro", 2: "ao", 3: "ra"}
MD_SHA256 = 3  # EP_CRYPTO_MD_SHA256: the digest of every hoard log's PUB

STATUS_OF_EVENT = {EVENT_DATA: ACK_CONTENT, EVENT_EOS: ACK_DELETED, EVENT_SHUTDOWN: NAK_LOST_SUBSCR,
                   EVENT_CREATED: ACK_CREATED, EVENT_SUCCESS: ACK_SUCCESS, EVENT_MISSING: NAK_REC_MISSING}
FINAL_EVENTS = (EVENT_EOS, EVENT_SHUTDOWN)


@dataclass(frozen=True)
class Record:
    """A record as C sees it: number, commit time (ns since the epoch), data, signature."""

    recno: int
    ts: int
    data: bytes
    sig: bytes = b""

    @property
    def mdalg(self) -> int:
        return MD_SHA256 if self.sig else 0


Post = Callable[[int, int, "Record | None"], None]
"""Deliver one event of a request to C: (GDP event type, EP_STAT code, record or None)."""


@dataclass
class Request:
    """A subscribe, multiread or read_async of a handle, keyed by its C (callback, udata)."""

    cb: int
    udata: int
    cancel: Callable[[], None] = lambda: None
    cancelled: bool = False


@dataclass
class OpenSpec:
    """What a gdp_gcl_open_info_t said: a key (bytes and EP_CRYPTO_KEYFORM), the signkey
    callback (already bound to C), and keep_in_cache."""

    key: bytes | None = None
    keyform: int = 0
    signkey_cb: Callable[[LogName], Any] | None = None  # -> a key (see `signing_key`) or None
    keep_in_cache: bool = False


KEYFORM_DER = 2


def signing_key(data: bytes, keyform: int) -> Any:
    """A key from an EP_CRYPTO_KEY's bytes: PEM as is (hoard reads it, encrypted ones asking for
    the passphrase), DER through cryptography."""
    if keyform == KEYFORM_DER or not data.lstrip().startswith(b"-----"):
        from cryptography.hazmat.primitives.serialization import load_der_private_key

        try:
            return load_der_private_key(data, password=None)
        except (ValueError, TypeError) as exc:
            raise GdpError(status_of(_bad_key(str(exc)))) from exc
    return data


def _bad_key(reason: str) -> Exception:
    from hoard.errors import LogError

    return LogError(f"cannot read the signing key: {reason}", status=403, gdp_stat="SKEY_REQUIRED")


def ask_passphrase(where: str) -> bytes | None:
    """GDP prompts the (human) user for an encrypted key's passphrase: on the process's terminal,
    if it has one; else there is none to give (SKEY_REQUIRED)."""
    try:
        os.close(os.open("/dev/tty", os.O_RDWR | os.O_NOCTTY))
    except OSError:
        return None
    return getpass.getpass(f"passphrase for {where}: ").encode()


class Handle:
    """A GCL handle. `lock` serialises the events delivered to C with closing and unsubscribing:
    once `closed` or a request's `cancelled` is set under it, no further event of it reaches C."""

    def __init__(self, name: LogName, nrecs: int, mode: int) -> None:
        self.name = name
        self.nrecs = nrecs
        self.mode = mode
        self.lock = threading.RLock()
        self.closed = False
        self.requests: list[Request] = []

    def check_readable(self) -> None:
        if not self.mode & 1:
            raise GdpError(BAD_IOMODE, "this handle is append-only")

    def finish(self, request: Request) -> None:
        with self.lock:
            if request in self.requests:
                self.requests.remove(request)

    def unsubscribe(self, cb: int, udata: int) -> int:
        """End the requests matching (cb, udata), 0 being a wildcard; no event of them follows."""
        with self.lock:
            matched = [r for r in self.requests if (cb == 0 or r.cb == cb) and (udata == 0 or r.udata == udata)]
            for request in matched:
                request.cancelled = True
                self.requests.remove(request)
        for request in matched:
            request.cancel()
        return len(matched)

    def mark_closed(self) -> None:
        with self.lock:
            self.closed = True
            requests, self.requests = self.requests, []
            for request in requests:
                request.cancelled = True

    # -- implemented by the embedded and remote handles ---------------------------------
    def append(self, data: bytes) -> Record:
        raise NotImplementedError

    def append_async(self, data: bytes, post: Post) -> None:
        raise NotImplementedError

    def read(self, recno: int | None, ts: int | None) -> Record:
        raise NotImplementedError

    def request(self, kind: int, start: int | None, ts: int | None, numrecs: int, post: Post,
                request: Request) -> None:
        raise NotImplementedError

    def metadata(self) -> list[tuple[int, bytes]]:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError


def _record(datum: Any) -> Record:
    return Record(datum.recno, datum.ts, bytes(datum.data), bytes(datum.sig))


class LogHandle(Handle):
    """A `hoard.logs.Log` of the embedded node, or a `RemoteLog` of the attached one (same methods).

    `pin_start`: turn a subscription's relative start (0: new records, -N: the last N) into a
    record number when the call is made. A remote subscription is set up by a request that may
    reach the node after the call returned; pinned, a record appended in between is not missed.
    """

    def __init__(self, log: Log | RemoteLog, mode: int, pin_start: bool = False) -> None:
        super().__init__(log.name, log.nrecs, mode)
        self.log = log
        self.pin_start = pin_start

    def append(self, data: bytes) -> Record:
        return _record(self.log.append(data))

    def append_async(self, data: bytes, post: Post) -> None:
        def done(event: Event) -> None:
            if event.type == EVENT_CREATED and event.datum is not None:
                post(EVENT_CREATED, ACK_CREATED, _record(event.datum))
            else:
                post(EVENT_FAILURE, _event_status(event), None)

        self.log.append_async(data, done)

    def read(self, recno: int | None, ts: int | None) -> Record:
        self.check_readable()
        return _record(self.log.read_by_ts(ts) if ts is not None else self.log.read_by_recno(recno or 0))

    def request(self, kind: int, start: int | None, ts: int | None, numrecs: int, post: Post,
                request: Request) -> None:
        self.check_readable()
        if kind != READ and numrecs < 0:  # GDP's "4.02 bad option", before anything is asked
            raise GdpError(NAK_BADOPT, "numrecs < 0")

        def deliver(event: Event) -> None:
            post(event.type, _event_status(event), None if event.datum is None else _record(event.datum))
            if kind == READ or event.type in FINAL_EVENTS:
                self.finish(request)

        log = self.log
        def cancel() -> None:
            log.unsubscribe(deliver)

        request.cancel = cancel
        with self.lock:
            self.requests.append(request)
        try:
            if kind == READ:
                log.read_async(start or 0, deliver)
            elif kind == SUBSCRIBE:
                if ts is None and self.pin_start and (start or 0) <= 0:
                    start = max(1, log.nrecs + 1 + (start or 0))
                if ts is not None:
                    log.subscribe_by_ts(ts, numrecs, deliver)
                else:
                    log.subscribe_by_recno(start or 0, numrecs, deliver)
            elif ts is not None:
                log.multiread_by_ts(ts, numrecs, deliver)
            else:
                log.multiread(start or 0, numrecs, deliver)
        except BaseException:
            self.finish(request)
            raise

    def metadata(self) -> list[tuple[int, bytes]]:
        return list(self.log.metadata)

    def close(self) -> None:
        self.log.close()


def _event_status(event: Event) -> int:
    if event.type in (EVENT_FAILURE, EVENT_MISSING) and event.error is not None:
        return NAK_REC_MISSING if event.type == EVENT_MISSING else status_of(event.error)
    return STATUS_OF_EVENT.get(event.type, NAK_BADOPT if event.type == EVENT_FAILURE else ACK_SUCCESS)


def node_config() -> Config:
    """The config the `hoard` CLI uses without options: $HOARD_CONFIG's file, data-dir from
    $HOARD_DATA_DIR (default ./hoard-data)."""
    from hoard.node import Config

    path = os.environ.get("HOARD_CONFIG")
    config = Config.from_file(path) if path else Config()
    data_dir = os.environ.get("HOARD_DATA_DIR")
    return Config.from_dict({"data-dir": data_dir}, config) if data_dir else config


class Embedded:
    """gdp_init(NULL): a node of our own on the CLI's data dir."""

    def __init__(self) -> None:
        from hoard.node import Node

        self.node: Node = Node(node_config())

    def describe(self) -> str:
        return f"embedded node on {Path(self.node.config.data_dir).resolve()}"

    def create(self, name: LogName | None, metadata: bytes) -> Handle:
        entries = list(Metadata.parse(metadata)) if metadata else None
        log = self.node.logs.create(entries, None if name is None else str(name))
        return LogHandle(log, 3)

    def open(self, name: LogName, mode: int, spec: OpenSpec) -> Handle:
        from hoard.logs.service import OpenInfo

        info = OpenInfo(passphrase_cb=ask_passphrase).set_caching(spec.keep_in_cache)
        if spec.key is not None:
            info.set_signing_key(signing_key(spec.key, spec.keyform))
        if spec.signkey_cb is not None:
            callback = spec.signkey_cb
            info.set_signkey_cb(lambda log_name, _udata: callback(log_name))
        return LogHandle(self.node.logs.open(name, MODES[mode], info=info), mode)

    def close(self) -> None:
        self.node.close()


class Attached:
    """gdp_init("host:port"): the running node whose REST API is there (`NodeClient`, with the
    CLI's token from $HOARD_CONFIG). The node signs: a writable open needs it to hold the log's
    key, and an open info's key and callback are not sent to it."""

    def __init__(self, address: str) -> None:
        from hoard.api.auth import load_token
        from hoard.api.client import NodeClient

        self.address = address
        self.client: NodeClient = NodeClient(address, token=load_token(node_config()))
        try:
            self.client.logs.list()  # reachable, and the token (if any) accepted
        except BaseException:
            self.client.close()
            raise

    def describe(self) -> str:
        return f"node at {self.address}"

    def create(self, name: LogName | None, metadata: bytes) -> Handle:
        entries = list(Metadata.parse(metadata)) if metadata else None
        log = self.client.logs.create(entries, None if name is None else str(name))
        return LogHandle(log, 3, pin_start=True)

    def open(self, name: LogName, mode: int, spec: OpenSpec) -> Handle:
        if mode & 2 and not self.client.logs.writable(name):
            raise GdpError(SKEY_REQUIRED, f"the node at {self.address} does not hold the key of log {name}")
        return LogHandle(self.client.logs.open(name, MODES[mode]), mode, pin_start=True)

    def close(self) -> None:
        self.client.close()
