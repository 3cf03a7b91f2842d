"""`LogService`: create and open logs, and read the event queue (GDP's library entry points).

A service hosts the logs of one BlockStore through its own `LogHost` (one service per store),
keeps writer keys in a key directory, and owns the callback thread and the event queue of
every handle it opens. Names follow the GDP doc without `gdp_gcl_`: `log_create`,
`log_open`, `event_next`.

Threads: the host's commit and delivery threads, plus one callback thread here
(`hoard-logs-callbacks`) on which every callback and every asynchronous read filter runs,
in order. A callback may call any Log method, including a synchronous `append`; it must not
wait in `event_next` for an event that only the callback thread could deliver.

Remote logs: `remote(name)` (a hook given at construction) is asked for a `LogBackend` when a
log is not hosted here; the node plugs its `/hoard/logs/1` client in there. `log_create`
always creates on this service's host.
"""

from __future__ import annotations

import threading
import time
import weakref
from collections.abc import Callable
from pathlib import Path
from typing import Any

import nacl.signing

from hoard.errors import LogError, StateError
from hoard.logs import keys
from hoard.logs.events import Dispatcher, Event, EventQueue
from hoard.logs.host import LogBackend, LogHost
from hoard.logs.log import MODE_AO, MODE_RA, Callback, Log, _Writer, parse_mode
from hoard.logs.metadata import (
    CID, CTM, PUB, XID, Metadata, MetadataInput, default_creator, encode_pub, format_ctm, metadata_name,
)
from hoard.logs.names import LogName, parse_name
from hoard.logs.records import Signer
from hoard.logs.store import LogInfo
from hoard.store.base import BlockStore

__all__ = ["LogService"]


class LogService:
    """Logs hosted in `store`, writer keys under `keydir`. Thread-safe; close it when done.

    `clock()` returns the time in ns since the epoch (default `time.time_ns`); it stamps
    records and bounds how far ahead a record's timestamp may be. `host_options` go to
    `LogHost` (`max_batch`, `chunk`, `max_skew_ns`, `cache_bytes`).
    """

    def __init__(self, store: BlockStore, keydir: str | Path, clock: Callable[[], int] = time.time_ns, *,
                 creator: str | None = None, remote: Callable[[LogName], LogBackend | None] | None = None,
                 **host_options: Any) -> None:
        self.clock = clock
        self.keydir = Path(keydir)
        self.host = LogHost(store, clock=clock, **host_options)
        self.events = EventQueue()
        self._dispatcher = Dispatcher()
        self._creator = creator
        self._remote = remote
        self._writers: dict[LogName, _Writer] = {}
        self._logs: weakref.WeakSet[Log] = weakref.WeakSet()
        self._lock = threading.Lock()
        self._closed = False

    def _check_open(self) -> None:
        if self._closed:
            raise StateError("the log service is closed")

    # -- create / open ------------------------------------------------------------
    def log_create(self, metadata: MetadataInput = None, *, name: str | LogName | None = None) -> Log:
        """Create a log here and return it open "ra".

        A new Ed25519 writer key is generated and kept in `<keydir>/<printable name>.pem`
        (0600). The metadata gets, after the caller's entries, CTM (now) and CID (creator)
        unless given, and PUB (the new public key); PUB may not be given. Without `name` the
        log is named SHA-256(serialized metadata); with it, `parse_name(name)` and an XID entry
        holding `name`, as gcl-create does. 409 if the log exists.
        """
        self._check_open()
        md = Metadata(metadata)
        if PUB in md:
            raise LogError("PUB is set by log_create (it holds the new writer key)", status=400)
        key = nacl.signing.SigningKey.generate()
        if CTM not in md:
            md.add(CTM, format_ctm(self.clock()))
        if CID not in md:
            md.add(CID, self._creator or default_creator())
        md.add(PUB, encode_pub(bytes(key.verify_key)))
        if name is None:
            log_name = metadata_name(md)
        else:
            log_name = parse_name(name)
            md.add(XID, name if isinstance(name, str) else str(log_name))
        tmp = keys.write_temp_key(self.keydir, key)
        try:
            info = self.host.create(log_name, md)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        keys.write_key(self.keydir, log_name, tmp)
        return self._open(self.host, info, MODE_RA, Signer(key))

    def log_open(self, name: str | LogName, mode: str | int = "ra",
                 signing_key: keys.SigningKeyInput | None = None) -> Log:
        """Open a log: mode "ro" (read), "ao" (append) or "ra" (both).

        Writing needs the secret key matching PUB: `signing_key` (a PyNaCl or cryptography
        Ed25519 key, a 32-byte seed, PEM bytes or a PEM path), else `<keydir>/<name>.pem`.
        Without one, opening "ao"/"ra" fails 403 (`SKEY_REQUIRED`, as GDP's open does); a key
        that does not match PUB fails 403. 404 if no such log; 400 for a bad mode or name.
        """
        self._check_open()
        log_name = parse_name(name)
        bits = parse_mode(mode)
        backend, info = self._locate(log_name)
        signer = None
        if bits & MODE_AO:
            if signing_key is not None:
                key = keys.coerce_signing_key(signing_key)
            else:
                key = keys.find_key(self.keydir, log_name)
            if key is None:
                raise LogError(f"writing to log {log_name} needs its secret key (none given, none in {self.keydir})",
                               status=403, gdp_stat="SKEY_REQUIRED")
            if bytes(key.verify_key) != info.public_key:
                raise LogError(f"the signing key does not match the public key of log {log_name}",
                               status=403, gdp_stat="CRYPTO_SIGFAIL")
            signer = Signer(key)
        return self._open(backend, info, bits, signer)

    def _locate(self, name: LogName) -> tuple[LogBackend, LogInfo]:
        try:
            return self.host, self.host.open(name)
        except LogError as exc:
            if exc.code != 404 or self._remote is None:
                raise
            backend = self._remote(name)
            if backend is None:
                raise
            return backend, backend.open(name)

    def _open(self, backend: LogBackend, info: LogInfo, mode: int, signer: Signer | None) -> Log:
        writer = None
        if signer is not None:
            with self._lock:
                writer = self._writers.get(info.name)
                if writer is None:
                    writer = self._writers[info.name] = _Writer(signer, info.tail)
        log = Log(self, backend, info, mode, writer)
        with self._lock:
            self._logs.add(log)
        return log

    def _closed_log(self, log: Log) -> None:
        with self._lock:
            self._logs.discard(log)

    # -- events -------------------------------------------------------------------
    def event_next(self, log: Log | None = None, timeout: float | None = None) -> Event | None:
        """The next event of a request made without a callback (of `log` only, if given).
        `timeout` is in seconds from now (None: wait forever); None when it expires, or once the
        service is closed and no event is left."""
        return self.events.next(log, timeout)

    def _deliver(self, callback: Callback | None, event: Event) -> None:
        """On the callback thread: to the request's callback, else to the queue."""
        if callback is None:
            self.events.put(event)
        else:
            callback(event)

    def _dispatch(self, callback: Callback | None, event: Event) -> None:
        self._dispatcher.post(lambda: self._deliver(callback, event))

    # -- close --------------------------------------------------------------------
    def close(self) -> None:
        """Commit and acknowledge queued appends, end every subscription with EVENT_SHUTDOWN,
        run the remaining callbacks, stop the threads. Idempotent. The BlockStore stays open."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        self.host.close()
        self._dispatcher.close()
        self.events.close()

    def __enter__(self) -> LogService:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
