"""`hoard connect` and `hoard peers`: the running node's connections.

Both need a running node (`hoard node start`, or `--api URL`): an embedded node would connect
for one command and close again, which helps nobody, so without one they say so.

`connect` takes a peer the usual ways:
  hoard connect /ip4/10.0.0.5/tcp/8070/p2p/12D3KooW...      a full multiaddr (several: repeat)
  hoard connect 12D3KooW... /ip4/10.0.0.5/tcp/8070         a peer ID and its addresses
  hoard connect spr:CiUIAhIh...                            a signed peer record
  hoard connect 12D3KooW...                                a peer ID alone (found through the DHT)
"""

from __future__ import annotations

from typing import Any

import click

from hoard.cli.output import Ctx, print_table
from hoard.cli.session import load_config, running_api
from hoard.errors import InvalidArgumentError, StateError

pass_ctx = click.make_pass_decorator(Ctx)


def parse_target(target: str, addrs: tuple[str, ...]) -> tuple[str, list[str]]:
    """(peer id, multiaddrs without /p2p/) from what `hoard connect` was given."""
    from hoard.ids.peer import SPR_PREFIX, PeerId
    from hoard.net.host import parse_peer_addrs, parse_spr

    target = target.strip()
    if target.startswith(SPR_PREFIX):
        if addrs:
            raise InvalidArgumentError("an SPR carries its addresses: give no others")
        _envelope, peer, spr_addrs, _seq = parse_spr(target)
        if not spr_addrs:
            raise InvalidArgumentError(f"the SPR of {peer} has no addresses to dial")
        return str(peer), [str(a) for a in parse_peer_addrs(spr_addrs, peer)]
    if target.startswith("/"):
        texts = [target, *addrs]
        named = {_p2p(t) for t in texts}
        if None in named or len(named) != 1:
            raise InvalidArgumentError("give full multiaddrs ending in /p2p/<peer id>, all of the same peer "
                                       "(or: hoard connect PEER_ID ADDR...)")
        peer_text = str(named.pop())
        return peer_text, [str(a) for a in parse_peer_addrs(texts, PeerId(peer_text))]
    checked = _checked_peer_id(target)
    return checked, [str(a) for a in parse_peer_addrs(addrs, PeerId(checked))]


def _p2p(text: str) -> str | None:
    import multiaddr

    try:
        addr = multiaddr.Multiaddr(text)
    except Exception as exc:
        raise InvalidArgumentError(f"invalid address {text!r}: {exc}", address=text) from exc
    try:
        return addr.value_for_protocol("p2p") or None
    except Exception:  # noqa: BLE001 - no /p2p/ part
        return None


def _checked_peer_id(text: str) -> str:
    import multihash  # type: ignore[import-untyped]

    from hoard.ids.peer import PeerId

    try:
        peer = PeerId(text)
        multihash.decode(peer.to_bytes())
    except Exception as exc:
        raise InvalidArgumentError(f"invalid peer id: {text!r} (give a peer id, a /…/p2p/<id> multiaddr or an SPR)",
                                   peer_id=text) from exc
    return str(peer)


def require_running(ctx: Ctx, what: str) -> str:
    """The REST address of the node to use; StateError with a hint when none runs."""
    url = ctx.api or running_api(ctx)
    if url is None:
        where = load_config(ctx).data_dir
        raise StateError(f"{what} needs a running node, and none runs on {where}: "
                         f"start one with `hoard node start` (or name one with --api URL)", data_dir=str(where))
    return url


def _client(ctx: Ctx, url: str) -> Any:
    from hoard.api.auth import load_token
    from hoard.api.client import NodeClient

    return NodeClient(url, load_token(load_config(ctx)))


@click.command()
@click.argument("target")
@click.argument("addrs", nargs=-1)
@pass_ctx
def connect(ctx: Ctx, target: str, addrs: tuple[str, ...]) -> None:
    """Connect the running node to a peer: a /…/p2p/<id> multiaddr, PEER_ID [ADDR...], or an SPR."""
    peer, dial = parse_target(target, addrs)
    url = require_running(ctx, "connect")
    with _client(ctx, url) as node:
        node.connect(peer, dial)
    ctx.emit({"connected": peer, "addrs": dial}, f"connected to {peer}")


@click.command()
@pass_ctx
def peers(ctx: Ctx) -> None:
    """List the running node's connected peers: addresses, latency, agent."""
    from hoard.api import shapes

    url = require_running(ctx, "peers")
    with _client(ctx, url) as node:
        found = node.net.peer_list()
    if ctx.json:
        ctx.emit([shapes.connected_peer_json(p) for p in found])
        return
    if not found:
        click.echo("(no peers connected)")
        return
    rows = [[str(p.peer_id), "\n".join(p.addresses) or "-", p.direction,
             "-" if p.latency_ms is None else f"{p.latency_ms:.1f} ms", p.agent or "-"] for p in found]
    print_table(["peer id", "addresses", "direction", "latency", "agent"], rows, right=("latency",))


def register(cli: click.Group) -> None:
    for command in (connect, peers):
        cli.add_command(command)
