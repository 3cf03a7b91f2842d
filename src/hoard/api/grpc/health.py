"""`grpc.health.v1.Health` (grpcio-health-checking): the node's gRPC health service.

The overall status (service "") and each hoard service's are SERVING while the node is started
and NOT_SERVING otherwise, read at each Check (`Watch` streams get the status at the time of
the call and on changes `set_serving` makes). Health checks need no API token (probes carry
none; they learn nothing but up or down).
"""

from __future__ import annotations

import importlib
from typing import Any

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc  # type: ignore[import-untyped]

SERVICE_NAME = health.SERVICE_NAME  # "grpc.health.v1.Health"


class NodeHealth(health.HealthServicer):  # type: ignore[misc]
    """grpcio's health servicer, answering from the node's state at each Check."""

    def __init__(self, node: Any, services: list[str]) -> None:
        super().__init__()
        self._node = node
        self._services = ["", *services]
        self.refresh()

    def refresh(self) -> None:
        """Set every service's status from whether the node is started."""
        up = bool(getattr(self._node, "started", False)) and not bool(getattr(self._node, "closed", False))
        status = health_pb2.HealthCheckResponse.SERVING if up else health_pb2.HealthCheckResponse.NOT_SERVING
        for name in self._services:
            self.set(name, status)

    def Check(self, request: Any, context: grpc.ServicerContext) -> Any:
        self.refresh()
        return super().Check(request, context)


def add(server: grpc.Server, node: Any) -> None:
    from hoard.api.grpc.server import SERVICE_MODULES

    names = [importlib.import_module(m).SERVICE_NAME for m in SERVICE_MODULES if m != __name__]
    health_pb2_grpc.add_HealthServicer_to_server(NodeHealth(node, names), server)


__all__ = ["SERVICE_NAME", "NodeHealth", "add"]
