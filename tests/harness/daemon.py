"""A real `hoard node start` daemon on 127.0.0.1 for tests, REST and gRPC on free ports (shared by the suites)."""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Self

import psutil

START_TIMEOUT = 90.0
STOP_TIMEOUT = 30.0
LOCAL_CONFIG = {"api-port": 0, "grpc-port": 0, "listen-addrs": ["/ip4/127.0.0.1/tcp/0"]}


class Daemon:
    """`hoard --json --data-dir D --config C node start`, started and stopped by the test."""

    def __init__(self, root: Path, config: dict[str, Any] | None = None, hoard: list[str] | None = None,
                 env: dict[str, str] | None = None) -> None:
        """`hoard` is the command that runs hoard (default: this Python's `-m hoard.cli.main`); `env`
        the environment (default: this process's)."""
        self.root = Path(root)
        self.hoard = hoard or [sys.executable, "-m", "hoard.cli.main"]
        self.env = dict(os.environ if env is None else env)
        self.data_dir = self.root / "data"
        self.config_path = self.root / "config.json"
        self.config = {**LOCAL_CONFIG, **(config or {})}
        self.proc: subprocess.Popen[bytes] | None = None
        self.info: dict[str, Any] = {}
        self.stderr_path = self.root / "node.stderr"

    @property
    def url(self) -> str:
        """The node's REST address as it printed it (`http://127.0.0.1:PORT`)."""
        return self.info["api"]

    @property
    def grpc_address(self) -> str:
        return self.info["grpcAddr"]

    def cli(self, *args: str, input: bytes | None = None, timeout: float = 120) -> subprocess.CompletedProcess[bytes]:
        """Run `hoard --data-dir D --config C ARGS` to completion."""
        return subprocess.run([*self.hoard, *self.cli_args(), *args],
                              input=input, capture_output=True, timeout=timeout, env=self.env, check=False)

    @property
    def api(self) -> str:
        return self.url + "/api/storage/v1"

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def cli_args(self) -> list[str]:
        return ["--data-dir", str(self.data_dir), "--config", str(self.config_path)]

    def start(self) -> Daemon:
        self.root.mkdir(parents=True, exist_ok=True)
        self.config_path.write_text(json.dumps(self.config))
        env = {**self.env, "PYTHONUNBUFFERED": "1"}
        with open(self.stderr_path, "wb") as err:
            self.proc = subprocess.Popen([*self.hoard, "--json", *self.cli_args(), "node", "start"],
                                         stdout=subprocess.PIPE, stderr=err, env=env)
        self.info = json.loads(self._first_line(START_TIMEOUT))
        return self

    def _first_line(self, timeout: float) -> str:
        """The first line the node prints (its JSON info), waiting at most `timeout` seconds."""
        assert self.proc is not None and self.proc.stdout is not None
        deadline = time.monotonic() + timeout
        buf = b""
        while b"\n" not in buf:
            left = deadline - time.monotonic()
            if left <= 0 or self.proc.poll() is not None:
                self.stop()
                raise RuntimeError(f"node did not start: {self.stderr_path.read_text(errors='replace')[-3000:]}")
            ready, _, _ = select.select([self.proc.stdout], [], [], min(left, 1.0))
            if ready:
                chunk = os.read(self.proc.stdout.fileno(), 65536)
                if not chunk:
                    continue
                buf += chunk
        return buf.split(b"\n", 1)[0].decode()

    def anon_rss(self) -> int:
        """Resident anonymous memory of the node process (RSS minus file-backed/shared pages).

        The store reads through an mmap, so plain RSS also counts page-cache pages of the
        data read; those are not memory the node holds.
        """
        mem = psutil.Process(self.pid).memory_info()
        return mem.rss - mem.shared

    def stop(self) -> int | None:
        """SIGTERM, wait for a clean exit (kill after STOP_TIMEOUT); returns the exit code."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(STOP_TIMEOUT)
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        return self.proc.returncode

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
