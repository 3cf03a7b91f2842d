"""Blob commands (tvix castore semantics): `hoard blob put PATH`, `stat DIGEST`, `cat DIGEST`.

They call `node.blobs` on the node `open_node` picks (cli/session.py): a running node through
its REST API (`--api URL`, or the node running on the data dir), else an embedded node opened
on the data dir.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from typing import Any

import click

from hoard.cli.output import Ctx
from hoard.cli.paths import input_file
from hoard.cli.session import open_node
from hoard.errors import InvalidArgumentError
from hoard.outfile import OutputFile

pass_ctx = click.make_pass_decorator(Ctx)


def refuse_grpc(command: str, grpc_addr: str | None) -> None:
    """The old `--grpc HOST:PORT` (hidden): the CLI reaches a running node through its REST API."""
    if grpc_addr is not None:
        raise InvalidArgumentError(f"hoard {command} reaches a running node through its REST API: use --api URL "
                                   "(or nothing, for the node running on the data dir)")


def stdin_pieces(size: int = 1 << 20) -> Iterator[bytes]:
    while piece := sys.stdin.buffer.read(size):
        yield piece


@click.group()
@click.option("--grpc", "grpc_addr", metavar="HOST:PORT", hidden=True)
def blob(grpc_addr: str | None) -> None:
    """castore blobs: content addressed by the BLAKE3 of all their bytes."""
    refuse_grpc("blob", grpc_addr)


@blob.command()
@click.argument("path")
@pass_ctx
def put(ctx: Ctx, path: str) -> None:
    """Store a file (or - for stdin) as a blob; prints its digest (b3:<base64>) as the last line."""
    if path == "-":
        source: Any = stdin_pieces()
        total = None
    else:
        file = input_file(path, "blob put")
        source, total = file.resolve(), file.stat().st_size
    with open_node(ctx) as node, ctx.progress("putting", total) as advance:
        stat = node.blobs.put(source, on_progress=advance)
    lines = [f"size: {stat.size}"] + ([f"manifest: {stat.manifest}"] if stat.manifest else []) + [str(stat.digest)]
    ctx.emit(stat.to_json(), "\n".join(lines))


@blob.command()
@click.argument("digest")
@pass_ctx
def stat(ctx: Ctx, digest: str) -> None:
    """Show a blob's size, dataset (manifest CID) and chunks. DIGEST is b3:<base64> or hex."""
    with open_node(ctx) as node:
        result = node.blobs.stat(digest)
    chunks = result.chunks or ()
    lines = [f"digest: {result.digest}", f"hex: {result.digest.hex()}", f"size: {result.size}"]
    if result.manifest is not None:
        lines.append(f"manifest: {result.manifest}")
    lines.append(f"chunks: {len(chunks) or 'one (the blob itself)'}")
    lines += [f"  {c.digest}  {c.size}" for c in chunks]
    ctx.emit(result.to_json(), "\n".join(lines))


@blob.command()
@click.argument("digest")
@click.option("-o", "--output", type=click.Path(dir_okay=False), help="Write to FILE (default: stdout).")
@pass_ctx
def cat(ctx: Ctx, digest: str, output: str | None) -> None:
    """Write a blob's bytes (or one chunk's, by its digest) to stdout or FILE."""
    written = 0
    with open_node(ctx) as node, node.blobs.read(digest) as pieces:
        if output:
            with OutputFile(output, "blob cat") as fh:  # a temp file of its own, renamed at the end
                for piece in pieces:
                    fh.write(piece)
                    written += len(piece)
        else:
            out = sys.stdout.buffer
            for piece in pieces:
                out.write(piece)
                written += len(piece)
            out.flush()
    if output:
        ctx.emit({"digest": digest, "path": output, "bytes": written}, f"{written} bytes written to {output}")


def register(cli: click.Group) -> None:
    cli.add_command(blob)
