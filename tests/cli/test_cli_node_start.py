"""`hoard node start` with the REST API: the address it reports, and a port already in use."""

import json
import socket
import subprocess
import sys

import httpx
import pytest
from harness import Daemon

pytestmark = pytest.mark.timeout(180)


def test_node_start_prints_the_bound_api_address(tmp_path):
    proc = Daemon(tmp_path)
    with proc:
        assert httpx.get(proc.api + "/peerid", timeout=30).json()["id"] == proc.info["peerId"]
        assert json.loads((proc.data_dir / "node.json").read_text())["api"] == proc.url
    assert proc.proc.returncode == 0
    assert not (proc.data_dir / "node.json").exists()  # removed at a clean stop


def test_api_port_in_use_is_one_clear_line(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        config = tmp_path / "c.json"
        config.write_text(json.dumps({"api-port": port, "grpc-port": 0, "listen-addrs": ["/ip4/127.0.0.1/tcp/0"]}))
        result = subprocess.run([sys.executable, "-m", "hoard.cli.main", "--data-dir", str(tmp_path / "d"),
                                 "--config", str(config), "node", "start"], capture_output=True, timeout=120)
    assert result.returncode == 2
    lines = result.stderr.decode().strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: cannot serve the REST API on 127.0.0.1:")
    assert "api-port" in lines[0]
