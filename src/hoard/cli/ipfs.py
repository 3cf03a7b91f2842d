"""IPFS commands: `hoard car export|import`, `hoard ipfs ls|stat|rm`, and the UnixFS halves of
`hoard upload --unixfs` and `hoard download <unixfs-cid>` (cli/data.py calls them).

They call `node.ipfs` on what `open_node` gave: an embedded node's, or a running node's through
`NodeClient.ipfs` (api/client_ipfs.py: the `/ipfs/...` REST routes and the trustless gateway
for blocks). A download always verifies every block on this side too (`unixfs.read_file` /
`unixfs.export` check each block against its CID).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from hoard.api import shapes
from hoard.cli.output import Ctx
from hoard.cli.session import open_node
from hoard.content.formats import unixfs
from hoard.errors import InvalidArgumentError, NotFoundError
from hoard.ids.cid import CID, DAG_PB, RAW, SHA2_256

pass_ctx = click.make_pass_decorator(Ctx)

PIECE = 1 << 20


def is_unixfs_cid(text: str) -> bool:
    """Whether `text` names a UnixFS node (dag-pb, or a raw sha2-256 block) rather than a hoard dataset."""
    try:
        cid = CID.parse(text)
    except InvalidArgumentError:
        return False
    return cid.codec == DAG_PB or (cid.codec == RAW and cid.hash_code == SHA2_256)


def display(cid: CID) -> str:
    return str(cid) if cid.version == 0 else cid.to_base32()


def ipfs_of(node: Any) -> Any:
    """`node.ipfs` of what `open_node` gave: an embedded node's, or `NodeClient.ipfs` (REST)."""
    return node.ipfs


# -- used by `hoard upload --unixfs` and `hoard download` (cli/data.py) ------------------------
def upload_unixfs(ctx: Ctx, node: Any, path: str, cid_version: int, raw_leaves: bool) -> None:
    """Import PATH as UnixFS; prints the root CID (as kubo prints it) as the last line."""
    if raw_leaves and cid_version == 0:
        raise InvalidArgumentError("--raw-leaves needs --cid-version 1 (as in kubo)")
    if not Path(path).exists():
        raise NotFoundError(f"no such file or directory: {path}", path=path)
    entry = ipfs_of(node).add(str(Path(path).resolve()), cid_version, raw_leaves, Path(path).name, True)
    ctx.emit(shapes.ipfs_root_json(entry), display(entry.cid))


def download_unixfs(ctx: Ctx, node: Any, cid_text: str, output: str | None, network: bool) -> None:
    """Write a UnixFS file or tree to OUTPUT (a file to stdout without -o), verifying every block."""
    ops = ipfs_of(node)
    cid = CID.parse(cid_text)
    if network:
        try:
            ops.stat(cid)
        except NotFoundError:
            ops.fetch(cid)
    if output is None:
        out = sys.stdout.buffer
        written = 0
        for piece in unixfs.read_file(cid, ops.block):
            out.write(piece)
            written += len(piece)
        out.flush()
        return
    written = unixfs.export(cid, ops.block, output)
    ctx.emit({"cid": cid_text, "path": output, "bytes": written}, f"{written} bytes written to {output}")


# -- hoard car ----------------------------------------------------------------------------------
@click.group()
def car() -> None:
    """CAR files (content-addressed archives): export a DAG, import blocks."""


@car.command(name="export")
@click.argument("cid")
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False), help="Write the CAR to FILE.")
@click.option("--v2", "v2", is_flag=True, help="Write a CARv2 (embedded node only; default CARv1).")
@pass_ctx
def car_export(ctx: Ctx, cid: str, output: str, v2: bool) -> None:
    """Write the stored DAG under CID as a CARv1 file (every block verified)."""
    CID.parse(cid)
    target = Path(output)
    if target.exists():
        raise InvalidArgumentError(f"{output} already exists")
    with open_node(ctx) as node:
        written = node.ipfs.car_export(cid, str(target.resolve()), 2 if v2 else 1)
    ctx.emit({"cid": cid, "path": output, "bytes": written}, f"{written} bytes written to {output}")


@car.command(name="import")
@click.argument("file", type=click.Path(dir_okay=False, exists=True))
@pass_ctx
def car_import(ctx: Ctx, file: str) -> None:
    """Store the blocks of a CARv1/CARv2 FILE (each verified) and record its roots; all or nothing."""
    with open_node(ctx) as node:
        result = ipfs_of(node).car_import(str(Path(file).resolve()), True)
    roots = "\n".join(display(r) for r in result.roots)
    ctx.emit(shapes.car_import_json(result), f"imported {result.blocks} blocks ({result.bytes} bytes), roots:\n{roots}")


# -- hoard ipfs -----------------------------------------------------------------------------------
@click.group()
def ipfs() -> None:
    """The stored IPFS roots (UnixFS files and directories, CAR roots)."""


@ipfs.command(name="ls")
@pass_ctx
def ipfs_ls(ctx: Ctx) -> None:
    """List the stored IPFS roots."""
    with open_node(ctx) as node:
        entries = ipfs_of(node).list()
    lines = [f"{display(e.cid)}  {e.size:>12}  {e.format}  {e.filename or ''}" for e in entries]
    ctx.emit([shapes.ipfs_root_json(e) for e in entries], "\n".join(lines) if lines else "(no IPFS roots)")


@ipfs.command(name="stat")
@click.argument("cid")
@pass_ctx
def ipfs_stat(ctx: Ctx, cid: str) -> None:
    """Show a stored root's catalog entry (JSON)."""
    with open_node(ctx) as node:
        ctx.emit(shapes.ipfs_root_json(ipfs_of(node).stat(cid)))


@ipfs.command(name="rm")
@click.argument("cid")
@pass_ctx
def ipfs_rm(ctx: Ctx, cid: str) -> None:
    """Remove a stored root; its blocks nobody else holds are deleted."""
    with open_node(ctx) as node:
        ipfs_of(node).remove(cid)
    ctx.emit({"removed": cid}, f"removed {cid}")


def register(cli: click.Group) -> None:
    cli.add_command(car)
    cli.add_command(ipfs)
