"""The CLI against a running node that requires an API token (`api-token`): every command family
sends the token from the config, and fails clearly (not with a traceback) without it."""

from __future__ import annotations

import json
import subprocess

import pytest
from harness import Daemon

pytestmark = pytest.mark.timeout(300)

TOKEN = "s3cret-token-for-the-cli"


@pytest.fixture(scope="module")
def node(tmp_path_factory):
    with Daemon(tmp_path_factory.mktemp("cli-token"), config={"api-token": TOKEN}) as proc:
        yield proc


def hoard(node: Daemon, config: str, *args: str, input: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    """`hoard --data-dir D --config CONFIG ARGS` against the running node (found through the data dir)."""
    return subprocess.run([*node.hoard, "--data-dir", str(node.data_dir), "--config", config, *args],
                          input=input, capture_output=True, timeout=120, env=node.env, check=False)


@pytest.fixture(scope="module")
def tokenless(node, tmp_path_factory):
    path = tmp_path_factory.mktemp("cli-token-config") / "config.json"
    path.write_text(json.dumps({k: v for k, v in node.config.items() if k != "api-token"}))
    return str(path)


def test_every_command_family_sends_the_token(node, tmp_path):
    config = str(node.config_path)
    (tmp_path / "f.bin").write_bytes(b"token data " * 100)
    uploaded = hoard(node, config, "--json", "upload", str(tmp_path / "f.bin"))
    assert uploaded.returncode == 0, uploaded.stderr
    assert json.loads(uploaded.stdout)["cid"] in hoard(node, config, "list").stdout.decode()
    put = hoard(node, config, "--json", "blob", "put", str(tmp_path / "f.bin"))
    assert put.returncode == 0, put.stderr
    stat = hoard(node, config, "blob", "stat", json.loads(put.stdout)["digest"])
    assert stat.returncode == 0, stat.stderr
    created = hoard(node, config, "log", "create")
    assert created.returncode == 0, created.stderr
    name = created.stdout.decode().split()[0]
    appended = hoard(node, config, "log", "append", name, input=b"one\ntwo\n")
    assert appended.returncode == 0, appended.stderr
    read = hoard(node, config, "log", "read", name)
    assert read.returncode == 0 and b"two" in read.stdout, read.stderr
    listed = hoard(node, config, "transfer", "list")
    assert listed.returncode == 0, listed.stderr


@pytest.mark.parametrize("args", [
    ("list",), ("space",), ("blob", "stat", "0" * 64), ("log", "list"), ("transfer", "list"),
    ("file", "read", "1"),
], ids=lambda a: " ".join(a[:2]))
def test_without_the_token_every_family_fails_clearly(node, tokenless, args):
    result = hoard(node, tokenless, *args)
    err = result.stderr.decode()
    assert result.returncode != 0
    assert "Traceback" not in err
    assert "token" in err.lower(), err
