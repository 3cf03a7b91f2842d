"""A 200 MB upload and download through HTTP: the bytes round-trip and the node's memory stays bounded."""

import hashlib
import os
import threading
from typing import Self

import httpx
import psutil
import pytest

pytestmark = pytest.mark.timeout(600)

SIZE = 200 * 1000 * 1000
PIECE = 1 << 20
# The node streams in pieces of a few MiB; growth of its anonymous memory must stay far below
# the body size (it would grow by about SIZE if a body were buffered).
MAX_GROWTH = 96 * 1024 * 1024


class PeakMemory:
    """Samples a process's anonymous resident memory on a thread while a transfer runs."""

    def __init__(self, node) -> None:
        self.node = node
        self.baseline = node.anon_rss()
        self.peak = self.baseline
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._done.wait(0.02):
            try:
                self.peak = max(self.peak, self.node.anon_rss())
            except psutil.Error:
                return

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._done.set()
        self._thread.join(5)
        self.peak = max(self.peak, self.node.anon_rss())

    @property
    def growth(self) -> int:
        return self.peak - self.baseline


def test_200mb_upload_and_download_stream_in_bounded_memory(node):
    sent = hashlib.sha256()

    def body():
        left = SIZE
        while left:
            piece = os.urandom(min(PIECE, left))
            sent.update(piece)
            left -= len(piece)
            yield piece

    with httpx.Client(base_url=node.api, timeout=120) as http:
        with PeakMemory(node) as upload_mem:
            response = http.post("/data", content=body(), headers={"content-length": str(SIZE),
                                                                   "content-disposition": 'attachment; filename="big.bin"'})
        assert response.status_code == 200, response.text
        cid = response.text
        assert upload_mem.growth < MAX_GROWTH, f"upload grew node memory by {upload_mem.growth >> 20} MiB"

        received = hashlib.sha256()
        count = 0
        with PeakMemory(node) as download_mem, http.stream("GET", f"/data/{cid}") as stream:
            assert stream.status_code == 200
            assert stream.headers["content-length"] == str(SIZE)
            for piece in stream.iter_raw(PIECE):
                received.update(piece)
                count += len(piece)
        print(f"node anon memory growth: upload {upload_mem.growth >> 20} MiB, download {download_mem.growth >> 20} MiB")
        assert count == SIZE and received.digest() == sent.digest()
        assert download_mem.growth < MAX_GROWTH, f"download grew node memory by {download_mem.growth >> 20} MiB"
        assert http.delete(f"/data/{cid}").status_code == 204


def test_an_upload_cut_short_leaves_nothing_behind(node):
    with httpx.Client(base_url=node.api, timeout=60) as http:
        before = http.get("/space").json()

        def body():
            for _ in range(12):
                yield os.urandom(PIECE)
            raise ConnectionAbortedError("client gave up")

        with pytest.raises((ConnectionAbortedError, httpx.HTTPError)):
            http.post("/data", content=body(), headers={"content-length": str(64 * PIECE)})
        # the node notices the client went away and drops the pending blocks; poll with a deadline
        import time

        deadline = time.monotonic() + 30
        while True:
            after = http.get("/space").json()
            if after == before or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        assert after == before
