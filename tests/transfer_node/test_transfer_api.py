"""The transfer APIs of a node: `node.data_transfer` (blocking, from user threads), the `hoard.v1`
TransferService on the gRPC port and `hoard transfer ...` against running `hoard node start` daemons.
"""

from __future__ import annotations

import base64
import json
import os
import queue
import threading

import pytest
from harness import Daemon

import hoard
from hoard.api import shapes
from hoard.errors import AlreadyExistsError, NotFoundError, TransferError
from hoard.transfer import ChannelID, ErrChannelNotFound, EventCode, Status
from hoard.transfer.builtin import DefaultVoucher, PolicyValidator

pytestmark = pytest.mark.timeout(240)

FINAL = (Status.Completed, Status.Failed, Status.Cancelled)


# -- node.data_transfer ----------------------------------------------------------------------------

@pytest.fixture
def two_nodes(tmp_path):
    config = {"listen-addrs": ["/ip4/127.0.0.1/tcp/0"], "dataset-format": "hoard"}  # transfers move DAGs
    with hoard.Node({**config, "data-dir": str(tmp_path / "a")}) as a, \
            hoard.Node({**config, "data-dir": str(tmp_path / "b")}) as b:
        a.start()
        b.start()
        a.connect(str(b.peer_id()), list(b.debug().addrs))
        yield a, b


def test_the_blocking_facade_from_user_threads_with_events_on_a_hoard_thread(two_nodes, tmp_path):
    a, b = two_nodes
    data = b"0123456789" * 50_000
    (tmp_path / "f.bin").write_bytes(data)
    cid = b.upload_file(b.upload_init(str(tmp_path / "f.bin")))
    events: queue.SimpleQueue = queue.SimpleQueue()
    threads = set()

    def subscriber(event, state):
        threads.add(threading.current_thread().name)
        events.put((event, state))

    unsubscribe = a.data_transfer.subscribe_to_events(subscriber)
    chid = a.data_transfer.open_pull_data_channel(str(b.peer_id()), DefaultVoucher("please"), cid)
    assert isinstance(chid, ChannelID) and chid.initiator == str(a.peer_id()) and chid.responder == str(b.peer_id())
    seen = []
    while not seen or seen[-1][1].status not in FINAL:
        event, state = events.get(timeout=60)
        if state.channel_id == chid:
            seen.append((event, state))
    unsubscribe()
    assert seen[-1][1].status is Status.Completed
    assert [e.code for e, _ in seen if e.code not in (EventCode.DataReceived, EventCode.DataReceivedProgress)] == [
        EventCode.Open, EventCode.NewVoucherResult, EventCode.Accept, EventCode.ResumeResponder,
        EventCode.FinishTransfer, EventCode.ResponderCompletes, EventCode.CleanupComplete]
    assert all(e.timestamp.tzinfo is not None for e, _ in seen)
    assert threads == {"hoard-transfer-events"}
    assert a.data_transfer.transfer_channel_status(chid) is Status.Completed
    assert a.data_transfer.channel_state(str(chid)).received == seen[-1][1].received
    assert chid in a.data_transfer.in_progress_channels()
    result = a.data_transfer.decode_voucher_result(a.data_transfer.channel_state(chid).last_voucher_result)
    assert result.text == "accepted"
    assert b.data_transfer.channel_state(chid).sender == str(b.peer_id())
    out = tmp_path / "out.bin"
    a.download_stream(str(cid), str(out))
    assert out.read_bytes() == data


def test_facade_errors(two_nodes):
    a, _b = two_nodes
    with pytest.raises(AlreadyExistsError, match="identifier already registered: hoard/transfer/voucher/1"):
        a.data_transfer.register_voucher_type(DefaultVoucher, PolicyValidator())
    unknown = ChannelID(str(a.peer_id()), str(a.peer_id()), 1)
    assert a.data_transfer.transfer_channel_status(unknown) is Status.ChannelNotFoundError
    with pytest.raises(ErrChannelNotFound):
        a.data_transfer.channel_state(unknown)
    with pytest.raises(AttributeError):
        a.data_transfer.no_such_method  # noqa: B018


