"""`NodeClient.logs` and `NodeClient.transfer`: the same interface as `node.logs` / `node.transfer`
(checked structurally), the same result types against a real node process, and the log and
transfer commands on the one client the CLI picks (`--api`, the running node, or embedded)."""

from __future__ import annotations

import inspect
import json
import queue
import subprocess
import sys

import pytest

import hoard
from hoard.api.client import NodeClient
from hoard.api.client_logs import ClientLogs, RemoteLog
from hoard.api.client_transfer import ClientTransfer
from hoard.errors import InvalidArgumentError, LogError, NotFoundError, StateError
from hoard.logs import EVENT_CREATED, EVENT_DATA, EVENT_EOS, EVENT_FAILURE, Datum, Log, LogName, Metadata
from hoard.node.node import LogsApi, TransferApi
from hoard.node.results import LogSummary
from hoard.transfer.builtin import TransferPolicy

pytestmark = pytest.mark.timeout(300)

# Log methods a remote handle leaves out: filters run in the process that signs and verifies (the node).
NOT_REMOTE = {"backend", "set_append_filter", "set_read_filter"}


def _public(cls: type) -> dict[str, inspect.Signature]:
    return {name: inspect.signature(member) for name, member in vars(cls).items()
            if not name.startswith("_") and callable(member)}


def _params(signature: inspect.Signature) -> list[tuple[str, object, object]]:
    return [(p.name, p.kind, p.default) for p in signature.parameters.values()]


@pytest.mark.parametrize(("node_side", "client_side"), [(LogsApi, ClientLogs), (TransferApi, ClientTransfer)])
def test_the_client_namespaces_have_the_nodes_methods(node_side, client_side):
    ours, theirs = _public(node_side), _public(client_side)
    assert set(ours) == set(theirs) - {"close"}
    for name, signature in ours.items():
        assert _params(theirs[name]) == _params(signature), name
        node_return, client_return = signature.return_annotation, theirs[name].return_annotation
        if node_return == "Log":  # a Log, or the remote handle with its methods
            assert (node_return, client_return) == ("Log", "RemoteLog")
        else:
            assert client_return == node_return, name


def test_a_remote_handle_has_the_methods_of_a_log():
    ours = {name: sig for name, sig in _public(Log).items() if name not in NOT_REMOTE}
    theirs = _public(RemoteLog)
    assert set(ours) == set(theirs)
    for name, signature in ours.items():
        assert _params(theirs[name]) == _params(signature), name
    properties = {name for name, member in vars(Log).items() if isinstance(member, property)} - NOT_REMOTE
    assert properties <= {name for name, member in vars(RemoteLog).items() if isinstance(member, property)}


@pytest.fixture
def remote(running):
    with NodeClient(running.url) as client:
        yield client


def test_logs_through_the_client_as_through_the_node(remote):
    log = remote.logs.create({"SYN": "text/plain"}, "client-logs")
    assert isinstance(log.name, LogName) and isinstance(log.metadata, Metadata) and log.mode == "ra"
    assert log.metadata.get("SYN") == b"text/plain" and len(log.public_key) == 32
    first = log.append(b"one")
    assert isinstance(first, Datum) and (first.recno, first.data) == (1, b"one") and len(first.sig) == 64
    events: queue.SimpleQueue = queue.SimpleQueue()
    for i in range(500):
        log.append_async(b"rec %d" % i, events.put, udata=i)
    done = [events.get(timeout=60) for _ in range(500)]
    assert {e.type for e in done} == {EVENT_CREATED}
    assert sorted((e.udata, e.datum.recno) for e in done) == [(i, i + 2) for i in range(500)]
    assert done[0].log is log and log.flush(10) and log.nrecs == 501
    assert log.read_by_recno(-1).data == b"rec 499" and log.read_by_ts(first.ts).recno == 1
    log.multiread(2, 2)  # no callback: the events go to event_next
    got = [remote.logs.event_next(log, timeout=30) for _ in range(3)]
    assert [(e.type, e.datum.recno if e.datum else None) for e in got] == [(EVENT_DATA, 2), (EVENT_DATA, 3),
                                                                           (EVENT_EOS, None)]
    assert LogSummary(log.name, 501) in remote.logs.list()
    assert remote.logs.writable(log.name) and not remote.logs.writable("nobody's")
    reader = remote.logs.open(log.name, "ro")
    with pytest.raises(LogError) as refused:
        reader.append(b"no")
    assert refused.value.status == 403
    with pytest.raises(LogError) as past:
        reader.multiread(600, 1)
    assert past.value.status == 404
    with pytest.raises(LogError, match="no log named") as missing:
        remote.logs.open("no such log", "ro")
    assert missing.value.status == 404
    with pytest.raises(InvalidArgumentError, match="signing_key"):
        remote.logs.open(log.name, "ao", signing_key=b"\x00" * 32)
    log.close()
    with pytest.raises(StateError):
        log.append(b"closed")


