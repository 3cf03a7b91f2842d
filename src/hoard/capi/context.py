"""One C context: a hoard `Node`, and the rules for calling the application back.

Requests are dispatched through the node's typed `dispatch` face (`node.dispatch.upload_init(...)`
returns the worker's future at once): the same operations every other frontend calls.
Callbacks run **on the node's worker thread** (the trio loop that runs the requests), as in
Logos: the final callback from the future's done-callback (which the worker runs when the
request finishes), download chunks from the download loop itself, and upload-file progress
(reported by a hashing thread) hopped onto the worker with `TrioToken.run_sync_soon`, which
keeps it ahead of the request's completion. Hence, per context:

  * callbacks never overlap, and come in the order their events happened; each request gets
    its RET_PROGRESS callbacks, then exactly one final callback;
  * a callback never runs on the thread that made the call, once the call has returned;
  * a slow callback holds up the node (Logos: "callbacks must not block"); for downloads that
    is the backpressure.

When the node has no worker (its creation failed, or it was closed), the callbacks still
possible (close, destroy, version, revision) run on a short-lived thread of the context.
A dispatch failure (bad argument, closed node) is reported synchronously: the callback is
called on the caller's thread before the function returns RET_ERR, as Logos does. Every
callback is made holding the context's callback lock, so even those never overlap another.
"""

from __future__ import annotations

import concurrent.futures
import itertools
import json
import signal
import sys
import threading
import traceback
from collections.abc import Callable, Iterable
from functools import partial
from typing import Any

import trio

from hoard.api import shapes
from hoard.errors import HoardError
from hoard.node import Config, Node
from hoard.node.dispatch import NodeDispatch

RET_OK, RET_ERR, RET_MISSING_CALLBACK, RET_PROGRESS = 0, 1, 2, 3
SYNC_PREFIX = "libstorage error: "

Event = tuple[int, "bytes | None", int]  # (callerRet, msg, len)


class DispatchError(Exception):
    """A request that could not be dispatched: reported synchronously, prefixed SYNC_PREFIX."""


def error_message(exc: BaseException) -> str:
    if isinstance(exc, HoardError):
        return exc.message
    if isinstance(exc, concurrent.futures.CancelledError):
        return "request cancelled"
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def ok_text(value: Any) -> list[Event]:
    """The usual final event: RET_OK with a text result ("" for None, the Logos JSON of a
    result object or list (hoard.api.shapes), the text form of a CID or peer ID)."""
    value = shapes.to_json(value)
    if value is None:
        data = b""
    elif isinstance(value, bool):
        data = b"true" if value else b"false"
    elif isinstance(value, (dict, list)):
        data = json.dumps(value, separators=(",", ":")).encode()
    else:
        data = str(value).encode()
    return [(RET_OK, data, len(data))]


def ok_empty(_value: Any) -> list[Event]:
    return [(RET_OK, b"", 0)]


def ok_chunk(value: bytes) -> list[Event]:
    """download_chunk: the bytes as one RET_PROGRESS, then RET_OK ""; at EOF only RET_OK ""."""
    events: list[Event] = [(RET_PROGRESS, value, len(value))] if value else []
    return events + [(RET_OK, b"", 0)]


def err_event(message: str) -> Event:
    data = message.encode("utf-8", "replace")
    return (RET_ERR, data or None, len(data))


_serial = itertools.count(1)


