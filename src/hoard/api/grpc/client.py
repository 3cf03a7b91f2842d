"""`GrpcClient`: the blob and file operations of `hoard.Node`, over a node's gRPC API.

A Python client of the castore and hugo services, with the namespaces of `hoard.Node` (code
written against `node.blobs` / `node.files` runs against it too); the CLI reaches a running
node over REST instead (`hoard.api.client.NodeClient`). What the wire contracts do not carry is left unknown: a remote `blobs.put` has no manifest CID (None).
A remote `files.write` has its version from hoard's `hugo-version` trailer (None from a server
that sends none).
"""

from __future__ import annotations

import os
import zlib
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, Self

import grpc

from hoard.api.auth import HEADER, bearer
from hoard.api.grpc.protos import load
from hoard.api.grpc.server import MAX_RECEIVE_BYTES, MAX_SEND_BYTES
from hoard.blobs import BlobDigest, BlobStat, ChunkMeta
from hoard.errors import HoardError, InvalidArgumentError, NotFoundError, StateError, error_for
from hoard.files import CrcMismatchError, FileBlock, FileWrite

castore, castore_rpc = load("tvix/castore/v1/rpc_blobstore.proto")
hugo, hugo_rpc = load("hugo/v1/storage/storage.proto")

PIECE = 1 << 20  # bytes per Put message


def error_from_rpc(exc: grpc.RpcError, address: str) -> HoardError:
    """The hoard error a failed call stands for."""
    code = exc.code() if hasattr(exc, "code") else grpc.StatusCode.UNKNOWN
    details = (exc.details() if hasattr(exc, "details") else None) or str(code)
    if code == grpc.StatusCode.UNAVAILABLE:
        return StateError(f"cannot reach the node's gRPC API at {address}: {details}", address=address)
    if code == grpc.StatusCode.FAILED_PRECONDITION and details.startswith("crc32 mismatch"):
        return CrcMismatchError(details)
    return error_for(details, grpc_status=code.name)


def _pieces(source: Any, on_progress: Callable[[int], None] | None) -> Iterator[bytes]:
    if isinstance(source, (bytes, bytearray, memoryview)):
        chunks: Iterable[Any] = [source]
    elif isinstance(source, os.PathLike):
        chunks = _file(Path(source))
    elif isinstance(source, str) or not isinstance(source, Iterable):
        raise InvalidArgumentError(
            f"blob source must be bytes, a pathlib.Path or an iterable of bytes, got {type(source).__name__}")
    else:
        chunks = source
    for chunk in chunks:
        view = memoryview(chunk)
        for start in range(0, len(view), PIECE):
            piece = bytes(view[start:start + PIECE])
            if on_progress is not None:
                on_progress(len(piece))
            yield piece


def _file(path: Path) -> Iterator[bytes]:
    try:
        fh = open(path, "rb", buffering=0)  # noqa: SIM115 - closed below
    except OSError as exc:
        raise NotFoundError(f"cannot read {path}: {exc.strerror}", path=str(path)) from exc
    with fh:
        while piece := fh.read(PIECE):
            yield piece


class _Details(grpc.ClientCallDetails):
    def __init__(self, details: Any, metadata: list[tuple[str, str | bytes]]) -> None:
        self.method = details.method
        self.timeout = details.timeout
        self.metadata = tuple(metadata)
        self.credentials = details.credentials
        self.wait_for_ready = getattr(details, "wait_for_ready", None)
        self.compression = getattr(details, "compression", None)


class _TokenAuth(grpc.UnaryUnaryClientInterceptor, grpc.UnaryStreamClientInterceptor,
                 grpc.StreamUnaryClientInterceptor, grpc.StreamStreamClientInterceptor):
    """Adds `authorization: Bearer <token>` to every call."""

    def __init__(self, token: str) -> None:
        self._pair = (HEADER, bearer(token))

    def _details(self, details: Any) -> _Details:
        return _Details(details, [*(details.metadata or ()), self._pair])

    def intercept_unary_unary(self, continuation: Any, details: Any, request: Any) -> Any:
        return continuation(self._details(details), request)

    def intercept_unary_stream(self, continuation: Any, details: Any, request: Any) -> Any:
        return continuation(self._details(details), request)

    def intercept_stream_unary(self, continuation: Any, details: Any, requests: Any) -> Any:
        return continuation(self._details(details), requests)

    def intercept_stream_stream(self, continuation: Any, details: Any, requests: Any) -> Any:
        return continuation(self._details(details), requests)


def with_token(channel: grpc.Channel, token: str | None) -> grpc.Channel:
    """`channel`, sending the node's API token (api-token) with every call when one is given."""
    return channel if token is None else grpc.intercept_channel(channel, _TokenAuth(token))


