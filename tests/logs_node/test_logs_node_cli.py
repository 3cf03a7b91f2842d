"""`hoard log ...` on an embedded node (no node running on the data dir)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from click.testing import CliRunner

from hoard.cli.main import cli

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def hoard_cli(tmp_path):
    runner = CliRunner()
    data_dir = str(tmp_path / "data")

    def run(*args: str, input: bytes | None = None):
        return runner.invoke(cli, ["--data-dir", data_dir, *args], input=input, catch_exceptions=False)

    return run


def test_create_append_read_subscribe_list_info(hoard_cli):
    created = hoard_cli("--json", "log", "create", "--meta", "SYN=text/plain", "--meta", "0x4c4f43=here")
    assert created.exit_code == 0, created.output
    info = json.loads(created.stdout)
    name = info["name"]
    assert {"id": "SYN", "value": "text/plain"} in info["metadata"] and {"id": "LOC", "value": "here"} in info["metadata"]
    assert hoard_cli("log", "append", name, input=b"alpha\r\nbeta\ngamma").stdout.strip() == \
        "appended 3 record(s), 1..3"
    assert hoard_cli("log", "append", name, "--data", "delta").stdout.strip() == "appended 1 record(s), 4..4"
    assert hoard_cli("log", "read", name).stdout == "alpha\nbeta\ngamma\ndelta\n"
    assert hoard_cli("log", "read", name, "--start", "-2", "--count", "1").stdout == "gamma\n"
    lines = hoard_cli("--json", "log", "subscribe", name, "--start", "2", "--count", "2").stdout.splitlines()
    assert [(json.loads(x)["recno"], json.loads(x)["data"]) for x in lines] == [(2, "beta"), (3, "gamma")]
    assert json.loads(hoard_cli("--json", "log", "list").stdout) == [{"name": name, "nrecs": 4}]
    shown = hoard_cli("log", "info", name).stdout
    assert f"name: {name}" in shown and "records: 4" in shown and "writable: True" in shown


def test_binary_records_and_errors(hoard_cli):
    name = hoard_cli("log", "create", "--name", "binary").stdout.strip()
    assert len(name) == 43
    hoard_cli("log", "append", name, input=b"\xff\xfe\n")
    record = json.loads(hoard_cli("--json", "log", "read", name).stdout)
    assert record["dataBase64"] == "//4=" and "data" not in record
    assert hoard_cli("log", "create", "--meta", "novalue").exit_code == 2
    result = hoard_cli("log", "read", name, "--start", "5")
    assert result.exit_code == 9 and "error:" in result.stderr


def test_append_from_a_pipe_in_a_real_process(tmp_path):
    base = [sys.executable, "-m", "hoard.cli.main", "--data-dir", str(tmp_path / "data")]
    name = subprocess.run(base + ["log", "create"], capture_output=True, check=True, timeout=60).stdout.strip()
    lines = b"".join(b"line %d\n" % i for i in range(1000))
    done = subprocess.run(base + ["--json", "log", "append", name.decode()], input=lines, capture_output=True,
                          timeout=60)
    assert json.loads(done.stdout) == {"appended": 1000, "first": 1, "last": 1000}, done.stderr
    read = subprocess.run(base + ["log", "read", name.decode(), "--start", "-1"], capture_output=True, timeout=60)
    assert read.stdout == b"line 999\n"
