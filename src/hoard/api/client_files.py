"""`client.files`: a running node's hugo files over its REST API (api/rest/routes_files.py), with the
methods, arguments and results of `node.files`; and the frames both sides write and read.

Frames (binary, big-endian), written and read only here:
* a stream write's body: per block, its length (u32) then its bytes (`BODY_FRAME`);
* a read's answer (`FRAMES`): per block `B`, index (u64), CRC32 (u32), length (u32), then its
  bytes (`BLOCK_FRAME`); an error met after the answer began is a last `E` frame (same header,
  index and CRC32 0) whose bytes are `{error, code, httpStatus}` as JSON, raised here as the
  hoard error the node raised (`hoard.errors.error_for`).

A frame is at most one block (32 MiB, hugo's message size): both sides hold at most one frame
beyond what they hand on.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any

from hoard.api import shapes
from hoard.api.client_blobs import RemoteStream
from hoard.errors import HoardError, InvalidArgumentError, PeerError, error_for
from hoard.files.model import CrcMismatchError, FileBlock, FileInfo, FileWrite
from hoard.limits import MAX_FILE_BLOCK_BYTES

if TYPE_CHECKING:
    from hoard.api.client import NodeClient

FRAMES = "application/vnd.hoard.file-blocks"
BODY_FRAME = struct.Struct(">I")  # length
BLOCK_FRAME = struct.Struct(">cQII")  # kind, index, crc32, length
ERROR_FRAME_BYTES = 64 << 10


class FrameParser:
    """Frames (a header whose last field is the payload's length, then the payload) out of
    pieces of a byte stream, as they arrive; InvalidArgumentError for a frame past `limit`."""

    def __init__(self, header: struct.Struct, limit: int) -> None:
        self._header = header
        self._limit = limit
        self._buffer = bytearray()

    def feed(self, piece: bytes) -> Iterator[tuple[tuple[Any, ...], bytes]]:
        """The frames completed by `piece`, each (header fields, payload)."""
        self._buffer += piece
        pos = 0
        try:
            while len(self._buffer) - pos >= self._header.size:
                fields = self._header.unpack_from(self._buffer, pos)
                length = fields[-1]
                if length > self._limit:
                    raise InvalidArgumentError(f"block of {length} bytes exceeds the maximum file block size "
                                               f"{self._limit}", size=length, max=self._limit)
                end = pos + self._header.size + length
                if len(self._buffer) < end:
                    break
                yield fields, bytes(self._buffer[pos + self._header.size:end])
                pos = end
        finally:
            del self._buffer[:pos]

    def end(self) -> None:
        """The stream ended: InvalidArgumentError if it ended inside a frame."""
        if self._buffer:
            raise InvalidArgumentError(f"the stream ends inside a frame ({len(self._buffer)} bytes left over)")


def block_frame(block: FileBlock) -> bytes:
    return BLOCK_FRAME.pack(b"B", block.index, block.crc32, len(block.data)) + block.data


def error_frame(exc: HoardError) -> bytes:
    payload = json.dumps({"error": exc.message, "code": str(exc.code), "httpStatus": exc.http_status},
                         separators=(",", ":")).encode()
    return BLOCK_FRAME.pack(b"E", 0, 0, len(payload)) + payload


def _error(message: str, code: str | None, http_status: int | None) -> HoardError:
    if code == CrcMismatchError.code:  # defined with the files, not in hoard.errors
        return CrcMismatchError(message)
    return error_for(message, code=code, http_status=http_status)


def _frames(pieces: Iterator[bytes]) -> Iterator[tuple[tuple[Any, ...], bytes]]:
    parser = FrameParser(BLOCK_FRAME, max(MAX_FILE_BLOCK_BYTES, ERROR_FRAME_BYTES))
    try:
        for piece in pieces:
            yield from parser.feed(piece)
        parser.end()
    except InvalidArgumentError as exc:  # the frames themselves are wrong: the node's answer is bad
        raise PeerError(f"the node answered bad frames: {exc.message}") from exc


def _blocks(pieces: Iterator[bytes]) -> Iterator[FileBlock]:
    """The blocks a read's frames carry; the error of an `E` frame raised as the node raised it."""
    for (kind, index, crc32, _length), payload in _frames(pieces):
        if kind == b"B":
            yield FileBlock(index, payload, crc32)
            continue
        try:
            data: dict[str, Any] = json.loads(payload) if kind == b"E" else {}
            error = _error(str(data["error"]), data.get("code"), data.get("httpStatus"))
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise PeerError(f"the node answered a bad frame: {kind!r} {payload[:100]!r}") from exc
        raise error


class ClientFiles:
    """`client.files`: the operations of `node.files`, on a running node."""

    def __init__(self, client: NodeClient) -> None:
        self._client = client

    def _write(self, path: str, **kwargs: Any) -> FileWrite:
        from hoard.api.client import ERROR_HEADER, error_from_response

        client = self._client
        with client._reaching():
            response = client._client.request("POST", path, headers={"content-type": "application/octet-stream"},
                                              **kwargs)
        if response.status_code >= 400:
            if response.headers.get(ERROR_HEADER) == CrcMismatchError.code:
                raise CrcMismatchError(response.text.strip())
            raise error_from_response(response)
        return shapes.file_write_from_json(response.json())

    def write(self, ino: int, data: bytes, index: int | None = None, crc32: int | None = None) -> FileWrite:
        """Write one block of file `ino` at `index` (or append); `crc32` checked if given."""
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise InvalidArgumentError(f"block data must be bytes, got {type(data).__name__}")
        params = {k: v for k, v in (("index", index), ("crc32", crc32)) if v is not None}
        return self._write(f"/files/{_ino(ino)}/blocks", content=bytes(data), params=params)

    def stream_write(self, ino: int, blocks: Iterable[bytes]) -> FileWrite:
        """Append `blocks` to file `ino` in order, as one new version."""
        def body() -> Iterator[bytes]:
            for block in blocks:
                if not isinstance(block, (bytes, bytearray, memoryview)):
                    raise InvalidArgumentError(f"block data must be bytes, got {type(block).__name__}")
                if len(block) > MAX_FILE_BLOCK_BYTES:
                    raise InvalidArgumentError(f"block of {len(block)} bytes exceeds the maximum file block size "
                                               f"{MAX_FILE_BLOCK_BYTES}", size=len(block), max=MAX_FILE_BLOCK_BYTES)
                yield BODY_FRAME.pack(len(block)) + bytes(block)

        return self._write(f"/files/{_ino(ino)}/stream", content=body())

    def read(self, ino: int, start: int | None = None, end: int | None = None,
             version: int | None = None) -> RemoteStream[FileBlock]:
        """The blocks start..end (inclusive) of file `ino` at `version`, as a stream."""
        params = {k: v for k, v in (("start", start), ("end", end), ("version", version)) if v is not None}
        response = self._client._send_stream("GET", f"/files/{_ino(ino)}/blocks", params=params)
        return RemoteStream(self._client, response, _blocks(response.iter_raw()))

    def stat(self, ino: int, version: int | None = None) -> FileInfo:
        """File `ino` at `version` (default: the latest): blocks, bytes, next index, time."""
        params = {} if version is None else {"version": version}
        return shapes.file_info_from_json(self._client._request("GET", f"/files/{_ino(ino)}/stat",
                                                                params=params).json())


def _ino(ino: int) -> str:
    if isinstance(ino, bool) or not isinstance(ino, int):
        raise InvalidArgumentError(f"ino must be an integer, got {type(ino).__name__}")
    return str(ino)


__all__ = ["BLOCK_FRAME", "BODY_FRAME", "FRAMES", "ClientFiles", "FrameParser", "block_frame", "error_frame"]
