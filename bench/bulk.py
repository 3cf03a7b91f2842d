"""Bulk-path benchmark: two processes on 127.0.0.1, one serving blocks, the other fetching them.

In one run, between the same two processes, it measures (each moving `--size-mib` bytes,
provider → fetcher):

- `raw_tcp`: one loopback TCP socket, no protocol (the machine's ceiling);
- `raw_tls`: one TLS 1.3 socket through Python's `ssl` (OpenSSL), no protocol (the bulk path's ceiling);
- `raw_libp2p`: a raw py-libp2p stream (TCP + Noise + yamux, `/hoard/bench/source/1`);
- `fetch_libp2p`: a `BlockFetcher` fetch over `/hoard/blocks/1` on the libp2p stream;
- `fetch_bulk`: the same fetch over the bulk path (`hoard.net.bulk`).

The fetches ask for `--size-mib` of blocks of `--block-kib` KiB, cycling over `--distinct`
distinct blocks held in memory by the provider (so the provider needs no disk and little RAM);
every block is verified against its CID by the fetcher. Prints one JSON object (MB/s, CPU
seconds of each side, peak RSS, the machine's load average) and a table on stderr.

    python bench/bulk.py [--size-mib 1024] [--block-kib 64] [--distinct 256] [--skip-libp2p-fetch]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import socket
import ssl
import subprocess
import sys
import threading
import time
from typing import Any

import trio

from hoard.ids.cid import CID
from hoard.ids.peer import Identity
from hoard.net import FetchLimits, Network, NetworkConfig, StreamChannelOpener
from hoard.net.bulk import BulkCertificate, BulkChannelOpener, BulkServer

CHUNK = 1 << 20
LOOPBACK = ["/ip4/127.0.0.1/tcp/0"]


def make_blocks(count: int, size: int, seed: int = 7) -> list[tuple[CID, bytes]]:
    rng = random.Random(seed)
    out = []
    for _ in range(count):
        data = rng.randbytes(size)
        out.append((CID.of(data), data))
    return out


def rusage() -> dict[str, float]:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return {"cpu_s": usage.ru_utime + usage.ru_stime, "maxrss_mib": usage.ru_maxrss / 1024}


# -- the provider process ------------------------------------------------------------------

def _raw_sender(listener: socket.socket, context: ssl.SSLContext | None) -> None:
    """Serve raw byte counts: read 8 bytes (a count), send that many bytes, repeat per connection."""
    payload = os.urandom(CHUNK)
    while True:
        conn, _ = listener.accept()
        sock: socket.socket = context.wrap_socket(conn, server_side=True) if context else conn
        with sock:
            nbytes = int.from_bytes(sock.recv(8), "big")
            sent = 0
            while sent < nbytes:
                sock.sendall(payload)
                sent += CHUNK
            sock.recv(1)


def serve(distinct: int, block_size: int) -> None:
    blocks = dict(make_blocks(distinct, block_size))
    identity = Identity.generate()
    cert = BulkCertificate.create(identity)
    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tls.minimum_version = ssl.TLSVersion.TLSv1_3
    tls.load_cert_chain(str(cert.path))
    tcp_listener = socket.create_server(("127.0.0.1", 0))
    tls_listener = socket.create_server(("127.0.0.1", 0))
    for listener, context in ((tcp_listener, None), (tls_listener, tls)):
        threading.Thread(target=_raw_sender, args=(listener, context), daemon=True).start()

    async def main() -> None:
        network = Network(identity, LOOPBACK, block_source=blocks.get, config=NetworkConfig(bench=True))
        server = BulkServer(network.host, identity, blocks.get, certificate=cert)
        async with network.run(), server.run():
            print(json.dumps({"spr": network.spr(), "peerId": str(network.peer_id),
                              "tcp_port": tcp_listener.getsockname()[1],
                              "tls_port": tls_listener.getsockname()[1]}), flush=True)
            while True:
                line = await trio.to_thread.run_sync(sys.stdin.readline)
                if not line or line.strip() == "quit":
                    return
                print(json.dumps(rusage()), flush=True)

    try:
        trio.run(main)
    finally:
        cert.remove()


# -- the fetching process ------------------------------------------------------------------

class Provider:
    def __init__(self, distinct: int, block_size: int) -> None:
        self.proc = subprocess.Popen([sys.executable, __file__, "--serve", str(distinct), str(block_size)],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1)
        assert self.proc.stdout is not None and self.proc.stdin is not None
        self.info = json.loads(self.proc.stdout.readline())

    def rusage(self) -> dict[str, float]:
        assert self.proc.stdout is not None and self.proc.stdin is not None
        self.proc.stdin.write("rusage\n")
        self.proc.stdin.flush()
        return json.loads(self.proc.stdout.readline())  # type: ignore[no-any-return]

    def close(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write("quit\n")
        self.proc.stdin.flush()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def raw_receive(port: int, nbytes: int, context: ssl.SSLContext | None) -> float:
    """Seconds to receive `nbytes` on a raw (TCP or TLS) connection."""
    conn = socket.create_connection(("127.0.0.1", port))
    sock: socket.socket = context.wrap_socket(conn) if context else conn
    with sock:
        buf = bytearray(CHUNK)
        start = time.perf_counter()
        sock.sendall(nbytes.to_bytes(8, "big"))
        got = 0
        while got < nbytes:
            n = sock.recv_into(buf)
            if not n:
                raise RuntimeError("raw sender stopped early")
            got += n
        seconds = time.perf_counter() - start
        sock.sendall(b"x")
    return seconds


def measured(provider: Provider, run: Any, nbytes: int) -> dict[str, float]:
    p0, c0 = provider.rusage()["cpu_s"], rusage()["cpu_s"]
    seconds = run()
    p1, c1 = provider.rusage(), rusage()
    return {"MBps": round(nbytes / seconds / 1e6, 1), "seconds": round(seconds, 3),
            "provider_cpu_s": round(p1["cpu_s"] - p0, 2), "fetcher_cpu_s": round(c1["cpu_s"] - c0, 2),
            "provider_peak_rss_mib": round(p1["maxrss_mib"], 1), "fetcher_peak_rss_mib": round(c1["maxrss_mib"], 1)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--block-kib", type=int, default=64)
    parser.add_argument("--distinct", type=int, default=256)
    parser.add_argument("--batch-blocks", type=int, default=FetchLimits.batch_blocks, help="CIDs per want-list")
    parser.add_argument("--batches-per-peer", type=int, default=FetchLimits.batches_per_peer,
                        help="want-lists outstanding per peer")
    parser.add_argument("--skip-libp2p-fetch", action="store_true", help="skip the (slow) fetch over libp2p")
    parser.add_argument("--serve", nargs=2, type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(*args.serve)
        return
    block_size = args.block_kib << 10
    count = (args.size_mib << 20) // block_size
    nbytes = count * block_size
    cids = [cid for cid, _ in make_blocks(args.distinct, block_size)]
    wanted = [cids[i % len(cids)] for i in range(count)]
    provider = Provider(args.distinct, block_size)
    results: dict[str, Any] = {}
    try:
        results["raw_tcp"] = measured(provider, lambda: raw_receive(provider.info["tcp_port"], nbytes, None), nbytes)
        client_tls = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        client_tls.check_hostname = False
        client_tls.verify_mode = ssl.CERT_NONE
        results["raw_tls"] = measured(provider, lambda: raw_receive(provider.info["tls_port"], nbytes, client_tls),
                                      nbytes)
        limits = FetchLimits(batch_blocks=args.batch_blocks, batches_per_peer=args.batches_per_peer)
        results.update(trio.run(_fetches, provider, wanted, nbytes, args.skip_libp2p_fetch, limits))
    finally:
        provider.close()
    bulk = results["fetch_bulk"]["MBps"]
    report = {
        "bench": "bulk", "size_mib": nbytes >> 20, "block_kib": args.block_kib, "distinct_blocks": args.distinct,
        "batch_blocks": args.batch_blocks, "batches_per_peer": args.batches_per_peer,
        "loadavg": [round(x, 2) for x in os.getloadavg()], "cpus": os.cpu_count(),
        **results,
        "bulk_vs_raw_tls": round(bulk / results["raw_tls"]["MBps"], 3),
        "bulk_vs_raw_libp2p": round(bulk / results["raw_libp2p"]["MBps"], 3),
        "goals": {"fetch_bulk_MBps": 1000},
    }
    print(json.dumps(report, indent=2))
    print(f"{'path':14s} {'MB/s':>8s} {'provider cpu s':>15s} {'fetcher cpu s':>14s}", file=sys.stderr)
    for name, row in results.items():
        print(f"{name:14s} {row['MBps']:8.1f} {row['provider_cpu_s']:15.2f} {row['fetcher_cpu_s']:14.2f}",
              file=sys.stderr)


async def _fetches(provider: Provider, wanted: list[CID], nbytes: int, skip_libp2p: bool,
                   limits: FetchLimits) -> dict[str, Any]:
    out: dict[str, Any] = {}
    identity = Identity.generate()
    cert = BulkCertificate.create(identity)
    network = Network(identity, LOOPBACK, config=NetworkConfig(fetch=limits))
    peer = provider.info["peerId"]
    try:
        async with network.run():
            network.host.learn_spr(provider.info["spr"])
            await network.connect(peer)

            async def timed(run: Any) -> dict[str, float]:
                p0, c0 = (await trio.to_thread.run_sync(provider.rusage))["cpu_s"], rusage()["cpu_s"]
                seconds = await run()
                p1, c1 = await trio.to_thread.run_sync(provider.rusage), rusage()
                return {"MBps": round(nbytes / seconds / 1e6, 1), "seconds": round(seconds, 3),
                        "provider_cpu_s": round(p1["cpu_s"] - p0, 2), "fetcher_cpu_s": round(c1["cpu_s"] - c0, 2),
                        "provider_peak_rss_mib": round(p1["maxrss_mib"], 1),
                        "fetcher_peak_rss_mib": round(c1["maxrss_mib"], 1)}

            async def raw() -> float:
                return (await network.measure_raw_stream(peer, nbytes)).seconds

            async def fetch() -> float:
                start = time.perf_counter()
                got = 0
                async with network.fetch_blocks(wanted, [peer]) as stream:
                    async for _cid, data in stream:
                        got += len(data)
                assert got == nbytes
                return time.perf_counter() - start

            out["raw_libp2p"] = await timed(raw)
            if not skip_libp2p:
                network.fetcher.opener = StreamChannelOpener(network.host)
                out["fetch_libp2p"] = await timed(fetch)
            opener = BulkChannelOpener(network.host, cert, fallback=None)
            network.fetcher.opener = opener
            out["fetch_bulk"] = await timed(fetch)
            assert opener.opened["bulk"] == 1
    finally:
        cert.remove()
    return out


if __name__ == "__main__":
    main()
