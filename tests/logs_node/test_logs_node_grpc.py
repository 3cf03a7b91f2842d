"""`hoard.v1.LogService` and the `hoard log` commands against a real `hoard node start` process."""

from __future__ import annotations

import json

import grpc
import pytest
from harness import Daemon

from hoard import EVENT_DATA, EVENT_EOS, parse_name
from hoard.api.grpc.logs import LogsClient, messages, services
from hoard.errors import LogError
from hoard.logs.metadata import PUB, SYN, decode_pub

pytestmark = pytest.mark.timeout(180)
RPC_TIMEOUT = 60


@pytest.fixture(scope="module")
def running(tmp_path_factory):
    node = Daemon(tmp_path_factory.mktemp("logs-grpc")).start()
    yield node
    assert node.stop() == 0, node.stderr_path.read_text(errors="replace")[-3000:]


@pytest.fixture(scope="module")
def client(running):
    with LogsClient(running.grpc_address) as c:
        yield c


def test_create_append_read(client):
    info = client.create([(SYN, b"text/plain")])
    assert len(info.name) == 43 and info.nrecs == 0 and info.writable
    assert {e.id: e.value for e in info.metadata}[SYN] == b"text/plain"
    assert decode_pub({e.id: e.value for e in info.metadata}[PUB]) == info.public_key
    records = client.append(info.name, [b"one", b"two", b"three"])
    assert [r.recno for r in records] == [1, 2, 3] and all(len(r.signature) == 64 for r in records)
    assert client.read(info.name, recno=-1).data == b"three"
    assert client.read(info.name, ts=records[1].ts).recno == 2
    assert client.info(info.name).nrecs == 3
    assert info.name in [i.name for i in client.list()]


def test_subscribe_streams_existing_then_new_records(client):
    name = client.create().name
    client.append(name, [b"a", b"b"])
    snapshot = list(client.subscribe(name, 1, 0, multiread=True))
    assert [(e.type, e.record.data) for e in snapshot] == [(EVENT_DATA, b"a"), (EVENT_DATA, b"b"), (EVENT_EOS, b"")]
    live = client.subscribe(name, 2, 3)  # record 2 now, 3 and 4 when appended, then EOS
    first = next(live)
    assert (first.type, first.record.recno) == (EVENT_DATA, 2)  # the subscription is in place
    client.append(name, [b"c", b"d", b"e"])
    rest = list(live)
    assert [(e.type, e.record.recno) for e in rest] == [(EVENT_DATA, 3), (EVENT_DATA, 4), (EVENT_EOS, 0)]


def test_errors_have_their_status(client, running):
    with pytest.raises(LogError) as err:
        client.read("no such log", recno=1)
    assert err.value.code == 404
    name = client.create().name
    with pytest.raises(LogError) as err:
        list(client.subscribe(name, 1, -1))
    assert err.value.code == 402  # INVALID_ARGUMENT, the GDP status in the trailing metadata
    with grpc.insecure_channel(running.grpc_address) as channel:
        stub = services.LogServiceStub(channel)
        with pytest.raises(grpc.RpcError) as info:
            stub.Read(messages.ReadRequest(name=name, recno=5), timeout=RPC_TIMEOUT)
        assert info.value.code() == grpc.StatusCode.NOT_FOUND
        with pytest.raises(grpc.RpcError) as info:
            stub.Create(messages.CreateLogRequest(name="dup"), timeout=RPC_TIMEOUT)
            stub.Create(messages.CreateLogRequest(name="dup"), timeout=RPC_TIMEOUT)
        assert info.value.code() == grpc.StatusCode.ALREADY_EXISTS


def test_cli_against_the_running_node(running):
    created = running.cli("--json", "log", "create", "--meta", "SYN=text")
    assert created.returncode == 0, created.stderr
    name = json.loads(created.stdout)["name"]
    appended = running.cli("--json", "log", "append", name, input=b"first\nsecond\nthird\n")
    assert json.loads(appended.stdout) == {"appended": 3, "first": 1, "last": 3}, appended.stderr
    read = running.cli("log", "read", name, "--start", "2")
    assert read.stdout == b"second\nthird\n", read.stderr
    records = running.cli("--json", "log", "subscribe", name, "--start", "-1", "--count", "1")
    assert [json.loads(line)["recno"] for line in records.stdout.splitlines()] == [3]
    listed = running.cli("--json", "log", "list")
    assert {"name": name, "nrecs": 3} in json.loads(listed.stdout)
    missing = running.cli("log", "read", "nothing here")
    assert missing.returncode == 9 and b"no log named" in missing.stderr
    assert str(parse_name(name)) == name
