"""The Logos options and divergences issue 12 names, checked on real parts.

* Every key the official Go bindings' `Config` sends is accepted, with its checks; unknown
  keys stay an error.
* `agent-string` is what identify answers carry; `nat: extip:<IP>` is the IP of the announced
  addresses (SPR, DHT provider records, the routing table's local node); the SPR is the same
  text until the addresses change.
* Blocks of every size an upload accepts (up to 4 MiB) are served over `/hoard/blocks/1`.
* `log-format`/`log-file` write the node's log records; `metrics` serves Prometheus text.
"""

from __future__ import annotations

import functools
import inspect
import json
import logging
import random
import socket
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio

from hoard.errors import InvalidArgumentError
from hoard.ids.cid import CID
from hoard.ids.peer import Identity
from hoard.limits import MAX_BLOCK_BYTES
from hoard.node import Config, Node
from hoard.node.observability import configure_logging

pytestmark = pytest.mark.timeout(120)

LOOPBACK = ["/ip4/127.0.0.1/tcp/0"]

# What the bindings' Config (storage/node.go) can send, every key set.
BINDINGS_CONFIG = {
    "log-level": "info", "log-format": "nocolors", "metrics": False, "metrics-address": "127.0.0.1",
    "metrics-port": 8008, "data-dir": "/tmp/x", "listen-addrs": ["/ip4/0.0.0.0/tcp/0"], "nat": "none",
    "disc-port": 8090, "net-privkey": "key", "bootstrap-node": [], "max-peers": 160, "num-threads": 0,
    "agent-string": "Logos Storage", "repo-kind": "fs", "storage-quota": 20 << 30, "block-ttl": "30d",
    "block-mi": "10m", "block-mn": 1000, "block-retries": 3000, "cache-size": 0, "log-file": "/tmp/x.log",
}


def trio_test(fn: Callable[..., Any]) -> Callable[..., None]:
    @functools.wraps(fn)
    def runner(*args: Any, **kwargs: Any) -> None:
        async def main() -> None:
            with trio.fail_after(60):
                await fn(*args, **kwargs)

        trio.run(main)

    runner.__signature__ = inspect.signature(fn)  # type: ignore[attr-defined]
    return runner


# -- config ------------------------------------------------------------------------------
def test_every_key_of_the_bindings_config_is_accepted() -> None:
    config = Config.from_dict(BINDINGS_CONFIG)
    assert (config.log_format, config.nat, config.block_retries, config.agent_string) == (
        "nocolors", "none", 3000, "Logos Storage")
    assert (config.metrics, config.metrics_address, config.metrics_port, config.disc_port) == (
        False, "127.0.0.1", 8008, 8090)
    assert (config.num_threads, config.block_mn, config.cache_size, config.log_file) == (0, 1000, 0, "/tmp/x.log")


@pytest.mark.parametrize("kind", ["fs", "sqlite", "leveldb", "lmdb"])
def test_logos_repo_kinds_are_served_by_lmdb(kind: str) -> None:
    assert Config.from_dict({"repo-kind": kind}).repo_kind == "lmdb"
    assert Config.from_dict({"repo-kind": "memory"}).repo_kind == "memory"


def test_nat_values() -> None:
    for value in ("any", "none", "upnp", "pmp", "ANY"):
        assert Config.from_dict({"nat": value}).nat == value.lower()
    assert Config.from_dict({"nat": "extip:203.0.113.7"}).nat == "extip:203.0.113.7"
    assert Config.from_dict({"nat": "extip:2001:db8::1"}).nat == "extip:2001:db8::1"


@pytest.mark.parametrize(("key", "value"), [
    ("log-format", "rainbow"), ("metrics", "yes"), ("metrics-port", 70000), ("nat", "extip:300.1.1.1"),
    ("nat", "stun"), ("disc-port", -1), ("num-threads", -2), ("block-retries", 1.5), ("block-mn", 0),
    ("cache-size", "lots"), ("repo-kind", "postgres"), ("log-file", ""),
])
def test_bad_values_name_the_key(key: str, value: Any) -> None:
    with pytest.raises(InvalidArgumentError, match=repr(key)):
        Config.from_dict({key: value})


