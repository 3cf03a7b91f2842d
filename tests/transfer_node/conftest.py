"""Fixtures of the data-transfer tests. Their node processes come from the `spawn` fixture
(tests/conftest.py, harness.NodeProcess), whose `dt` op runs `_dt_ops.py` inside the node."""

import os

import pytest


@pytest.fixture
def spawn(spawn):
    """The shared `spawn`, with nodes that upload in hoard's dataset format: a data transfer moves
    an IPLD DAG (a dag-cbor manifest linking its index and blocks); a Logos-format manifest links
    nothing (docs/storage.md)."""
    return lambda name, **config: spawn(name, **{"dataset-format": "hoard", **config})


@pytest.fixture
def random_bytes():
    return lambda n: os.urandom(n)
