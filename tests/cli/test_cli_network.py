"""The CLI against running nodes with a network: connect, download --network, fetch."""

import json
import os

import pytest
from harness import Daemon

pytestmark = pytest.mark.timeout(300)


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli-pair")
    with Daemon(root / "a") as a, Daemon(root / "b") as b:
        yield a, b


def test_connect_then_get_data_from_the_peer(pair, hoard_cli, tmp_path):
    a, b = pair
    result = hoard_cli(*a.cli_args(), "connect", b.info["peerId"], *b.info["addrs"])
    assert result.exit_code == 0, result.stderr
    assert result.stdout.strip() == f"connected to {b.info['peerId']}"

    data = os.urandom(900_000)
    src = tmp_path / "remote.bin"
    src.write_bytes(data)
    cid = hoard_cli(*b.cli_args(), "upload", str(src)).stdout.split()[-1]
    assert hoard_cli(*a.cli_args(), "exists", cid).exit_code == 1

    out = tmp_path / "streamed.bin"
    result = hoard_cli(*a.cli_args(), "download", "--network", cid, "-o", str(out))
    assert result.exit_code == 0, result.stderr
    assert out.read_bytes() == data
    assert hoard_cli(*a.cli_args(), "exists", cid).exit_code == 1  # streaming does not store

    fetched = hoard_cli(*a.cli_args(), "--json", "fetch", cid)
    assert fetched.exit_code == 0, fetched.stderr
    assert json.loads(fetched.stdout)["progress"] == {"active": False, "received": 14, "total": 14, "bytes": 900_000}
    assert hoard_cli(*a.cli_args(), "exists", cid).stdout.strip() == "true"
    assert hoard_cli(*a.cli_args(), "download", cid).stdout_bytes == data
