"""Data-transfer commands: `hoard transfer pull|push PEER CID`, `list`, `show`, `pause|resume|cancel|restart CHID`.

They talk to a running node through its gRPC API (`--grpc HOST:PORT`, or the node running on
the data dir). Without a running node they open the node on the data dir themselves: `list`,
`show` and `policy` read its persisted channels; `pull`, `push` and `restart` start it and
wait until the channel ends (the node stops when the command does); the others act and return.

Channels are opened with the built-in `DefaultVoucher` (its text: `--note`), which the peer
accepts or refuses by its transfer policy (`hoard transfer policy`); `--voucher TYPE:HEX`
sends another registered voucher type instead.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import click

from hoard.cli.blob import GRPC_HELP
from hoard.cli.blob import _running_grpc as running_grpc
from hoard.cli.output import Ctx
from hoard.cli.session import embedded_node, load_config
from hoard.errors import InvalidArgumentError

pass_ctx = click.make_pass_decorator(Ctx)
FINAL = ("Completed", "Failed", "Cancelled")


def _summary(message: Any) -> dict[str, Any]:
    """A gRPC `Channel` as the node's channel summary (the `--json` shape of both backends)."""
    def vouchers(items: Any) -> list[dict[str, str]]:
        return [{"type": v.type, "data": base64.b64encode(v.data).decode()} for v in items]

    return {
        "id": message.channel_id, "initiator": message.initiator, "responder": message.responder,
        "transferId": message.transfer_id, "status": message.status, "statusCode": message.status_code,
        "isPull": message.is_pull, "baseCid": message.base_cid,
        "selector": {"range": [message.range.start, message.range.end]} if message.HasField("range") else None,
        "sender": message.sender, "recipient": message.recipient, "selfPeer": message.self_peer,
        "totalSize": message.total_size, "sent": message.sent, "received": message.received,
        "queued": message.queued, "message": message.message, "vouchers": vouchers(message.vouchers),
        "voucherResults": vouchers(message.voucher_results), "receivedBlocks": message.received_blocks,
        "sentBlocks": message.sent_blocks, "queuedBlocks": message.queued_blocks,
    }


class _Remote:
    """A running node, through its gRPC transfer service."""

    started = True

    def __init__(self, address: str, token: str | None = None) -> None:
        from hoard.api.grpc.transfer import TransferClient

        self.client = TransferClient(address, token=token)

    def open(self, direction: str, peer: str, cid: str, selector: Any, voucher: Any,
             addrs: list[str]) -> dict[str, Any]:
        start, end = selector["range"] if selector else (None, None)
        note, typed = (voucher, None) if not isinstance(voucher, dict) else ("", (
            voucher["type"], base64.b64decode(voucher["data"])))
        return _summary(self.client.open(direction, peer, cid, start=start, end=end, note=note or "", voucher=typed,
                                         addrs=addrs))

    def op(self, name: str, chid: str) -> dict[str, Any]:
        return _summary(self.client.channel({"show": "GetChannel"}.get(name, name.title()), chid))

    def list(self) -> list[dict[str, Any]]:
        return [_summary(c) for c in self.client.list()]

    def policy(self, **kwargs: Any) -> dict[str, Any]:
        fields: dict[str, Any] = {k: kwargs[k] for k in ("push", "pull") if k in kwargs}
        if "peers" in kwargs or kwargs.get("any_peer"):
            fields.update(set_peers=True, peers=kwargs.get("peers") or [])
        reply = self.client.policy(**fields)
        return {"push": reply.push, "pull": reply.pull, "peers": None if reply.any_peer else list(reply.peers)}

    def send_voucher(self, chid: str, note: str) -> dict[str, Any]:
        return _summary(self.client.send_voucher(chid, note))

    def follow(self, chid: str, on_event: Callable[[str, dict[str, Any]], None]) -> dict[str, Any]:
        for event in self.client.events(chid, end_when_done=True):
            on_event(event.name, _summary(event.channel))
        return self.op("show", chid)  # the stream ends at once for a channel that ended already

    def close(self) -> None:
        self.client.close()


