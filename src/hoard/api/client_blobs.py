"""`client.blobs`: a running node's castore blobs over its REST API (api/rest/routes_blobs.py), with
the methods, arguments and results of `node.blobs`; and `RemoteStream`, what a read returns in
place of the node's `NodeStream` (the same methods: iterate it, `async for` it, `close()` it).

Bodies stream both ways: a put sends its source as it is read (a file is never held in memory)
and `on_progress(n)` is called as each piece is sent; a read returns once the node found the
blob (NotFoundError is raised by `read`, as by the node's) and its pieces arrive as they are
pulled. A read cut short by the connection raises PeerError from the pull that meets it.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Generic, TypeVar

import httpx

from hoard.api import shapes
from hoard.blobs.digest import BlobDigest
from hoard.blobs.service import BlobStat

if TYPE_CHECKING:
    from hoard.api.client import NodeClient

T = TypeVar("T")

PIECE = 1 << 20  # bytes per piece sent or handed to the caller
_END = object()


class RemoteStream(Generic[T]):
    """Items of a streamed answer of the node, pulled by the caller: `NodeStream`'s methods.

    Iterate it (`for item in stream`) or, from asyncio or trio, `async for item in stream` (each
    pull then runs in a thread). One consumer at a time. `close()` (or a `with` block, or reading
    to the end) ends the response; closing is idempotent.
    """

    def __init__(self, client: NodeClient, response: httpx.Response, items: Iterator[T]) -> None:
        self._client = client
        self._response = response
        self._items = items
        self._closed = False

    def __iter__(self) -> RemoteStream[T]:
        return self

    def __next__(self) -> T:
        item = self._pull()
        if item is _END:
            raise StopIteration
        return item  # type: ignore[return-value]

    def _pull(self) -> T | object:
        if self._closed:
            return _END
        try:
            with self._client._reaching():
                return next(self._items)
        except StopIteration:
            self.close()
            return _END
        except BaseException:
            self.close()
            raise

    def __aiter__(self) -> RemoteStream[T]:
        return self

    async def __anext__(self) -> T:
        import anyio.to_thread

        item = await anyio.to_thread.run_sync(self._pull)
        if item is _END:
            raise StopAsyncIteration
        return item  # type: ignore[return-value]

    def close(self) -> None:
        """Stop reading and end the response. Idempotent."""
        self._closed = True
        self._response.close()

    def __enter__(self) -> RemoteStream[T]:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _digest(digest: str | bytes | BlobDigest) -> str:
    """A digest as the path names it: its hex (parsed here, as the node would parse it)."""
    return BlobDigest.parse(digest).hex()


class ClientBlobs:
    """`client.blobs`: the operations of `node.blobs`, on a running node."""

    def __init__(self, client: NodeClient) -> None:
        self._client = client

    def put(self, source: bytes | os.PathLike[str] | Iterable[bytes],
            on_progress: Callable[[int], None] | None = None) -> BlobStat:
        """Store a blob (bytes, a file path or an iterable of pieces); its digest, size, manifest."""
        from hoard.node.streams import byte_pieces

        pieces = byte_pieces(source)  # refuses a source of the wrong type here, before the request

        def body() -> Iterator[bytes]:
            for piece in pieces:
                view = memoryview(piece)
                for start in range(0, len(view), PIECE):
                    chunk = bytes(view[start:start + PIECE])
                    yield chunk
                    if on_progress is not None:
                        on_progress(len(chunk))

        answer = self._client._request("POST", "/blobs", content=body(),
                                       headers={"content-type": "application/octet-stream"})
        return shapes.blob_stat_from_json(answer.json())

    def stat(self, digest: str | bytes | BlobDigest, chunks: bool = True) -> BlobStat:
        """A blob's size, manifest CID and (with `chunks`) chunk list. NotFoundError if absent."""
        answer = self._client._request("GET", f"/blobs/{_digest(digest)}/stat",
                                       params={"chunks": "true" if chunks else "false"})
        return shapes.blob_stat_from_json(answer.json())

    def read(self, digest: str | bytes | BlobDigest) -> RemoteStream[bytes]:
        """The bytes of a blob (or one chunk) as a stream of pieces. NotFoundError if absent."""
        response = self._client._send_stream("GET", f"/blobs/{_digest(digest)}")
        return RemoteStream(self._client, response, response.iter_bytes(PIECE))


__all__ = ["ClientBlobs", "RemoteStream"]
