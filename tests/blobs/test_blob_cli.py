"""`hoard blob` and `hoard file` against an embedded node on the data dir."""

import json
import os

import blake3
import pytest
from click.testing import CliRunner

from hoard.cli.main import cli

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def run(tmp_path):
    data_dir = str(tmp_path / "data")

    def invoke(*args, input=None):
        return CliRunner().invoke(cli, ["--data-dir", data_dir, *args], input=input, catch_exceptions=False)

    return invoke


def test_blob_put_stat_cat(run, tmp_path):
    data = os.urandom(1_200_000)
    path = tmp_path / "in.bin"
    path.write_bytes(data)
    put = run("blob", "put", str(path))
    assert put.exit_code == 0, put.output
    digest = put.output.strip().splitlines()[-1]
    assert digest.startswith("b3:")
    stat = json.loads(run("--json", "blob", "stat", digest).output)
    assert stat["hex"] == blake3.blake3(data).hexdigest() and stat["size"] == len(data)
    assert sum(c["size"] for c in stat["chunks"]) == len(data) and stat["manifest"]
    out = tmp_path / "out.bin"
    assert run("blob", "cat", stat["hex"], "-o", str(out)).exit_code == 0
    assert out.read_bytes() == data
    assert stat["manifest"] in run("list").output  # a blob is a dataset


def test_blob_stat_of_a_missing_blob_exits_not_found(run):
    result = run("blob", "stat", "00" * 32)
    assert result.exit_code == 3 and "not found" in result.output


def test_file_write_and_read_versions(run, tmp_path):
    big = tmp_path / "big"
    big.write_bytes(os.urandom(1_100_000))
    small = tmp_path / "small"
    small.write_bytes(b"patched")
    written = json.loads(run("--json", "file", "write", "9", str(big)).output)
    assert written == {"ino": 9, "indices": [0, 1, 2], "version": 1}  # 512 KiB blocks
    assert json.loads(run("--json", "file", "write", "9", "--index", "1", str(small)).output)["version"] == 2
    v1, v2 = tmp_path / "v1", tmp_path / "v2"
    assert run("file", "read", "9", "--version", "1", "-o", str(v1)).exit_code == 0
    assert v1.read_bytes() == big.read_bytes()
    assert run("file", "read", "9", "-o", str(v2)).exit_code == 0
    raw = big.read_bytes()
    assert v2.read_bytes() == raw[:512 << 10] + b"patched" + raw[1 << 20:]
    missing = run("file", "read", "9", "--version", "7")
    assert missing.exit_code == 3 and "no version 7" in missing.output
