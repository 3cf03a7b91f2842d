"""A killed process loses no acknowledged record: a real child appends and prints each
acknowledgement, is SIGKILLed mid-stream, and the store is reopened."""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from hoard.logs import LogService
from hoard.store import open_blockstore

CHILD = Path(__file__).with_name("_logs_durable_child.py")
SRC = Path(__file__).resolve().parents[2] / "src"


@pytest.mark.timeout(120)
def test_sigkill_loses_no_acknowledged_record(tmp_path: Path):
    store_dir, keydir = tmp_path / "store", tmp_path / "keys"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")]))
    child = subprocess.Popen([sys.executable, str(CHILD), str(store_dir), str(keydir)],
                             stdout=subprocess.PIPE, text=True, env=env)
    lines: queue.Queue[str | None] = queue.Queue()

    def pump() -> None:
        for line in child.stdout:
            lines.put(line.strip())
        lines.put(None)

    threading.Thread(target=pump, daemon=True).start()
    acked: dict[int, int] = {}
    name = None
    deadline = time.monotonic() + 60
    try:
        while len(acked) < 1500:
            line = lines.get(timeout=max(deadline - time.monotonic(), 0.1))
            assert line is not None, f"child exited early ({child.poll()})"
            if line.startswith("NAME "):
                name = line.split()[1]
            elif line.startswith("ACK "):
                _, recno, i = line.split()
                acked[int(recno)] = int(i)
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(30)
    while (line := lines.get(timeout=30)) is not None:  # acknowledgements printed before it died count too
        if line.startswith("ACK "):
            _, recno, i = line.split()
            acked[int(recno)] = int(i)
    assert child.returncode == -signal.SIGKILL

    store = open_blockstore(str(store_dir))
    try:
        with LogService(store, keydir) as service:
            log = service.log_open(name, "ro")
            assert log.nrecs >= max(acked)
            for recno, i in acked.items():
                assert log.read_by_recno(recno).data == b"rec-%d" % i  # verified on read
            for recno in range(2, log.nrecs + 1):  # and the chain is whole
                assert log.read_by_recno(recno).prevhash == log.read_by_recno(recno - 1).hash
    finally:
        store.close()