def test_channels_are_kept_across_a_node_restart(tmp_path):
    config = {"listen-addrs": ["/ip4/127.0.0.1/tcp/0"], "dataset-format": "hoard"}  # transfers move DAGs
    with hoard.Node({**config, "data-dir": str(tmp_path / "a")}) as a, \
            hoard.Node({**config, "data-dir": str(tmp_path / "b")}) as b:
        a.start()
        b.start()
        (tmp_path / "f.bin").write_bytes(b"x" * 300_000)
        cid = b.upload_file(b.upload_init(str(tmp_path / "f.bin")))
        state = a.transfer.open(str(b.peer_id()), cid, "pull", None, "hello", list(b.debug().addrs))
        done = threading.Event()
        a.data_transfer.subscribe_to_events(lambda e, s: done.set() if s.status in FINAL else None)
        assert done.wait(60)
        finished = a.transfer.channel(state.channel_id)
    with hoard.Node({**config, "data-dir": str(tmp_path / "a")}) as again:
        assert shapes.channel_json(again.transfer.channel(state.channel_id)) == shapes.channel_json(finished)
        assert finished.status is Status.Completed and finished.vouchers[0].type_id == "hoard/transfer/voucher/1"


# -- gRPC and the CLI against running nodes ----------------------------------------------------------

@pytest.fixture
def daemons(tmp_path):
    nodes = [Daemon(tmp_path / name, {"dataset-format": "hoard"}).start() for name in ("a", "b")]
    yield nodes
    for node in nodes:
        assert node.stop() == 0, node.stderr_path.read_text(errors="replace")[-3000:]


def run(node, *args, ok=True):
    done = node.cli("--json", *args)
    if ok:
        assert done.returncode == 0, done.stderr.decode(errors="replace")
    return done


def test_cli_pull_push_list_policy_against_running_nodes(daemons, tmp_path):
    a, b = daemons
    data = os.urandom(5_000_000)
    (tmp_path / "f.bin").write_bytes(data)
    cid = json.loads(run(b, "upload", str(tmp_path / "f.bin")).stdout)["cid"]
    peer_b, addr_b = b.info["peerId"], b.info["addrs"][0]
    pulled = json.loads(run(a, "transfer", "pull", peer_b, cid, "--addr", addr_b, "--wait", "--note", "hi").stdout)
    assert pulled["status"] == "Completed" and pulled["received"] == pulled["totalSize"] > len(data)
    listed = json.loads(run(a, "transfer", "list").stdout)
    assert [c["id"] for c in listed] == [pulled["id"]]
    assert json.loads(run(b, "transfer", "show", pulled["id"]).stdout)["sent"] == pulled["received"]
    out = tmp_path / "out.bin"
    run(a, "download", cid, "-o", str(out))
    assert out.read_bytes() == data
    # b refuses pushes now: a's push fails with b's reason
    assert json.loads(run(b, "transfer", "policy", "--push", "reject").stdout)["push"] is False
    (tmp_path / "g.bin").write_bytes(b"pushed data" * 1000)
    cid2 = json.loads(run(a, "upload", str(tmp_path / "g.bin")).stdout)["cid"]
    refused = run(a, "transfer", "push", peer_b, cid2, "--wait", ok=False)
    assert refused.returncode == 8
    state = json.loads(refused.stdout)
    assert state["status"] == "Failed"
    assert state["message"] == "response rejected"  # Go's ErrRejected text; the reason is the voucher result
    reason = state["voucherResults"][-1]
    assert reason["type"] == "hoard/transfer/rejection/1"
    assert base64.b64decode(reason["data"]) == b"this node does not accept push transfers"
    # a finished channel cannot be paused; an unknown one is not found
    paused = run(a, "transfer", "pause", pulled["id"], ok=False)
    assert paused.returncode == 8 and b"Invalid transition" in paused.stderr
    missing = run(a, "transfer", "show", f"{peer_b}-{peer_b}-7", ok=False)
    assert missing.returncode == 3


