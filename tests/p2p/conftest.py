"""Fixtures of the peer-to-peer tests: real node processes on 127.0.0.1 come from the `spawn`
fixture (tests/conftest.py, harness.NodeProcess)."""

import os

import pytest


@pytest.fixture
def random_bytes():
    return lambda n: os.urandom(n)
