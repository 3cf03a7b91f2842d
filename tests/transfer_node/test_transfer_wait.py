"""`node.transfer.wait` (a channel's events until it ends) on embedded nodes, and `hoard transfer pull`
without a running node on its data dir: an embedded node, started for the command, that waits
through the same `node.transfer.wait` a running node's REST API serves."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading

import pytest
from harness import Daemon

import hoard
from hoard.errors import NotFoundError
from hoard.node.results import TransferEvent
from hoard.transfer import EventCode, Status

pytestmark = pytest.mark.timeout(240)

LOCAL = {"listen-addrs": ["/ip4/127.0.0.1/tcp/0"], "dataset-format": "hoard"}


def test_wait_reports_the_channels_events_and_its_final_state(tmp_path):
    with hoard.Node({**LOCAL, "data-dir": str(tmp_path / "a")}) as a, \
            hoard.Node({**LOCAL, "data-dir": str(tmp_path / "b")}) as b:
        a.start()
        b.start()
        cid = b.add(os.urandom(600_000))
        state = a.transfer.open(b.peer_id(), cid, addrs=list(b.debug().addrs))
        now = a.transfer.wait(state.channel_id, timeout=0)  # at once, whatever the status
        assert now.channel_id == state.channel_id
        events: list[TransferEvent] = []
        threads = set()

        def on_event(event: TransferEvent) -> None:
            threads.add(threading.current_thread().name)
            events.append(event)

        final = a.transfer.wait(str(state.channel_id), on_event)
        assert final.status is Status.Completed and final.received == final.total_size > 600_000
        assert all(e.channel_id == state.channel_id for e in events)
        if events:  # the channel may have finished before the wait began: then there is none
            assert events[-1].status is Status.Completed and isinstance(events[-1].code, EventCode)
            assert threading.main_thread().name not in threads
        assert a.transfer.wait(state.channel_id, on_event, timeout=30) == final  # ended: at once
        with pytest.raises(NotFoundError):
            a.transfer.wait(f"{b.peer_id()}-{b.peer_id()}-1")


def test_an_embedded_cli_pull_waits_for_the_channel(tmp_path):
    with Daemon(tmp_path / "b", {"dataset-format": "hoard"}) as b:
        (tmp_path / "f.bin").write_bytes(os.urandom(300_000))
        uploaded = b.cli("--json", "upload", str(tmp_path / "f.bin"))
        assert uploaded.returncode == 0, uploaded.stderr
        cid = json.loads(uploaded.stdout)["cid"]
        config = tmp_path / "a.json"
        config.write_text(json.dumps({**LOCAL, "data-dir": str(tmp_path / "a")}))
        pulled = subprocess.run([sys.executable, "-m", "hoard.cli.main", "--config", str(config), "transfer", "pull",
                                 b.info["peerId"], cid, "--addr", b.info["addrs"][0]],
                                capture_output=True, timeout=180, check=False)
        assert pulled.returncode == 0, pulled.stderr
        line = pulled.stdout.decode().strip()
        assert " Completed  pull " in line and f"from {b.info['peerId']}" in line
        assert b"Completed" in pulled.stderr  # the events, as they happened
        listed = subprocess.run([sys.executable, "-m", "hoard.cli.main", "--config", str(config), "--json",
                                 "transfer", "list"], capture_output=True, timeout=120, check=False)
        assert [c["status"] for c in json.loads(listed.stdout)] == ["Completed"], listed.stderr
