"""The hostile-peer kit: a real node process, a scripted hostile libp2p peer, and the checks that
the node stays responsive (a REST and a gRPC call answer within 2 s) and bounded in memory.

The hostile peer is a hoard `Network` (real py-libp2p: TCP + Noise + yamux) on its own thread and
trio loop, serving whatever blocks the test gives it on `/hoard/blocks/1`; its script opens raw
streams to the node and writes whatever frames it likes.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Self

import grpc
import httpx
import trio
from harness import Daemon

from hoard.framing import FrameReader
from hoard.ids.cid import CID
from hoard.ids.peer import Identity, PeerId
from hoard.net import FetchLimits, Network, NetworkConfig
from hoard.store import MemoryBlockStore

#: A REST and a gRPC call must each answer within this while an attack runs.
ANSWER_WITHIN = 2.0
#: The node's anonymous RSS must stay under this (the attacks took it to 1.9-2.6 GB unfixed).
RSS_BOUND = 700 << 20

Script = Callable[[Network, PeerId], Awaitable[Any]]


class Attacker:
    """Runs `script(network, node_peer)` on a hostile peer connected to `node`, on a thread."""

    def __init__(self, node: Daemon, blocks: dict[CID, bytes] | None = None) -> None:
        self.node = node
        self.store = MemoryBlockStore()
        if blocks:
            self.store.put_many(list(blocks.items()))
        self.ready = threading.Event()
        self.done = threading.Event()
        self.finished = threading.Event()  # the script returned (or failed)
        self.result: Any = None
        self.error: BaseException | None = None
        self.peer_id = ""
        self._token: trio.lowlevel.TrioToken | None = None
        self._scope: trio.CancelScope | None = None
        self._thread: threading.Thread | None = None

    def start(self, script: Script) -> Attacker:
        self._thread = threading.Thread(target=lambda: trio.run(self._main, script), daemon=True, name="hostile-peer")
        self._thread.start()
        assert self.ready.wait(60), f"the hostile peer did not connect: {self.error!r}"
        return self

    async def _main(self, script: Script) -> None:
        config = NetworkConfig(dial_timeout=10.0, bootstrap_timeout=5.0,
                               fetch=FetchLimits(request_timeout=5.0, open_timeout=10.0))
        network = Network(Identity.generate(), ["/ip4/127.0.0.1/tcp/0"], block_source=self.store, config=config)
        try:
            async with network.run():
                node_peer = PeerId(self.node.info["peerId"])
                await network.connect(node_peer, self.node.info["addrs"])
                self.peer_id = str(network.peer_id)
                self._token = trio.lowlevel.current_trio_token()
                with trio.CancelScope() as scope:
                    self._scope = scope
                    self.ready.set()
                    self.result = await script(network, node_peer)
                    self.finished.set()
                    await trio.sleep_forever()  # keep serving blocks until stopped
        except BaseException as exc:  # noqa: BLE001 - reported to the test
            self.error = exc
        finally:
            self.ready.set()
            self.finished.set()
            self.done.set()

    def stop(self) -> None:
        if self._token is not None and self._scope is not None:
            try:
                self._token.run_sync_soon(self._scope.cancel)
            except trio.RunFinishedError:
                pass
        if self._thread is not None:
            self._thread.join(60)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


@dataclass
class Health:
    """What the checks saw while an attack ran."""

    rounds: int = 0
    slowest: float = 0.0
    peak_rss: int = 0
    failures: list[str] = field(default_factory=list)


def grpc_call(address: str) -> Callable[[], None]:
    """A unary gRPC call that goes through the node (ListChannels), bounded by ANSWER_WITHIN."""
    channel = grpc.insecure_channel(address)
    call = channel.unary_unary("/hoard.v1.TransferService/ListChannels")

    def run() -> None:
        call(b"", timeout=ANSWER_WITHIN)

    return run


def watch(node: Daemon, until: Callable[[], bool], *, min_rounds: int = 5, max_seconds: float = 60.0,
          pause: float = 0.2) -> Health:
    """REST `GET /space` and gRPC `ListChannels`, each bounded by ANSWER_WITHIN, and the node's
    RSS, round after round until `until()` holds (at least `min_rounds`, at most `max_seconds`)."""
    health = Health()
    rpc = grpc_call(node.grpc_address)
    deadline = time.monotonic() + max_seconds
    with httpx.Client(base_url=node.api, timeout=ANSWER_WITHIN) as http:
        while time.monotonic() < deadline and (health.rounds < min_rounds or not until()):
            started = time.monotonic()
            try:
                response = http.get("/space")
                if response.status_code != 200:
                    health.failures.append(f"REST /space answered {response.status_code}")
            except httpx.HTTPError as exc:
                health.failures.append(f"REST /space: {exc!r}")
            try:
                rpc()
            except grpc.RpcError as exc:
                health.failures.append(f"gRPC ListChannels: {exc.code()}")  # type: ignore[attr-defined]
            health.slowest = max(health.slowest, time.monotonic() - started)
            health.peak_rss = max(health.peak_rss, node.anon_rss())
            health.rounds += 1
            threading.Event().wait(pause)  # the pace of the checks, not a synchronisation
    return health


def assert_healthy(health: Health) -> None:
    assert not health.failures, health.failures[:5]
    assert health.peak_rss < RSS_BOUND, f"node RSS reached {health.peak_rss >> 20} MiB"


def warnings_about(node: Daemon, peer: str) -> int:
    """Lines the node logged at WARNING naming `peer` (its protocol violations), in the daemon's
    text format (`WRN <time> ...`) or JSON lines (`"lvl": "WRN"`)."""
    text = node.stderr_path.read_text(errors="replace")
    return sum(1 for line in text.splitlines()
               if (line.startswith("WRN ") or '"WRN"' in line or " WARNING " in line) and peer in line)


async def read_frames(stream: Any, max_frame: int, limit: float) -> list[bytes]:
    """Frames the node sends on `stream` until it ends (or `limit` seconds pass)."""
    frames: list[bytes] = []
    reader = FrameReader(stream, max_frame)
    with trio.move_on_after(limit):
        try:
            while (body := await reader.next_body()) is not None:
                frames.append(body)
        except Exception:  # noqa: BLE001, S110 - a reset stream is an answer too
            pass
    return frames
