"""The `hoard` command: `hoard [--data-dir DIR] [--config FILE] [--json] COMMAND`.

Commands run against an embedded node opened on the data dir. Command groups live in sibling
modules, each with a `register(group)`; COMMANDS names the module of every command, which is
imported when the command is used (so `hoard list` loads only `hoard.cli.data`; `hoard --help`
loads them all, for their summaries).
"""

from __future__ import annotations

import importlib
import sys
from typing import Any

import click

from hoard.cli.output import Ctx, fail
from hoard.errors import HoardError

COMMANDS: dict[str, str] = {  # command -> the module registering it (tests/cli checks it is exact)
    **dict.fromkeys(["upload", "download", "fetch", "manifest", "list", "space", "exists", "delete", "verify",
                     "info"], "hoard.cli.data"),
    "node": "hoard.cli.node_cmd", "keep": "hoard.cli.node_cmd",
    "connect": "hoard.cli.peers", "peers": "hoard.cli.peers",
    "capi": "hoard.cli.capi_cmd",
    "blob": "hoard.cli.blob",
    "file": "hoard.cli.file",
    "log": "hoard.cli.log",
    "transfer": "hoard.cli.transfer",
    "car": "hoard.cli.ipfs", "ipfs": "hoard.cli.ipfs",
}
COMMAND_MODULES = list(dict.fromkeys(COMMANDS.values()))


class _Group(click.Group):
    """Loads a command's module when the command is used; turns hoard errors (and a few OS
    ones) into one line and the error's exit code."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*self.commands, *COMMANDS})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        module = COMMANDS.get(cmd_name)
        if cmd_name not in self.commands and module is not None:
            importlib.import_module(module).register(self)
        return self.commands.get(cmd_name)

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


def main() -> None:
    cli(prog_name="hoard")


if __name__ == "__main__":
    main()
