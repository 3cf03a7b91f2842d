"""Real hoard nodes in child processes, driven by JSON lines (shared by the process tests).

`NodeProcess(data_dir, **config)` starts `driver` (harness/node_main.py: it runs a `hoard.Node`
and answers `{"op", "args", "kwargs"}` requests with `{"ok": …}` or `{"error": {"type",
"message", "code"}}`), waits for its `{"ready": {peerId, addrs, spr}}` line, and `call(op,
*args)` runs an op there. A `LogError` comes back as itself (with its GDP status), other errors
as RuntimeError("Type: message"). Every node listens on 127.0.0.1 only; its log goes to
`<data_dir>.stderr`, its uploaded files to `<data_dir>-files/`, both beside `data_dir`.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import hoard

DRIVER = str(Path(__file__).with_name("node_main.py"))


class NodeProcess:
    """A `hoard.Node` in a child process; `call(op, *args)` runs an op there."""

    def __init__(self, data_dir: Path, bench: bool = False, driver: str = DRIVER, **config) -> None:
        self.data_dir = data_dir
        cfg = {"data-dir": str(data_dir), "listen-addrs": ["/ip4/127.0.0.1/tcp/0"], **config}
        self.stderr_path = data_dir.with_suffix(".stderr")
        self._stderr = open(self.stderr_path, "w")  # noqa: SIM115 - closed in close()
        argv = [sys.executable, driver, json.dumps(cfg)] + (["--bench"] if bench else [])
        self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._stderr,
                                     text=True, bufsize=1)
        ready = self.read()
        if "ready" not in ready:
            raise RuntimeError(f"node did not start: {ready}")
        self.peer_id = ready["ready"]["peerId"]
        self.addrs = ready["ready"]["addrs"]
        self.spr = ready["ready"]["spr"]

    def read(self) -> dict:
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"node process exited: {self.stderr_path.read_text()[-3000:]}")
        return json.loads(line)

    def send(self, op: str, *args, **kwargs) -> None:
        self.proc.stdin.write(json.dumps({"op": op, "args": list(args), "kwargs": kwargs}) + "\n")
        self.proc.stdin.flush()

    def call(self, op: str, *args, **kwargs):
        self.send(op, *args, **kwargs)
        answer = self.read()
        if "error" in answer:
            error = answer["error"]
            if error["type"] == "LogError" and "code" in error:
                raise hoard.errors.LogError(error["message"], status=error["code"])
            raise RuntimeError(f"{error['type']}: {error['message']}")
        return answer["ok"]

    def upload_bytes(self, data: bytes, name: str = "data.bin") -> str:
        folder = self.data_dir.with_name(self.data_dir.name + "-files")
        folder.mkdir(exist_ok=True)
        path = folder / name  # same name on every node: the filename is part of the manifest
        path.write_bytes(data)
        return self.call("upload_file", self.call("upload_init", str(path)))

    def log(self) -> str:
        self._stderr.flush()
        return self.stderr_path.read_text()

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=30)

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                self.send("quit")
                self.proc.wait(timeout=30)
            except (BrokenPipeError, subprocess.TimeoutExpired, OSError):
                self.proc.kill()
                self.proc.wait(timeout=30)
        self._stderr.close()


def spawner(tmp_path: Path, **defaults):
    """A `start(name, **config)` function plus the list of started nodes (close them after)."""
    nodes: list[NodeProcess] = []

    def start(name: str, **config) -> NodeProcess:
        node = NodeProcess(tmp_path / name, **{**defaults, **config})
        nodes.append(node)
        return node

    return start, nodes
