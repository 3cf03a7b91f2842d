"""Flow control for the gRPC server's long-lived streams.

Two bounds (values in `hoard.limits`, explained in docs/security.md):

* `StreamLimit`: an interceptor that lets at most GRPC_MAX_STREAMS streaming calls run at once
  and refuses more with RESOURCE_EXHAUSTED, so that idle subscriptions, each holding one of the
  server's threads for its whole life, can never take the threads unary calls need.
* `StreamQueue`: what a server stream (log `Subscribe`, transfer `Events`) has been handed by the
  node but not yet sent, bounded in events and bytes. The node's callbacks never block on it;
  past a bound the stream is ended with RESOURCE_EXHAUSTED — after what was queued is sent, or,
  if the client reads nothing for GRPC_STREAM_STALL_SECONDS, at once (the call is cancelled, which
  frees the thread blocked sending to it).
"""

from __future__ import annotations

import collections
import threading
from collections.abc import Callable, Iterator
from typing import Any, Generic, TypeVar

import grpc

from hoard.limits import (
    GRPC_MAX_STREAMS,
    GRPC_STREAM_MAX_QUEUED,
    GRPC_STREAM_MAX_QUEUED_BYTES,
    GRPC_STREAM_STALL_SECONDS,
)

T = TypeVar("T")


def cancel_call(context: grpc.ServicerContext, code: grpc.StatusCode, details: str) -> None:
    """End a call from any thread with `code`; a thread blocked sending to it returns.

    grpcio's public `context.cancel()` always reports CANCELLED; the call object underneath takes
    a status, so it is used when present (and `cancel()` otherwise).
    """
    call = getattr(getattr(context, "_rpc_event", None), "call", None)
    try:
        from grpc._common import STATUS_CODE_TO_CYGRPC_STATUS_CODE

        call.cancel(STATUS_CODE_TO_CYGRPC_STATUS_CODE[code], details)  # type: ignore[union-attr]
    except Exception:  # noqa: BLE001 - grpcio's internals changed: cancel the public way
        context.cancel()


class StreamQueue(Generic[T]):
    """Items for one server stream: `put` from any thread (never blocks), `get` on the stream's."""

    def __init__(self, context: grpc.ServicerContext, what: str, *, max_items: int = GRPC_STREAM_MAX_QUEUED,
                 max_bytes: int = GRPC_STREAM_MAX_QUEUED_BYTES, stall: float = GRPC_STREAM_STALL_SECONDS) -> None:
        self._context = context
        self._what = what
        self._max_items = max_items
        self._max_bytes = max_bytes
        self._stall = stall
        self._cond = threading.Condition()
        self._items: collections.deque[tuple[T, int]] = collections.deque()
        self._bytes = 0
        self._ended = False
        self._overflowed = False
        self._timer: threading.Timer | None = None
        context.add_callback(self.end)  # the client went away or cancelled

    @property
    def message(self) -> str:
        return (f"{self._what}: the client did not read fast enough ({self._max_items} events or "
                f"{self._max_bytes >> 20} MiB unread)")

    def put(self, item: T, size: int = 0) -> None:
        """Queue `item` (`size` bytes of payload); past a bound, the stream is ended instead."""
        with self._cond:
            if self._ended or self._overflowed:
                return
            if len(self._items) >= self._max_items or self._bytes + size > self._max_bytes:
                self._overflowed = True
                self._timer = threading.Timer(self._stall, self._cancel)
                self._timer.daemon = True
                self._timer.start()
            else:
                self._items.append((item, size))
                self._bytes += size
            self._cond.notify()

    def end(self) -> None:
        """No more items: `get` returns None once the queued ones are taken."""
        with self._cond:
            self._ended = True
            self._cond.notify()

    def get(self) -> T | None:
        """The next item, waiting for one; None when ended. Aborts the call (RESOURCE_EXHAUSTED)
        once the queued items of an overflowed stream are taken."""
        with self._cond:
            while not self._items and not self._ended and not self._overflowed:
                self._cond.wait()
            if self._items:
                item, size = self._items.popleft()
                self._bytes -= size
                return item
            overflowed = self._overflowed and not self._ended
        self.close()
        if overflowed:
            self._context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED, self.message)
        return None

    def __iter__(self) -> Iterator[T]:
        while (item := self.get()) is not None:
            yield item

    def close(self) -> None:
        """The stream is over: drop what is queued and stop the stall timer."""
        with self._cond:
            self._ended = True
            self._items.clear()
            self._bytes = 0
            timer, self._timer = self._timer, None
        if timer is not None:
            timer.cancel()

    def _cancel(self) -> None:
        with self._cond:
            if self._ended:
                return
        cancel_call(self._context, grpc.StatusCode.RESOURCE_EXHAUSTED, self.message)


class StreamLimit(grpc.ServerInterceptor):  # type: ignore[misc,unused-ignore]
    """At most `limit` streaming calls at once; more are refused with RESOURCE_EXHAUSTED."""

    def __init__(self, limit: int = GRPC_MAX_STREAMS) -> None:
        self.limit = limit
        self._slots = threading.BoundedSemaphore(limit)

    def _refuse(self, context: grpc.ServicerContext) -> None:
        context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED,
                      f"too many streaming calls at once (at most {self.limit}); try again later")

    def intercept_service(self, continuation: Callable[[Any], Any], details: grpc.HandlerCallDetails) -> Any:
        handler = continuation(details)
        if handler is None or not (handler.request_streaming or handler.response_streaming):
            return handler
        if handler.response_streaming:
            behavior = handler.stream_stream if handler.request_streaming else handler.unary_stream

            def streaming(request: Any, context: grpc.ServicerContext) -> Iterator[Any]:
                if not self._slots.acquire(blocking=False):
                    self._refuse(context)
                try:
                    yield from behavior(request, context)
                finally:
                    self._slots.release()

            field = "stream_stream" if handler.request_streaming else "unary_stream"
            return handler._replace(**{field: streaming})
        behavior_in = handler.stream_unary

        def client_streaming(requests: Any, context: grpc.ServicerContext) -> Any:
            if not self._slots.acquire(blocking=False):
                self._refuse(context)
            try:
                return behavior_in(requests, context)
            finally:
                self._slots.release()

        return handler._replace(stream_unary=client_streaming)
