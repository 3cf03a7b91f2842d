"""`hoard capi build OUTDIR`: write libstorage.h and libstorage.so (the Logos Storage C ABI), and gdp.h and
libgdp.so (the GDP programmatic API)."""

from __future__ import annotations

import click

from hoard.cli.output import Ctx

pass_ctx = click.make_pass_decorator(Ctx)


@click.group()
def capi() -> None:
    """The C ABIs: libstorage.h and gdp.h, and the shared libraries C, Go or Rust programs link against."""


@capi.command()
@click.argument("outdir", type=click.Path(file_okay=False))
@click.option("-v", "--verbose", is_flag=True, help="Show the compiler's command lines.")
@click.option("--abi", type=click.Choice(["seed", "current"]), default="seed", show_default=True,
              help="The header generation: seed (every call takes a callback) or current (today's "
                   "logos-storage-nim: char *storage_version(void *), int storage_destroy(void *), ...).")
@pass_ctx
def build(ctx: Ctx, outdir: str, verbose: bool, abi: str) -> None:
    """Build OUTDIR/libstorage.h and OUTDIR/libstorage.so, and the GDP library OUTDIR/gdp.h and
    OUTDIR/libgdp.so, for the Python hoard is installed in.

    Compile against them with `cc app.c -IOUTDIR -LOUTDIR -lstorage` (or `-lgdp`) and run with
    LD_LIBRARY_PATH=OUTDIR (or -Wl,-rpath,OUTDIR). See docs/capi.md and docs/gdp-capi.md.
    """
    from hoard.capi import build as build_library
    from hoard.capi.gdp_build import build as build_gdp

    built = build_library(outdir, verbose=verbose, abi=abi)
    gdp = build_gdp(outdir, verbose=verbose)
    ctx.emit({"header": str(built.header), "library": str(built.library),
              "gdpHeader": str(gdp.header), "gdpLibrary": str(gdp.library)},
             f"{built.header}\n{built.library}\n{gdp.header}\n{gdp.library}")


def register(cli: click.Group) -> None:
    cli.add_command(capi)
