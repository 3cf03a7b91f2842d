import itertools
import os

import grpc
import pytest
from _grpc_node import RPC_TIMEOUT, generate_clients
from harness import Daemon


@pytest.fixture(scope="session")
def stubs(tmp_path_factory):
    """castore and hugo client modules generated from the spec files at test time."""
    return generate_clients(tmp_path_factory.mktemp("clients"))


@pytest.fixture(scope="session")
def grpc_node(tmp_path_factory):
    """One real node process for the session, serving gRPC on a free port of 127.0.0.1."""
    node = Daemon(tmp_path_factory.mktemp("grpc-node")).start()
    yield node
    assert node.stop() == 0, (node.root / "node.stderr").read_text(errors="replace")[-3000:]


@pytest.fixture(scope="session")
def channel(grpc_node):
    with grpc.insecure_channel(grpc_node.grpc_address, options=[
            ("grpc.max_receive_message_length", 64 << 20), ("grpc.max_send_message_length", 64 << 20)]) as ch:
        grpc.channel_ready_future(ch).result(timeout=RPC_TIMEOUT)
        yield ch


@pytest.fixture(scope="session")
def blobs(stubs, channel):
    return stubs.castore_grpc.BlobServiceStub(channel)


@pytest.fixture(scope="session")
def storage(stubs, channel):
    return stubs.hugo_grpc.StorageServiceStub(channel)


_inos = itertools.count(1000)


@pytest.fixture
def ino():
    """An inode number no other test uses."""
    return next(_inos)


@pytest.fixture
def random_bytes():
    return os.urandom
