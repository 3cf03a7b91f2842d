"""HTTP upload and download through a hoard node's REST API, against a raw HTTP server in the same run.

    python bench/rest.py [--size-mib 1024] [--rounds 2]

Two servers, each a process of its own, both uvicorn (same version, same HTTP implementation):

  raw    a bare ASGI app: an upload reads the body and drops it; a download sends SIZE bytes
         from memory in 4 MiB pieces. This is what HTTP costs with these libraries: the limit.
  hoard  `hoard node start` (api-port 0): POST /data stores the body (chunking, BLAKE3, LMDB),
         GET /data/{cid} streams it back from the store.

The client is httpx in this process, streaming both ways in 1 MiB pieces, with the same
data for both servers (every 64 KiB block distinct, so hoard cannot deduplicate). Each round
runs both servers, in alternating order; the best round counts. Prints JSON: MB/s, CPU seconds
of the server process, and the ratios hoard / raw with the goals (upload >= 0.5, download >= 0.8).
"""

from __future__ import annotations

import argparse
import json
import os
import select
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import psutil

PIECE = 1 << 20
SERVE_PIECE = 4 << 20
BLOCK = 64 << 10
POOL = 64 << 20
GOALS = {"upload": 0.5, "download": 0.8}


# -- the raw server ---------------------------------------------------------------------
def raw_app_factory(size: int):
    payload = os.urandom(SERVE_PIECE)

    async def app(scope, receive, send):
        if scope["type"] != "http":
            return
        if scope["method"] == "POST":
            more = True
            while more:
                message = await receive()
                more = message.get("more_body", False)
            await send({"type": "http.response.start", "status": 200,
                        "headers": [(b"content-type", b"text/plain"), (b"content-length", b"2")]})
            await send({"type": "http.response.body", "body": b"ok"})
            return
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"application/octet-stream"),
                                (b"content-length", str(size).encode())]})
        left = size
        while left:
            piece = payload if left >= SERVE_PIECE else payload[:left]
            left -= len(piece)
            await send({"type": "http.response.body", "body": piece, "more_body": left > 0})

    return app


def raw_server(size: int) -> None:
    import uvicorn

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    print(json.dumps({"api": f"http://127.0.0.1:{sock.getsockname()[1]}"}), flush=True)
    config = uvicorn.Config(raw_app_factory(size), log_level="warning", access_log=False, lifespan="off")
    uvicorn.Server(config).run(sockets=[sock])


# -- servers as processes -----------------------------------------------------------------
class Server:
    def __init__(self, name: str, argv: list[str]) -> None:
        self.name = name
        self.proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        self.url = json.loads(self._first_line(120))["api"]
        self.ps = psutil.Process(self.proc.pid)

    def _first_line(self, timeout: float) -> str:
        assert self.proc.stdout is not None
        deadline = time.monotonic() + timeout
        buf = b""
        while b"\n" not in buf:
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise SystemExit(f"{self.name} server did not start")
            if select.select([self.proc.stdout], [], [], 1.0)[0]:
                buf += os.read(self.proc.stdout.fileno(), 65536)
        return buf.split(b"\n", 1)[0].decode()

    def cpu(self) -> float:
        times = self.ps.cpu_times()
        return times.user + times.system

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def body(size: int, pool: bytes, seed: int) -> Iterator[bytes]:
    """SIZE bytes in 1 MiB pieces, every 64 KiB block made distinct by a counter."""
    sent = 0
    block_no = seed << 40
    while sent < size:
        n = min(PIECE, size - sent)
        start = sent % (POOL - PIECE)
        piece = bytearray(pool[start:start + n])
        for off in range(0, n, BLOCK):
            piece[off:off + 8] = block_no.to_bytes(8, "little")
            block_no += 1
        sent += n
        yield bytes(piece)


def measure(server: Server, path_up: str, path_down: str | None, size: int, pool: bytes, seed: int) -> dict:
    with httpx.Client(base_url=server.url, timeout=600) as http:
        cpu0, t0 = server.cpu(), time.perf_counter()
        response = http.post(path_up, content=body(size, pool, seed), headers={"content-length": str(size)})
        up_time, up_cpu = time.perf_counter() - t0, server.cpu() - cpu0
        response.raise_for_status()
        target = path_down or f"{path_up}/{response.text}"
        got = 0
        cpu0, t0 = server.cpu(), time.perf_counter()
        with http.stream("GET", target) as stream:
            stream.raise_for_status()
            for piece in stream.iter_raw(PIECE):
                got += len(piece)
        down_time, down_cpu = time.perf_counter() - t0, server.cpu() - cpu0
        if got != size:
            raise SystemExit(f"{server.name}: downloaded {got} of {size} bytes")
        if path_down is None:
            http.delete(target).raise_for_status()
    mb = size / 1e6
    return {"upload_MBps": round(mb / up_time, 1), "download_MBps": round(mb / down_time, 1),
            "upload_server_cpu_s": round(up_cpu, 2), "download_server_cpu_s": round(down_cpu, 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--raw-server", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.raw_server is not None:
        raw_server(args.raw_server)
        return
    size = args.size_mib << 20
    pool = os.urandom(POOL)
    results: dict[str, list[dict]] = {"raw": [], "hoard": []}
    with tempfile.TemporaryDirectory(prefix="hoard-bench-rest-") as tmp:
        config = Path(tmp) / "config.json"
        config.write_text(json.dumps({"api-port": 0, "grpc-port": 0, "listen-addrs": ["/ip4/127.0.0.1/tcp/0"],
                                      "storage-quota": 4 * size + (1 << 30), "log-level": "WARN"}))
        servers = {
            "raw": Server("raw", [sys.executable, __file__, "--raw-server", str(size)]),
            "hoard": Server("hoard", [sys.executable, "-m", "hoard.cli.main", "--json", "--data-dir",
                                      str(Path(tmp) / "data"), "--config", str(config), "node", "start"]),
        }
        try:
            for round_no in range(args.rounds):
                order = ["raw", "hoard"] if round_no % 2 == 0 else ["hoard", "raw"]
                for name in order:
                    if name == "raw":
                        results[name].append(measure(servers[name], "/data", "/data", size, pool, round_no))
                    else:
                        results[name].append(measure(servers[name], "/api/storage/v1/data", None, size, pool,
                                                     round_no))
        finally:
            for server in servers.values():
                server.stop()
    best = {name: {"upload_MBps": max(r["upload_MBps"] for r in runs),
                   "download_MBps": max(r["download_MBps"] for r in runs)} for name, runs in results.items()}
    ratios = {"upload": round(best["hoard"]["upload_MBps"] / best["raw"]["upload_MBps"], 3),
              "download": round(best["hoard"]["download_MBps"] / best["raw"]["download_MBps"], 3)}
    print(json.dumps({
        "size_bytes": size, "rounds": args.rounds, "cpus": os.cpu_count(), "best": best, "runs": results,
        "ratio": ratios, "goal": GOALS, "meets_goal": {k: ratios[k] >= GOALS[k] for k in GOALS},
    }, indent=2))


if __name__ == "__main__":
    main()
