"""Fixtures of the data-transfer tests. Their node processes come from the `spawn` fixture
(tests/conftest.py, harness.NodeProcess), whose `dt` op runs `_dt_ops.py` inside the node."""

import os

import pytest


@pytest.fixture
def random_bytes():
    return lambda n: os.urandom(n)
