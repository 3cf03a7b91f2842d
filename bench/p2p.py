"""Peer-to-peer download benchmark: two node processes on loopback.

Node A stores a dataset; node B downloads it over the network (`download_stream(...,
local=False)`). In the same run it measures the limits on this machine: raw loopback TCP
(two processes, one socket) and a raw py-libp2p stream (TCP + Noise + yamux, the same
connection stack) between the same two nodes. Prints one JSON object.

    python bench/p2p.py [--size-mib 1024]
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import sys
import tempfile
import time
from multiprocessing import Process
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from harness import NodeProcess

CHUNK = 1 << 20


def _tcp_sink(port_file: str, nbytes: int) -> None:
    with socket.create_server(("127.0.0.1", 0)) as server:
        Path(port_file).write_text(str(server.getsockname()[1]))
        conn, _ = server.accept()
        with conn:
            got = 0
            buf = bytearray(CHUNK)
            while got < nbytes:
                n = conn.recv_into(buf)
                if not n:
                    break
                got += n


def raw_tcp(nbytes: int) -> float:
    """MB/s of one loopback TCP stream between two processes."""
    with tempfile.TemporaryDirectory() as tmp:
        port_file = os.path.join(tmp, "port")
        sink = Process(target=_tcp_sink, args=(port_file, nbytes))
        sink.start()
        deadline = time.monotonic() + 30
        while not os.path.exists(port_file) or not Path(port_file).read_text():
            if time.monotonic() > deadline:
                raise RuntimeError("sink did not start")
            time.sleep(0.01)
        payload = os.urandom(CHUNK)
        with socket.create_connection(("127.0.0.1", int(Path(port_file).read_text()))) as conn:
            start = time.perf_counter()
            sent = 0
            while sent < nbytes:
                conn.sendall(payload)
                sent += CHUNK
        sink.join(60)
        return nbytes / (time.perf_counter() - start) / 1e6


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size-mib", type=int, default=1024)
    args = parser.parse_args()
    size = args.size_mib << 20
    with tempfile.TemporaryDirectory(prefix="hoard-p2p-") as tmp:
        work = Path(tmp)
        a = NodeProcess(work / "a")
        b = NodeProcess(work / "b")
        try:
            src = work / "input.bin"
            with open(src, "wb") as fh:
                fh.writelines(os.urandom(CHUNK) for _ in range(args.size_mib))
            cid = a.call("upload_file", a.call("upload_init", str(src)))
            src.unlink()
            b.call("connect", a.peer_id, a.addrs)
            tcp_mb_s = raw_tcp(size)
            # the raw stream needs the source protocol on A: a separate pair started with --bench
            a_cpu0, b_cpu0 = a.call("rusage")["cpu_s"], b.call("rusage")["cpu_s"]
            start = time.perf_counter()
            out = work / "out.bin"
            assert b.call("download_stream", cid, str(out), 0, False) == size
            seconds = time.perf_counter() - start
            a_use, b_use = a.call("rusage"), b.call("rusage")
            out.unlink()
        finally:
            a.close()
            b.close()
        ra = NodeProcess(work / "ra", bench=True)
        rb = NodeProcess(work / "rb")
        try:
            rb.call("connect", ra.peer_id, ra.addrs)
            raw = rb.call("raw_stream", ra.peer_id, size)
        finally:
            ra.close()
            rb.close()
    mb = size / 1e6
    download = mb / seconds
    libp2p = raw["bytes"] / raw["seconds"] / 1e6
    print(json.dumps({
        "bench": "p2p", "size_mib": args.size_mib,
        "download_mb_s": round(download, 1),
        "provider_cpu_s": round(a_use["cpu_s"] - a_cpu0, 2),
        "downloader_cpu_s": round(b_use["cpu_s"] - b_cpu0, 2),
        "provider_peak_rss_mib": round(a_use["maxrss_mib"], 1),
        "downloader_peak_rss_mib": round(b_use["maxrss_mib"], 1),
        "raw_tcp_mb_s": round(tcp_mb_s, 1),
        "raw_libp2p_stream_mb_s": round(libp2p, 1),
        "download_vs_raw_libp2p": round(download / libp2p, 3),
        "goals": {"download_mb_s": 200, "download_vs_raw_libp2p": 0.8, "peak_rss_mib": 300},
    }, indent=2))


if __name__ == "__main__":
    main()