class Context:
    """What a `void *ctx` stands for. Creating one starts creating its node in the background."""

    def __init__(self, config: Config, ffi: Any, callback: Any, user_data: Any) -> None:
        self.ffi = ffi
        self.serial = next(_serial)
        self.node: Node | None = None
        self.failure: str | None = None
        self.ready = threading.Event()
        self.event_callback: tuple[Any, Any] | None = None  # storage_set_event_callback (reserved)
        self.silenced = False  # set by destroy: no callback after it returned
        self._lock = threading.RLock()  # held while a callback of this context runs
        self._token: trio.lowlevel.TrioToken | None = None
        self._worker_ident: int | None = None
        threading.Thread(target=self._create, args=(config, callback, user_data),
                         name=f"libstorage-ctx-{self.serial}-new", daemon=True).start()

    def _create(self, config: Config, callback: Any, user_data: Any) -> None:
        async def worker_handle() -> tuple[trio.lowlevel.TrioToken, int]:
            return trio.lowlevel.current_trio_token(), threading.get_ident()

        # The embedded interpreter installs no signal handlers, so SIGPIPE keeps its default
        # action (terminate) in a C program: a write to a connection the peer closed would
        # kill the application. Block it in this thread; the node's worker and the threads it
        # starts inherit the mask, so their writes fail with EPIPE (BrokenPipeError) instead.
        # The application's own threads and signal dispositions are left alone.
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGPIPE})
        try:
            node = Node(config)
            try:  # the worker's identity and loop token, learnt on the worker itself
                token, ident = node.components.context.worker.submit(worker_handle).result()
            except BaseException:
                node.close()
                raise
        except BaseException as exc:  # noqa: BLE001 - reported through the creation callback
            self.failure = error_message(exc)
            self.ready.set()
            self.call(callback, user_data, [err_event(f"Failed to create node: {self.failure}")])
            return
        self._token, self._worker_ident = token, ident
        self.node = node
        self.post(callback, user_data, [(RET_OK, b"", 0)])  # queued ahead of any request
        self.ready.set()

    # -- delivering callbacks ------------------------------------------------------
    def call(self, callback: Any, user_data: Any, events: Iterable[Event]) -> None:
        """Invoke the C callback for each event, here, holding the context's callback lock."""
        null = self.ffi.NULL
        with self._lock:
            if self.silenced:  # destroyed: the application may have freed userData
                return
            for ret, msg, n in events:
                callback(ret, null if msg is None else msg, n, user_data)

    def _on_worker(self) -> bool:
        return threading.get_ident() == self._worker_ident

    def post(self, callback: Any, user_data: Any, events: list[Event]) -> None:
        """Deliver `events` soon on the worker thread, or on a short-lived thread without one."""
        self.run_soon(partial(self.call, callback, user_data, events))

    def run_soon(self, fn: Callable[[], None]) -> None:
        def guarded() -> None:
            try:
                fn()
            except BaseException:  # noqa: BLE001 - a callback problem must not kill the loop
                traceback.print_exc(file=sys.stderr)

        if self._token is not None:
            try:
                self._token.run_sync_soon(guarded)
                return
            except trio.RunFinishedError:
                pass
        threading.Thread(target=guarded, name=f"libstorage-ctx-{self.serial}-cb", daemon=True).start()

    # -- dispatch ------------------------------------------------------------------
    def live_node(self) -> Node:
        self.ready.wait()
        if self.node is None:
            raise DispatchError(f"the node of this context could not be created: {self.failure}")
        if self.node.closed:
            raise DispatchError("node is closed")
        return self.node

    def submit(self, call: Callable[[NodeDispatch], concurrent.futures.Future[Any]], callback: Any, user_data: Any,
               result: Callable[[Any], list[Event]] = ok_text) -> int:
        """Dispatch `call(node.dispatch)` (one node operation); its outcome becomes the final callback."""
        node = self.live_node()
        try:
            future = call(node.dispatch)
        except HoardError as exc:
            raise DispatchError(exc.message) from exc

        def done(f: concurrent.futures.Future[Any]) -> None:
            finish = partial(self._finish, f, result, callback, user_data)
            if self._on_worker():
                finish()
            else:  # finished before add_done_callback, which then runs here, on the caller
                self.run_soon(finish)

        future.add_done_callback(done)
        return RET_OK

    def _finish(self, future: concurrent.futures.Future[Any], result: Callable[[Any], list[Event]],
                callback: Any, user_data: Any) -> None:
        try:
            events = result(future.result())
        except BaseException as exc:  # noqa: BLE001 - the request's error is its final callback
            events = [err_event(error_message(exc))]
        self.call(callback, user_data, events)

    # -- progress ------------------------------------------------------------------
    def count_progress(self, callback: Any, user_data: Any) -> Callable[[int], None]:
        """upload_file: RET_PROGRESS with msg NULL and the stored block's byte count in len.

        The node reports from a hashing thread; counts are batched and flushed on the worker
        (one hop per batch, not per block), ahead of the request's completion."""
        pending: list[int] = []
        lock = threading.Lock()

        def flush() -> None:
            with lock:
                counts = pending[:]
                pending.clear()
            self.call(callback, user_data, [(RET_PROGRESS, None, n) for n in counts])

        def on_progress(n: int) -> None:
            if self._on_worker():
                self.call(callback, user_data, [(RET_PROGRESS, None, int(n))])
                return
            with lock:
                pending.append(int(n))
                first = len(pending) == 1
            if first:
                self.run_soon(flush)

        return on_progress

    def data_progress(self, callback: Any, user_data: Any) -> Callable[[bytes], None]:
        """download_stream: each chunk as RET_PROGRESS with the bytes in msg/len."""

        def on_progress(chunk: bytes) -> None:
            data = chunk if isinstance(chunk, bytes) else bytes(chunk)
            if not data:
                return
            if self._on_worker():
                self.call(callback, user_data, [(RET_PROGRESS, data, len(data))])
            else:
                self.post(callback, user_data, [(RET_PROGRESS, data, len(data))])

        return on_progress

    # -- close and destroy ---------------------------------------------------------
    def close(self, callback: Any, user_data: Any) -> int:
        """Close the node on a helper thread (closing waits for the worker), then report."""
        self.ready.wait()
        node = self.node
        if node is None:
            raise DispatchError(f"the node of this context could not be created: {self.failure}")

        def run() -> None:
            try:
                node.close()
                events: list[Event] = [(RET_OK, b"", 0)]
            except BaseException as exc:  # noqa: BLE001
                events = [err_event(f"Failed to close node: {error_message(exc)}")]
            self.post(callback, user_data, events)

        threading.Thread(target=run, name=f"libstorage-ctx-{self.serial}-close", daemon=True).start()
        return RET_OK

    def destroy(self) -> int:
        """Close the node if still open, here and now, and silence the context: no callback of it
        runs after this returns (Logos frees the context synchronously and never calls back).
        The caller has already forgotten the handle."""
        self.ready.wait()
        status = RET_OK
        node = self.node
        if node is not None:
            if self._on_worker():  # from one of this node's callbacks: the worker cannot wait for itself
                threading.Thread(target=node.close, name=f"libstorage-ctx-{self.serial}-destroy",
                                 daemon=True).start()
            else:
                try:
                    node.close()  # the callbacks of requests it cancels run now, before we return
                except BaseException:  # noqa: BLE001 - reported as RET_ERR (details on stderr)
                    traceback.print_exc(file=sys.stderr)
                    status = RET_ERR
        with self._lock:  # waits for a callback running on another thread
            self.silenced = True
        self.node = None  # a destroyed context keeps only its callback lock (exports._destroyed)
        return status
