"""`hoard node start|status|stop`: run a node on the data dir, ask about it, stop it.

`start` takes a flag for every common config key; a flag overrides the config file, which
overrides the defaults. Port 0 picks a free port; the ports chosen are printed and written to
`data-dir/node.json`, which `status`, `stop` and every other command read to find the node.
"""

from __future__ import annotations

import fcntl
import logging
import os
import signal
import sys
import threading
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import click

from hoard.cli.output import Ctx
from hoard.cli.session import load_config, running_info
from hoard.errors import StateError

pass_ctx = click.make_pass_decorator(Ctx)

STOP_TIMEOUT = 30.0  # seconds `hoard node stop` waits for the node to exit


@click.group()
def node() -> None:
    """Run a node, show its status, stop it."""


def _listen_addr(text: str) -> str:
    """A multiaddr as given, or a bare port N as /ip4/0.0.0.0/tcp/N."""
    return f"/ip4/0.0.0.0/tcp/{text}" if text.isdigit() else text


@node.command()
@click.option("--data-dir", "data_dir", type=click.Path(file_okay=False), default=None,
              help="The node's data dir (same as the global --data-dir).")
@click.option("--listen", multiple=True, metavar="MULTIADDR|PORT",
              help="libp2p listen address (repeatable), e.g. /ip4/0.0.0.0/tcp/8070; a bare port listens on all "
                   "IPv4 interfaces. Port 0 picks a free port. [listen-addrs]")
@click.option("--api-port", type=click.IntRange(0, 65535), default=None,
              help="REST API port (0: a free port). [api-port, default 8080]")
@click.option("--api-bindaddr", default=None, help="REST API and gRPC address. [api-bindaddr, default 127.0.0.1]")
@click.option("--grpc-port", type=click.IntRange(0, 65535), default=None,
              help="gRPC port (0: a free port). [grpc-port, default 8090]")
@click.option("--bootstrap", multiple=True, metavar="SPR", help="A peer's SPR to connect to at start (repeatable). "
              "[bootstrap-node]")
@click.option("--announce", multiple=True, metavar="MULTIADDR",
              help="An address to announce instead of the bound ones (repeatable). [announce-addrs]")
@click.option("--log-level", default=None, metavar="LEVEL",
              help="TRACE, DEBUG, INFO, NOTICE, WARN, ERROR or FATAL. [log-level, default INFO]")
@click.option("--log-format", default=None, type=click.Choice(["text", "json", "auto", "colors", "nocolors"]),
              help="How the daemon logs to stderr. [log-format, default text]")
@click.option("--log-file", default=None, type=click.Path(dir_okay=False), help="Also append log lines here. [log-file]")
@click.option("--access-log", is_flag=True, default=False, help="Log every REST request (INFO, logger hoard.access).")
@click.option("--storage-quota", default=None, metavar="SIZE", help="e.g. 20GiB. [storage-quota]")
@pass_ctx
def start(ctx: Ctx, data_dir: str | None, listen: tuple[str, ...], api_port: int | None, api_bindaddr: str | None,
          grpc_port: int | None, bootstrap: tuple[str, ...], announce: tuple[str, ...], log_level: str | None,
          log_format: str | None, log_file: str | None, access_log: bool, storage_quota: str | None) -> None:
    """Start a node on the data dir and run until interrupted (or `hoard node stop`)."""
    if data_dir:
        ctx.data_dir = data_dir
    flags: dict[str, Any] = {"listen-addrs": [_listen_addr(a) for a in listen] or None, "api-port": api_port,
                             "api-bindaddr": api_bindaddr, "grpc-port": grpc_port,
                             "bootstrap-node": list(bootstrap) or None, "announce-addrs": list(announce) or None,
                             "log-level": log_level, "storage-quota": storage_quota}
    config = load_config(ctx, {k: v for k, v in flags.items() if v is not None})
    # the daemon's logging: hoard's and uvicorn's lines in one format, on stderr (stdout carries
    # the start-up report); the library itself never installs handlers (node/observability.py)
    from hoard.node import observability

    console = observability.configure_process_logging(log_format or config.log_format or "text",
                                                      log_file or config.log_file, config.log_level, access_log)
    if console is not None:  # a start-up failure stays one clear line on stderr; the log file gets all
        console.setLevel(logging.ERROR)
    config = replace(config, log_format=None, log_file=None)  # handled above, for the whole process

    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    from hoard.node import Node

    with Node(config) as hoard_node:
        hoard_node.start()
        debug = hoard_node.debug()
        info: dict[str, Any] = {"peerId": str(debug.peer_id), "addrs": list(debug.addrs),
                                "announced": list(debug.announce_addresses), "spr": debug.spr, "repo": hoard_node.repo()}
        # --- REST API (hoard.api.rest): serve the node; its URL goes to node.json for the CLI ---
        from hoard.api.rest import RestServer

        rest = RestServer(hoard_node, config.api_bindaddr, config.api_port)
        rest.start()
        info["api"] = rest.url
        info["apiPort"] = rest.port
        # --- end REST API ---
        # --- gRPC server (hoard.api.grpc): castore BlobService, hugo StorageService ---
        from hoard.api.grpc import format_address
        from hoard.api.grpc import serve as serve_grpc

        try:
            grpc_server, grpc_port_bound = serve_grpc(hoard_node, config.api_bindaddr, config.grpc_port)
        except BaseException:
            rest.stop()
            raise
        info["grpcAddr"] = format_address(config.api_bindaddr, grpc_port_bound)
        info["grpcPort"] = grpc_port_bound
        # --- end gRPC server ---
        info["listenPorts"] = sorted({int(str(a).split("/")[4]) for a in debug.addrs})
        hoard_node.write_runtime_info(info)
        ctx.emit(info, "\n".join([f"peer id: {info['peerId']}", *(f"listening: {a}" for a in info["addrs"]),
                                  *(f"announced: {a}" for a in info["announced"]),
                                  f"api: {info['api']}", f"grpc: {info['grpcAddr']}",
                                  f"repo: {info['repo']}", "node running; Ctrl-C or `hoard node stop` to stop"]))
        sys.stdout.flush()
        if console is not None:
            console.setLevel(logging.NOTSET)
        stop.wait()
        rest.stop()  # REST API
        grpc_server.stop(grace=5).wait()  # gRPC server
        hoard_node.stop()
    ctx.emit({"stopped": True}, "node stopped")


