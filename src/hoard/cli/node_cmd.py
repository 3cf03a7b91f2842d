"""`hoard node start`: run a node until SIGINT/SIGTERM, then stop cleanly."""

from __future__ import annotations

import signal
import threading

import click

from hoard.cli.output import Ctx
from hoard.cli.session import load_config
from hoard.node import Node

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
    with Node(load_config(ctx)) as hoard_node:
        hoard_node.start()
        debug = hoard_node.debug()
        info = {"peerId": debug["id"], "addrs": debug["addrs"], "spr": debug["spr"], "repo": hoard_node.repo()}
        hoard_node.core._repo.write_runtime_info(info)
        ctx.emit(info, "\n".join([f"peer id: {info['peerId']}", *(f"listening: {a}" for a in info["addrs"]),
                                  f"repo: {info['repo']}", "node running; Ctrl-C to stop"]))
        import sys

        sys.stdout.flush()
        stop.wait()
        hoard_node.stop()
    ctx.emit({"stopped": True}, "node stopped")


def register(cli: click.Group) -> None:
    cli.add_command(node)
