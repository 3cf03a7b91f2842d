"""`hoard node start`: run a node until SIGINT/SIGTERM, then stop cleanly."""

from __future__ import annotations

import logging
import signal
import sys
import threading
from typing import Any

import click

from hoard.cli.output import Ctx
from hoard.cli.session import load_config

pass_ctx = click.make_pass_decorator(Ctx)


@click.group()
def node() -> None:
    """Run a node."""


@node.command()
@pass_ctx
def start(ctx: Ctx) -> None:
    """Start a node on the data dir and run until interrupted."""
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    from hoard.node import Node

    with Node(load_config(ctx)) as hoard_node:
        hoard_node.start()
        debug = hoard_node.debug()
        info: dict[str, Any] = {"peerId": str(debug.peer_id), "addrs": list(debug.addrs), "spr": debug.spr,
                                "repo": hoard_node.repo()}
        # --- REST API (hoard.api.rest): serve the node; its URL goes to node.json for the CLI ---
        from hoard.api.rest import RestServer

        rest = RestServer(hoard_node, hoard_node.config.api_bindaddr, hoard_node.config.api_port)
        rest.start()
        info["api"] = rest.url
        # --- end REST API ---
        # --- gRPC server (hoard.api.grpc): castore BlobService, hugo StorageService ---
        from hoard.api.grpc import format_address
        from hoard.api.grpc import serve as serve_grpc

        grpc_server, grpc_port = serve_grpc(hoard_node, hoard_node.config.api_bindaddr, hoard_node.config.grpc_port)
        info["grpcAddr"] = format_address(hoard_node.config.api_bindaddr, grpc_port)
        # --- end gRPC server ---
        hoard_node.write_runtime_info(info)
        ctx.emit(info, "\n".join([f"peer id: {info['peerId']}", *(f"listening: {a}" for a in info["addrs"]),
                                  f"api: {info['api']}", f"grpc: {info['grpcAddr']}",
                                  f"repo: {info['repo']}", "node running; Ctrl-C to stop"]))
        sys.stdout.flush()
        # from here on the daemon logs to stderr (level from `log-level`); start-up failures
        # above stay one clear line
        logging.basicConfig(stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
        stop.wait()
        rest.stop()  # REST API
        grpc_server.stop(grace=5).wait()  # gRPC server
        hoard_node.stop()
    ctx.emit({"stopped": True}, "node stopped")


def register(cli: click.Group) -> None:
    cli.add_command(node)
