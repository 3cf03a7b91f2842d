"""Operating nodes from the command line (issue 15): `hoard node start` flags, a port in use,
`node status`/`node stop`, `connect` the usual ways, `peers`, and a file moving between nodes."""

import json
import os
import signal
import socket
import subprocess
import sys

import pytest
from harness import Daemon

from hoard.cli.peers import parse_target
from hoard.errors import InvalidArgumentError

pytestmark = pytest.mark.timeout(300)

FLAGS = ["--listen", "/ip4/127.0.0.1/tcp/0", "--api-port", "0", "--grpc-port", "0"]


class FlagNode(Daemon):
    """`hoard --json node start --data-dir D FLAGS...`: no config file at all."""

    def __init__(self, root, flags=FLAGS, pre=()):
        super().__init__(root)
        self.flags = list(flags)
        self.pre = list(pre)  # global options (--config FILE)

    def cli_args(self):
        return [*self.pre, "--data-dir", str(self.data_dir)]

    def start(self):
        self.root.mkdir(parents=True, exist_ok=True)
        env = {**self.env, "PYTHONUNBUFFERED": "1"}
        with open(self.stderr_path, "wb") as err:
            self.proc = subprocess.Popen([*self.hoard, "--json", *self.pre, "node", "start", "--data-dir", str(self.data_dir),
                                          *self.flags], stdout=subprocess.PIPE, stderr=err, env=env)
        self.info = json.loads(self._first_line(120))
        return self


@pytest.fixture(scope="module")
def trio_nodes(tmp_path_factory):
    root = tmp_path_factory.mktemp("ops")
    with FlagNode(root / "a") as a, FlagNode(root / "b") as b, FlagNode(root / "c") as c:
        yield a, b, c


def _full_addr(node):
    return f"{node.info['announced'][0]}/p2p/{node.info['peerId']}"


def test_flags_choose_free_ports_and_record_them(trio_nodes):
    a, b, _ = trio_nodes
    for node in (a, b):
        recorded = json.loads((node.data_dir / "node.json").read_text())
        assert recorded["apiPort"] == node.info["apiPort"] != 0
        assert recorded["grpcPort"] == node.info["grpcPort"] != 0
        assert recorded["listenPorts"] == node.info["listenPorts"] and recorded["listenPorts"][0] != 0
        assert recorded["api"].endswith(f":{recorded['apiPort']}")
    assert a.info["apiPort"] != b.info["apiPort"]


def test_connect_by_multiaddr_and_spr_then_peers_and_a_file_moves(trio_nodes, hoard_cli, tmp_path):
    a, b, c = trio_nodes
    result = hoard_cli(*a.cli_args(), "connect", _full_addr(b))
    assert result.exit_code == 0, result.stderr
    assert result.stdout.strip() == f"connected to {b.info['peerId']}"
    result = hoard_cli(*c.cli_args(), "connect", a.info["spr"])
    assert result.exit_code == 0, result.stderr

    listed = json.loads(hoard_cli(*a.cli_args(), "--json", "peers").stdout)
    assert {p["peerId"] for p in listed} == {b.info["peerId"], c.info["peerId"]}
    for peer in listed:
        assert peer["agent"] == "hoard" and peer["addresses"]
        assert peer["latencyMs"] is not None and peer["latencyMs"] >= 0
    on_b = json.loads(hoard_cli(*b.cli_args(), "--json", "peers").stdout)
    assert [p["peerId"] for p in on_b] == [a.info["peerId"]]
    table = hoard_cli(*a.cli_args(), "peers").stdout
    assert table.splitlines()[0].split()[:2] == ["peer", "id"]
    assert b.info["peerId"] in table and c.info["peerId"] in table  # never cut off in a pipe

    data = os.urandom(300_000)
    src = tmp_path / "moved.bin"
    src.write_bytes(data)
    cid = hoard_cli(*b.cli_args(), "upload", str(src)).stdout.split()[-1]
    out = tmp_path / "got.bin"
    result = hoard_cli(*a.cli_args(), "download", "--network", cid, "-o", str(out))
    assert result.exit_code == 0, result.stderr
    assert out.read_bytes() == data
    log = a.stderr_path.read_text()  # the daemon's text log: one line per connection
    assert f"connected to {b.info['peerId']}" in log and f"connected to {c.info['peerId']}" in log
    assert all(line.split()[0] in ("INF", "DBG", "WRN", "ERR") for line in log.splitlines() if line.strip())


