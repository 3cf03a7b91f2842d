import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "rest"))

from harness import Daemon

from hoard.cli.main import cli


@pytest.fixture(scope="module")
def running(tmp_path_factory):
    """A real node process; CLI commands on its data dir go through its REST API."""
    with Daemon(tmp_path_factory.mktemp("cli-node")) as proc:
        yield proc


@pytest.fixture
def hoard_cli():
    """Run `hoard ARGS...` in-process; returns click's Result (exit_code, stdout, stderr bytes)."""
    runner = CliRunner()

    def run(*args: str, input: bytes | None = None):
        return runner.invoke(cli, list(args), input=input, catch_exceptions=False)

    return run