def test_unknown_keys_remain_an_error() -> None:
    with pytest.raises(InvalidArgumentError, match="unknown config key 'log-colour'"):
        Config.from_dict({"log-colour": "red"})


# -- identify, announced addresses, the SPR, big blocks ------------------------------------
@asynccontextmanager
async def running(*configs: Any, source: Any = None) -> AsyncIterator[list[Any]]:
    from hoard.net import Network

    nets = [Network(Identity.generate(), LOOPBACK, config=config, block_source=source if i == 0 else None)
            for i, config in enumerate(configs)]
    async with trio.open_nursery():
        if len(nets) == 1:
            async with nets[0].run():
                yield nets
        else:
            async with nets[0].run(), nets[1].run():
                yield nets


@trio_test
async def test_identify_carries_the_agent_string() -> None:
    from libp2p.identity.identify.identify import ID as IDENTIFY_ID
    from libp2p.identity.identify.identify import parse_identify_response
    from libp2p.network.stream.exceptions import StreamEOF

    from hoard.net import NetworkConfig

    async with running(NetworkConfig(agent_string="Logos Storage (hoard test)"), NetworkConfig()) as [a, b]:
        await b.connect(a.peer_id, a.addrs)
        stream = await b.host.libp2p.new_stream(a.peer_id.libp2p, [IDENTIFY_ID])
        data = b""
        try:
            while chunk := await stream.read(65536):
                data += chunk
        except StreamEOF:  # py-libp2p ends a read at the end of the stream this way
            pass
        answer = parse_identify_response(data)
        assert answer.agent_version == "Logos Storage (hoard test)"
        assert answer.public_key  # the rest of the answer is py-libp2p's


@trio_test
async def test_identify_lists_the_announced_addresses() -> None:
    import multiaddr
    from libp2p.identity.identify.identify import ID as IDENTIFY_ID
    from libp2p.identity.identify.identify import parse_identify_response
    from libp2p.network.stream.exceptions import StreamEOF

    from hoard.net import NetworkConfig

    async with running(NetworkConfig(announce_ip="203.0.113.9"), NetworkConfig()) as [a, b]:
        await b.connect(a.peer_id, a.addrs)
        stream = await b.host.libp2p.new_stream(a.peer_id.libp2p, [IDENTIFY_ID])
        data = b""
        try:
            while chunk := await stream.read(65536):
                data += chunk
        except StreamEOF:
            pass
        answer = parse_identify_response(data)
        port = str(a.addrs[0]).split("/")[4]
        assert [str(multiaddr.Multiaddr(raw)) for raw in answer.listen_addrs] == [f"/ip4/203.0.113.9/tcp/{port}"]


@trio_test
async def test_extip_is_the_announced_ip_and_the_spr_is_stable() -> None:
    from hoard.net import NetworkConfig
    from hoard.net.host import parse_spr

    async with running(NetworkConfig(announce_ip="203.0.113.7")) as [net]:
        port = str(net.addrs[0]).split("/")[4]
        assert [str(a) for a in net.announce_addrs] == [f"/ip4/203.0.113.7/tcp/{port}"]
        spr = net.spr()
        assert net.spr() == spr and net.routing_table()["localNode"]["record"] == spr
        _env, peer, addrs, _seq = parse_spr(spr)
        assert peer == net.peer_id and [str(a) for a in addrs] == [f"/ip4/203.0.113.7/tcp/{port}"]
        assert net.routing_table()["localNode"]["address"] == f"/ip4/203.0.113.7/tcp/{port}"


@trio_test
async def test_blocks_of_every_uploadable_size_are_served() -> None:
    from hoard.net import NetworkConfig
    from hoard.store import MemoryBlockStore

    rng = random.Random(7)
    blocks = [rng.randbytes(size) for size in ((1 << 20) + 1, 2 << 20, MAX_BLOCK_BYTES)]
    store = MemoryBlockStore()
    store.put_many([(CID.of(b), b) for b in blocks])
    async with running(NetworkConfig(), NetworkConfig(), source=store) as [server, client]:
        await client.connect(server.peer_id, server.addrs)
        async with client.fetch_blocks([CID.of(b) for b in blocks], [server.peer_id]) as stream:
            got = [data async for _cid, data in stream]
        assert got == blocks


