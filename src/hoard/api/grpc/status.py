"""Hoard errors to gRPC status codes: each error class carries its `grpc_status` (errors.py)."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator

import grpc

from hoard.errors import HoardError

log = logging.getLogger("hoard.grpc")


@contextlib.contextmanager
def status_on_error(context: grpc.ServicerContext, op: str) -> Iterator[None]:
    """Abort the RPC with the status of a HoardError raised inside (message kept as is).

    gRPC's own errors (a cancelled or broken client stream) pass through untouched; anything
    else is a bug: logged, and INTERNAL for the client.
    """
    try:
        yield
    except HoardError as exc:
        context.abort(grpc.StatusCode[exc.grpc_status], exc.message)
    except grpc.RpcError:
        raise
    except Exception as exc:
        log.exception("%s failed", op)
        context.abort(grpc.StatusCode.INTERNAL, f"{op}: internal error: {exc}")
