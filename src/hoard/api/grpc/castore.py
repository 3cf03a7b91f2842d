"""`tvix.castore.v1.BlobService` over a node: validate, call `blob_*`, map errors.

As castore's own server: a digest that is not 32 bytes is INVALID_ARGUMENT, a missing blob
NOT_FOUND; Put ignores how the client cut its stream; Stat always lists the chunks, ignoring
`send_chunks` and `send_bao` as tvix's server does, and never sets `bao`. Choice where castore
leaves room: Read sends pieces of up to 1 MiB (whole chunks joined) rather than 4 KiB.

The bulk messages skip protobuf objects, byte-for-byte the same on the wire: a `BlobChunk`
is the one field `data` (tag 1, length-delimited), so Read frames each piece as that field
(one copy, where a message object and its serialisation were two), and Put takes a message
that is exactly that field as a view of the received bytes (no copy); any other encoding of
a BlobChunk (unknown fields, a repeated field) is parsed by protobuf.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import closing
from typing import TYPE_CHECKING, Any, cast

import grpc

from hoard.api.grpc.protos import load
from hoard.api.grpc.status import status_on_error
from hoard.blobs import BlobDigest

if TYPE_CHECKING:
    from hoard.node.node import NodeBase

messages, services = load("tvix/castore/v1/rpc_blobstore.proto")

SERVICE_NAME = "tvix.castore.v1.BlobService"
_DATA_TAG = 0x0A  # BlobChunk.data: field 1, wire type 2 (length-delimited)


def _varint(n: int) -> bytes:
    out = bytearray()
    while n > 0x7F:
        out.append(n & 0x7F | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def encode_chunk(piece: bytes | memoryview) -> bytes:
    """The serialised `BlobChunk(data=piece)`, as protobuf writes it (empty data: no field)."""
    if not piece:
        return b""
    return b"".join((bytes((_DATA_TAG,)), _varint(len(piece)), piece))


def decode_chunk(raw: bytes) -> bytes | memoryview:
    """The `data` of a serialised `BlobChunk`: a view of `raw` when the message is just that
    field, else what protobuf parses."""
    if len(raw) > 1 and raw[0] == _DATA_TAG:
        length, shift, pos = 0, 0, 1
        while pos < len(raw) and shift < 64:
            byte = raw[pos]
            pos += 1
            length |= (byte & 0x7F) << shift
            shift += 7
            if byte < 0x80:
                if pos + length == len(raw):
                    return memoryview(raw)[pos:]
                break
    data: bytes = messages.BlobChunk.FromString(raw).data
    return data


class BlobServicer:
    """castore BlobService backed by `Node.blobs` (`put`, `stat`, `read`).

    Read yields pieces and Put takes the pieces of the stream (see `add` for their encoding)."""

    def __init__(self, node: NodeBase) -> None:
        self.node = node.as_sync()  # gRPC handlers run on gRPC's threads: the blocking face

    def Stat(self, request: Any, context: grpc.ServicerContext) -> Any:
        with status_on_error(context, "Stat"):
            stat = self.node.blobs.stat(BlobDigest(request.digest), chunks=True)  # as tvix: send_chunks ignored
            chunk = messages.StatBlobResponse.ChunkMeta
            return messages.StatBlobResponse(chunks=[chunk(digest=bytes(c.digest), size=c.size)
                                                     for c in stat.chunks or ()])

    def Read(self, request: Any, context: grpc.ServicerContext) -> Iterator[bytes]:
        with status_on_error(context, "Read"):
            stream = self.node.blobs.read(BlobDigest(request.digest))
        with closing(stream), status_on_error(context, "Read"):
            yield from stream

    def Put(self, request_iterator: Iterator[bytes | memoryview], context: grpc.ServicerContext) -> Any:
        with status_on_error(context, "Put"):
            # memoryview pieces are taken as bytes are (`byte_pieces`)
            stat = self.node.blobs.put(cast("Iterable[bytes]", request_iterator))
            return messages.PutBlobResponse(digest=bytes(stat.digest))


def add(server: grpc.Server, node: Any) -> None:
    """Register the service as the generated `add_BlobServiceServicer_to_server` does, with
    Read's and Put's BlobChunk messages encoded by `encode_chunk` / `decode_chunk`."""
    servicer = BlobServicer(node)
    handlers = {
        "Stat": grpc.unary_unary_rpc_method_handler(
            servicer.Stat, request_deserializer=messages.StatBlobRequest.FromString,
            response_serializer=messages.StatBlobResponse.SerializeToString),
        "Read": grpc.unary_stream_rpc_method_handler(
            servicer.Read, request_deserializer=messages.ReadBlobRequest.FromString,
            response_serializer=encode_chunk),
        "Put": grpc.stream_unary_rpc_method_handler(
            servicer.Put, request_deserializer=decode_chunk,
            response_serializer=messages.PutBlobResponse.SerializeToString),
    }
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE_NAME, handlers),))
    server.add_registered_method_handlers(SERVICE_NAME, handlers)
