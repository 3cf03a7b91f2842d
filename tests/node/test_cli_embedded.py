"""The `hoard` CLI on an embedded node: results, --json, and one-line errors with no traceback."""

import json
import os
import signal
import subprocess
import sys

import pytest

HOARD = [sys.executable, "-m", "hoard.cli.main"]


def run(*args, data_dir, input=None, check=True):
    proc = subprocess.run([*HOARD, "--data-dir", str(data_dir), *args], capture_output=True, input=input, timeout=120,
                          check=False)
    if check:
        assert proc.returncode == 0, proc.stderr.decode()
    return proc


def test_upload_prints_cid_last_and_download_round_trips(tmp_path):
    src = tmp_path / "f.bin"
    src.write_bytes(os.urandom(700_000))
    cid = run("upload", str(src), data_dir=tmp_path / "d").stdout.decode().strip().splitlines()[-1]
    assert cid.startswith("z")
    run("download", cid, "-o", str(tmp_path / "g.bin"), data_dir=tmp_path / "d")
    assert (tmp_path / "g.bin").read_bytes() == src.read_bytes()
    assert run("download", cid, data_dir=tmp_path / "d").stdout == src.read_bytes()
    listed = json.loads(run("--json", "list", data_dir=tmp_path / "d").stdout)
    assert [e["cid"] for e in listed] == [cid]
    assert json.loads(run("--json", "manifest", cid, data_dir=tmp_path / "d").stdout)["datasetSize"] == 700_000
    assert json.loads(run("--json", "space", data_dir=tmp_path / "d").stdout)["totalBlocks"] > 0
    assert run("exists", cid, data_dir=tmp_path / "d").stdout.strip() == b"true"
    info = json.loads(run("--json", "info", data_dir=tmp_path / "d").stdout)
    assert info["peerId"].startswith("12D3KooW") and info["spr"].startswith("spr:")
    run("delete", cid, data_dir=tmp_path / "d")
    assert run("exists", cid, data_dir=tmp_path / "d", check=False).returncode == 1


def test_upload_from_stdin(tmp_path):
    cid = run("upload", "-", data_dir=tmp_path / "d", input=b"hello stdin").stdout.decode().split()[-1]
    assert run("download", cid, data_dir=tmp_path / "d").stdout == b"hello stdin"


@pytest.mark.parametrize("args, code", [
    (["download", "not-a-cid"], 2),
    (["manifest", "zdqAuPSaNbU6GzVdi2k6NyZifuoA44h1x4crFgnnSjh59yPzF"], 3),
    (["upload", "/no/such/file.bin"], 3),
    (["delete", "zb38SMkuhxoyDCgRqFrDo3oseWnmQByCDaaRzXrTvZtonYFDx"], 3),
])
def test_bad_input_is_one_clear_line(tmp_path, args, code):
    proc = run(*args, data_dir=tmp_path / "d", check=False)
    assert proc.returncode == code
    lines = proc.stderr.decode().strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ")
    assert b"Traceback" not in proc.stderr


def test_quota_error_from_cli(tmp_path):
    config = tmp_path / "c.json"
    config.write_text(json.dumps({"storage-quota": 100_000}))
    src = tmp_path / "big.bin"
    src.write_bytes(os.urandom(500_000))
    proc = run("--config", str(config), "upload", str(src), data_dir=tmp_path / "d", check=False)
    assert proc.returncode == 6 and b"quota" in proc.stderr and b"Traceback" not in proc.stderr


def test_json_errors(tmp_path):
    proc = run("--json", "download", "bad", data_dir=tmp_path / "d", check=False)
    assert json.loads(proc.stderr)["error"]["code"] == "invalid-cid"


def test_node_start_runs_until_sigint_and_stops_cleanly(tmp_path):
    config = tmp_path / "c.json"
    config.write_text(json.dumps({"api-port": 0, "grpc-port": 0, "listen-addrs": ["/ip4/127.0.0.1/tcp/0"]}))
    proc = subprocess.Popen([*HOARD, "--data-dir", str(tmp_path / "d"), "--config", str(config), "--json", "node", "start"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        info = json.loads(proc.stdout.readline())
        assert info["peerId"].startswith("12D3KooW")
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    assert json.loads(out.strip().splitlines()[-1]) == {"stopped": True}
