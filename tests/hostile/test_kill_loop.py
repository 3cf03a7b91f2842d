"""kill -9 loop: a real node process doing uploads, log appends and a transfer pull at once is
SIGKILLed at random moments, again and again. After each restart everything it acknowledged
before the kill is there and verifies, no partial dataset is listed, and its space figures are
consistent."""

from __future__ import annotations

import os
import random
import threading
import time
from dataclasses import dataclass, field

import grpc
import httpx
import pytest
from harness import Daemon

from hoard.api.grpc.logs import LogsClient
from hoard.api.grpc.transfer import TransferClient
from hoard.errors import HoardError

pytestmark = pytest.mark.timeout(300)

ROUNDS = 5
BUDGET = 90.0  # seconds for the whole loop: rounds stop early when it is spent
KILL_AFTER = (0.4, 2.5)  # seconds of work before each kill, chosen at random
SOURCE_BYTES = 3 << 20  # each dataset the node pulls from its peer


@dataclass
class Acked:
    """What the node acknowledged before a kill (guarded by `lock`)."""

    uploads: dict[str, bytes] = field(default_factory=dict)  # cid -> bytes
    records: dict[int, bytes] = field(default_factory=dict)  # recno -> data
    pulled: dict[str, bytes] = field(default_factory=dict)  # cid -> bytes
    lock: threading.Lock = field(default_factory=threading.Lock)


def uploader(node: Daemon, acked: Acked, stop: threading.Event, rng: random.Random) -> None:
    with httpx.Client(base_url=node.api, timeout=30) as http:
        while not stop.is_set():
            data = rng.randbytes(rng.randint(1, 400_000))
            try:
                response = http.post("/data", content=data, headers={"Content-Type": "application/octet-stream"})
            except httpx.HTTPError:
                return  # killed
            if response.status_code != 200:
                return
            with acked.lock:
                acked.uploads[response.text.strip()] = data


def appender(node: Daemon, log_name: str, acked: Acked, stop: threading.Event, rng: random.Random) -> None:
    with LogsClient(node.grpc_address) as logs:
        while not stop.is_set():
            batch = [rng.randbytes(rng.randint(1, 20_000)) for _ in range(rng.randint(1, 20))]
            try:
                records = logs.append(log_name, batch)
            except (HoardError, grpc.RpcError):
                return
            with acked.lock:
                for record, data in zip(records, batch, strict=True):
                    acked.records[record.recno] = data


def puller(node: Daemon, source: Daemon, cid: str, data: bytes, acked: Acked, stop: threading.Event) -> None:
    try:
        with TransferClient(node.grpc_address) as client:
            channel = client.open("pull", source.info["peerId"], cid, addrs=source.info["addrs"])
            for event in client.events(channel.channel_id, end_when_done=True):
                if event.channel.status == "Completed":
                    with acked.lock:
                        acked.pulled[cid] = data
                    return
                if stop.is_set():
                    return
    except (HoardError, grpc.RpcError):
        return


def check(node: Daemon, log_name: str, acked: Acked) -> None:
    """Everything acknowledged is there and verifies; whatever is listed verifies; no reservation
    survives a restart."""
    with httpx.Client(base_url=node.api, timeout=60) as http:
        listed = {d["cid"] for d in http.get("/data").json()["content"]}
        for kind, cid, data in [*(("uploaded", c, d) for c, d in acked.uploads.items()),
                                *(("pulled", c, d) for c, d in acked.pulled.items())]:
            assert cid in listed, f"acknowledged {kind} dataset {cid} is gone"
            assert http.get(f"/data/{cid}").content == data, f"dataset {cid} reads back different bytes"
        for cid in listed:  # nothing partial: every listed dataset is whole
            verified = http.post(f"/data/{cid}/verify")
            assert verified.status_code == 200, f"listed dataset {cid} does not verify: {verified.text}"
        space = http.get("/space").json()
        assert space["quotaReservedBytes"] == 0, space
        assert space["quotaUsedBytes"] >= sum(len(d) for d in acked.uploads.values()), space
    with LogsClient(node.grpc_address) as logs:
        nrecs = logs.info(log_name).nrecs
        assert nrecs >= max(acked.records, default=0)
        for recno, data in acked.records.items():
            assert logs.read(log_name, recno=recno).data == data, f"log record {recno} differs"
        if nrecs:  # the node verifies every record (signature and chain) as it reads them
            events = list(logs.subscribe(log_name, 1, 0, multiread=True))
            assert [e.record.recno for e in events[:-1]] == list(range(1, nrecs + 1))


def test_kill_9_loop(tmp_path):
    rng = random.Random(int.from_bytes(os.urandom(4)))
    acked = Acked()
    # The pulled datasets are in hoard's format: a data transfer moves an IPLD DAG, and a Logos
    # manifest links nothing (Logos datasets move by fetch; docs/storage.md).
    with Daemon(tmp_path / "source", config={"dataset-format": "hoard"}) as source:
        sources = []
        for i in range(ROUNDS):
            (tmp_path / f"s{i}.bin").write_bytes(data := rng.randbytes(SOURCE_BYTES))
            uploaded = source.cli("upload", str(tmp_path / f"s{i}.bin"))
            assert uploaded.returncode == 0, uploaded.stderr
            sources.append((uploaded.stdout.decode().split()[-1], data))
        node = Daemon(tmp_path / "node")
        started = time.monotonic()
        log_name = ""
        rounds = 0
        try:
            for i in range(ROUNDS):
                if i and time.monotonic() - started > BUDGET:
                    break
                node.start()
                if not log_name:
                    with LogsClient(node.grpc_address) as logs:
                        log_name = logs.create().name
                check(node, log_name, acked)
                stop = threading.Event()
                workers = [threading.Thread(target=uploader, args=(node, acked, stop, random.Random(rng.random()))),
                           threading.Thread(target=appender, args=(node, log_name, acked, stop,
                                                                   random.Random(rng.random()))),
                           threading.Thread(target=puller, args=(node, source, *sources[i], acked, stop))]
                for worker in workers:
                    worker.start()
                threading.Event().wait(rng.uniform(*KILL_AFTER))  # a random moment to kill at
                assert node.proc is not None
                node.proc.kill()
                node.proc.wait(30)
                stop.set()
                for worker in workers:
                    worker.join(60)
                    assert not worker.is_alive()
                rounds += 1
            node.start()
            check(node, log_name, acked)
            with httpx.Client(base_url=node.api, timeout=30) as http:
                space = http.get("/space").json()
            assert node.stop() == 0
            node.start()  # a clean restart finds the same figures
            with httpx.Client(base_url=node.api, timeout=30) as http:
                assert http.get("/space").json() == space
        finally:
            node.stop()
    assert rounds >= 3
    assert acked.uploads and acked.records, "the loop acknowledged nothing: it tested nothing"
