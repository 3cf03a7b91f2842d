"""Throughput through the C ABI (libstorage.so) against the Python API, in the same run.

    python bench/capi.py [--size-mib 256] [--piece 1048576] [--chunk 1048576] [--rounds 3]

Builds libstorage.so, compiles bench/capi_bench.c against it, and for each round runs the same
five operations on SIZE bytes of random data (one fresh node each side, order alternating):

  upload_chunks    upload_init + upload_chunk(PIECE) ... + upload_finalize
  upload_file      upload_init(path) + upload_file with progress (other random bytes)
  download_chunks  download_init(CHUNK) + download_chunk ... (each chunk delivered)
  download_stream  download_stream(CHUNK) with every chunk delivered to a callback
  download_file    the same, also writing a file

The C side waits for each request's final callback like an application; the Python side uses
the blocking `Node` methods. Each side runs in a fresh process.

Prints JSON: per operation, MB/s of the best round on each side and their ratio C / Python
(goal >= 0.8), the ratio of the medians, the CPU seconds (whole process, best round) and
their ratio Python / C. The operations are dominated by writes to the page cache and disk, so
on a shared machine the wall times vary a lot between rounds: use several rounds. The scratch
directory (sources, both nodes' data dirs, the downloaded file) defaults to /dev/shm, so that
disk writeback (LMDB, fsync of the downloaded file) and other tenants' I/O do not drown what is
compared, the cost of the C ABI; pass --workdir to measure on a disk.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from hoard.capi import build
from hoard.node import Node

HERE = Path(__file__).resolve().parent
OPS = ["upload_chunks", "upload_file", "download_chunks", "download_stream", "download_file"]
GOAL = 0.8


def run_c(binary: Path, libdir: Path, datadir: Path, source: Path, upload: Path, piece: int, chunk: int,
          out: Path) -> dict:
    env = dict(os.environ, LD_LIBRARY_PATH=str(libdir))
    proc = subprocess.run([str(binary), str(datadir), str(source), str(upload), str(piece), str(chunk), str(out)],
                          check=False, env=env, capture_output=True, text=True, timeout=1800)
    if proc.returncode != 0:
        raise SystemExit(f"capi_bench failed ({proc.returncode}): {proc.stderr}")
    return json.loads(proc.stdout)


def run_python(datadir: Path, source: Path, upload: Path, piece: int, chunk: int, out: Path) -> dict:
    """The Python side, in a fresh process like the C side (see python_side)."""
    proc = subprocess.run([sys.executable, __file__, "--python-side", str(datadir), str(source), str(upload),
                           str(piece), str(chunk), str(out)], check=False, capture_output=True,
                          text=True, timeout=1800)
    if proc.returncode != 0:
        raise SystemExit(f"python side failed ({proc.returncode}): {proc.stderr}")
    return json.loads(proc.stdout)


def python_side(datadir: Path, source: Path, upload: Path, piece: int, chunk: int, out: Path) -> dict:
    data = source.read_bytes()
    size = len(data)
    result: dict = {"size": size}
    timer: list[float] = []

    def start() -> None:
        timer[:] = [time.perf_counter(), time.process_time()]

    def report(op: str) -> None:
        result[op] = {"wall": time.perf_counter() - timer[0], "cpu": time.process_time() - timer[1]}

    received = [0]

    def count(n: int) -> None:
        received[0] += n

    def consume(chunk_bytes: bytes) -> None:  # what the C callback does: count and touch
        received[0] += len(chunk_bytes)
        _ = chunk_bytes[0] + chunk_bytes[-1]

    with Node({"data-dir": str(datadir), "log-level": "WARN"}) as node:
        start()
        session = node.upload_init("bench.bin", 0)
        view = memoryview(data)
        for off in range(0, size, piece):
            node.upload_chunk(session, bytes(view[off:off + piece]))
        cid = node.upload_finalize(session)
        report("upload_chunks")

        start()
        received[0] = 0
        session = node.upload_init(str(upload), 0)
        node.upload_file(session, on_progress=count)
        report("upload_file")
        assert received[0] == size

        start()
        node.download_init(cid, chunk, True)
        got = 0
        while piece_bytes := node.download_chunk(cid):
            got += len(piece_bytes)
            _ = piece_bytes[0] + piece_bytes[-1]
        report("download_chunks")
        assert got == size
        node.download_cancel(cid)

        start()
        received[0] = 0
        node.download_stream(cid, None, chunk, True, on_progress=consume)
        report("download_stream")
        assert received[0] == size

        start()
        received[0] = 0
        node.download_stream(cid, str(out), chunk, True, on_progress=consume)
        report("download_file")
        assert received[0] == size
    return result


def main() -> None:
    if len(sys.argv) == 8 and sys.argv[1] == "--python-side":
        datadir, source, upload, piece, chunk, out = sys.argv[2:]
        json.dump(python_side(Path(datadir), Path(source), Path(upload), int(piece), int(chunk), Path(out)), sys.stdout)
        return
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size-mib", type=int, default=256)
    parser.add_argument("--piece", type=int, default=1 << 20, help="bytes per upload_chunk call")
    parser.add_argument("--chunk", type=int, default=1 << 20, help="download chunk size")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--workdir", default=None,
                        help="scratch directory (default: /dev/shm if there, else the temp dir)")
    args = parser.parse_args()

    base = args.workdir or ("/dev/shm" if os.access("/dev/shm", os.W_OK) else None)
    work = Path(tempfile.mkdtemp(prefix="hoard-capi-bench-", dir=base))
    try:
        built = build(work / "lib")
        binary = work / "capi_bench"
        cc = shutil.which("cc") or shutil.which("gcc") or "cc"
        subprocess.run([cc, "-O2", "-o", str(binary), str(HERE / "capi_bench.c"), f"-I{work / 'lib'}",
                        f"-L{work / 'lib'}", "-lstorage", "-lpthread"], check=True)
        source, upload = work / "source.bin", work / "upload.bin"
        size = args.size_mib << 20
        for path in (source, upload):  # different random bytes: no upload benefits from dedup
            with open(path, "wb") as fh:
                fh.writelines(os.urandom(1 << 20) for _ in range(args.size_mib))
        rounds: dict[str, list[dict]] = {"c": [], "python": []}
        for i in range(args.rounds):
            order = ["c", "python"] if i % 2 == 0 else ["python", "c"]
            for side in order:
                datadir = work / f"{side}-{i}"
                out = work / f"{side}-{i}.out"
                if side == "c":
                    rounds["c"].append(run_c(binary, built.library.parent, datadir, source, upload, args.piece,
                                                 args.chunk, out))
                else:
                    rounds["python"].append(run_python(datadir, source, upload, args.piece, args.chunk, out))
                shutil.rmtree(datadir, ignore_errors=True)
                out.unlink(missing_ok=True)
        report: dict = {"bench": "capi", "size_bytes": size, "piece": args.piece, "chunk": args.chunk,
                        "rounds": args.rounds, "workdir": str(work.parent), "cpus": os.cpu_count(), "goal_ratio": GOAL, "ops": {}}
        for op in OPS:
            best = {side: min(r[op]["wall"] for r in rounds[side]) for side in rounds}
            median = {side: statistics.median(r[op]["wall"] for r in rounds[side]) for side in rounds}
            cpu = {side: min(r[op]["cpu"] for r in rounds[side]) for side in rounds}
            mbps = {side: size / best[side] / 1e6 for side in rounds}
            report["ops"][op] = {"c_MBps": round(mbps["c"], 1), "python_MBps": round(mbps["python"], 1),
                                 "ratio": round(mbps["c"] / mbps["python"], 3),
                                 "median_ratio": round(median["python"] / median["c"], 3),
                                 "c_cpu_s": round(cpu["c"], 3), "python_cpu_s": round(cpu["python"], 3),
                                 "cpu_ratio": round(cpu["python"] / cpu["c"], 3),
                                 "c_wall_s": [round(r[op]["wall"], 3) for r in rounds["c"]],
                                 "python_wall_s": [round(r[op]["wall"], 3) for r in rounds["python"]]}
        report["min_ratio"] = min(v["ratio"] for v in report["ops"].values())
        report["meets_goal"] = report["min_ratio"] >= GOAL
        json.dump(report, sys.stdout, indent=2)
        sys.stdout.write("\n")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
