"""`hugo.v1.storage.StorageService` over a node: validate, call `file_*`, map errors.

Choices where hugo's contract is open (docs/grpc.md has the full list): `start_block_idx`
and `end_block_idx` are both inclusive (Range.Type is declared but no field carries it);
blocks absent at the version read (holes) are left out; a unary Read answers at most
READ_LIMIT bytes of block data (hugo's 32 MiB message size), more is INVALID_ARGUMENT
(use StreamRead or a range); StreamWrite is one version and must begin with its header.
Blocks may be up to hugo's 32 MiB message size (MAX_FILE_BLOCK_BYTES).

The version a write made travels in the trailing metadata `hugo-version` (decimal) of `Write`
and `StreamWrite`, so the wire messages stay hugo's. A StreamWrite without blocks makes no
version: its trailer names the file's current version ("0" for a file never written).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import closing
from typing import TYPE_CHECKING, Any

import grpc

from hoard.api.grpc.protos import load
from hoard.api.grpc.status import status_on_error
from hoard.errors import InvalidArgumentError
from hoard.files import FileBlock

if TYPE_CHECKING:
    from hoard.node.node import NodeBase

messages, services = load("hugo/v1/storage/storage.proto")

SERVICE_NAME = "hugo.v1.storage.StorageService"
READ_LIMIT = 32 << 20  # block bytes in one unary Read response (hugo: 32 MiB messages)
VERSION_TRAILER = "hugo-version"  # trailing metadata of Write/StreamWrite: the version the write made


def _send_version(context: grpc.ServicerContext, version: int | None) -> None:
    if version is not None:
        context.set_trailing_metadata(((VERSION_TRAILER, str(version)),))


def _read_args(request: Any) -> tuple[int, int | None, int | None, int | None]:
    start = request.start_block_idx.val if request.HasField("start_block_idx") else None
    end = request.end_block_idx.val if request.HasField("end_block_idx") else None
    version = request.history_version if request.HasField("history_version") else None
    return request.ino, start, end, version


def _block(block: FileBlock) -> Any:
    return messages.Block(data=block.data, len=block.len, index=block.index, crc32=block.crc32)


def _stream_blocks(request_iterator: Iterator[Any]) -> Iterator[bytes]:
    for request in request_iterator:
        if request.WhichOneof("mode") != "block":
            raise InvalidArgumentError("StreamWrite: only the first message may be a header; the rest are blocks")
        yield request.block


if TYPE_CHECKING:  # the generated base, loaded at run time, only answers UNIMPLEMENTED
    _Servicer = object
else:
    _Servicer = services.StorageServiceServicer


class StorageServicer(_Servicer):
    """hugo StorageService backed by `Node.files` (`write`, `stream_write`, `read`)."""

    def __init__(self, node: NodeBase) -> None:
        self.node = node.as_sync()  # gRPC handlers run on gRPC's threads: the blocking face

    def Read(self, request: Any, context: grpc.ServicerContext) -> Any:
        with status_on_error(context, "Read"):
            blocks = []
            total = 0
            with closing(self.node.files.read(*_read_args(request))) as stream:
                for block in stream:
                    total += block.len
                    if total > READ_LIMIT:
                        raise InvalidArgumentError(
                            f"Read of file {request.ino} exceeds {READ_LIMIT} bytes of blocks; "
                            "use StreamRead or a block range", ino=request.ino, limit=READ_LIMIT)
                    blocks.append(_block(block))
            return messages.Read.Response(blocks=blocks)

    def StreamRead(self, request: Any, context: grpc.ServicerContext) -> Any:
        with status_on_error(context, "StreamRead"):
            stream = self.node.files.read(*_read_args(request))
        with closing(stream), status_on_error(context, "StreamRead"):
            for block in stream:
                yield messages.StreamReadResponse(block=_block(block))

    def Write(self, request: Any, context: grpc.ServicerContext) -> Any:
        with status_on_error(context, "Write"):
            index = request.block_idx if request.HasField("block_idx") else None
            written = self.node.files.write(request.ino, request.block_data, index, request.crc32)
            _send_version(context, written.version)
            return messages.WriteBlock.Response(block_idx=written.index)

    def StreamWrite(self, request_iterator: Any, context: grpc.ServicerContext) -> Any:
        with status_on_error(context, "StreamWrite"):
            first = next(request_iterator, None)
            if first is None or first.WhichOneof("mode") != "header":
                raise InvalidArgumentError("StreamWrite must begin with a header naming the ino")
            written = self.node.files.stream_write(first.header.ino, _stream_blocks(request_iterator))
            _send_version(context, written.version)
            return messages.StreamWrite.Response(block_idx=list(written.indices))


def add(server: grpc.Server, node: Any) -> None:
    services.add_StorageServiceServicer_to_server(StorageServicer(node), server)
