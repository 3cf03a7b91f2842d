"""Ingest benchmark: upload_file and download_stream of a large file through an embedded node.

Prints one JSON object. In the same run it measures the machine's limits on the same file:
raw sequential write + fsync, and raw BLAKE3 hashing. The node runs in a child process so
its peak RSS is its own.

    python bench/ingest.py [--size-mib 1024] [--dir /tmp]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import blake3

PIECE = 16 << 20


def make_file(path: Path, size: int) -> None:
    with open(path, "wb") as fh:
        left = size
        while left:
            n = min(PIECE, left)
            fh.write(os.urandom(n))
            left -= n


def drop_cache(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


def raw_write_fsync(src: Path, dst: Path) -> float:
    start = time.perf_counter()
    with open(src, "rb", buffering=0) as fin, open(dst, "wb", buffering=0) as fout:
        while piece := fin.read(4 << 20):
            fout.write(piece)
        os.fsync(fout.fileno())
    elapsed = time.perf_counter() - start
    dst.unlink()
    return elapsed


def raw_copy(src: Path, dst: Path) -> float:
    """Read the file and write a copy (no fsync): the limit for a download to a file."""
    start = time.perf_counter()
    with open(src, "rb", buffering=0) as fin, open(dst, "wb", buffering=0) as fout:
        while piece := fin.read(1 << 20):
            fout.write(piece)
    elapsed = time.perf_counter() - start
    dst.unlink()
    return elapsed


def raw_blake3(src: Path) -> float:
    start = time.perf_counter()
    hasher = blake3.blake3()
    with open(src, "rb", buffering=0) as fh:
        while piece := fh.read(4 << 20):
            hasher.update(piece)
    return time.perf_counter() - start


def cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def child(src: Path, work: Path) -> None:
    import hoard

    with hoard.Node({"data-dir": str(work / "data")}) as node:
        c0, t0 = cpu(), time.perf_counter()
        cid = node.upload_file(node.upload_init(str(src)))
        up_s, up_cpu = time.perf_counter() - t0, cpu() - c0
        out = work / "out.bin"
        runs = []
        for _ in range(2):  # the first run writes into never-touched guest memory (see the note)
            c0, t0 = cpu(), time.perf_counter()
            node.download_stream(cid, str(out), chunk_size=1 << 20)
            runs.append((time.perf_counter() - t0, cpu() - c0))
            same = _same(src, out)
            out.unlink()
        (first_s, _), (down_s, down_cpu) = runs
        c0, t0 = cpu(), time.perf_counter()
        node.download_stream(cid, None, 1 << 20, on_progress=lambda chunk: None)
        mem_s, mem_cpu = time.perf_counter() - t0, cpu() - c0
    rss_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"upload_s": up_s, "upload_cpu_s": up_cpu, "download_s": down_s, "download_cpu_s": down_cpu,
                      "first_download_s": first_s,
                      "stream_s": mem_s, "stream_cpu_s": mem_cpu,
                      "peak_rss_mib": rss_mib, "identical": same, "cid": str(cid)}))


def _same(a: Path, b: Path) -> bool:
    with open(a, "rb") as fa, open(b, "rb") as fb:
        while True:
            x, y = fa.read(PIECE), fb.read(PIECE)
            if x != y:
                return False
            if not x:
                return True


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--dir", default=None)
    parser.add_argument("--child", nargs=2)
    args = parser.parse_args()
    if args.child:
        child(Path(args.child[0]), Path(args.child[1]))
        return
    size = args.size_mib << 20
    with tempfile.TemporaryDirectory(dir=args.dir, prefix="hoard-bench-") as tmp:
        work = Path(tmp)
        src = work / "input.bin"
        make_file(src, size)
        write_s = raw_write_fsync(src, work / "raw.bin")
        hash_s = raw_blake3(src)
        copy_s = raw_copy(src, work / "copy.bin")
        proc = subprocess.run([sys.executable, __file__, "--child", str(src), str(work)],
                              capture_output=True, text=True, check=True)
        node = json.loads(proc.stdout.strip().splitlines()[-1])
    mb = size / 1e6
    limit_s = write_s + hash_s  # the work a durable, hashed write cannot avoid, done serially
    result = {
        "bench": "ingest", "size_mib": args.size_mib,
        "upload_mb_s": round(mb / node["upload_s"], 1),
        "upload_cpu_s": round(node["upload_cpu_s"], 2),
        "download_to_file_mb_s": round(mb / node["download_s"], 1),
        "download_to_file_cpu_s": round(node["download_cpu_s"], 2),
        "download_to_file_first_run_mb_s": round(mb / node["first_download_s"], 1),
        "download_to_callback_mb_s": round(mb / node["stream_s"], 1),
        "download_to_callback_cpu_s": round(node["stream_cpu_s"], 2),
        "peak_rss_mib": round(node["peak_rss_mib"], 1),
        "identical": node["identical"],
        "raw_write_fsync_mb_s": round(mb / write_s, 1),
        "raw_blake3_mb_s": round(mb / hash_s, 1),
        "raw_file_copy_mb_s": round(mb / copy_s, 1),
        "download_to_file_vs_raw_copy": round(copy_s / node["download_s"], 3),
        "raw_write_plus_hash_mb_s": round(mb / limit_s, 1),
        "upload_vs_write_plus_hash": round(limit_s / node["upload_s"], 3),
        "goals": {"upload_mb_s": 400, "upload_vs_write_plus_hash": 0.5, "download_mb_s": 1000, "peak_rss_mib": 250},
        "note": "download_to_file is the second of two runs: on this VM the first write of a GiB into "
                "page cache never used before costs ~2.5 s of kernel CPU (guest memory touched the first time), "
                "whatever writes it; download_to_callback is the read speed of the local store",
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
