"""Fixtures shared by every suite (the process harness itself is the package tests/harness/)."""

import pytest
from harness import spawner


@pytest.fixture
def spawn(tmp_path):
    """`spawn(name, **config)`: a `harness.NodeProcess` under tmp_path, closed after the test."""
    start, nodes = spawner(tmp_path)
    yield start
    for node in nodes:
        node.close()


@pytest.fixture(params=["one-store", "split"])
def store_kind(request: pytest.FixtureRequest) -> str:
    """Both shapes of a node's storage (harness/stores.py): one local store, or split stores."""
    return str(request.param)
