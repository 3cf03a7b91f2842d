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

Open information (GDP's `gdp_gcl_open_info_t`): `log_open(..., info=OpenInfo(...))` carries
the signing key, a callback that supplies one when it is needed, a passphrase callback for
encrypted key files, and whether the log's writer state (its secret key) is kept cached after
the last handle closes. How a writer key is found, in order (GDP doc §3.3, §5.1):

1. the key given (`signing_key=` or `OpenInfo.signing_key`);
2. the key cached for this log: a writable handle of it is open, or one was closed with
   `keep_in_cache` and has not been reclaimed;
3. `OpenInfo.signkey_cb(name, signkey_udata)` — invoked only when a key is required and none
   was given or cached;
4. the key search path (keys.py): `<printable name>.pem` in `keydir`, then in each directory
   of GDP's `swarm.gdp.crypto.key.path` (`key_path=` at construction); an encrypted file asks
   the passphrase callback (`OpenInfo.passphrase_cb`, else the service's `passphrase=`).

Without a key, opening "ao"/"ra" fails 403 (`SKEY_REQUIRED`). Caching: by default (GDP's)
the writer — key and chain head — is dropped when the log's last writable handle closes (with
its appends settled); with `keep_in_cache=True` it stays, and is reclaimed once unused for
`cache_ttl` seconds (checked lazily, on the next open or close: no cleanup thread).
"""

from __future__ import annotations

import os
import threading
import time
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Self

from hoard.errors import LogError, StateError
from hoard.logs import keys
from hoard.logs.events import Dispatcher, Event, EventQueue
from hoard.logs.host import LogBackend, LogHost
from hoard.logs.log import MODE_AO, MODE_RA, Callback, Log, _Writer, parse_mode
from hoard.logs.metadata import (
    CID,
    CTM,
    PUB,
    XID,
    Metadata,
    MetadataInput,
    default_creator,
    encode_pub,
    format_ctm,
    metadata_name,
)
from hoard.logs.names import LogName, parse_name
from hoard.logs.records import Signer
from hoard.logs.store import LogInfo
from hoard.store.base import BlockStore
from hoard.store.catalog import Catalog

__all__ = ["LogService", "OpenInfo", "SignkeyCallback"]

SignkeyCallback = Callable[[LogName, Any], "keys.SigningKeyInput | None"]
"""GDP's `signkey_cb(gname, signkey_udata, &skey)`: the log's name and the udata; returns the
key (any `SigningKeyInput`), or None for none (LogError 403 `SKEY_REQUIRED` then)."""


@dataclass
class OpenInfo:
    """GDP's `gdp_gcl_open_info_t`: what `log_open` may be told beyond a name and a mode.
    The `set_*` methods are GDP's names (`gdp_gcl_open_info_set_signing_key`, ...)."""

    signing_key: keys.SigningKeyInput | None = None
    signkey_cb: SignkeyCallback | None = None
    signkey_udata: Any = None
    keep_in_cache: bool = False
    passphrase_cb: keys.Passphrase | None = None

    def set_signing_key(self, key: keys.SigningKeyInput) -> OpenInfo:
        self.signing_key = key
        return self

    def set_signkey_cb(self, cb: SignkeyCallback | None, udata: Any = None) -> OpenInfo:
        if cb is not None and not callable(cb):
            raise LogError(f"signkey_cb must be callable: {cb!r}", status=400)
        self.signkey_cb, self.signkey_udata = cb, udata
        return self

    def set_caching(self, keep_in_cache: bool) -> OpenInfo:
        self.keep_in_cache = bool(keep_in_cache)
        return self


class LogService:
    """Logs hosted in `store`, writer keys under `keydir`. Thread-safe; close it when done.

    `clock()` returns the time in ns since the epoch (default `time.time_ns`); it stamps
    records and bounds how far ahead a record's timestamp may be. `host_options` go to
    `LogHost` (`max_batch`, `chunk`, `max_skew_ns`, `cache_bytes`).

    `key_path`: GDP's `swarm.gdp.crypto.key.path`, searched after `keydir` for a writer key
    (colon-separated text or a list of directories; None: GDP's default, keys.DEFAULT_KEY_PATH;
    "" or []: `keydir` only). `passphrase`: the passphrase (or callback) for encrypted key files
    when `OpenInfo` gives none. `cache_ttl`: seconds an unused `keep_in_cache` writer is kept.
    """

    def __init__(self, store: Catalog | BlockStore, keydir: str | Path, clock: Callable[[], int] = time.time_ns, *,
                 creator: str | None = None, remote: Callable[[LogName], LogBackend | None] | None = None,
                 key_path: str | Sequence[str | os.PathLike[str]] | None = None,
                 passphrase: keys.Passphrase | None = None, cache_ttl: float = 600.0,
                 **host_options: Any) -> None:
        self.clock = clock
        self.keydir = Path(keydir)
        self.key_path = keys.parse_key_path(key_path)
        self._passphrase = passphrase
        self._cache_ttl = float(cache_ttl)
        self._kept: dict[LogName, float] = {}  # keep_in_cache writers: last use (time.monotonic)
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
    def log_create(self, metadata: MetadataInput = None, *, name: str | LogName | None = None,
                   key_type: str = "ed25519", passphrase: bytes | str | None = None) -> Log:
        """Create a log here and return it open "ra".

        A new writer key — `key_type` "ed25519" (PUB keytype 4) or "ec" (GDP's default type:
        P-256, keytype 3, records signed as GDP signs them) — is generated and kept in
        `<keydir>/<printable name>.pem` (0600), encrypted with `passphrase` if one is given (as
        gcl-create encrypts it). The metadata gets, after the caller's entries, CTM (now) and
        CID (creator) unless given, and PUB (the new public key); PUB may not be given. Without
        `name` the log is named SHA-256(serialized metadata); with it, `parse_name(name)` and an
        XID entry holding `name`, as gcl-create does. 409 if the log exists.
        """
        self._check_open()
        md = Metadata(metadata)
        if PUB in md:
            raise LogError("PUB is set by log_create (it holds the new writer key)", status=400)
        key = keys.generate_key(key_type)
        if CTM not in md:
            md.add(CTM, format_ctm(self.clock()))
        if CID not in md:
            md.add(CID, self._creator or default_creator())
        public_key = Signer(key, md).public_key  # the metadata is only read when signing
        md.add(PUB, encode_pub(public_key))
        if name is None:
            log_name = metadata_name(md)
        else:
            log_name = parse_name(name)
            md.add(XID, name if isinstance(name, str) else str(log_name))
        tmp = keys.write_temp_key(self.keydir, key, passphrase)
        try:
            info = self.host.create(log_name, md)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        keys.write_key(self.keydir, log_name, tmp)
        return self._open(self.host, info, MODE_RA, Signer(key, md))

    def log_open(self, name: str | LogName, mode: str | int = "ra",
                 signing_key: keys.SigningKeyInput | None = None, *, info: OpenInfo | None = None) -> Log:
        """Open a log: mode "ro" (read), "ao" (append) or "ra" (both).

        Writing needs the secret key matching PUB, found as the module docstring says:
        `signing_key` (or `info.signing_key`: a PyNaCl or cryptography Ed25519 key, a
        cryptography EC key, a 32-byte Ed25519 seed, PEM bytes or a PEM path), the cached one,
        `info.signkey_cb`, then the key search path. Without one, opening "ao"/"ra" fails 403
        (`SKEY_REQUIRED`, as GDP's open does); a key that does not match PUB fails 403, as does
        an encrypted key file without its passphrase. 404 if no such log; 400 for a bad mode or
        name. `info` (`OpenInfo`) also sets `keep_in_cache`.
        """
        self._check_open()
        log_name = parse_name(name)
        bits = parse_mode(mode)
        backend, log_info = self._locate(log_name)
        info = info or OpenInfo()
        signer = None
        if bits & MODE_AO:
            signer = self._signer(log_name, log_info, signing_key if signing_key is not None else info.signing_key,
                                  info)
        log = self._open(backend, log_info, bits, signer)
        if bits & MODE_AO:
            with self._lock:
                if info.keep_in_cache:
                    self._kept[log_name] = time.monotonic()
                else:
                    self._kept.pop(log_name, None)
        return log

    def _signer(self, name: LogName, info: LogInfo, given: keys.SigningKeyInput | None,
                open_info: OpenInfo) -> Signer:
        """The signer for a writable open (the cached writer's, if there is one)."""
        passphrase = open_info.passphrase_cb if open_info.passphrase_cb is not None else self._passphrase
        if given is None:
            self._reclaim()
            with self._lock:
                cached = self._writers.get(name)
            if cached is not None:
                return cached.signer  # cached: no key needed, no callback asked
            if open_info.signkey_cb is not None:
                given = open_info.signkey_cb(name, open_info.signkey_udata)
        if given is not None:
            key = keys.coerce_signing_key(given, passphrase)
            where = "the given key"
        else:
            found = keys.find_key(self.keydir, name, path=self.key_path, passphrase=passphrase)
            if found is None:
                dirs = ", ".join(str(d) for d in keys.search_dirs(self.keydir, self.key_path))
                raise LogError(f"writing to log {name} needs its secret key (none given, no {name}.pem in {dirs})",
                               status=403, gdp_stat="SKEY_REQUIRED")
            key, where = found, "the key found for it"
        signer = Signer(key, info.metadata)
        if signer.public_key != info.public_key:
            raise LogError(f"{where} does not match the public key of log {name}",
                           status=403, gdp_stat="CRYPTO_SIGFAIL")
        return signer

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
        """A handle closed: drop its log's writer (the secret key) once no open handle uses it,
        unless it is kept in the cache (`keep_in_cache`: its last use is noted)."""
        with self._lock:
            self._logs.discard(log)
            writer = log._writer
            if writer is None or self._writers.get(log.name) is not writer:
                return
            assert writer is not None
            if any(other._writer is writer for other in self._logs):
                return
            if log.name in self._kept or writer.inflight:  # kept, or appends unsettled: reclaimed later
                self._kept[log.name] = time.monotonic()
            else:
                del self._writers[log.name]
        self._reclaim()

    def _reclaim(self) -> None:
        """Drop kept writers unused for `cache_ttl` seconds (with no open handle)."""
        now = time.monotonic()
        with self._lock:
            for name, last in list(self._kept.items()):
                if now - last < self._cache_ttl:
                    continue
                writer = self._writers.get(name)
                if writer is not None and (writer.inflight or any(other._writer is writer for other in self._logs)):
                    self._kept[name] = now  # in use again: it is not idle
                    continue
                del self._kept[name]
                self._writers.pop(name, None)

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

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
