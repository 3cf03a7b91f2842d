"""hugo file commands: `hoard file write INO [--index N] PATH`, `hoard file read INO [--version K]`.

Like `hoard blob`, they call `node.files` on the node `open_node` picks (cli/session.py): a
running node through its REST API (`--api URL`, or the node running on the data dir), else an
embedded node opened on the data dir.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import click

from hoard.cli.blob import refuse_grpc, stdin_pieces
from hoard.cli.output import Ctx
from hoard.cli.paths import input_file
from hoard.cli.session import open_node
from hoard.errors import InvalidArgumentError
from hoard.limits import MAX_FILE_BLOCK_BYTES as MAX_BLOCK_SIZE  # hugo: up to 32 MiB a block
from hoard.outfile import OutputFile

pass_ctx = click.make_pass_decorator(Ctx)
DEFAULT_BLOCK = 512 << 10  # hugo's block size (DIGEST §2)
U64 = click.IntRange(0, (1 << 64) - 1)


@click.group(name="file")
@click.option("--grpc", "grpc_addr", metavar="HOST:PORT", hidden=True)
def file_(grpc_addr: str | None) -> None:
    """hugo files: inode numbers with indexed blocks; every write makes a new version."""
    refuse_grpc("file", grpc_addr)


def _blocks(path: str, size: int) -> Iterator[bytes]:
    if path == "-":
        yield from stdin_pieces(size)
        return
    with open(path, "rb") as fh:
        while block := fh.read(size):
            yield block


@file_.command()
@click.argument("ino", type=U64)
@click.argument("path")
@click.option("--index", type=U64, default=None, help="Write PATH as the block at this index (create or overwrite).")
@click.option("--block-size", type=click.IntRange(1, MAX_BLOCK_SIZE), default=DEFAULT_BLOCK, show_default=True,
              help="Without --index: append PATH in blocks of this size.")
@pass_ctx
def write(ctx: Ctx, ino: int, path: str, index: int | None, block_size: int) -> None:
    """Write PATH (or - for stdin) to file INO: one block at --index, else appended as blocks."""
    if path != "-":
        input_file(path, "file write")
    with open_node(ctx) as node:
        if index is not None:
            data = sys.stdin.buffer.read(MAX_BLOCK_SIZE + 1) if path == "-" else Path(path).read_bytes()
            if len(data) > MAX_BLOCK_SIZE:
                raise InvalidArgumentError(f"{path} is larger than one block ({MAX_BLOCK_SIZE} bytes); "
                                           "write it without --index to append it as several blocks")
            result = node.files.write(ino, data, index)
        else:
            result = node.files.stream_write(ino, _blocks(path, block_size))
    indices = list(result.indices)
    span = "no blocks" if not indices else (f"block {indices[0]}" if len(indices) == 1
                                            else f"blocks {indices[0]}..{indices[-1]}")
    version = "" if result.version is None else f" (version {result.version})"
    ctx.emit({"ino": ino, "indices": indices, "version": result.version}, f"wrote {span} of file {ino}{version}")


@file_.command()
@click.argument("ino", type=U64)
@click.option("--version", "version", type=click.IntRange(1, (1 << 64) - 1), default=None,
              help="Read the file as it was at this version (default: the latest).")
@click.option("--start", type=U64, default=None, help="First block index (inclusive).")
@click.option("--end", type=U64, default=None, help="Last block index (inclusive).")
@click.option("-o", "--output", type=click.Path(dir_okay=False), help="Write to FILE (default: stdout).")
@pass_ctx
def read(ctx: Ctx, ino: int, version: int | None, start: int | None, end: int | None, output: str | None) -> None:
    """Write the blocks of file INO, in index order, to stdout or FILE."""
    blocks = 0
    written = 0
    with open_node(ctx) as node, node.files.read(ino, start, end, version) as stream:
        if output:
            with OutputFile(output, "file read") as fh:  # a temp file of its own, renamed at the end
                for block in stream:
                    fh.write(block.data)
                    blocks += 1
                    written += len(block.data)
        else:
            for block in stream:
                sys.stdout.buffer.write(block.data)
                blocks += 1
                written += len(block.data)
            sys.stdout.buffer.flush()
    if output:
        ctx.emit({"ino": ino, "path": output, "blocks": blocks, "bytes": written},
                 f"{blocks} blocks, {written} bytes written to {output}")


def register(cli: click.Group) -> None:
    cli.add_command(file_)