class _Embedded:
    """The node on the data dir, in this process."""

    def __init__(self, node: Any, started: bool) -> None:
        self.node = node
        self.started = started

    def open(self, direction: str, peer: str, cid: str, selector: Any, voucher: Any,
             addrs: list[str]) -> dict[str, Any]:
        from hoard.api import shapes

        return shapes.channel_json(self.node.transfer.open(peer, cid, direction, selector, voucher, addrs or None))

    def op(self, name: str, chid: str) -> dict[str, Any]:
        from hoard.api import shapes

        transfer = self.node.transfer
        ops = {"show": transfer.channel, "pause": transfer.pause, "resume": transfer.resume,
               "cancel": transfer.cancel, "restart": transfer.restart}
        return shapes.channel_json(ops[name](chid))

    def list(self) -> list[dict[str, Any]]:
        from hoard.api import shapes

        return [shapes.channel_json(state) for state in self.node.transfer.channels()]

    def policy(self, **kwargs: Any) -> dict[str, Any]:
        from hoard.api import shapes

        return shapes.policy_json(self.node.transfer.policy(**kwargs))

    def send_voucher(self, chid: str, note: str) -> dict[str, Any]:
        from hoard.api import shapes

        return shapes.channel_json(self.node.transfer.send_voucher(chid, note))

    def follow(self, chid: str, on_event: Callable[[str, dict[str, Any]], None]) -> dict[str, Any]:
        import queue

        from hoard.api import shapes

        events: queue.SimpleQueue[Any] = queue.SimpleQueue()
        unsubscribe = self.node.data_transfer.subscribe_to_events(
            lambda event, state: events.put((event.code.name, shapes.channel_json(state)))
            if str(state.channel_id) == chid else None)
        try:
            last = self.op("show", chid)
            while last["status"] not in FINAL:
                name, last = events.get()
                on_event(name, last)
            return last
        finally:
            unsubscribe()


@contextmanager
def transfer_backend(ctx: Ctx, start: bool) -> Iterator[Any]:
    address = click.get_current_context().meta.get("hoard.grpc") or running_grpc(ctx)
    if address:
        from hoard.api.auth import load_token

        backend = _Remote(address, load_token(load_config(ctx)))
        try:
            yield backend
        finally:
            backend.close()
        return
    with embedded_node(ctx, start=start) as node:
        yield _Embedded(node, start)


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


def _follow(ctx: Ctx, backend: Any, chid: str) -> dict[str, Any]:
    def show(name: str, state: dict[str, Any]) -> None:
        if not ctx.json:
            click.echo(f"{name}: {state['status']}" + (f" ({state['message']})" if state["message"] else ""),
                       err=True)

    final: dict[str, Any] = backend.follow(chid, show)
    return final


@click.group()
@click.option("--grpc", "grpc_addr", envvar="HOARD_GRPC", metavar="HOST:PORT", help=GRPC_HELP)
@click.pass_context
def transfer(click_ctx: click.Context, grpc_addr: str | None) -> None:
    """Data transfers (go-data-transfer): pull data from peers, push data to them."""
    click_ctx.meta["hoard.grpc"] = grpc_addr


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
        with transfer_backend(ctx, start=True) as backend:
            state = backend.open(direction, peer, cid, _range(block_range), _voucher(note, voucher), list(addrs))
            if wait or not isinstance(backend, _Remote):
                state = _follow(ctx, backend, state["id"])
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
    with transfer_backend(ctx, start=False) as backend:
        channels = backend.list()
    ctx.emit(channels, "\n".join(_line(c) for c in channels) or "no transfer channels")


@transfer.command()
@click.argument("chid")
@pass_ctx
def show(ctx: Ctx, chid: str) -> None:
    """One channel's state."""
    with transfer_backend(ctx, start=False) as backend:
        ctx.emit(backend.op("show", chid))


def _channel_command(name: str, doc: str) -> None:
    @transfer.command(name=name, help=doc)
    @click.argument("chid")
    @click.option("--wait", is_flag=True, help="Wait until the channel ends.")
    @pass_ctx
    def command(ctx: Ctx, chid: str, wait: bool) -> None:
        with transfer_backend(ctx, start=True) as backend:
            state = backend.op(name, chid)
            if wait or (name == "restart" and not isinstance(backend, _Remote)):
                state = _follow(ctx, backend, chid)
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
    with transfer_backend(ctx, start=True) as backend:
        state = backend.send_voucher(chid, note)
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
    with transfer_backend(ctx, start=False) as backend:
        result = backend.policy(**kwargs)
    who = "any peer" if result["peers"] is None else ", ".join(result["peers"]) or "no peer"
    ctx.emit(result, f"push: {'accept' if result['push'] else 'reject'}\n"
                     f"pull: {'accept' if result['pull'] else 'reject'}\npeers: {who}")


def register(cli: click.Group) -> None:
    cli.add_command(transfer)
