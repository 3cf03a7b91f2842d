"""The Python side of libgdp's `hoard_gdp_*` calls (see gdp_lib.c, which makes them).

Each function decodes its C arguments, runs the operation on the session `gdp_init` opened
(gdp_session.py: an embedded node, or a running one over its REST API), and stores an EP_STAT code
in its last argument. It returns TAG when it ran: the C side reports GDP_STAT_INTERNAL_ERROR for
anything else (cffi's 0 when Python itself failed). No Python exception crosses into C.

Results go back into C structures through gdp_lib.c's helpers (`hoard_gdp_fill` for a datum,
`hoard_gdp_post` for an event, `gdp_gclmd_add`), called with the GIL released, so an
application callback run from `hoard_gdp_post` may call libgdp again.
"""

from __future__ import annotations

import functools
import hashlib
import itertools
import sys
import threading
from collections.abc import Callable
from typing import Any

from hoard.capi.gdp_session import Attached, Embedded, Handle, OpenSpec, Post, Record, Request, signing_key
from hoard.capi.gdp_status import NOT_OPEN, OK, GdpError, is_ok, status_of
from hoard.errors import HoardError
from hoard.logs.names import LogName, parse_name

TAG = 0x4744
NS = 1_000_000_000

_ffi: Any = None
_lib: Any = None
_session: Any = None  # Embedded | Attached, once gdp_init succeeded
_handles: dict[int, Handle] = {}
_lock = threading.Lock()
_ids = itertools.count(1)


def _entry(fn: Callable[..., int | None]) -> Callable[..., int]:
    """Wrap `fn(*args)` (all but the trailing `uint32_t *stat`): store its status, return TAG."""

    @functools.wraps(fn)
    def entry(*args: Any) -> int:
        stat = args[-1]
        try:
            code = fn(*args[:-1])
            stat[0] = OK if code is None else code
        except BaseException as exc:  # noqa: BLE001 - never unwind into C
            stat[0] = status_of(exc)
        return TAG

    return entry


def _session_or_fail() -> Any:
    if _session is None:
        raise GdpError(NOT_OPEN, "gdp_init has not been called")
    return _session


def _handle(handle: int) -> Handle:
    found = _handles.get(int(handle))
    if found is None:
        raise GdpError(NOT_OPEN, f"no open GCL handle {handle}")
    return found


def _name(ptr: Any) -> LogName:
    return LogName(bytes(_ffi.buffer(ptr, 32)))


def _put_name(name: LogName, out: Any) -> None:
    _ffi.memmove(out, bytes(name), 32)


def _data(ptr: Any, length: int) -> bytes:
    return bytes(_ffi.buffer(ptr, length)) if length else b""


def _fill(datum: Any, record: Record, with_data: bool = True) -> None:
    sec, nsec = divmod(record.ts, NS)
    data = record.data if with_data else b""
    _lib.hoard_gdp_fill(datum, record.recno, sec, nsec, _ffi.from_buffer("uint8_t[]", data), len(data),
                        _ffi.from_buffer("uint8_t[]", record.sig), len(record.sig), record.mdalg)


def _register(handle: Handle, name_out: Any, handle_out: Any, nrecs_out: Any) -> None:
    with _lock:
        key = next(_ids)
        _handles[key] = handle
    _put_name(handle.name, name_out)
    handle_out[0] = key
    nrecs_out[0] = handle.nrecs


def _poster(handle: Handle, gcl: Any, cb: Any, udata: Any, request: Request | None) -> Post:
    """Deliver a request's events to C, unless its handle closed or the request was cancelled."""
    null = _ffi.NULL

    def post(event_type: int, code: int, record: Record | None) -> None:
        with handle.lock:
            if handle.closed or (request is not None and request.cancelled):
                return
            if record is None:
                _lib.hoard_gdp_post(gcl, event_type, code, 0, 0, 0, 0, null, 0, null, 0, 0, cb, udata)
                return
            sec, nsec = divmod(record.ts, NS)
            _lib.hoard_gdp_post(gcl, event_type, code, 1, record.recno, sec, nsec,
                                _ffi.from_buffer("uint8_t[]", record.data), len(record.data),
                                _ffi.from_buffer("uint8_t[]", record.sig), len(record.sig), record.mdalg, cb, udata)

    return post


# -- the hoard_gdp_* functions ------------------------------------------------------------
@_entry
def hoard_gdp_init(addr: Any) -> int:
    global _session
    with _lock:
        if _session is None:
            try:
                if addr == _ffi.NULL:
                    _session = Embedded()
                else:
                    _session = Attached(_ffi.string(addr).decode("utf-8"))
            except HoardError as exc:  # GDP's library says why it cannot start; so do we
                print(f"libgdp: gdp_init: {exc.message}", file=sys.stderr, flush=True)
                raise
    return OK


@_entry
def hoard_gdp_parse_name(ext: Any, out: Any) -> int:
    raw = _ffi.string(ext)
    try:
        name = parse_name(raw.decode("utf-8"))
    except UnicodeDecodeError:  # not text: named by the SHA-256 of its bytes, as any other string
        name = LogName(hashlib.sha256(raw).digest())
    _put_name(name, out)
    return OK


@_entry
def hoard_gdp_create(name_ptr: Any, md: Any, mdlen: int, name_out: Any, handle_out: Any, nrecs_out: Any) -> int:
    session = _session_or_fail()
    name = None if name_ptr == _ffi.NULL else _name(name_ptr)
    _register(session.create(name, _data(md, mdlen)), name_out, handle_out, nrecs_out)
    return OK


