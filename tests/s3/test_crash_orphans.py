"""A writer killed with SIGKILL mid-upload leaves only whole blocks and its own markers in the
bucket; reopened with the same holder id, `held()` finds them and `release` removes them."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from typing import TYPE_CHECKING

import obstore

from hoard.store import S3BlobStore
from hoard.store._s3 import parse_s3_url

if TYPE_CHECKING:
    from hoard.store.s3_testing import SeaweedServer as SeaweedS3

WRITER = textwrap.dedent("""
    import os, sys
    from hoard.ids.cid import CID
    from hoard.store import open_blobstore
    store = open_blobstore(sys.argv[1], holder="crashing-node")
    i = 0
    while True:  # writes until killed
        batch = [os.urandom(256 << 10) for _ in range(8)]
        items = [(CID.of(b), b) for b in batch]
        store.hold([c for c, _ in items])
        store.put_many(items)
        i += 1
        print(i, flush=True)
""")


def test_sigkill_mid_upload_leaves_orphans_the_holder_finds_and_releases(s3: SeaweedS3) -> None:
    url = s3.url()
    prefix = parse_s3_url(url).prefix
    child = subprocess.Popen([sys.executable, "-c", WRITER, url], stdout=subprocess.PIPE, env=dict(os.environ))
    try:
        assert child.stdout is not None
        for _ in range(3):  # three batches stored, the fourth in flight
            assert child.stdout.readline(), "writer died early"
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait(timeout=30)
    store = S3BlobStore(parse_s3_url(url), holder="crashing-node")
    stored = list(store.iter_cids())
    held = set(store.held())
    assert len(stored) >= 24 and set(stored) <= held  # every block has its marker (written first)
    assert all(data is not None for data in store.get_many(stored))  # whole blocks only (verified reads)
    started = time.monotonic()
    assert set(store.release(held)) == set(stored)
    assert time.monotonic() - started < 60
    leftover = [m["path"] for page in obstore.list(s3.client(prefix)) for m in page]
    assert leftover == []
    store.close()