def test_a_subscription_through_the_client_and_an_append_that_fails(remote):
    log = remote.logs.create(None, "client-subscribe")
    events: queue.SimpleQueue = queue.SimpleQueue()
    log.subscribe_by_recno(0, 2, events.put)
    log.append(b"a")
    log.append(b"b")
    got = [events.get(timeout=30) for _ in range(3)]
    assert [(e.type, e.datum.data if e.datum else None) for e in got] == [(EVENT_DATA, b"a"), (EVENT_DATA, b"b"),
                                                                          (EVENT_EOS, None)]
    log.append_async(b"x" * (17 << 20), events.put)  # over what one append request carries
    failed = events.get(timeout=60)
    assert failed.type == EVENT_FAILURE and failed.error.status == 413
    log.close()


def test_transfer_through_the_client_as_through_the_node(remote, tmp_path):
    assert remote.transfer.channels() == []
    policy = remote.transfer.policy()
    assert isinstance(policy, TransferPolicy) and policy.pull is True
    with hoard.Node({"data-dir": str(tmp_path / "e")}) as embedded:
        assert type(embedded.transfer.policy()) is type(policy)
    with pytest.raises(NotFoundError):
        remote.transfer.channel(f"{remote.peer_id()}-{remote.peer_id()}-1")
    with pytest.raises(InvalidArgumentError, match="not a channel id"):
        remote.transfer.wait("nonsense")


def _hoard(node, *args: str, input: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([sys.executable, "-m", "hoard.cli.main", *args], input=input, capture_output=True,
                          timeout=120, check=False, env=node.env)


def test_the_cli_takes_api_for_logs_and_transfers(running, tmp_path):
    other = str(tmp_path / "not-the-nodes-dir")  # nothing runs here: --api alone names the node
    created = _hoard(running, "--data-dir", other, "--api", running.url, "--json", "log", "create", "--name", "api")
    assert created.returncode == 0, created.stderr
    name = json.loads(created.stdout)["name"]
    appended = _hoard(running, "--data-dir", other, "--api", running.url, "log", "append", name, input=b"x\ny\n")
    assert appended.stdout.strip() == b"appended 2 record(s), 1..2", appended.stderr
    info = _hoard(running, "--data-dir", other, "--api", running.url, "log", "info", name)
    assert b"records: 2" in info.stdout and b"writable: True" in info.stdout, info.stderr
    listed = _hoard(running, "--data-dir", other, "--api", running.url, "--json", "transfer", "list")
    assert json.loads(listed.stdout) == [], listed.stderr
    assert not (tmp_path / "not-the-nodes-dir").exists()  # no embedded node was opened there
    old = _hoard(running, "--data-dir", other, "log", "--grpc", running.grpc_address, "list")
    assert old.returncode == 2 and b"--api" in old.stderr


def test_a_cli_subscription_to_a_running_node_ends_when_the_node_stops(tmp_path):
    from harness import Daemon

    node = Daemon(tmp_path / "n").start()
    try:
        name = node.cli("log", "create", "--name", "follow-me").stdout.strip().decode()
        follower = subprocess.Popen([*node.hoard, *node.cli_args(), "log", "subscribe", name, "--start", "1"],
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=node.env)
        assert node.cli("log", "append", name, "--data", "hello").returncode == 0
        assert follower.stdout is not None and follower.stdout.readline() == b"hello\n"
    finally:
        assert node.stop() == 0
    _, err = follower.communicate(timeout=60)
    assert follower.returncode == 9 and b"shut down" in err