@node.command()
@click.option("--data-dir", "data_dir", type=click.Path(file_okay=False), default=None,
              help="The node's data dir (same as the global --data-dir).")
@pass_ctx
def status(ctx: Ctx, data_dir: str | None) -> None:
    """Show the node running on the data dir (exit 1 when none runs)."""
    if data_dir:
        ctx.data_dir = data_dir
    info = running_info(ctx)
    where = str(load_config(ctx).data_dir)
    if info is None:
        ctx.emit({"running": False, "dataDir": where}, f"no node is running on {where} (start one: hoard node start)")
        sys.exit(1)
    from hoard.api.auth import load_token
    from hoard.api.client import NodeClient

    answer: dict[str, Any] = {"running": True, "dataDir": where, **info}
    try:
        with NodeClient(str(info["api"]), load_token(load_config(ctx))) as client:
            answer["peers"] = len(client.net.peers())
            answer["responding"] = True
    except Exception as exc:  # noqa: BLE001 - reported, not raised: the process runs but does not answer
        answer["responding"] = False
        answer["error"] = str(exc)
    lines = [f"running: pid {info.get('pid')} on {where}", f"peer id: {info.get('peerId')}",
             *(f"listening: {a}" for a in info.get("addrs", [])), f"api: {info.get('api')}",
             f"grpc: {info.get('grpcAddr')}"]
    lines.append(f"peers: {answer['peers']}" if answer["responding"] else f"not responding: {answer.get('error')}")
    ctx.emit(answer, "\n".join(lines))


@node.command()
@click.option("--data-dir", "data_dir", type=click.Path(file_okay=False), default=None,
              help="The node's data dir (same as the global --data-dir).")
@click.option("--timeout", type=float, default=STOP_TIMEOUT, show_default=True,
              help="Seconds to wait for the node to exit.")
@pass_ctx
def stop(ctx: Ctx, data_dir: str | None, timeout: float) -> None:
    """Stop the node running on the data dir (SIGTERM; waits for a clean exit)."""
    if data_dir:
        ctx.data_dir = data_dir
    info = running_info(ctx)
    where = load_config(ctx).data_dir
    if info is None or not _lock_held(where):
        raise StateError(f"no node is running on {where}", data_dir=str(where))
    pid = int(info["pid"])
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        ctx.emit({"stopped": True, "pid": pid}, f"node (pid {pid}) stopped")
        return
    deadline = time.monotonic() + timeout
    while _pid_alive(pid):
        if time.monotonic() > deadline:
            raise StateError(f"node (pid {pid}) did not stop within {timeout:g}s", pid=pid)
        time.sleep(0.05)  # polling another process's exit: there is no portable wait for a non-child
    ctx.emit({"stopped": True, "pid": pid}, f"node (pid {pid}) stopped")


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie (exited, not yet reaped by its parent) has stopped
        return Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1][:1] != "Z"
    except (OSError, IndexError):
        return True


def _lock_held(data_dir: Path) -> bool:
    """Whether some process holds the data dir's lock (so its node.json is not a stale one)."""
    try:
        fh = open(Path(data_dir).resolve() / "LOCK")  # noqa: SIM115 - closed below
    except OSError:
        return False
    with fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(fh, fcntl.LOCK_UN)
        return False


@click.command()
@click.argument("cid")
@pass_ctx
def keep(ctx: Ctx, cid: str) -> None:
    """Store cached (fetched) data for good: it no longer expires, as an upload does not."""
    from hoard.cli.session import open_node

    with open_node(ctx) as hoard_node:
        hoard_node.keep(cid)
    ctx.emit({"kept": cid}, f"kept {cid}: stored, no expiry")


def register(cli: click.Group) -> None:
    cli.add_command(node)
    cli.add_command(keep)
