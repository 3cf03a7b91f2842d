"""The `hoard` command: `hoard [--data-dir DIR] [--config FILE] [--json] COMMAND`.

Commands run against an embedded node opened on the data dir. Command groups live in sibling
modules and are registered in COMMAND_MODULES.
"""

from __future__ import annotations

import importlib
import sys
from typing import Any

import click

from hoard.cli.output import Ctx, fail
from hoard.errors import HoardError

COMMAND_MODULES = ["hoard.cli.data", "hoard.cli.node_cmd", "hoard.cli.peers",
    "hoard.cli.capi_cmd",
    "hoard.cli.blob",
    "hoard.cli.file",
    "hoard.cli.log",
    "hoard.cli.transfer",
    "hoard.cli.ipfs",
]


class _Group(click.Group):
    """Turns hoard errors (and a few OS ones) into one line and the error's exit code."""

    def invoke(self, ctx: click.Context) -> Any:
        as_json = bool(ctx.params.get("as_json"))
        try:
            return super().invoke(ctx)
        except HoardError as exc:
            fail(exc.message, exc.exit_code, as_json, str(exc.code))
        except KeyboardInterrupt:
            fail("interrupted", 130, as_json, "interrupted")
        except BrokenPipeError:
            sys.exit(0)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--data-dir", type=click.Path(file_okay=False), envvar="HOARD_DATA_DIR",
              help="The node's data dir (default ./hoard-data, or data-dir from --config).")
@click.option("--config", "config", type=click.Path(dir_okay=False), envvar="HOARD_CONFIG",
              help="A JSON config file with Logos option names (data-dir, storage-quota, ...).")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable JSON output.")
@click.option("--api", default=None, help="Use the REST API of a running node at this URL.")
@click.version_option(package_name="hoard", prog_name="hoard")
@click.pass_context
def cli(ctx: click.Context, data_dir: str | None, config: str | None, as_json: bool, api: str | None) -> None:
    """hoard: a peer-to-peer data plane. Store, fetch, move and log content-addressed data."""
    ctx.obj = Ctx(data_dir, config, as_json, api)


for _module in COMMAND_MODULES:
    importlib.import_module(_module).register(cli)


def main() -> None:
    cli(prog_name="hoard")


if __name__ == "__main__":
    main()
