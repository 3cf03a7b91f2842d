"""The node's gRPC server: every registered service, plus server reflection.

Services are listed in SERVICE_MODULES; each module has `SERVICE_NAME` (the full name, for
reflection) and `add(server, node)`. Adding one (e.g. the `hoard.v1` logs and transfer
services) is one line here.
"""

from __future__ import annotations

import importlib
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import grpc
from grpc_reflection.v1alpha import reflection, reflection_pb2

from hoard.api.auth import HEADER, load_token, token_matches
from hoard.api.grpc.streams import StreamLimit
from hoard.errors import StateError
from hoard.limits import GRPC_MAX_STREAMS, GRPC_MAX_WORKERS, MAX_FILE_BLOCK_BYTES

SERVICE_MODULES: list[str] = [
    "hoard.api.grpc.castore",  # tvix.castore.v1.BlobService
    "hoard.api.grpc.hugo",  # hugo.v1.storage.StorageService
    "hoard.api.grpc.logs",  # hoard.v1.LogService
    "hoard.api.grpc.transfer",  # hoard.v1.TransferService
    "hoard.api.grpc.health",  # grpc.health.v1.Health (no token needed)
]

MESSAGE_OVERHEAD = 64 << 10  # room for framing and fields around a block's bytes
MAX_RECEIVE_BYTES = MAX_FILE_BLOCK_BYTES + MESSAGE_OVERHEAD  # one hugo block (32 MiB, hugo's limit) per message
MAX_SEND_BYTES = (32 << 20) + MESSAGE_OVERHEAD  # a unary hugo Read answers up to 32 MiB of blocks
MAX_WORKERS = GRPC_MAX_WORKERS  # concurrent RPCs served; a stream holds one for its whole life


def server_options() -> list[tuple[str, Any]]:
    """Channel options of the server: message limits, no port sharing, keepalive."""
    return [
        ("grpc.max_receive_message_length", MAX_RECEIVE_BYTES),
        ("grpc.max_send_message_length", MAX_SEND_BYTES),
        ("grpc.so_reuseport", 0),  # a second node must not share this port silently
        ("grpc.keepalive_permit_without_calls", 1),
        ("grpc.http2.min_ping_interval_without_data_ms", 10_000),
    ]


def serve(node: Any, host: str = "127.0.0.1", port: int = 0, *, max_workers: int = MAX_WORKERS,
          max_streams: int = GRPC_MAX_STREAMS, services: list[str] | None = None) -> tuple[grpc.Server, int]:
    """Start a gRPC server for `node` (a `hoard.Node`) on host:port (0 picks a free port).

    At most `max_streams` streaming calls run at once (`StreamLimit`), so at least
    `max_workers - max_streams` threads always serve unary calls.

    Returns the started server and the port it bound. Stop it with `server.stop(grace)`
    before closing the node.
    """
    modules = [importlib.import_module(name) for name in (services or SERVICE_MODULES)]
    token = load_token(getattr(node, "config", None))  # api-token / api-token-file: every call carries it
    if max_streams >= max_workers:
        raise ValueError(f"max_streams ({max_streams}) must leave threads for unary calls ({max_workers})")
    interceptors: list[grpc.ServerInterceptor] = [TokenInterceptor(token)] if token else []
    interceptors.append(StreamLimit(max_streams))
    server = grpc.server(ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="hoard-grpc"),
                         options=server_options(), interceptors=interceptors)
    for module in modules:
        module.add(server, node)
    _add_reflection(server, [m.SERVICE_NAME for m in modules])
    address = format_address(host, port)
    try:
        bound = server.add_insecure_port(address)
    except RuntimeError as exc:
        raise StateError(f"cannot serve gRPC on {address}: {exc}", address=address) from exc
    if not bound:
        raise StateError(f"cannot serve gRPC on {address}", address=address)
    server.start()
    return server, bound


class TokenInterceptor(grpc.ServerInterceptor):
    """Refuses (UNAUTHENTICATED) every call without `authorization: Bearer <token>` metadata."""

    def __init__(self, token: str) -> None:
        self.token = token

    def intercept_service(self, continuation: Any, details: grpc.HandlerCallDetails) -> Any:
        metadata = details.invocation_metadata or ()
        if details.method.startswith("/grpc.health.v1.Health/") or any(
                key == HEADER and token_matches(self.token, value) for key, value in metadata):
            return continuation(details)
        handler = continuation(details)
        if handler is None:
            return None

        def deny(_request: Any, context: grpc.ServicerContext) -> Any:
            context.abort(grpc.StatusCode.UNAUTHENTICATED, "this node requires an API token (api-token)")

        if handler.request_streaming and handler.response_streaming:
            return grpc.stream_stream_rpc_method_handler(deny)
        if handler.request_streaming:
            return grpc.stream_unary_rpc_method_handler(deny)
        if handler.response_streaming:
            return grpc.unary_stream_rpc_method_handler(deny)
        return grpc.unary_unary_rpc_method_handler(deny)


REFLECTION_V1 = "grpc.reflection.v1.ServerReflection"


def _add_reflection(server: grpc.Server, names: list[str]) -> None:
    """Server reflection, as `grpc.reflection.v1alpha` (grpcio-reflection) and `grpc.reflection.v1`.

    The two protocols are the same messages under two package names, so the v1alpha servicer
    answers v1 requests too (newer clients ask v1 first).
    """
    names = [*names, reflection.SERVICE_NAME, REFLECTION_V1]
    servicer = reflection.ReflectionServicer(names)
    handler = grpc.stream_stream_rpc_method_handler(
        servicer.ServerReflectionInfo, request_deserializer=reflection_pb2.ServerReflectionRequest.FromString,
        response_serializer=reflection_pb2.ServerReflectionResponse.SerializeToString)
    server.add_generic_rpc_handlers([grpc.method_handlers_generic_handler(REFLECTION_V1,
                                                                          {"ServerReflectionInfo": handler})])
    reflection.enable_server_reflection(names, server)


def format_address(host: str, port: int) -> str:
    """host:port, with IPv6 hosts in brackets."""
    return f"[{host}]:{port}" if ":" in host and not host.startswith("[") else f"{host}:{port}"
