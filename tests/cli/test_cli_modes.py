"""The CLI in both modes: embedded (no node runs on the data dir) and remote (a node process
runs there, or --api names one). Same commands, same output, same errors and exit codes."""

import json
import os
import re
import subprocess
import sys

import pytest

from hoard.cli.output import Ctx
from hoard.cli.session import running_api

pytestmark = pytest.mark.timeout(300)

UNKNOWN = "zdqAuPSaNbU6GzVdi2k6NyZifuoA44h1x4crFgnnSjh59yPzF"


@pytest.fixture(params=["embedded", "remote"])
def mode(request, tmp_path):
    """CLI global args for a data dir with no node (embedded) or the running node's (remote)."""
    if request.param == "embedded":
        config = tmp_path / "config.json"
        config.write_text(json.dumps({"api-port": 0, "grpc-port": 0}))
        return ["--data-dir", str(tmp_path / "embedded-data"), "--config", str(config)]
    return request.getfixturevalue("running").cli_args()


def test_data_commands_round_trip(hoard_cli, mode, tmp_path):
    src = tmp_path / "sample.txt"
    data = os.urandom(333_333)
    src.write_bytes(data)
    result = hoard_cli(*mode, "upload", str(src))
    assert result.exit_code == 0, result.stderr
    cid = result.stdout.strip().splitlines()[-1]
    assert cid.startswith("z")

    listed = json.loads(hoard_cli(*mode, "--json", "list").stdout)
    assert cid in [e["cid"] for e in listed]
    manifest = json.loads(hoard_cli(*mode, "--json", "manifest", cid).stdout)
    assert manifest["datasetSize"] == 333_333 and manifest["filename"] == "sample.txt"
    assert manifest["mimetype"] == "text/plain"  # guessed from the name in both modes

    out = tmp_path / "out.bin"
    result = hoard_cli(*mode, "download", cid, "-o", str(out))
    assert result.exit_code == 0 and out.read_bytes() == data
    assert not (tmp_path / "out.bin.part").exists()
    assert hoard_cli(*mode, "download", cid).stdout_bytes == data

    assert hoard_cli(*mode, "exists", cid).stdout.strip() == "true"
    assert json.loads(hoard_cli(*mode, "--json", "space").stdout)["totalBlocks"] > 0
    assert "ok: 6 blocks, 333333 bytes verified" in hoard_cli(*mode, "verify", cid).stdout
    fetched = json.loads(hoard_cli(*mode, "--json", "fetch", cid).stdout)
    assert fetched["progress"] == {"active": False, "received": 6, "total": 6, "bytes": 333_333}

    info = json.loads(hoard_cli(*mode, "--json", "info").stdout)
    assert info["peerId"].startswith("12D3KooW") and info["spr"].startswith("spr:") and info["version"]

    assert hoard_cli(*mode, "delete", cid).exit_code == 0
    assert hoard_cli(*mode, "exists", cid).exit_code == 1


def test_upload_from_stdin(hoard_cli, mode):
    result = hoard_cli(*mode, "upload", "-", input=b"hello from stdin")
    cid = result.stdout.split()[-1]
    assert hoard_cli(*mode, "download", cid).stdout_bytes == b"hello from stdin"
    assert json.loads(hoard_cli(*mode, "--json", "manifest", cid).stdout)["filename"] == "stdin"


def test_block_size_option(hoard_cli, mode, tmp_path):
    src = tmp_path / "b.bin"
    src.write_bytes(os.urandom(10_000))
    cid = hoard_cli(*mode, "upload", "--chunk-size", "4096", str(src)).stdout.split()[-1]
    manifest = json.loads(hoard_cli(*mode, "--json", "manifest", cid).stdout)
    assert manifest["blockSize"] == 4096 and manifest["datasetSize"] == 10_000  # 3 padded Logos blocks


@pytest.mark.parametrize("args, code, words", [
    (["download", "not-a-cid"], 2, "cannot parse cid"),
    (["exists", "not-a-cid"], 2, "cannot parse cid"),
    (["manifest", UNKNOWN], 3, "not found|no peer provides"),  # a running node also asks the network
    (["download", UNKNOWN], 3, "not found"),
    (["delete", UNKNOWN], 3, "not found"),
    (["verify", UNKNOWN], 3, "not found"),
    (["fetch", UNKNOWN], 3, "not found|no peer provides"),
    (["upload", "/no/such/file.bin"], 3, "no such file"),
    (["connect", "not-a-peer"], 2, "invalid peer id"),
])
def test_errors_are_one_line_with_the_errors_exit_code(hoard_cli, mode, args, code, words):
    result = hoard_cli(*mode, *args)
    assert result.exit_code == code, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and re.search(words, lines[0].lower())


def test_json_errors_carry_the_code(hoard_cli, mode):
    result = hoard_cli(*mode, "--json", "download", "bad")
    assert json.loads(result.stderr)["error"]["code"] == "invalid-cid"


def test_a_running_node_is_found_through_node_json(running):
    ctx = Ctx(str(running.data_dir), str(running.config_path), False)
    assert running_api(ctx) == running.url


def test_node_json_of_a_dead_process_is_ignored(tmp_path, hoard_cli):
    data = tmp_path / "d"
    data.mkdir()
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    (data / "node.json").write_text(json.dumps({"pid": int(dead.stdout), "api": "http://127.0.0.1:9"}))
    assert running_api(Ctx(str(data), None, False)) is None
    assert hoard_cli("--data-dir", str(data), "upload", "-", input=b"embedded").exit_code == 0


def test_api_option_selects_a_node(running, hoard_cli, tmp_path):
    elsewhere = ["--data-dir", str(tmp_path / "unused")]
    cid = hoard_cli(*elsewhere, "--api", running.url, "upload", "-", input=b"via --api").stdout.split()[-1]
    assert hoard_cli(*running.cli_args(), "download", cid).stdout_bytes == b"via --api"
    assert hoard_cli(*elsewhere, "--api", running.api, "exists", cid).stdout.strip() == "true"  # a full base works too
    assert not (tmp_path / "unused").exists()  # no embedded node was opened


def test_unreachable_api_is_one_clear_line(hoard_cli, tmp_path):
    result = hoard_cli("--data-dir", str(tmp_path / "d"), "--api", "http://127.0.0.1:9", "list")
    assert result.exit_code == 7
    assert result.stderr.startswith("error: cannot reach the hoard node API at http://127.0.0.1:9")


def test_the_hoard_command_uses_the_running_node(running, tmp_path):
    """The installed entry point, in a process of its own, against the node process."""
    src = tmp_path / "p.txt"
    src.write_bytes(b"through a real process")
    hoard = [sys.executable, "-m", "hoard.cli.main", *running.cli_args()]
    upload = subprocess.run([*hoard, "upload", str(src)], capture_output=True, timeout=120)
    assert upload.returncode == 0, upload.stderr
    cid = upload.stdout.decode().split()[-1]
    listed = subprocess.run([*hoard, "--json", "list"], capture_output=True, timeout=120)
    assert cid in [e["cid"] for e in json.loads(listed.stdout)]
