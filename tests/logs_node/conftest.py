"""Fixtures for logs on the node: embedded nodes, real node processes, an event collector."""

from __future__ import annotations

import json
import queue
import subprocess
import sys
from pathlib import Path

import pytest

import hoard

DRIVER = str(Path(__file__).with_name("_log_node_proc.py"))
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


class LogNodeProcess:
    """A `hoard.Node` in a child process (_log_node_proc.py); `call(op, *args)` runs an op there."""

    def __init__(self, data_dir: Path, **config) -> None:
        self.data_dir = data_dir
        cfg = {"data-dir": str(data_dir), **LOCAL, **config}
        self.stderr_path = data_dir.with_suffix(".stderr")
        self._stderr = open(self.stderr_path, "w")
        self.proc = subprocess.Popen([sys.executable, DRIVER, json.dumps(cfg)], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=self._stderr, text=True, bufsize=1)
        ready = self.read()
        self.peer_id = ready["ready"]["peerId"]
        self.addrs = ready["ready"]["addrs"]
        self.spr = ready["ready"]["spr"]

    def read(self) -> dict:
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"node process exited: {self.stderr_path.read_text()[-3000:]}")
        return json.loads(line)

    def call(self, op: str, *args, **kwargs):
        self.proc.stdin.write(json.dumps({"op": op, "args": list(args), "kwargs": kwargs}) + "\n")
        self.proc.stdin.flush()
        answer = self.read()
        if "error" in answer:
            error = answer["error"]
            raise hoard.errors.LogError(error["message"], status=error["code"]) if error["type"] == "LogError" \
                else RuntimeError(f"{error['type']}: {error['message']}")
        return answer["ok"]

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=30)

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                self.call("quit")
                self.proc.wait(timeout=30)
            except (BrokenPipeError, subprocess.TimeoutExpired, OSError, RuntimeError):
                self.proc.kill()
                self.proc.wait(timeout=30)
        self._stderr.close()


@pytest.fixture
def spawn(tmp_path):
    nodes: list[LogNodeProcess] = []

    def start(name: str, **config) -> LogNodeProcess:
        node = LogNodeProcess(tmp_path / name, **config)
        nodes.append(node)
        return node

    yield start
    for node in nodes:
        node.close()


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
