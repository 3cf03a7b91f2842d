"""Real node processes on 127.0.0.1 for the peer-to-peer tests (see tests/node_harness.py)."""

import os

import pytest
from node_harness import NodeProcess, spawner

__all__ = ["NodeProcess"]


@pytest.fixture
def spawn(tmp_path):
    start, nodes = spawner(tmp_path)
    yield start
    for node in nodes:
        node.close()


@pytest.fixture
def random_bytes():
    return lambda n: os.urandom(n)
