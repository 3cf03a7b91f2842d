"""Blob commands (tvix castore semantics): `hoard blob put PATH`, `stat DIGEST`, `cat DIGEST`.

Commands talk to a running node through its gRPC API (`--grpc HOST:PORT`, or the node running
on the data dir), else to an embedded node opened on the data dir.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import click

from hoard.cli.output import Ctx
from hoard.cli.paths import input_file
from hoard.cli.session import embedded_node, load_config
from hoard.outfile import OutputFile

pass_ctx = click.make_pass_decorator(Ctx)
GRPC_HELP = "Use the gRPC API of a running node at HOST:PORT (default: the node running on the data dir, if any)."


def _running_grpc(ctx: Ctx) -> str | None:
    from hoard.node.repo import read_runtime_info

    info = read_runtime_info(load_config(ctx).data_dir)
    if not info or not info.get("grpcAddr"):
        return None
    try:
        os.kill(int(info["pid"]), 0)
    except (KeyError, ValueError, ProcessLookupError):
        return None  # a node that died without clearing its runtime file
    except PermissionError:
        pass  # alive, another user's
    return str(info["grpcAddr"])


@contextmanager
def node_backend(ctx: Ctx, grpc_addr: str | None) -> Iterator[Any]:
    """A gRPC client of a running node, else an embedded node; either has the blob_*/file_* methods."""
    address = grpc_addr or _running_grpc(ctx)
    if address:
        from hoard.api.auth import load_token
        from hoard.api.grpc.client import GrpcClient

        with GrpcClient(address, token=load_token(load_config(ctx))) as client:
            yield client
    else:
        with embedded_node(ctx) as node:
            yield node


def stdin_pieces(size: int = 1 << 20) -> Iterator[bytes]:
    while piece := sys.stdin.buffer.read(size):
        yield piece


@click.group()
@click.option("--grpc", "grpc_addr", envvar="HOARD_GRPC", metavar="HOST:PORT", help=GRPC_HELP)
@click.pass_context
def blob(click_ctx: click.Context, grpc_addr: str | None) -> None:
    """castore blobs: content addressed by the BLAKE3 of all their bytes."""
    click_ctx.meta["hoard.grpc"] = grpc_addr


def _grpc_addr() -> str | None:
    return click.get_current_context().meta.get("hoard.grpc")


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
    with node_backend(ctx, _grpc_addr()) as node, ctx.progress("putting", total) as advance:
        stat = node.blobs.put(source, on_progress=advance)
    lines = [f"size: {stat.size}"] + ([f"manifest: {stat.manifest}"] if stat.manifest else []) + [str(stat.digest)]
    ctx.emit(stat.to_json(), "\n".join(lines))


@blob.command()
@click.argument("digest")
@pass_ctx
def stat(ctx: Ctx, digest: str) -> None:
    """Show a blob's size, dataset (manifest CID) and chunks. DIGEST is b3:<base64> or hex."""
    with node_backend(ctx, _grpc_addr()) as node:
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
    with node_backend(ctx, _grpc_addr()) as node:
        pieces = node.blobs.read(digest)
        try:
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
        finally:
            close = getattr(pieces, "close", None)
            if close is not None:
                close()
    if output:
        ctx.emit({"digest": digest, "path": output, "bytes": written}, f"{written} bytes written to {output}")


def register(cli: click.Group) -> None:
    cli.add_command(blob)