class GrpcClient:
    """Blob and file operations against the gRPC API at `address` (host:port), as the same
    namespaces as `hoard.Node`'s: `client.blobs.put(...)`, `client.files.read(...)`. Close it after.

    `token`: the node's API token (`hoard.api.auth.load_token(config)`), if it requires one.
    """

    def __init__(self, address: str, token: str | None = None) -> None:
        self.address = address
        self._channel = with_token(grpc.insecure_channel(address, options=[
            ("grpc.max_receive_message_length", MAX_SEND_BYTES),
            ("grpc.max_send_message_length", MAX_RECEIVE_BYTES),
        ]), token)
        self.blobs = BlobsClient(self, castore_rpc.BlobServiceStub(self._channel))
        self.files = FilesClient(self, hugo_rpc.StorageServiceStub(self._channel))

    def close(self) -> None:
        self._channel.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _call(self, fn: Callable[..., Any], *args: Any) -> Any:
        try:
            return fn(*args)
        except grpc.RpcError as exc:
            raise error_from_rpc(exc, self.address) from None


def _version(call: Any) -> int | None:
    """The version a hugo write made: the server's `hugo-version` trailer (None without one)."""
    value = dict(call.trailing_metadata() or ()).get("hugo-version")
    return int(value) if isinstance(value, str) and value.isdigit() else None


class BlobsClient:
    """`GrpcClient.blobs`: castore blobs over gRPC (the operations of `Node.blobs`)."""

    def __init__(self, client: GrpcClient, stub: Any) -> None:
        self._client = client
        self._stub = stub

    def put(self, source: Any, on_progress: Callable[[int], None] | None = None) -> BlobStat:
        size = 0

        def messages() -> Iterator[Any]:
            nonlocal size
            for piece in _pieces(source, on_progress):
                size += len(piece)
                yield castore.BlobChunk(data=piece)

        response = self._client._call(self._stub.Put, messages())
        return BlobStat(BlobDigest(response.digest), size, None, None)

    def stat(self, digest: str | bytes | BlobDigest, chunks: bool = True) -> BlobStat:
        parsed = BlobDigest.parse(digest)
        response = self._client._call(self._stub.Stat, castore.StatBlobRequest(digest=bytes(parsed), send_chunks=True))
        listing = tuple(ChunkMeta(BlobDigest(c.digest), c.size) for c in response.chunks)
        size = sum(c.size for c in listing) if listing else sum(len(p) for p in self.read(parsed))
        return BlobStat(parsed, size, None, listing if chunks else None)

    def read(self, digest: str | bytes | BlobDigest) -> Iterator[bytes]:
        responses = self._stub.Read(castore.ReadBlobRequest(digest=bytes(BlobDigest.parse(digest))))
        try:
            for message in responses:
                yield message.data
        except grpc.RpcError as exc:
            raise error_from_rpc(exc, self._client.address) from None
        finally:
            responses.cancel()


class FilesClient:
    """`GrpcClient.files`: hugo files over gRPC (the operations of `Node.files` it carries)."""

    def __init__(self, client: GrpcClient, stub: Any) -> None:
        self._client = client
        self._stub = stub

    def write(self, ino: int, data: bytes, index: int | None = None, crc32: int | None = None) -> FileWrite:
        request = hugo.WriteBlock.Request(ino=ino, block_data=bytes(data),
                                          crc32=zlib.crc32(data) if crc32 is None else crc32)
        if index is not None:
            request.block_idx = index
        response, call = self._client._call(self._stub.Write.with_call, request)
        return FileWrite(ino, (response.block_idx,), _version(call))

    def stream_write(self, ino: int, blocks: Iterable[bytes]) -> FileWrite:
        def messages() -> Iterator[Any]:
            yield hugo.StreamWrite.Request(header=hugo.StreamWrite.Header(ino=ino))
            for block in blocks:
                yield hugo.StreamWrite.Request(block=bytes(block))

        response, call = self._client._call(self._stub.StreamWrite.with_call, messages())
        return FileWrite(ino, tuple(response.block_idx), _version(call))

    def read(self, ino: int, start: int | None = None, end: int | None = None,
                  version: int | None = None) -> Iterator[FileBlock]:
        request = hugo.Read.Request(
            ino=ino, history_version=version,
            start_block_idx=None if start is None else hugo.Range(val=start),
            end_block_idx=None if end is None else hugo.Range(val=end))
        responses = self._stub.StreamRead(request)
        try:
            for message in responses:
                yield FileBlock(message.block.index, message.block.data, message.block.crc32)
        except grpc.RpcError as exc:
            raise error_from_rpc(exc, self._client.address) from None
        finally:
            responses.cancel()
