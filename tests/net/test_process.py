"""Fetching from peers that run in their own processes, including one killed mid-fetch."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
import trio
from _net_kit import collect, make_blocks, networks, trio_test

from hoard.ids.peer import PeerId
from hoard.net import FetchLimits

pytestmark = [pytest.mark.timeout(120), pytest.mark.slow]

HERE = Path(__file__).parent
SRC = HERE.parents[1] / "src"


@asynccontextmanager
async def peer_process(count: int, size: int = 65536, seed: int = 1) -> AsyncIterator[tuple[trio.Process, dict]]:
    """Start `_bulk_peer.py --no-bulk` (a plain block server); yield (process, {"spr", "peerId"}); stop it on exit."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(SRC), str(HERE), os.environ.get("PYTHONPATH", "")]))
    proc = await trio.lowlevel.open_process(
        [sys.executable, str(HERE / "_bulk_peer.py"), str(count), str(size), str(seed), "--no-bulk"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env)
    try:
        line = b""
        with trio.fail_after(30):
            while not line.endswith(b"\n"):
                chunk = await proc.stdout.receive_some(4096)
                if not chunk:
                    raise RuntimeError(f"peer process exited early ({await proc.wait()})")
                line += chunk
        yield proc, json.loads(line)
    finally:
        with trio.CancelScope(shield=True):
            if proc.returncode is None:
                await proc.stdin.aclose()  # asks it to stop
                with trio.move_on_after(10):
                    await proc.wait()
                if proc.returncode is None:
                    proc.kill()
                    await proc.wait()


@trio_test(timeout=100)
async def test_a_fetch_from_a_provider_in_another_process() -> None:
    blocks = make_blocks(64)  # 4 MiB
    async with peer_process(64) as (_proc, info), networks(None) as [client]:
        client.host.learn_spr(info["spr"])
        await client.connect(info["peerId"])
        got = await collect(client.fetch_blocks([cid for cid, _ in blocks], [info["peerId"]]))
        assert got == blocks


@trio_test(timeout=100)
async def test_a_provider_process_killed_mid_fetch_is_replaced_by_the_other() -> None:
    blocks = make_blocks(128)  # 8 MiB
    limits = FetchLimits(batch_blocks=4, batches_per_peer=2, request_timeout=5.0)
    async with peer_process(128) as (victim, v_info), peer_process(128) as (_p, s_info), networks(None) as [client]:
        for info in (v_info, s_info):
            client.host.learn_spr(info["spr"])
            await client.connect(info["peerId"])
        got = []
        async with client.fetch_blocks([cid for cid, _ in blocks], [v_info["peerId"], s_info["peerId"]], limits) as stream:
            async for item in stream:
                got.append(item)
                if len(got) == 8:
                    victim.kill()  # SIGKILL: the kernel resets its connections
        assert got == blocks
        record = client.penalties.get(PeerId(v_info["peerId"]))
        assert record is not None and record.failures == 1 and record.bad_blocks == 0
        peers = stream.stats()["peers"]
        assert peers[v_info["peerId"]]["state"].startswith("dropped")
        assert peers[s_info["peerId"]]["blocks"] > peers[v_info["peerId"]]["blocks"]