# -- the node: SPR, log-format/log-file, metrics -------------------------------------------
def test_node_spr_stays_the_same_and_is_the_tables_local_record(tmp_path: Path) -> None:
    with Node({"data-dir": str(tmp_path / "n"), "listen-addrs": LOOPBACK, "nat": "extip:198.51.100.2"}) as node:
        stopped = node.spr()
        assert node.spr() == stopped
        node.start()
        spr = node.spr()
        assert spr != stopped and node.spr() == spr
        debug = _logos_json(node.debug())
        assert debug["spr"] == spr == debug["table"]["localNode"]["record"]
        assert debug["announceAddresses"] and all("/198.51.100.2/" in a for a in debug["announceAddresses"])
        assert all("/127.0.0.1/" in a for a in debug["addrs"])


def _logos_json(value: Any) -> Any:
    """The Logos JSON of a node result (what the C ABI and REST answer with)."""
    if isinstance(value, dict):
        return value
    from hoard.api import shapes

    return shapes.to_json(value)


@pytest.fixture
def restore_hoard_logging() -> Any:
    logger = logging.getLogger("hoard")
    before, level = list(logger.handlers), logger.level
    yield
    for handler in list(logger.handlers):
        if handler not in before:
            logger.removeHandler(handler)
            handler.close()
    logger.setLevel(level)


def test_log_format_json_and_log_file(tmp_path: Path, capfd: pytest.CaptureFixture[str],
                                      restore_hoard_logging: Any) -> None:
    log_file = tmp_path / "node.log"
    configure_logging(Config.from_dict({"log-format": "json", "log-file": str(log_file)}))
    logging.getLogger("hoard.test").warning("hello %s", "logs")
    line = json.loads(capfd.readouterr().out.strip().splitlines()[-1])
    assert (line["lvl"], line["msg"], line["topics"]) == ("WRN", "hello logs", "hoard.test")
    assert json.loads(log_file.read_text().splitlines()[-1])["msg"] == "hello logs"


def test_log_format_nocolors_and_none(tmp_path: Path, capfd: pytest.CaptureFixture[str],
                                      restore_hoard_logging: Any) -> None:
    configure_logging(Config.from_dict({"log-format": "nocolors"}))
    logging.getLogger("hoard.test").error("plain")
    out = capfd.readouterr().out
    assert out.startswith("ERR ") and "plain" in out and 'topics="hoard.test"' in out and "\x1b[" not in out
    configure_logging(Config.from_dict({"log-format": "none", "log-file": str(tmp_path / "only.log")}))
    logging.getLogger("hoard.test").error("to the file only")
    assert "to the file only" not in capfd.readouterr().out
    assert "to the file only" in (tmp_path / "only.log").read_text()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_metrics_serves_prometheus_text_while_the_node_is_open(tmp_path: Path) -> None:
    port = _free_port()
    config = {"data-dir": str(tmp_path / "m"), "metrics": True, "metrics-address": "127.0.0.1",
              "metrics-port": port, "storage-quota": 1 << 30}
    with Node(config) as node:
        session = node.upload_init("m.bin", 0)
        node.upload_chunk(session, b"x" * 100_000)
        node.upload_finalize(session)
        text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
        samples = {line.split()[0]: float(line.split()[1]) for line in text.splitlines()
                   if line and not line.startswith("#")}
        assert samples["hoard_repo_blocks"] >= 2  # two data blocks (and the manifest)
        assert samples["hoard_repo_quota_max_bytes"] == 1 << 30
        assert samples["hoard_peers_connected"] == 0
    with pytest.raises(httpx.HTTPError):
        httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=2)


def test_metrics_on_a_port_in_use_is_a_clear_error(tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        with pytest.raises(InvalidArgumentError, match="cannot serve metrics"):
            Node({"data-dir": str(tmp_path / "busy"), "metrics": True, "metrics-port": port})
    with Node({"data-dir": str(tmp_path / "busy")}):  # the failed node released its data dir
        pass