def _open_spec(info: Any) -> OpenSpec:
    spec = OpenSpec()
    if info == _ffi.NULL:
        return spec
    size, form = _ffi.new("size_t *"), _ffi.new("int *")
    key = _lib.hoard_gdp_info_key(info, size, form)
    if key != _ffi.NULL:
        spec.key, spec.keyform = _data(key, size[0]), int(form[0])
    flags = int(_lib.hoard_gdp_info_flags(info))
    spec.keep_in_cache = bool(flags & 2)
    if flags & 1:
        def signkey(name: LogName) -> Any:  # runs during gdp_gcl_open, while `info` is valid
            out = _ffi.new("EP_CRYPTO_KEY **")
            code = int(_lib.hoard_gdp_call_signkey_cb(info, _ffi.from_buffer("uint8_t[]", bytes(name)), out))
            if not is_ok(code):
                raise GdpError(code, "signkey_cb failed")
            if out[0] == _ffi.NULL:
                return None
            try:
                data = _lib.hoard_gdp_key_data(out[0], size, form)
                return signing_key(_data(data, size[0]), int(form[0]))
            finally:
                _lib.ep_crypto_key_free(out[0])  # the callback handed it over

        spec.signkey_cb = signkey
    return spec


@_entry
def hoard_gdp_open(name_ptr: Any, mode: int, info: Any, name_out: Any, handle_out: Any, nrecs_out: Any) -> int:
    session = _session_or_fail()
    _register(session.open(_name(name_ptr), int(mode), _open_spec(info)), name_out, handle_out, nrecs_out)
    return OK


@_entry
def hoard_gdp_metadata(handle: int, gmd: Any) -> int:
    for ident, value in _handle(handle).metadata():
        code = _lib.gdp_gclmd_add(gmd, ident, len(value), _ffi.from_buffer("uint8_t[]", value)).code
        if not is_ok(code):
            return int(code)
    return OK


@_entry
def hoard_gdp_close(handle: int) -> int:
    with _lock:
        found = _handles.pop(int(handle), None)
    if found is None:
        raise GdpError(NOT_OPEN, f"no open GCL handle {handle}")
    try:
        found.close()
    finally:
        found.mark_closed()
    return OK


@_entry
def hoard_gdp_append(handle: int, data: Any, length: int, datum: Any) -> int:
    record = _handle(handle).append(_data(data, length))
    _fill(datum, record, with_data=False)  # the datum's data was sent (its buffer is drained)
    return OK


@_entry
def hoard_gdp_append_async(handle: int, gcl: Any, data: Any, length: int, cb: Any, udata: Any) -> int:
    found = _handle(handle)
    found.append_async(_data(data, length), _poster(found, gcl, cb, udata, None))
    return OK


@_entry
def hoard_gdp_read(handle: int, by_ts: int, recno: int, sec: int, nsec: int, datum: Any) -> int:
    found = _handle(handle)
    record = found.read(None, int(sec) * NS + int(nsec)) if by_ts else found.read(int(recno), None)
    _fill(datum, record)
    return OK


@_entry
def hoard_gdp_request(handle: int, gcl: Any, kind: int, by_ts: int, start: int, sec: int, nsec: int, numrecs: int,
                      cb: Any, udata: Any) -> int:
    found = _handle(handle)
    request = Request(int(_ffi.cast("intptr_t", cb)), int(_ffi.cast("intptr_t", udata)))
    ts = int(sec) * NS + int(nsec) if by_ts else None
    found.request(int(kind), None if by_ts else int(start), ts, int(numrecs), _poster(found, gcl, cb, udata, request),
                  request)
    return OK


@_entry
def hoard_gdp_unsubscribe(handle: int, cb: Any, udata: Any) -> int:
    _handle(handle).unsubscribe(int(_ffi.cast("intptr_t", cb)), int(_ffi.cast("intptr_t", udata)))
    return OK


def hoard_gdp_shutdown() -> int:
    """At exit: close what is still open (handles, then the node or connection)."""
    global _session
    with _lock:
        handles = list(_handles.values())
        _handles.clear()
        session, _session = _session, None
    try:
        for handle in handles:
            try:
                handle.close()
            finally:
                handle.mark_closed()
        if session is not None:
            session.close()
    except BaseException as exc:  # noqa: BLE001 - reported, never unwound into C
        status_of(exc)
    return TAG


EXPORTS: dict[str, Callable[..., int]] = {
    "init": hoard_gdp_init,
    "parse_name": hoard_gdp_parse_name,
    "create": hoard_gdp_create,
    "open": hoard_gdp_open,
    "metadata": hoard_gdp_metadata,
    "close": hoard_gdp_close,
    "append": hoard_gdp_append,
    "append_async": hoard_gdp_append_async,
    "read": hoard_gdp_read,
    "request": hoard_gdp_request,
    "unsubscribe": hoard_gdp_unsubscribe,
    "shutdown": hoard_gdp_shutdown,
}


def bind(ffi: Any, lib: Any) -> None:
    """Attach the functions above to the library's extern "Python" declarations (called by
    the library's init code)."""
    global _ffi, _lib
    _ffi, _lib = ffi, lib
    for name, fn in EXPORTS.items():
        ffi.def_extern(name=f"hoard_gdp_{name}", error=0)(fn)
