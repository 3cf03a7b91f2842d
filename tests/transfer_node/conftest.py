"""Node processes for the data-transfer tests: the shared process harness (tests/node_harness.py)
with the p2p driver, whose `dt` op runs `_dt_ops.py` inside the node."""

import os

import pytest
from node_harness import spawner


@pytest.fixture
def spawn(tmp_path):
    start, nodes = spawner(tmp_path)
    yield start
    for node in nodes:
        node.close()


@pytest.fixture
def random_bytes():
    return lambda n: os.urandom(n)
