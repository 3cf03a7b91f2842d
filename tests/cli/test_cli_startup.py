"""The CLI loads a command's module only when the command is used (bench/cli.py measures the
start-up time; this checks what loads, and that the table of commands is exact)."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import click

from hoard.cli.main import COMMAND_MODULES, COMMANDS, cli


def test_the_commands_table_names_every_command_of_every_module():
    import importlib

    registered: dict[str, str] = {}
    for module in COMMAND_MODULES:
        group = click.Group()
        importlib.import_module(module).register(group)
        registered.update(dict.fromkeys(group.commands, module))
    assert registered == COMMANDS


def test_help_lists_every_command(hoard_cli):
    listed = hoard_cli("--help").stdout.split("Commands:", 1)[1]
    assert [name for name in COMMANDS if not re.search(rf"^  {name}\b", listed, re.MULTILINE)] == []
    assert cli.list_commands(click.Context(cli)) == sorted(COMMANDS)


def test_list_loads_only_its_own_command_module(tmp_path):
    probe = ("import json, sys\nfrom hoard.cli.main import cli\n"
             f"try:\n    cli(['--data-dir', {str(tmp_path / 'd')!r}, 'list'], prog_name='hoard')\n"
             "except SystemExit:\n    pass\nprint(json.dumps(sorted(sys.modules)))")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, check=True)
    loaded = set(json.loads(out.stdout.strip().splitlines()[-1]))
    assert "hoard.cli.data" in loaded
    assert sorted(set(COMMAND_MODULES) - {"hoard.cli.data"} & loaded) == []
    assert "pyfastcdc" not in loaded


def test_an_unknown_command_is_refused(hoard_cli):
    runner_result = hoard_cli("no-such-command")
    assert runner_result.exit_code == 2
    assert "No such command" in runner_result.stderr
