"""`hoard capi build OUTDIR`: write libstorage.h and libstorage.so (the Logos Storage C ABI)."""

from __future__ import annotations

import click

from hoard.cli.output import Ctx

pass_ctx = click.make_pass_decorator(Ctx)


@click.group()
def capi() -> None:
    """The C ABI: libstorage.h and a shared library C, Go or Rust programs link against."""


@capi.command()
@click.argument("outdir", type=click.Path(file_okay=False))
@click.option("-v", "--verbose", is_flag=True, help="Show the compiler's command lines.")
@click.option("--abi", type=click.Choice(["seed", "current"]), default="seed", show_default=True,
              help="The header generation: seed (every call takes a callback) or current (today's "
                   "logos-storage-nim: char *storage_version(void *), int storage_destroy(void *), ...).")
@pass_ctx
def build(ctx: Ctx, outdir: str, verbose: bool, abi: str) -> None:
    """Build OUTDIR/libstorage.h and OUTDIR/libstorage.so for the Python hoard is installed in.

    Compile against it with `cc app.c -IOUTDIR -LOUTDIR -lstorage` and run with
    LD_LIBRARY_PATH=OUTDIR (or -Wl,-rpath,OUTDIR). See docs/capi.md.
    """
    from hoard.capi import build as build_library

    built = build_library(outdir, verbose=verbose, abi=abi)
    ctx.emit({"header": str(built.header), "library": str(built.library)},
             f"{built.header}\n{built.library}")


def register(cli: click.Group) -> None:
    cli.add_command(capi)
