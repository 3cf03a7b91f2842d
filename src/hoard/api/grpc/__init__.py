"""gRPC: tvix castore `BlobService` and hugo `StorageService`, wire-exact, over a node.

`serve(node, host, port) -> (server, bound_port)` starts them (with server reflection).
Servicers are thin: validate, call the node, map hoard errors to their `grpc_status`.
Stubs are compiled from `proto/` at build time (`setup.py`; `hoard.api.grpc.protos` loads them).
"""

from hoard.api.grpc.protos import PROTO_FILES, load
from hoard.api.grpc.server import MAX_RECEIVE_BYTES, MAX_SEND_BYTES, SERVICE_MODULES, format_address, serve

__all__ = ["MAX_RECEIVE_BYTES", "MAX_SEND_BYTES", "PROTO_FILES", "SERVICE_MODULES", "format_address", "load", "serve"]
