"""Fixtures for logs on the node: embedded nodes and an event collector (real node processes: the
`spawn` fixture of tests/conftest.py, whose driver keeps log handles)."""

from __future__ import annotations

import queue

import pytest

import hoard

LOCAL = {"listen-addrs": ["/ip4/127.0.0.1/tcp/0"]}


class Collector:
    """A log callback that keeps events; `wait_for(n)` returns the first n (or fails)."""

    def __init__(self) -> None:
        self.queue: queue.SimpleQueue = queue.SimpleQueue()
        self.events: list = []

    def __call__(self, event) -> None:
        self.queue.put(event)

    def wait_for(self, n: int, timeout: float = 30.0) -> list:
        while len(self.events) < n:
            self.events.append(self.queue.get(timeout=timeout))
        return self.events[:n]


@pytest.fixture
def node_config(tmp_path):
    return lambda name="node", **extra: {"data-dir": str(tmp_path / name), **LOCAL, **extra}


@pytest.fixture
def node(node_config):
    with hoard.Node(node_config()) as n:
        yield n


@pytest.fixture
def collector():
    return Collector()
