"""Streams between a caller and the node: `NodeStream` (items produced on the node, pulled by
the caller), `ReadAhead` (a caller's iterable consumed ahead in a thread) and `byte_pieces`.

Long byte streams never sit in memory: a blob put consumes its source piece by piece in a
node thread, and a blob or file read returns a `NodeStream` whose pulls each read a few MiB
ahead. Used by the blobs and files components.
"""

from __future__ import annotations

import concurrent.futures
import os
import queue
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, Generic, TypeVar

import trio

from hoard.errors import InvalidArgumentError, NotFoundError
from hoard.node.aio import wait_future
from hoard.node.runtime import Worker

T = TypeVar("T")

STEP_BYTES = 4 << 20  # a NodeStream pull reads ahead about this much
FILE_PIECE = 4 << 20  # blob_put reads files in pieces of this size
LONG_STREAMS = 64  # node threads that may sit in long client streams at once
READ_AHEAD = 8  # pieces a put receives ahead of storing them (≤ 8 messages of ≤ 4 MiB)


class NodeStream(Generic[T]):
    """Items produced on the node, pulled by the caller.

    Iterate it (`for item in stream`, blocking; any thread but hoard's own) or, from asyncio or trio,
    `async for item in stream`. Items are read in steps of about STEP_BYTES run on the node's
    worker, and the next step runs while the caller handles the current one, so reading
    overlaps sending and memory stays within two steps. Errors arrive as hoard errors from
    the pull that meets them. One consumer at a time. `close()` (or a `with` block, or
    reading to the end) releases it; closing is idempotent.
    """

    def __init__(self, worker: Worker, source: Iterator[T], size: Callable[[T], int]) -> None:
        self._worker = worker
        self._source = source
        self._size = size
        self._buffer: deque[T] = deque()
        self._next: concurrent.futures.Future[list[T]] | None = None
        self._done = False  # the source is exhausted, failed or closed
        self._lock = threading.Lock()  # a step and a close never touch the source together

    def _take(self) -> list[T]:
        with self._lock:
            items: list[T] = []
            total = 0
            try:
                while not self._done and total < STEP_BYTES:
                    item = next(self._source, None)
                    if item is None:
                        self._done = True
                        break
                    items.append(item)
                    total += self._size(item)
            except BaseException:
                self._done = True
                raise
            return items

    async def _step(self) -> list[T]:
        return await trio.to_thread.run_sync(self._take)

    def _pending(self) -> concurrent.futures.Future[list[T]]:
        """The step in flight (starting one if none is), and the next one started behind it."""
        current = self._next if self._next is not None else self._worker.submit(self._step)
        self._next = None
        return current

    def _refill(self, items: list[T]) -> None:
        self._buffer.extend(items)
        if not self._done:
            self._next = self._worker.submit(self._step)

    def __iter__(self) -> NodeStream[T]:
        return self

    def __next__(self) -> T:
        while not self._buffer:
            if self._done and self._next is None:
                raise StopIteration
            self._refill(self._pending().result())
        return self._buffer.popleft()

    def __aiter__(self) -> NodeStream[T]:
        return self

    async def __anext__(self) -> T:
        while not self._buffer:
            if self._done and self._next is None:
                raise StopAsyncIteration
            self._refill(await wait_future(self._pending()))
        return self._buffer.popleft()

    def close(self) -> None:
        """Stop reading and release the source (waiting for a step in flight). Idempotent."""
        with self._lock:
            self._done = True
            self._buffer.clear()
            close = getattr(self._source, "close", None)
            if close is not None:
                close()
        if self._next is not None:
            self._next.cancel()
            self._next = None

    def __enter__(self) -> NodeStream[T]:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class LongCalls:
    """Node threads that may wait on a client stream for long (a put fed by a slow client).

    They have their own limiter, so slow clients never starve the node's other work.
    """

    def __init__(self, limit: int = LONG_STREAMS) -> None:
        self._limiter: trio.CapacityLimiter | None = None
        self._limit = limit

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """Run `fn(*args)` in such a thread and await its result."""
        if self._limiter is None:  # created on the worker's loop, at first use
            self._limiter = trio.CapacityLimiter(self._limit)
        return await trio.to_thread.run_sync(fn, *args, limiter=self._limiter)


_END = object()


class _Failure:
    def __init__(self, exc: BaseException) -> None:
        self.exc = exc


class ReadAhead(Generic[T]):
    """Iterates `source` in a thread of its own, up to `depth` items ahead of the consumer.

    Receiving (a client stream, a file) then overlaps hashing and storing. Errors raised by
    `source` reach the consumer in order. `close()` (idempotent; also when the consumer
    stops early) tells the thread to stop and drops what it read ahead; the thread ends once
    the item it is waiting for arrives (a client stream ends with its call).
    """

    def __init__(self, source: Iterable[T], depth: int = READ_AHEAD) -> None:
        self._items: queue.Queue[Any] = queue.Queue(depth)
        self._stop = threading.Event()
        self._finished = False
        self._thread = threading.Thread(target=self._produce, args=(source,), name="hoard-read-ahead", daemon=True)
        self._thread.start()

    def _produce(self, source: Iterable[T]) -> None:
        try:
            for item in source:
                self._items.put(item)
                if self._stop.is_set():
                    return
            self._items.put(_END)
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer
            self._items.put(_Failure(exc))

    def __iter__(self) -> ReadAhead[T]:
        return self

    def __next__(self) -> T:
        if self._finished:
            raise StopIteration
        item = self._items.get()
        if item is _END or isinstance(item, _Failure):
            self._finished = True
            self._thread.join()
            if isinstance(item, _Failure):
                raise item.exc
            raise StopIteration
        result: T = item
        return result

    def close(self) -> None:
        if self._finished:
            return
        self._finished = True
        self._stop.set()
        while not self._items.empty():  # unblock a producer waiting to put
            self._items.get_nowait()


def byte_pieces(source: object, on_progress: Callable[[int], None] | None = None) -> Iterator[bytes | bytearray | memoryview]:
    """The pieces of a bytes-like value, a file (os.PathLike) or an iterable of bytes-like pieces."""
    if isinstance(source, (bytes, bytearray, memoryview)):
        pieces: Iterable[Any] = [source]
    elif isinstance(source, os.PathLike):
        pieces = _file_pieces(Path(source))
    elif isinstance(source, str) or not isinstance(source, Iterable):
        raise InvalidArgumentError(
            f"blob source must be bytes, a pathlib.Path or an iterable of bytes, got {type(source).__name__}")
    else:
        pieces = source

    def checked() -> Iterator[bytes | bytearray | memoryview]:
        for piece in pieces:
            if not isinstance(piece, (bytes, bytearray, memoryview)):
                raise InvalidArgumentError(f"blob pieces must be bytes, got {type(piece).__name__}")
            if on_progress is not None:
                on_progress(len(piece))
            yield piece

    return checked()


def _file_pieces(path: Path) -> Iterator[bytes]:
    try:
        fh = open(path, "rb", buffering=0)  # noqa: SIM115 - closed below
    except OSError as exc:
        raise NotFoundError(f"cannot read {path}: {exc.strerror}", path=str(path)) from exc
    with fh:
        while piece := fh.read(FILE_PIECE):
            yield piece
