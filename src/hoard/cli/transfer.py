"""Data-transfer commands: `hoard transfer pull|push PEER CID`, `list`, `show`, `pause|resume|cancel|restart CHID`.

They call `node.transfer` on the node `open_node` picks (cli/session.py): a running node through
its REST API (`--api URL`, or the node running on the data dir), else the node on the data dir
opened here: `list`, `show` and `policy` read its persisted channels; `pull`, `push` and
`restart` start it and wait until the channel ends (the node stops when the command does); the
others act and return.

Channels are opened with the built-in `DefaultVoucher` (its text: `--note`), which the peer
accepts or refuses by its transfer policy (`hoard transfer policy`); `--voucher TYPE:HEX`
sends another registered voucher type instead.
"""

from __future__ import annotations

import base64
from typing import Any

import click

from hoard.cli.output import Ctx
from hoard.cli.session import open_node
from hoard.errors import InvalidArgumentError

pass_ctx = click.make_pass_decorator(Ctx)
FINAL = ("Completed", "Failed", "Cancelled")


def _running(node: Any) -> bool:
    """Whether `node` is a running node reached over its API (else: embedded in this command)."""
    from hoard.node import Node

    return not isinstance(node, Node)


def _json(state: Any) -> dict[str, Any]:
    from hoard.api import shapes

    result: dict[str, Any] = shapes.channel_json(state)
    return result


def _line(c: dict[str, Any]) -> str:
    direction = "pull" if c["isPull"] else "push"
    role = "from" if c["selfPeer"] == c["recipient"] else "to"
    other = c["sender"] if role == "from" else c["recipient"]
    moved = c["received"] if role == "from" else c["sent"]
    total = f" of {c['totalSize']}" if c["totalSize"] else ""
    text = f"{c['id']}  {c['status']}  {direction} {c['baseCid']} {role} {other}  {moved}{total} bytes"
    return text + (f"  ({c['message']})" if c["message"] else "")


def _voucher(note: str, voucher: str | None) -> Any:
    if voucher is None:
        return note
    type_id, sep, hex_data = voucher.partition(":")
    try:
        data = bytes.fromhex(hex_data)
    except ValueError:
        sep = ""
    if not sep or not type_id:
        raise InvalidArgumentError(f"--voucher must be TYPE:HEX, got {voucher!r}")
    return {"type": type_id, "data": base64.b64encode(data).decode()}


def _range(value: str | None) -> Any:
    if value is None:
        return None
    start, sep, end = value.partition(":")
    if not sep or not start.isdigit() or not end.isdigit():
        raise InvalidArgumentError(f"--range must be START:END (block indices), got {value!r}")
    return {"range": [int(start), int(end)]}


def _follow(ctx: Ctx, node: Any, chid: str) -> dict[str, Any]:
    """Wait until the channel ends, printing its events (not with --json); its final state."""
    def show(event: Any) -> None:
        if not ctx.json:
            click.echo(f"{event.code.name}: {event.status.name}" + (f" ({event.message})" if event.message else ""),
                       err=True)

    return _json(node.transfer.wait(chid, show))


@click.group()
@click.option("--grpc", "grpc_addr", metavar="HOST:PORT", hidden=True)
def transfer(grpc_addr: str | None) -> None:
    """Data transfers (go-data-transfer): pull data from peers, push data to them."""
    if grpc_addr is not None:
        raise InvalidArgumentError("hoard transfer reaches a running node through its REST API: use --api URL "
                                   "(or nothing, for the node running on the data dir)")