def test_grpc_transfer_service_with_an_event_stream(daemons, tmp_path):
    from hoard.api.grpc.transfer import TransferClient

    a, b = daemons
    (tmp_path / "f.bin").write_bytes(os.urandom(400_000))
    cid = json.loads(run(b, "upload", str(tmp_path / "f.bin")).stdout)["cid"]
    with TransferClient(a.grpc_address) as client, TransferClient(b.grpc_address) as client_b:
        assert client_b.policy().push is False and client_b.policy().any_peer is True
        opened = client.open("pull", b.info["peerId"], cid, start=0, end=3, note="range please",
                             addrs=b.info["addrs"])
        assert opened.range.end == 3 and opened.vouchers[0].type == "hoard/transfer/voucher/1"
        names = [event.name for event in client.events(opened.channel_id, end_when_done=True)]
        final = client.channel("GetChannel", opened.channel_id)
        assert final.status == "Completed" and final.received_blocks == 2 + 3
        # a channel that ended before the stream began gives no event (the stream ends at once);
        # one that was still running ends its stream with its last event
        assert names == [] or names[-1] == "CleanupComplete", names
        assert [c.channel_id for c in client.list()] == [opened.channel_id]
        served = client_b.channel("GetChannel", opened.channel_id)
        assert served.sent == final.received and served.status == "Completed"
        with pytest.raises(NotFoundError):
            client.channel("GetChannel", f"{a.info['peerId']}-{b.info['peerId']}-1")
        with pytest.raises(TransferError, match="Invalid transition"):
            client.channel("Cancel", opened.channel_id)


def test_cli_without_a_running_node_uses_the_data_dir(tmp_path):
    from click.testing import CliRunner

    from hoard.cli.main import cli

    runner = CliRunner()
    data_dir = str(tmp_path / "data")

    def hoard_cli(*args):
        return runner.invoke(cli, ["--data-dir", data_dir, *args], catch_exceptions=False)

    assert hoard_cli("transfer", "list").stdout.strip() == "no transfer channels"
    changed = hoard_cli("--json", "transfer", "policy", "--push", "reject", "--peer", PEER)
    assert json.loads(changed.stdout) == {"push": False, "pull": True, "peers": [PEER]}
    assert json.loads(hoard_cli("--json", "transfer", "policy").stdout)["push"] is False  # persisted
    assert json.loads(hoard_cli("--json", "transfer", "policy", "--any-peer").stdout)["peers"] is None
    bad = hoard_cli("transfer", "show", "nonsense")
    assert bad.exit_code == 2 and "not a channel id" in bad.stderr


def test_opening_needs_a_started_node(tmp_path):
    with hoard.Node({"data-dir": str(tmp_path / "a")}) as node, pytest.raises(hoard.errors.StateError, match="not started"):
        node.data_transfer.open_pull_data_channel(PEER, DefaultVoucher(), "zdqAua3AF5EXb2sSTvZkncnHzz1LzSEGsDZwvYXzAJ5uRtQFo")


PEER = "12D3KooWQEKAeG9bj5uua6knrZSFo6vczQJZw2pXHBJhKrviuboZ"


def test_a_logos_dataset_is_refused_with_a_pointer_to_fetch(two_nodes, tmp_path):
    a, b = two_nodes
    (tmp_path / "l.bin").write_bytes(os.urandom(200_000))
    with hoard.Node({"data-dir": str(tmp_path / "c"), "dataset-format": "logos"}) as c:
        logos_cid = c.upload_file(c.upload_init(str(tmp_path / "l.bin")))
    from hoard.errors import InvalidArgumentError

    with pytest.raises(InvalidArgumentError, match="Logos datasets move by fetch"):
        a.data_transfer.open_pull_data_channel(str(b.peer_id()), DefaultVoucher("please"), logos_cid)
    assert a.transfer.channels() == []
