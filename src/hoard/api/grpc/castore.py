"""`tvix.castore.v1.BlobService` over a node: validate, call `blob_*`, map errors.

As castore's own server: a digest that is not 32 bytes is INVALID_ARGUMENT, a missing blob
NOT_FOUND; Put ignores how the client cut its stream; Stat always lists the chunks, ignoring
`send_chunks` and `send_bao` as tvix's server does, and never sets `bao`. Choice where castore
leaves room: Read sends pieces of up to 1 MiB (whole chunks joined) rather than 4 KiB.
"""

from __future__ import annotations

from contextlib import closing
from typing import TYPE_CHECKING, Any

import grpc

from hoard.api.grpc.protos import load
from hoard.api.grpc.status import status_on_error
from hoard.blobs import BlobDigest

if TYPE_CHECKING:
    from hoard.node.node import NodeBase

messages, services = load("tvix/castore/v1/rpc_blobstore.proto")

SERVICE_NAME = "tvix.castore.v1.BlobService"


if TYPE_CHECKING:  # the generated base, loaded at run time, only answers UNIMPLEMENTED
    _Servicer = object
else:
    _Servicer = services.BlobServiceServicer


class BlobServicer(_Servicer):
    """castore BlobService backed by `Node.blobs` (`put`, `stat`, `read`)."""

    def __init__(self, node: NodeBase) -> None:
        self.node = node.as_sync()  # gRPC handlers run on gRPC's threads: the blocking face

    def Stat(self, request: Any, context: grpc.ServicerContext) -> Any:
        with status_on_error(context, "Stat"):
            stat = self.node.blobs.stat(BlobDigest(request.digest), chunks=True)  # as tvix: send_chunks ignored
            chunk = messages.StatBlobResponse.ChunkMeta
            return messages.StatBlobResponse(chunks=[chunk(digest=bytes(c.digest), size=c.size)
                                                     for c in stat.chunks or ()])

    def Read(self, request: Any, context: grpc.ServicerContext) -> Any:
        with status_on_error(context, "Read"):
            stream = self.node.blobs.read(BlobDigest(request.digest))
        with closing(stream), status_on_error(context, "Read"):
            for piece in stream:
                yield messages.BlobChunk(data=piece)

    def Put(self, request_iterator: Any, context: grpc.ServicerContext) -> Any:
        with status_on_error(context, "Put"):
            stat = self.node.blobs.put(chunk.data for chunk in request_iterator)
            return messages.PutBlobResponse(digest=bytes(stat.digest))


def add(server: grpc.Server, node: Any) -> None:
    services.add_BlobServiceServicer_to_server(BlobServicer(node), server)
