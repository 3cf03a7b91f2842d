"""Requests a peer can repeat (refused pushes) are logged at INFO through hoard.ratelog: a peer
cannot flood the log with them."""

from __future__ import annotations

import logging
import queue

import pytest

import hoard
from hoard.limits import VIOLATION_LOG_BURST
from hoard.transfer.builtin import DefaultVoucher
from hoard.transfer.types import Status

pytestmark = pytest.mark.timeout(180)

FINAL = (Status.Completed, Status.Failed, Status.Cancelled)
PUSHES = VIOLATION_LOG_BURST + 7


def test_refused_pushes_are_logged_with_a_rate_limit(tmp_path, caplog):
    config = {"listen-addrs": ["/ip4/127.0.0.1/tcp/0"], "dataset-format": "hoard"}  # transfers move DAGs
    (tmp_path / "f.bin").write_bytes(b"pushed " * 1000)
    with caplog.at_level(logging.INFO, logger="hoard.transfer"), \
            hoard.Node({**config, "data-dir": str(tmp_path / "a")}) as a, \
            hoard.Node({**config, "data-dir": str(tmp_path / "b")}) as b:
        a.start()
        b.start()
        a.connect(str(b.peer_id()), list(b.debug().addrs))
        cid = a.upload_file(a.upload_init(str(tmp_path / "f.bin")))
        finished: queue.SimpleQueue = queue.SimpleQueue()
        unsubscribe = a.data_transfer.subscribe_to_events(
            lambda _event, state: finished.put(state.channel_id) if state.status in FINAL else None)
        try:
            opened = {a.data_transfer.open_push_data_channel(str(b.peer_id()), DefaultVoucher("take it"), cid)
                      for _ in range(PUSHES)}
            done: set = set()
            while not opened <= done:
                done.add(finished.get(timeout=60))
        finally:
            unsubscribe()
        statuses = {a.data_transfer.channel_state(chid).status for chid in opened}
        peer = str(a.peer_id())
    assert statuses == {Status.Failed}  # pushes are refused by default
    lines = [r for r in caplog.records if r.name == "hoard.transfer" and "rejected push request" in r.getMessage()]
    assert 1 <= len(lines) <= VIOLATION_LOG_BURST
    assert all(r.levelno == logging.INFO and peer in r.getMessage() for r in lines)
