"""The Python side of every `storage_*` function of libstorage.h.

Each C function `storage_<name>` of the built library checks for a NULL callback, makes sure
the embedded interpreter runs, and calls `hoard_capi_<name>` here (an `extern "Python"`
function bound by `bind(ffi)` from the library's init code). These functions decode the C
arguments, find the context and call its node's `dispatch` face (context.py); they never let a Python
exception cross into C: a dispatch failure becomes RET_ERR plus a synchronous callback with
a "libstorage error: " message.

The int they return carries TAG so the C side can tell a real answer from the zero cffi
returns when Python itself failed (it then reports an internal error).
"""

from __future__ import annotations

import functools
import sys
import threading
import traceback
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

from hoard.capi.context import (
    RET_ERR,
    RET_OK,
    SYNC_PREFIX,
    Context,
    DispatchError,
    err_event,
    error_message,
    ok_chunk,
    ok_empty,
    ok_text,
)
from hoard.errors import HoardError
from hoard.node import Config, info
from hoard.node.dispatch import NodeDispatch

TAG = 0x4800
HANDLE_BASE = 0x5A17_0000  # ctx pointers are keys into _contexts, never addresses

_ffi: Any = None
_contexts: dict[int, Context] = {}
_destroyed: dict[int, Context] = {}  # kept so a call on a destroyed handle is serialised with its last callback
_contexts_lock = threading.Lock()
_next_handle = HANDLE_BASE


