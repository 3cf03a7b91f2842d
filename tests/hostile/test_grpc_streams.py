"""gRPC flow control against a real node process: a Subscribe that is never read, many idle
Subscribe streams, and a Subscribe of an unknown kind."""

from __future__ import annotations

import threading
import time

import grpc
import pytest
from _hostile import ANSWER_WITHIN
from harness import Daemon

from hoard.api.grpc import castore
from hoard.api.grpc.logs import LogsClient, messages, services
from hoard.limits import GRPC_MAX_STREAMS, GRPC_STREAM_MAX_QUEUED_BYTES, GRPC_STREAM_STALL_SECONDS

pytestmark = pytest.mark.timeout(300)

RECORD = 2 << 20  # bytes of one appended record
RECORDS = 128  # 256 MiB in all: sixteen times what one stream may hold unread
WARM_UP = 16  # records appended first without a subscriber: what appends cost the node by themselves


@pytest.fixture(scope="module")
def node(tmp_path_factory):
    with Daemon(tmp_path_factory.mktemp("grpc-streams")) as proc:
        yield proc
        assert proc.proc is not None and proc.proc.poll() is None, "the node died"


@pytest.fixture(scope="module")
def logs(node):
    with LogsClient(node.grpc_address) as client:
        yield client


def stat_call(address: str) -> None:
    """castore Stat of a blob the node does not have, bounded by ANSWER_WITHIN: NOT_FOUND is an answer."""
    with grpc.insecure_channel(address) as channel:
        stub = castore.services.BlobServiceStub(channel)
        try:
            stub.Stat(castore.messages.StatBlobRequest(digest=bytes(32)), timeout=ANSWER_WITHIN)
        except grpc.RpcError as exc:
            assert exc.code() == grpc.StatusCode.NOT_FOUND, exc  # type: ignore[attr-defined]


def test_a_subscribe_that_is_never_read_is_ended_and_bounded(node, logs):
    name = logs.create().name
    for i in range(WARM_UP):
        logs.append(name, [bytes([i]) * RECORD])
    with grpc.insecure_channel(node.grpc_address, options=[("grpc.max_receive_message_length", 8 << 20)]) as channel:
        stub = services.LogServiceStub(channel)
        stream = stub.Subscribe(messages.SubscribeRequest(name=name, start=0), timeout=120)  # and not read
        before = node.anon_rss()
        peak = before
        for i in range(RECORDS):
            logs.append(name, [bytes([i]) * RECORD])
            peak = max(peak, node.anon_rss())
            stat_call(node.grpc_address)  # unary calls keep answering
        # The node ends the stream (after GRPC_STREAM_STALL_SECONDS of not being read at the latest):
        # what was already sent arrives, then RESOURCE_EXHAUSTED, never all the records.
        received = 0
        with pytest.raises(grpc.RpcError) as failed:
            for event in stream:
                received += event.record.recno > WARM_UP
                peak = max(peak, node.anon_rss())
        assert failed.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED, failed.value
        assert received < RECORDS
    grown = peak - before
    assert grown < 96 << 20, f"the node grew by {grown >> 20} MiB for a stream that was not read"
    assert GRPC_STREAM_MAX_QUEUED_BYTES < 32 << 20 and GRPC_STREAM_STALL_SECONDS < 60


def test_idle_subscribe_streams_do_not_starve_unary_calls(node, logs):
    name = logs.create().name
    count = GRPC_MAX_STREAMS + 8
    refused = threading.Semaphore(0)
    with grpc.insecure_channel(node.grpc_address) as channel:
        stub = services.LogServiceStub(channel)
        streams = []
        for _ in range(count):  # subscriptions to a log nobody appends to: each waits forever
            stream = stub.Subscribe(messages.SubscribeRequest(name=name, start=1), timeout=120)
            stream.add_done_callback(lambda call: call.code() == grpc.StatusCode.RESOURCE_EXHAUSTED and refused.release())
            streams.append(stream)
        try:
            for _ in range(count - GRPC_MAX_STREAMS):  # the streams past the limit are refused at once
                assert refused.acquire(timeout=30), "a stream past the limit was not refused"
            for _ in range(5):
                started = time.monotonic()
                stat_call(node.grpc_address)
                assert time.monotonic() - started < ANSWER_WITHIN
        finally:
            for stream in streams:
                stream.cancel()
    # The cancelled streams give their slots back: a new one is served.
    logs.append(name, [b"one"])
    assert next(iter(logs.subscribe(name, 1, 1))).record.data == b"one"


def test_a_subscribe_of_an_unknown_kind_is_refused(node, logs):
    name = logs.create().name
    with grpc.insecure_channel(node.grpc_address) as channel:
        stub = services.LogServiceStub(channel)
        with pytest.raises(grpc.RpcError) as failed:
            list(stub.Subscribe(messages.SubscribeRequest(name=name, kind=7, start=1), timeout=ANSWER_WITHIN))
        assert failed.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "kind" in failed.value.details()


def test_a_reading_client_gets_more_records_than_a_stream_may_queue(logs):
    from hoard.limits import GRPC_STREAM_MAX_QUEUED

    name = logs.create().name
    count = GRPC_STREAM_MAX_QUEUED + 500
    logs.append(name, [b"r%d" % i for i in range(count)])
    snapshot = list(logs.subscribe(name, 1, 0, multiread=True))
    assert [e.record.recno for e in snapshot[:-1]] == list(range(1, count + 1))
    live = list(logs.subscribe(name, 1, count))  # existing records, paced by this reader, then EOS
    assert [e.record.data for e in live[:-1]] == [b"r%d" % i for i in range(count)]