def test_list_and_space_read_well_and_keep_stores_fetched_data(trio_nodes, hoard_cli, tmp_path):
    a, b, _ = trio_nodes
    assert hoard_cli(*a.cli_args(), "connect", _full_addr(b)).exit_code == 0
    src = tmp_path / "odd[bold]name.bin"
    src.write_bytes(os.urandom(3 * 1024 * 1024))
    cid = hoard_cli(*b.cli_args(), "upload", str(src)).stdout.split()[-1]
    fetched = hoard_cli(*a.cli_args(), "fetch", cid)
    assert fetched.exit_code == 0, fetched.stderr

    table = hoard_cli(*a.cli_args(), "list").stdout
    header, *rows = table.splitlines()
    assert header.split() == ["cid", "size", "kept", "filename"]
    row = next(r for r in rows if r.startswith(cid))
    assert "3.0 MiB" in row and "cached until 20" in row
    assert "odd[bold]name.bin" in row  # shown as it is, not read as rich markup
    listed = {e["cid"]: e for e in json.loads(hoard_cli(*a.cli_args(), "--json", "list").stdout)}
    assert listed[cid]["cached"] is True and listed[cid]["expires"] > 0

    kept = hoard_cli(*a.cli_args(), "keep", cid)
    assert kept.exit_code == 0 and kept.stdout.startswith(f"kept {cid}")
    row = next(r for r in hoard_cli(*a.cli_args(), "list").stdout.splitlines() if r.startswith(cid))
    assert " stored " in row
    listed = {e["cid"]: e for e in json.loads(hoard_cli(*a.cli_args(), "--json", "list").stdout)}
    assert set(listed[cid]) == {"cid", "manifest"}  # stored data lists as Logos has it

    space = hoard_cli(*a.cli_args(), "space").stdout
    assert space.startswith("used: ") and " MiB of 20.0 GiB (" in space and "blocks:" in space
    assert "totalBlocks" in json.loads(hoard_cli(*a.cli_args(), "--json", "space").stdout)
    missing = hoard_cli(*a.cli_args(), "keep", "zdqAuPSaNbU6GzVdi2k6NyZifuoA44h1x4crFgnnSjh59yPzF")
    assert missing.exit_code == 3 and "not stored here" in missing.stderr


def test_a_cid_that_is_not_local_hints_at_network(tmp_path, hoard_cli):
    result = hoard_cli("--data-dir", str(tmp_path / "d"), "download", "zdqAuPSaNbU6GzVdi2k6NyZifuoA44h1x4crFgnnSjh59yPzF")
    assert result.exit_code == 3 and "add --network" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_connect_to_an_unknown_peer_is_one_line(trio_nodes, hoard_cli):
    result = hoard_cli(*trio_nodes[0].cli_args(), "connect", "12D3KooWLGBfWYyTD9ykkWQF1qbYpTcGLYvbnrTQ5W4vcXr9qDdH")
    assert result.exit_code == 7
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "peer not found" in lines[0]


def test_a_second_node_on_the_same_libp2p_port_is_refused(trio_nodes, tmp_path):
    a = trio_nodes[0]
    port = a.info["listenPorts"][0]
    result = subprocess.run([sys.executable, "-m", "hoard.cli.main", "node", "start", "--data-dir",
                             str(tmp_path / "d"), "--listen", f"/ip4/127.0.0.1/tcp/{port}", "--api-port", "0",
                             "--grpc-port", "0"], capture_output=True, timeout=120, check=False)
    assert result.returncode != 0
    err = result.stderr.decode()
    assert f"port {port} is already in use" in err, err
    assert not (tmp_path / "d" / "node.json").exists()


