"""`RestServer`: the REST app served by uvicorn on a thread of its own, beside a running node.

The socket is bound in `start()` (so port 0 works and `url` names the real port, and a port in
use fails at once with a clear error); the server then runs its asyncio loop on a daemon
thread until `stop()`. Node calls go to the node's worker, never block this loop.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
import time
from typing import Any, Self

import h11
import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

from hoard.api.rest.app import BASE, create_app
from hoard.errors import InvalidArgumentError, StateError
from hoard.limits import (
    REST_HEADER_TIMEOUT,
    REST_KEEP_ALIVE,
    REST_MAX_CONNECTIONS,
    REST_MAX_HEADER_BYTES,
)

log = logging.getLogger("hoard.rest")

START_TIMEOUT = 30.0
STOP_TIMEOUT = 10.0


class _Protocol(H11Protocol):
    """uvicorn's HTTP/1.1 protocol with a header timeout: a connection that has not sent a whole
    request head within REST_HEADER_TIMEOUT seconds (of connecting, or of its last answer) is
    closed, so slow clients cannot hold connections (uvicorn only times out idle ones)."""

    _header_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_header_timer()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self.conn.their_state is not h11.IDLE:  # the request head is complete
            self._cancel_header_timer()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing():
            self._arm_header_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_header_timer()
        super().connection_lost(exc)

    def _arm_header_timer(self) -> None:
        self._cancel_header_timer()
        self._header_timer = self.loop.call_later(REST_HEADER_TIMEOUT, self._header_timeout)

    def _cancel_header_timer(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _header_timeout(self) -> None:
        self._header_timer = None
        if self.conn.their_state is h11.IDLE and not self.transport.is_closing():
            self.transport.close()


class _Server(uvicorn.Server):
    """uvicorn's server, telling a thread when it is accepting connections."""

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.ready = threading.Event()

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        self.ready.set()


class RestServer:
    """Serves `node` over HTTP at `host:port` (port 0: any free port). `start()`, then `stop()`."""

    def __init__(self, node: Any, host: str = "127.0.0.1", port: int = 8080) -> None:
        self.node = node
        self.host = host
        self.port = port
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._failure: BaseException | None = None

    @property
    def url(self) -> str:
        """The server's base URL, e.g. `http://127.0.0.1:8080` (the bound port once started)."""
        host = self.host
        if host in ("0.0.0.0", ""):
            host = "127.0.0.1"
        elif host == "::":
            host = "::1"
        return f"http://[{host}]:{self.port}" if ":" in host else f"http://{host}:{self.port}"

    @property
    def api_url(self) -> str:
        """The base URL of the API, e.g. `http://127.0.0.1:8080/api/storage/v1`."""
        return self.url + BASE

    def start(self) -> None:
        """Bind and start serving; returns once connections are accepted."""
        if self._thread is not None:
            return
        sock = self._bind()
        self.port = sock.getsockname()[1]
        # uvicorn's loggers propagate to the process's handlers (no log_config of its own: one format,
        # observability.configure_process_logging); its access lines are INFO on "uvicorn.access"
        config = uvicorn.Config(create_app(self.node), log_config=None, log_level=None, access_log=True, lifespan="off",
                                timeout_graceful_shutdown=2, http=_Protocol, timeout_keep_alive=REST_KEEP_ALIVE,
                                limit_concurrency=REST_MAX_CONNECTIONS,
                                h11_max_incomplete_event_size=REST_MAX_HEADER_BYTES)
        self._server = _Server(config)
        self._thread = threading.Thread(target=self._run, args=(sock,), name=f"hoard-rest-{self.port}", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + START_TIMEOUT
        while not self._server.ready.wait(0.05):
            if not self._thread.is_alive():
                self._thread = None
                raise StateError(f"REST API failed to start: {self._failure}") from self._failure
            if time.monotonic() > deadline:
                self.stop()
                raise StateError("REST API did not start in time")
        log.info("REST API on %s", self.url)

    def _bind(self) -> socket.socket:
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((self.host, self.port))
            sock.listen(128)
        except OSError as exc:
            sock.close()
            raise InvalidArgumentError(
                f"cannot serve the REST API on {self.host}:{self.port} (api-bindaddr/api-port): {exc.strerror or exc}",
                host=self.host, port=self.port) from exc
        sock.set_inheritable(True)
        return sock

    def _run(self, sock: socket.socket) -> None:
        assert self._server is not None
        try:
            asyncio.run(self._server.serve(sockets=[sock]))
        except BaseException as exc:
            self._failure = exc
            log.exception("REST API server failed")
        finally:
            sock.close()

    def stop(self) -> None:
        """Stop accepting, let requests in flight finish briefly, and join the thread. Idempotent."""
        if self._server is None or self._thread is None:
            return
        self._server.should_exit = True
        self._thread.join(STOP_TIMEOUT)
        if self._thread.is_alive():
            self._server.force_exit = True
            self._thread.join(STOP_TIMEOUT)
        self._thread = None

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
