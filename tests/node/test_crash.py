"""A process SIGKILLed in the middle of an upload leaves a repo that opens cleanly."""

import os
import signal
import subprocess
import sys
import textwrap

import hoard

CHILD = textwrap.dedent("""
    import os, sys
    import hoard
    node = hoard.Node({"data-dir": sys.argv[1]})
    session = node.upload_init("partial.bin")
    for i in range(10_000):
        node.upload_chunk(session, os.urandom(1 << 20))
        if i == 40:
            print("uploading", flush=True)
""")


def test_sigkill_mid_upload_leaves_consistent_repo(tmp_path):
    data_dir = str(tmp_path / "data")
    with hoard.Node({"data-dir": data_dir}) as node:
        keep = node.upload_file(node.upload_init(str(_file(tmp_path))))
        before = node.space()
    child = subprocess.Popen([sys.executable, "-c", CHILD, data_dir], stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().strip() == "uploading"
        child.send_signal(signal.SIGKILL)
    finally:
        child.wait(timeout=30)
    assert child.returncode == -signal.SIGKILL
    with hoard.Node({"data-dir": data_dir}) as node:
        assert [e.cid for e in node.list()] == [keep]
        assert node.space() == before
        assert node.components.context.content.blobs.stats().blocks == before.total_blocks
        assert node.verify(keep).bytes == 500_000


def _file(tmp_path):
    path = tmp_path / "keep.bin"
    path.write_bytes(os.urandom(500_000))
    return path