def _open_command(direction: str) -> Any:
    verb = "Ask PEER for" if direction == "pull" else "Send PEER"

    @transfer.command(name=direction, help=f"{verb} CID (a dataset's manifest CID, or a block); prints the "
                                           "channel id.")
    @click.argument("peer")
    @click.argument("cid")
    @click.option("--range", "block_range", metavar="START:END", help="Only blocks START..END-1 of the dataset.")
    @click.option("--addr", "addrs", multiple=True, metavar="MULTIADDR", help="Dial PEER at this address first.")
    @click.option("--note", default="", help="The default voucher's text.")
    @click.option("--voucher", metavar="TYPE:HEX", help="Send this voucher instead of the default one.")
    @click.option("--wait", is_flag=True, help="Wait until the channel ends (always, without a running node).")
    @pass_ctx
    def command(ctx: Ctx, peer: str, cid: str, block_range: str | None, addrs: tuple[str, ...], note: str,
                voucher: str | None, wait: bool) -> None:
        with open_node(ctx, start=True) as node:
            state = _json(node.transfer.open(peer, cid, direction, _range(block_range), _voucher(note, voucher),
                                             list(addrs) or None))
            if wait or not _running(node):
                state = _follow(ctx, node, state["id"])
        ctx.emit(state, state["id"] if state["status"] not in FINAL else _line(state))
        if state["status"] in ("Failed", "Cancelled"):
            raise click.exceptions.Exit(8)

    return command


_open_command("pull")
_open_command("push")


@transfer.command(name="list")
@pass_ctx
def list_(ctx: Ctx) -> None:
    """Every channel of the node, finished ones too."""
    with open_node(ctx) as node:
        channels = [_json(state) for state in node.transfer.channels()]
    ctx.emit(channels, "\n".join(_line(c) for c in channels) or "no transfer channels")


@transfer.command()
@click.argument("chid")
@pass_ctx
def show(ctx: Ctx, chid: str) -> None:
    """One channel's state."""
    with open_node(ctx) as node:
        ctx.emit(_json(node.transfer.channel(chid)))


def _channel_command(name: str, doc: str) -> None:
    @transfer.command(name=name, help=doc)
    @click.argument("chid")
    @click.option("--wait", is_flag=True, help="Wait until the channel ends.")
    @pass_ctx
    def command(ctx: Ctx, chid: str, wait: bool) -> None:
        with open_node(ctx, start=True) as node:
            state = _json(getattr(node.transfer, name)(chid))
            if wait or (name == "restart" and not _running(node)):
                state = _follow(ctx, node, chid)
        ctx.emit(state, _line(state))


_channel_command("pause", "Pause a channel (our side); the peer is told.")
_channel_command("resume", "Resume a channel paused by our side.")
_channel_command("cancel", "Cancel a channel; the peer is told.")
_channel_command("restart", "Resume an interrupted channel without resending what the recipient has.")


@transfer.command()
@click.argument("chid")
@click.option("--note", default="", help="The default voucher's text.")
@pass_ctx
def voucher(ctx: Ctx, chid: str, note: str) -> None:
    """Send a further default voucher on a channel this node opened."""
    with open_node(ctx, start=True) as node:
        state = _json(node.transfer.send_voucher(chid, note))
    ctx.emit(state, _line(state))


@transfer.command()
@click.option("--push", type=click.Choice(["accept", "reject"]), help="Whether peers may push data here.")
@click.option("--pull", type=click.Choice(["accept", "reject"]), help="Whether peers may pull data from here.")
@click.option("--peer", "peers", multiple=True, help="Accept only these peers (repeat; replaces the list).")
@click.option("--any-peer", is_flag=True, help="Accept every peer again.")
@pass_ctx
def policy(ctx: Ctx, push: str | None, pull: str | None, peers: tuple[str, ...], any_peer: bool) -> None:
    """Show or change which default-voucher transfers this node accepts."""
    kwargs: dict[str, Any] = {}
    if push is not None:
        kwargs["push"] = push == "accept"
    if pull is not None:
        kwargs["pull"] = pull == "accept"
    if any_peer:
        kwargs["any_peer"] = True
    elif peers:
        kwargs["peers"] = list(peers)
    with open_node(ctx) as node:
        from hoard.api import shapes

        result = shapes.policy_json(node.transfer.policy(**kwargs))
    who = "any peer" if result["peers"] is None else ", ".join(result["peers"]) or "no peer"
    ctx.emit(result, f"push: {'accept' if result['push'] else 'reject'}\n"
                     f"pull: {'accept' if result['pull'] else 'reject'}\npeers: {who}")


def register(cli: click.Group) -> None:
    cli.add_command(transfer)