def _text(ptr: Any, what: str, optional: bool = False) -> str | None:
    if ptr == _ffi.NULL:
        if optional:
            return None
        raise DispatchError(f"{what} is NULL")
    try:
        return str(_ffi.string(ptr).decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise DispatchError(f"{what} is not valid UTF-8") from exc


class InvalidContext(DispatchError):
    def __init__(self, message: str, ctx: Context | None) -> None:
        super().__init__(message)
        self.ctx = ctx  # the destroyed context, if it was one: its callback lock still applies


def _context(ptr: Any) -> Context:
    handle = int(_ffi.cast("intptr_t", ptr))
    ctx = _contexts.get(handle)
    if ctx is None:
        if ptr == _ffi.NULL:
            raise InvalidContext("invalid context (NULL)", None)
        dead = _destroyed.get(handle)
        raise InvalidContext(f"invalid context ({'destroyed' if dead else 'unknown'})", dead)
    return ctx


def _fail(ctx: Context | None, callback: Any, user_data: Any, message: str) -> int:
    event = err_event(SYNC_PREFIX + message)
    if ctx is None or ctx.silenced:  # a destroyed context has no callbacks left to serialise with
        callback(event[0], event[1], event[2], user_data)
    else:
        ctx.call(callback, user_data, [event])
    return RET_ERR


def _entry(fn: Callable[..., int]) -> Callable[..., int]:
    """Wrap `fn(ctx, *args, callback, userData)`: resolve ctx, report dispatch errors, tag the result."""

    @functools.wraps(fn)
    def entry(ctx_ptr: Any, *rest: Any) -> int:
        callback, user_data = rest[-2], rest[-1]
        ctx = None
        try:
            ctx = _context(ctx_ptr)
            return TAG | fn(ctx, *rest)
        except InvalidContext as exc:
            return TAG | _fail(exc.ctx, callback, user_data, str(exc))
        except DispatchError as exc:
            return TAG | _fail(ctx, callback, user_data, str(exc))
        except HoardError as exc:
            return TAG | _fail(ctx, callback, user_data, exc.message)
        except Exception as exc:  # noqa: BLE001 - never unwind into C
            traceback.print_exc(file=sys.stderr)
            return TAG | _fail(ctx, callback, user_data, f"internal error: {type(exc).__name__}: {exc}")

    return entry


def _simple(op: Callable[[NodeDispatch], Future[Any]], result: Callable[[Any], list[Any]] = ok_text
            ) -> Callable[..., int]:
    """`storage_<op>(ctx, callback, userData)`: the node operation `op` (a `NodeDispatch` method)."""
    def fn(ctx: Context, callback: Any, user_data: Any) -> int:
        return ctx.submit(op, callback, user_data, result)

    fn.__name__ = op.__name__
    return _entry(fn)


def _one_text(op: Callable[[NodeDispatch, str], Future[Any]], what: str,
              result: Callable[[Any], list[Any]] = ok_text) -> Callable[..., int]:
    """`storage_<op>(ctx, text, callback, userData)`: `op` with one text argument (`what`)."""
    def fn(ctx: Context, ptr: Any, callback: Any, user_data: Any) -> int:
        text = _text(ptr, what) or ""
        return ctx.submit(lambda node: op(node, text), callback, user_data, result)

    fn.__name__ = op.__name__
    return _entry(fn)


# -- lifecycle -------------------------------------------------------------------------
def storage_new(config_ptr: Any, callback: Any, user_data: Any) -> int:
    """Returns a handle (> 0), or -1 after reporting the failure through the callback."""
    global _next_handle
    try:
        text = _text(config_ptr, "configJson")
        try:
            config = Config.from_json(text or "")
        except HoardError as exc:
            raise DispatchError(f"bad configJson: {exc.message}") from exc
        with _contexts_lock:
            _next_handle += 16
            handle = _next_handle
            _contexts[handle] = Context(config, _ffi, callback, user_data)
        return handle
    except DispatchError as exc:
        _fail(None, callback, user_data, str(exc))
    except Exception as exc:  # noqa: BLE001
        traceback.print_exc(file=sys.stderr)
        _fail(None, callback, user_data, f"internal error: {type(exc).__name__}: {exc}")
    return -1


@_entry
def storage_close(ctx: Context, callback: Any, user_data: Any) -> int:
    return ctx.close(callback, user_data)


def storage_destroy(ctx_ptr: Any, callback: Any = None, user_data: Any = None) -> int:
    """Synchronous, never calls back (both generations): closes the node if still open and frees
    the context before returning; RET_ERR for an unknown or destroyed context."""
    try:
        with _contexts_lock:
            ctx = _context(ctx_ptr)
            handle = int(_ffi.cast("intptr_t", ctx_ptr))
            del _contexts[handle]
            _destroyed[handle] = ctx
    except InvalidContext:
        return TAG | RET_ERR
    try:
        return TAG | ctx.destroy()
    except Exception:  # noqa: BLE001 - never unwind into C
        traceback.print_exc(file=sys.stderr)
        return TAG | RET_ERR


def storage_set_event_callback(ctx_ptr: Any, callback: Any, user_data: Any) -> int:
    ctx = _contexts.get(int(_ffi.cast("intptr_t", ctx_ptr)))
    if ctx is not None:
        ctx.event_callback = None if callback == _ffi.NULL else (callback, user_data)
    return TAG | RET_OK


# -- info (version and revision need no node and no worker) ----------------------------
# Seed generation: the callback runs here, on the calling thread, before the call returns.
@_entry
def storage_version(ctx: Context, callback: Any, user_data: Any) -> int:
    ctx.call(callback, user_data, ok_text(info.version()))
    return RET_OK


@_entry
def storage_revision(ctx: Context, callback: Any, user_data: Any) -> int:
    ctx.call(callback, user_data, ok_text(info.revision()))
    return RET_OK


# Current generation: `char *storage_version(void *ctx)`; the C wrapper strdup()s `buf`.
def _copy_text(text: str, buf: Any, cap: int) -> int:
    data = text.encode("utf-8")[: max(int(cap) - 1, 0)]
    _ffi.memmove(buf, data + b"\0", len(data) + 1)
    return TAG | RET_OK


def storage_version_current(ctx_ptr: Any, buf: Any, cap: int) -> int:
    return _copy_text(info.version(), buf, cap)


def storage_revision_current(ctx_ptr: Any, buf: Any, cap: int) -> int:
    return _copy_text(info.revision(), buf, cap)


NETWORK_NAME = "hoard"  # storage_network: the network a node belongs to; hoard has one


@_entry
def storage_network(ctx: Context, callback: Any, user_data: Any) -> int:
    ctx.live_node()
    ctx.post(callback, user_data, ok_text(NETWORK_NAME))
    return RET_OK


@_entry
def storage_get_metrics(ctx: Context, callback: Any, user_data: Any) -> int:
    """The node's metrics as JSON `{name: value}` (hoard.node.observability), read off the worker."""
    from hoard.node.observability import metrics_json

    node = ctx.live_node()

    def run() -> None:
        try:
            events = ok_text(metrics_json(node))
        except Exception as exc:  # noqa: BLE001 - reported through the callback
            events = [err_event(f"Failed to get metrics: {error_message(exc)}")]
        ctx.post(callback, user_data, events)

    threading.Thread(target=run, name=f"libstorage-ctx-{ctx.serial}-metrics", daemon=True).start()
    return RET_OK


@_entry
def storage_toggle_private_queries(ctx: Context, enabled: bool, callback: Any, user_data: Any) -> int:
    """As Logos without a mix network configured: disabling answers the previous setting
    ("false"), enabling fails."""
    ctx.live_node()
    if enabled:
        events = [err_event("Failed to toggle private queries: the mix network is not configured "
                            "(hoard has no mix network)")]
    else:
        events = ok_text("false")
    ctx.post(callback, user_data, events)
    return RET_OK


def _public(is_private: bool) -> None:
    if is_private:
        raise DispatchError("private (mix network) downloads are not supported: hoard has no mix network")


# -- network -----------------------------------------------------------------------------
@_entry
def storage_connect(ctx: Context, peer_ptr: Any, addrs_ptr: Any, count: int, callback: Any, user_data: Any) -> int:
    peer_id = _text(peer_ptr, "peerId")
    addrs: list[str] | None = None
    if count:
        if addrs_ptr == _ffi.NULL:
            raise DispatchError(f"peerAddresses is NULL but peerAddressesSize is {count}")
        addrs = [_text(addrs_ptr[i], f"peerAddresses[{i}]") or "" for i in range(count)]
    return ctx.submit(lambda node: node.connect(peer_id or "", addrs), callback, user_data, ok_empty)


@_entry
def storage_peer_debug(ctx: Context, peer_ptr: Any, callback: Any, user_data: Any) -> int:
    peer_id = _text(peer_ptr, "peerId") or ""
    return ctx.submit(lambda node: node.peer_debug(peer_id), callback, user_data)


@_entry
def storage_log_level(ctx: Context, level_ptr: Any, callback: Any, user_data: Any) -> int:
    level = _text(level_ptr, "logLevel") or ""
    return ctx.submit(lambda node: node.log_level(level), callback, user_data, ok_empty)


# -- uploads ---------------------------------------------------------------------------
@_entry
def storage_upload_init(ctx: Context, path_ptr: Any, chunk_size: int, callback: Any, user_data: Any) -> int:
    path = _text(path_ptr, "filepath") or ""
    return ctx.submit(lambda node: node.upload_init(path, int(chunk_size)), callback, user_data)


@_entry
def storage_upload_chunk(ctx: Context, session_ptr: Any, chunk_ptr: Any, n: int, callback: Any, user_data: Any) -> int:
    session = _text(session_ptr, "sessionId") or ""
    if chunk_ptr == _ffi.NULL and n:
        raise DispatchError(f"chunk is NULL but len is {n}")
    data = _ffi.buffer(chunk_ptr, n)[:] if n else b""  # copied: the caller may reuse its buffer at once
    return ctx.submit(lambda node: node.upload_chunk(session, data), callback, user_data, ok_empty)


@_entry
def storage_upload_file(ctx: Context, session_ptr: Any, callback: Any, user_data: Any) -> int:
    session = _text(session_ptr, "sessionId") or ""
    progress = ctx.count_progress(callback, user_data)
    return ctx.submit(lambda node: node.upload_file(session, progress), callback, user_data)


# -- downloads -------------------------------------------------------------------------
@_entry
def storage_download_init(ctx: Context, cid_ptr: Any, chunk_size: int, local: bool, callback: Any,
                          user_data: Any) -> int:
    cid = _text(cid_ptr, "cid") or ""
    return ctx.submit(lambda node: node.download_init(cid, int(chunk_size), bool(local)), callback, user_data)


@_entry
def storage_download_stream(ctx: Context, cid_ptr: Any, chunk_size: int, local: bool, path_ptr: Any, callback: Any,
                            user_data: Any) -> int:
    cid = _text(cid_ptr, "cid") or ""
    path = _text(path_ptr, "filepath", optional=True) or None
    progress = ctx.data_progress(callback, user_data)
    return ctx.submit(lambda node: node.download_stream(cid, path, int(chunk_size), bool(local), progress),
                      callback, user_data, ok_empty)


@_entry
def storage_download_init_current(ctx: Context, cid_ptr: Any, chunk_size: int, local: bool, is_private: bool,
                                  callback: Any, user_data: Any) -> int:
    _public(is_private)
    cid = _text(cid_ptr, "cid") or ""
    return ctx.submit(lambda node: node.download_init(cid, int(chunk_size), bool(local)), callback, user_data)


@_entry
def storage_download_stream_current(ctx: Context, cid_ptr: Any, chunk_size: int, local: bool, is_private: bool,
                                    path_ptr: Any, callback: Any, user_data: Any) -> int:
    _public(is_private)
    cid = _text(cid_ptr, "cid") or ""
    path = _text(path_ptr, "filepath", optional=True) or None
    progress = ctx.data_progress(callback, user_data)
    return ctx.submit(lambda node: node.download_stream(cid, path, int(chunk_size), bool(local), progress),
                      callback, user_data, ok_empty)


@_entry
def storage_download_manifest_current(ctx: Context, cid_ptr: Any, is_private: bool, callback: Any,
                                      user_data: Any) -> int:
    _public(is_private)
    cid = _text(cid_ptr, "cid") or ""
    return ctx.submit(lambda node: node.download_manifest(cid), callback, user_data)


EXPORTS: dict[str, Callable[..., int]] = {
    "new": storage_new,
    "start": _simple(NodeDispatch.start, ok_empty),
    "stop": _simple(NodeDispatch.stop, ok_empty),
    "close": storage_close,
    "destroy": storage_destroy,
    "version": storage_version,
    "revision": storage_revision,
    "repo": _simple(NodeDispatch.repo),
    "debug": _simple(NodeDispatch.debug),
    "spr": _simple(NodeDispatch.spr),
    "peer_id": _simple(NodeDispatch.peer_id),
    "peer_debug": storage_peer_debug,
    "log_level": storage_log_level,
    "connect": storage_connect,
    "upload_init": storage_upload_init,
    "upload_chunk": storage_upload_chunk,
    "upload_finalize": _one_text(NodeDispatch.upload_finalize, "sessionId"),
    "upload_cancel": _one_text(NodeDispatch.upload_cancel, "sessionId", ok_empty),
    "upload_file": storage_upload_file,
    "download_init": storage_download_init,
    "download_stream": storage_download_stream,
    "download_chunk": _one_text(NodeDispatch.download_chunk, "cid", ok_chunk),
    "download_cancel": _one_text(NodeDispatch.download_cancel, "cid", ok_empty),
    "download_manifest": _one_text(NodeDispatch.download_manifest, "cid"),
    "list": _simple(NodeDispatch.list),
    "space": _simple(NodeDispatch.space),
    "delete": _one_text(NodeDispatch.delete, "cid", ok_empty),
    "fetch": _one_text(NodeDispatch.fetch, "cid"),
    "exists": _one_text(NodeDispatch.exists, "cid"),
    "set_event_callback": storage_set_event_callback,
}


# The current generation (libstorage_current.h): the same, except for these.
EXPORTS_CURRENT: dict[str, Callable[..., int]] = {
    **EXPORTS,
    "version": storage_version_current,
    "revision": storage_revision_current,
    "network": storage_network,
    "get_metrics": storage_get_metrics,
    "toggle_private_queries": storage_toggle_private_queries,
    "download_init": storage_download_init_current,
    "download_stream": storage_download_stream_current,
    "download_manifest": storage_download_manifest_current,
}
ABI_EXPORTS = {"seed": EXPORTS, "current": EXPORTS_CURRENT}


def bind(ffi: Any, abi: str = "seed") -> None:
    """Install every `hoard_capi_<name>` extern "Python" function of the `abi` generation
    (called by the library's init code)."""
    global _ffi
    _ffi = ffi
    for name, fn in ABI_EXPORTS[abi].items():
        ffi.def_extern(name=f"hoard_capi_{name}")(fn)
