"""A node on a bucket killed with SIGKILL in the middle of a 200 MB upload: on restart nothing
partial is listed, the space figures are right, the bucket keeps no block of the dead upload,
and a new upload works."""

from __future__ import annotations

import os
import signal
import threading
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import obstore
import pytest
from harness import Daemon

if TYPE_CHECKING:
    from hoard.store.s3_testing import SeaweedServer

pytestmark = pytest.mark.timeout(300)

SIZE = 200 << 20
PIECE = 1 << 20


def _blocks(s3: SeaweedServer, prefix: str) -> int:
    return sum(len(batch) for batch in obstore.list(s3.client(prefix), "blocks"))


def test_sigkill_mid_upload_to_the_bucket(s3: SeaweedServer, tmp_path: Path) -> None:
    prefix = f"crash-{uuid.uuid4().hex[:10]}"
    config = {"repo-kind": "s3", "storage-url": s3.url(prefix), "bulk": False}
    daemon = Daemon(tmp_path, config).start()
    try:
        failures: list[BaseException] = []

        def upload() -> None:
            def body():
                for _ in range(SIZE // PIECE):
                    yield os.urandom(PIECE)
            try:
                with httpx.Client(base_url=daemon.api, timeout=120) as http:
                    http.post("/data", content=body(), headers={"content-length": str(SIZE),
                                                                "content-type": "application/octet-stream"})
            except BaseException as exc:  # noqa: BLE001 - the node dies under it: expected
                failures.append(exc)

        uploader = threading.Thread(target=upload, daemon=True)
        uploader.start()
        deadline = time.monotonic() + 120
        while _blocks(s3, prefix) < 200:  # well into the upload: blocks are in the bucket
            assert uploader.is_alive() and time.monotonic() < deadline, "the upload ended before the kill"
            time.sleep(0.05)
        assert daemon.proc is not None
        daemon.proc.send_signal(signal.SIGKILL)
        daemon.proc.wait(30)
        uploader.join(60)
        assert failures, "the upload cannot have succeeded"
        assert _blocks(s3, prefix) > 0  # the dead upload's blocks, until the node comes back
    finally:
        daemon.stop()

    with Daemon(tmp_path, config) as again, httpx.Client(base_url=again.api, timeout=60) as http:
        assert http.get("/data").json()["content"] == []  # nothing partial is listed
        space = http.get("/space").json()
        assert space["totalBlocks"] == 0 and space["quotaUsedBytes"] == 0 and space["quotaReservedBytes"] == 0
        assert _blocks(s3, prefix) == 0  # recovery released the pending blocks and swept the orphans
        data = os.urandom(3 * PIECE + 17)
        cid = http.post("/data", content=data, headers={"content-type": "application/octet-stream"}).text
        assert http.get(f"/data/{cid}/network/stream").content == data
        space = http.get("/space").json()
        assert space["quotaUsedBytes"] >= len(data) and space["totalBlocks"] == _blocks(s3, prefix)
