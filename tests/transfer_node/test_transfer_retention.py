"""Finished channels are kept with a bound (TRANSFER_MAX_FINISHED_CHANNELS, the newest ones), in
memory and in the store, so channel lists stay bounded across restarts."""

from __future__ import annotations

import queue

import pytest

import hoard
from hoard.limits import TRANSFER_MAX_FINISHED_CHANNELS
from hoard.transfer.builtin import DefaultVoucher
from hoard.transfer.types import Status

pytestmark = pytest.mark.timeout(240)

FINAL = (Status.Completed, Status.Failed, Status.Cancelled)
EXTRA = 24


def test_only_the_newest_finished_channels_are_kept(tmp_path):
    config = {"listen-addrs": ["/ip4/127.0.0.1/tcp/0"], "dataset-format": "hoard"}  # transfers move DAGs
    (tmp_path / "f.bin").write_bytes(b"pushed " * 100)
    a_config = {**config, "data-dir": str(tmp_path / "a")}
    opened: list = []
    with hoard.Node(a_config) as a, hoard.Node({**config, "data-dir": str(tmp_path / "b")}) as b:
        a.start()
        b.start()
        a.connect(str(b.peer_id()), list(b.debug().addrs))
        cid = a.upload_file(a.upload_init(str(tmp_path / "f.bin")))
        finished: queue.SimpleQueue = queue.SimpleQueue()
        unsubscribe = a.data_transfer.subscribe_to_events(
            lambda _event, state: finished.put(state.channel_id) if state.status in FINAL else None)
        try:
            for _ in range(TRANSFER_MAX_FINISHED_CHANNELS + EXTRA):  # each refused (pushes are, by default)
                chid = a.data_transfer.open_push_data_channel(str(b.peer_id()), DefaultVoucher("x"), cid)
                opened.append(chid)
                while finished.get(timeout=60) != chid:
                    pass
        finally:
            unsubscribe()
        kept = set(a.data_transfer.in_progress_channels())
        assert kept == set(opened[EXTRA:])  # the oldest EXTRA are forgotten
        assert len(a.transfer.channels()) == TRANSFER_MAX_FINISHED_CHANNELS
    with hoard.Node(a_config) as again:  # and they stay forgotten; the newest are still there
        assert set(again.data_transfer.in_progress_channels()) == set(opened[EXTRA:])
