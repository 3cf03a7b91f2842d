"""Data commands: upload, download, manifest, list, space, exists, delete, info, verify."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from hoard.cli.output import Ctx
from hoard.cli.session import embedded_node
from hoard.errors import NotFoundError

pass_ctx = click.make_pass_decorator(Ctx)


@click.command()
@click.argument("path")
@click.option("--chunk-size", type=int, default=0, show_default=True, help="Block size in bytes (0 = 65536).")
@pass_ctx
def upload(ctx: Ctx, path: str, chunk_size: int) -> None:
    """Upload a file (or - for stdin); prints the manifest CID as the last line."""
    with embedded_node(ctx) as node:
        if path == "-":
            session = node.upload_init("stdin", chunk_size)
            with ctx.progress("uploading", None) as advance:
                while piece := sys.stdin.buffer.read(1 << 20):
                    node.upload_chunk(session, piece)
                    advance(len(piece))
            cid = node.upload_finalize(session)
        else:
            file = Path(path)
            if not file.is_file():
                raise NotFoundError(f"no such file: {path}", path=path)
            session = node.upload_init(str(file.resolve()), chunk_size)
            with ctx.progress(f"uploading {file.name}", file.stat().st_size) as advance:
                cid = node.upload_file(session, on_progress=advance)
        ctx.emit({"cid": cid, "manifest": node.download_manifest(cid)}, cid)


@click.command()
@click.argument("cid")
@click.option("-o", "--output", type=click.Path(dir_okay=False), help="Write to FILE (default: stdout).")
@click.option("--network", is_flag=True, help="Fetch from the network if not stored locally.")
@pass_ctx
def download(ctx: Ctx, cid: str, output: str | None, network: bool) -> None:
    """Download a dataset (or block) by CID to FILE or stdout."""
    with embedded_node(ctx, start=network) as node:
        node.download_init(cid, 0, not network)
        total = node.download_manifest(cid)["datasetSize"] if _is_dataset(node, cid) else None
        with ctx.progress("downloading", total) as advance:
            if output:
                written = node.download_stream(cid, str(Path(output).resolve()), 1 << 20, not network,
                                               on_progress=lambda chunk: advance(len(chunk)))
            else:
                out = sys.stdout.buffer

                def sink(chunk: bytes) -> None:
                    out.write(chunk)
                    advance(len(chunk))

                written = node.download_stream(cid, None, 1 << 20, not network, on_progress=sink)
                out.flush()
        if output:
            ctx.emit({"cid": cid, "path": output, "bytes": written}, f"{written} bytes written to {output}")


def _is_dataset(node, cid: str) -> bool:
    return any(entry["cid"] == cid for entry in node.list())


@click.command()
@click.argument("cid")
@pass_ctx
def manifest(ctx: Ctx, cid: str) -> None:
    """Show a dataset's manifest (JSON)."""
    with embedded_node(ctx) as node:
        ctx.emit(node.download_manifest(cid))


@click.command(name="list")
@pass_ctx
def list_(ctx: Ctx) -> None:
    """List stored datasets."""
    with embedded_node(ctx) as node:
        entries = node.list()
        lines = [f"{e['cid']}  {e['manifest']['datasetSize']:>12}  {e['manifest']['filename'] or ''}" for e in entries]
        ctx.emit(entries, "\n".join(lines) if lines else "(no datasets)")


@click.command()
@pass_ctx
def space(ctx: Ctx) -> None:
    """Show storage space: blocks, quota, used and reserved bytes."""
    with embedded_node(ctx) as node:
        ctx.emit(node.space())


@click.command()
@click.argument("cid")
@pass_ctx
def exists(ctx: Ctx, cid: str) -> None:
    """Say whether a CID is stored locally (exit 0 if so, 1 if not)."""
    with embedded_node(ctx) as node:
        found = node.exists(cid)
    ctx.emit({cid: found}, "true" if found else "false")
    if not found:
        sys.exit(1)


@click.command()
@click.argument("cid")
@pass_ctx
def delete(ctx: Ctx, cid: str) -> None:
    """Delete a dataset (manifest CID) or a single unreferenced block."""
    with embedded_node(ctx) as node:
        node.delete(cid)
    ctx.emit({"deleted": cid}, f"deleted {cid}")


@click.command()
@click.argument("cid")
@pass_ctx
def verify(ctx: Ctx, cid: str) -> None:
    """Re-read a dataset from disk and check every block against its CID."""
    with embedded_node(ctx) as node:
        result = node.verify(cid)
    ctx.emit(result, f"ok: {result['blocks']} blocks, {result['bytes']} bytes verified")


@click.command()
@pass_ctx
def info(ctx: Ctx) -> None:
    """Show version, revision, peer id, SPR and repo."""
    with embedded_node(ctx) as node:
        data = {"version": node.version(), "revision": node.revision(), "peerId": node.peer_id(),
                "spr": node.spr(), "repo": node.repo()}
    ctx.emit(data, "\n".join(f"{k}: {v}" for k, v in data.items()))


def register(cli: click.Group) -> None:
    for command in (upload, download, manifest, list_, space, exists, delete, verify, info):
        cli.add_command(command)

