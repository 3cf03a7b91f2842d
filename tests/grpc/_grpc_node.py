"""A real `hoard node start` process on 127.0.0.1 with its gRPC API on a free port, and the
castore/hugo client stubs generated at test time from the two spec files, unchanged."""

from __future__ import annotations

import importlib
import json
import os
import re
import select
import signal
import subprocess
import sys
import time
import types
from pathlib import Path
from typing import Any

RPC_TIMEOUT = 60  # seconds, for every call

START_TIMEOUT = 90.0
STOP_TIMEOUT = 30.0
LOCAL_CONFIG = {"api-port": 0, "grpc-port": 0, "listen-addrs": ["/ip4/127.0.0.1/tcp/0"]}
REPO = Path(__file__).resolve().parents[2]
CASTORE_SPEC = "tvix-castore-blobservice.proto"
HUGO_SPEC = "hugo-storage-api.md"


def spec_dir() -> Path | None:
    """The directory of the seed specs ($HOARD_SPECS_DIR, else /work/shared/specs), if present."""
    for candidate in (os.environ.get("HOARD_SPECS_DIR"), "/work/shared/specs"):
        if candidate and (Path(candidate) / CASTORE_SPEC).is_file() and (Path(candidate) / HUGO_SPEC).is_file():
            return Path(candidate)
    return None


def hugo_proto_from_markdown(text: str) -> str:
    """The protobuf block of hugo's API doc, exactly as written there."""
    blocks = re.findall(r"```protobuf\n(.*?)```", text, re.S)
    assert len(blocks) == 1, "hugo-storage-api.md should hold exactly one protobuf block"
    return blocks[0]


def contract_texts() -> dict[str, str]:
    """The two contracts by the proto path they are compiled under: from the specs when
    available, else from the copies in proto/ (which a test checks against the specs)."""
    specs = spec_dir()
    if specs is not None:
        return {"tvix/castore/v1/rpc_blobstore.proto": (specs / CASTORE_SPEC).read_text(),
                "hugo/v1/storage/storage.proto": hugo_proto_from_markdown((specs / HUGO_SPEC).read_text())}
    return {name: (REPO / "proto" / name).read_text()
            for name in ("tvix/castore/v1/rpc_blobstore.proto", "hugo/v1/storage/storage.proto")}


def generate_clients(out: Path) -> types.SimpleNamespace:
    """Compile the contracts with grpc_tools into `out` and import the stubs."""
    from grpc_tools import protoc

    src = out / "protos"
    for name, text in contract_texts().items():
        (src / name).parent.mkdir(parents=True, exist_ok=True)
        (src / name).write_text(text)
    gen = out / "gen"
    gen.mkdir(parents=True, exist_ok=True)
    include = Path(protoc.__file__).parent / "_proto"
    names = sorted(contract_texts())
    assert protoc.main(["protoc", f"-I{src}", f"-I{include}", f"--python_out={gen}", f"--grpc_python_out={gen}",
                        *names]) == 0
    sys.path.insert(0, str(gen))
    try:
        mod = importlib.import_module
        return types.SimpleNamespace(
            castore=mod("tvix.castore.v1.rpc_blobstore_pb2"), castore_grpc=mod("tvix.castore.v1.rpc_blobstore_pb2_grpc"),
            hugo=mod("hugo.v1.storage.storage_pb2"), hugo_grpc=mod("hugo.v1.storage.storage_pb2_grpc"))
    finally:
        sys.path.remove(str(gen))


class NodeProcess:
    """`hoard --json --data-dir D --config C node start`, started and stopped by the test."""

    def __init__(self, root: Path, config: dict[str, Any] | None = None) -> None:
        self.root = Path(root)
        self.data_dir = self.root / "data"
        self.config_path = self.root / "config.json"
        self.config = {**LOCAL_CONFIG, **(config or {})}
        self.proc: subprocess.Popen[bytes] | None = None
        self.info: dict[str, Any] = {}
        self.stderr_path = self.root / "node.stderr"

    @property
    def grpc_address(self) -> str:
        return self.info["grpcAddr"]

    def cli(self, *args: str, input: bytes | None = None, timeout: float = 120) -> subprocess.CompletedProcess[bytes]:
        """Run `hoard --data-dir D --config C ARGS` to completion."""
        return subprocess.run([sys.executable, "-m", "hoard.cli.main", "--data-dir", str(self.data_dir),
                               "--config", str(self.config_path), *args],
                              input=input, capture_output=True, timeout=timeout)

    def start(self) -> NodeProcess:
        self.root.mkdir(parents=True, exist_ok=True)
        self.config_path.write_text(json.dumps(self.config))
        with open(self.stderr_path, "wb") as err:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "hoard.cli.main", "--json", "--data-dir", str(self.data_dir),
                 "--config", str(self.config_path), "node", "start"],
                stdout=subprocess.PIPE, stderr=err, env={**os.environ, "PYTHONUNBUFFERED": "1"})
        self.info = json.loads(self._first_line())
        return self

    def _first_line(self) -> str:
        assert self.proc is not None and self.proc.stdout is not None
        deadline = time.monotonic() + START_TIMEOUT
        buf = b""
        while b"\n" not in buf:
            left = deadline - time.monotonic()
            if left <= 0 or self.proc.poll() is not None:
                self.stop()
                raise RuntimeError(f"node did not start: {self.stderr_path.read_text(errors='replace')[-3000:]}")
            ready, _, _ = select.select([self.proc.stdout], [], [], min(left, 1.0))
            if ready:
                buf += os.read(self.proc.stdout.fileno(), 65536)
        return buf.split(b"\n", 1)[0].decode()

    def stop(self) -> int | None:
        """SIGTERM and wait for a clean exit (kill after STOP_TIMEOUT); returns the exit code."""
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