def test_a_wildcard_listener_is_refused_too(tmp_path):
    with socket.socket() as taken:
        taken.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)  # as py-libp2p listens
        taken.bind(("0.0.0.0", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        result = subprocess.run([sys.executable, "-m", "hoard.cli.main", "node", "start", "--data-dir",
                                 str(tmp_path / "d"), "--listen", str(port), "--api-port", "0", "--grpc-port", "0"],
                                capture_output=True, timeout=120, check=False)
    assert result.returncode != 0 and b"already in use" in result.stderr


def test_status_and_stop(tmp_path, hoard_cli):
    node = FlagNode(tmp_path / "s").start()
    try:
        status = json.loads(hoard_cli(*node.cli_args(), "--json", "node", "status").stdout)
        assert status["running"] and status["responding"] and status["pid"] == node.pid
        assert status["peerId"] == node.info["peerId"] and status["peers"] == 0
        assert "running: pid" in hoard_cli(*node.cli_args(), "node", "status").stdout
        result = hoard_cli(*node.cli_args(), "node", "stop")
        assert result.exit_code == 0, result.stderr
        assert node.proc.wait(30) == 0  # a clean exit
        assert not (node.data_dir / "node.json").exists()
        gone = hoard_cli(*node.cli_args(), "node", "status")
        assert gone.exit_code == 1 and "no node is running" in gone.stdout
        again = hoard_cli(*node.cli_args(), "node", "stop")
        assert again.exit_code == 10 and "no node is running" in again.stderr
    finally:
        if node.proc.poll() is None:
            node.proc.send_signal(signal.SIGKILL)
        node.stop()


def test_connect_and_peers_without_a_running_node_say_so(tmp_path, hoard_cli):
    for args in (["connect", "/ip4/127.0.0.1/tcp/4001/p2p/12D3KooWNrzKYURvUiAfP4WgroJuyCW9HoxiU5rqnhff9dyz2VgZ"],
                 ["peers"], ["fetch", "--no-wait", "zdqAuPSaNbU6GzVdi2k6NyZifuoA44h1x4crFgnnSjh59yPzF"]):
        result = hoard_cli("--data-dir", str(tmp_path / "none"), *args)
        assert result.exit_code == 10
        assert "needs a running node" in result.stderr and "hoard node start" in result.stderr
    assert not (tmp_path / "none").exists() or not (tmp_path / "none" / "node.json").exists()


PEER = "12D3KooWNrzKYURvUiAfP4WgroJuyCW9HoxiU5rqnhff9dyz2VgZ"
OTHER = "12D3KooWFBwCU7PGeFpsirmFL6XNNpLv1GEaJhbxJh3iTRh6UjJK"


@pytest.mark.parametrize(("target", "addrs", "expected"), [
    (f"/ip4/10.0.0.5/tcp/8070/p2p/{PEER}", (), (PEER, ["/ip4/10.0.0.5/tcp/8070"])),
    (f"/ip4/10.0.0.5/tcp/8070/p2p/{PEER}", (f"/ip6/::1/tcp/8070/p2p/{PEER}",),
     (PEER, ["/ip4/10.0.0.5/tcp/8070", "/ip6/::1/tcp/8070"])),
    (PEER, ("/ip4/10.0.0.5/tcp/8070",), (PEER, ["/ip4/10.0.0.5/tcp/8070"])),
    (PEER, (), (PEER, [])),
])
def test_connect_targets(target, addrs, expected):
    assert parse_target(target, addrs) == expected


@pytest.mark.parametrize(("target", "addrs"), [
    ("/ip4/10.0.0.5/tcp/8070", ()),  # no /p2p/
    (f"/ip4/10.0.0.5/tcp/8070/p2p/{PEER}", (f"/ip4/10.0.0.6/tcp/1/p2p/{OTHER}",)),  # two peers
    ("not-a-peer", ()),
    ("spr:AAAA", ()),
    (PEER, ("/ip4/10.0.0.5/udp/8070",)),
])
def test_bad_connect_targets(target, addrs):
    with pytest.raises(InvalidArgumentError):
        parse_target(target, addrs)


def test_announced_addresses_wildcards_expanded_or_given(tmp_path):
    from hoard.net.host import parse_spr

    wild = FlagNode(tmp_path / "w", ["--listen", "/ip4/0.0.0.0/tcp/0", "--api-port", "0", "--grpc-port", "0"])
    given = FlagNode(tmp_path / "g", [*FLAGS, "--announce", "/ip4/203.0.113.7/tcp/4001",
                                      "--announce", "/dns4/node.example.org/tcp/4001"])
    with wild, given:
        port = wild.info["listenPorts"][0]
        assert wild.info["addrs"] == [f"/ip4/0.0.0.0/tcp/{port}"]
        assert f"/ip4/127.0.0.1/tcp/{port}" in wild.info["announced"]
        assert not any("/0.0.0.0/" in a for a in wild.info["announced"])
        _env, _peer, addrs, _seq = parse_spr(wild.info["spr"])
        assert sorted(str(a) for a in addrs) == sorted(wild.info["announced"])
        assert given.info["announced"] == ["/ip4/203.0.113.7/tcp/4001", "/dns4/node.example.org/tcp/4001"]
        _env, _peer, addrs, _seq = parse_spr(given.info["spr"])
        assert [str(a) for a in addrs] == given.info["announced"]


def test_flags_override_the_config_file_and_bootstrap_connects(trio_nodes, tmp_path, hoard_cli):
    b = trio_nodes[1]
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"storage-quota": "1GiB", "log-level": "ERROR", "api-port": 1,
                                  "listen-addrs": ["/ip4/127.0.0.1/tcp/0"]}))
    node = FlagNode(tmp_path / "f", ["--api-port", "0", "--grpc-port", "0", "--storage-quota", "2GiB",
                                     "--bootstrap", b.info["spr"]], pre=["--config", str(config)])
    with node:
        assert node.info["apiPort"] not in (0, 1)  # the flag, not the file's port 1
        space = json.loads(hoard_cli(*node.cli_args(), "--json", "space").stdout)
        assert space["quotaMaxBytes"] == 2 * 1024**3  # the flag, not the file's 1GiB
        peers = json.loads(hoard_cli(*node.cli_args(), "--json", "peers").stdout)
        assert b.info["peerId"] in [p["peerId"] for p in peers]  # dialled at start (the DHT may add others)


def test_table_cells_escape_control_characters():
    from hoard.cli.output import human_size, printable

    assert printable("a\x1b[31mb\tc") == "a\\x1b[31mb\\tc"
    assert printable("plain name.bin") == "plain name.bin"
    assert [human_size(n) for n in (0, 1023, 1536, 20 * 1024**3)] == ["0 B", "1023 B", "1.5 KiB", "20.0 GiB"]


def test_access_log_and_json_format_from_flags(tmp_path):
    import httpx

    node = FlagNode(tmp_path / "acc", [*FLAGS, "--access-log", "--log-format", "json"]).start()
    try:
        assert httpx.get(node.info["api"] + "/health", timeout=30).status_code == 200
    finally:
        assert node.stop() == 0
    records = [json.loads(line) for line in node.stderr_path.read_text().splitlines() if line.strip()]
    access = [r for r in records if r["topics"] == "uvicorn.access"]
    assert any("GET /health" in r["msg"] and "200" in r["msg"] for r in access), records
    assert any(r["topics"] == "hoard" and "stopped" in r["msg"] for r in records)  # hoard's too: one format
