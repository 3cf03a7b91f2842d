"""S3 benchmark: a large file up and down through hoard's S3 blob store against raw obstore.

Prints one JSON object. In the same run, against the same local SeaweedFS (started here on
127.0.0.1, or `--endpoint` for another server with AWS_* credentials in the environment):

  raw_put_multipart   obstore.put of the file as one object, multipart, `--part-mib` parts
  raw_put_objects     the same bytes as separate objects of block size (same requests as hoard)
  hoard_upload        FixedChunker -> BLAKE3 CIDs -> hold markers + put_many in batches of
                      `--batch-mib` (one uploading while the next is hashed) -> index, manifest,
                      confirm: what an upload does on a shared bucket
  raw_get_ranges      ranged GETs of the multipart object, part size, same concurrency
  raw_get_objects     GETs of the separate objects
  hoard_download      manifest -> block index -> get_many (each block verified), prefetching
  node_upload         `Node.upload_file` on a node with `repo-kind: s3` (a fresh data dir per
                      run: its catalog knows no block, so every block is written)
  node_download       `Node.stream_open`/`stream_read` of that dataset through the node
  hot_reads_*         repeated reads of a hot set: bucket only, memory cache, LMDB (disk) cache

Every phase runs in its own child process, so its CPU time and peak RSS are its own; the
server's CPU is reported beside it. Ratios compare hoard with the raw phases. To add a phase
(say, through a full node), write `def phase_x(args) -> dict` and list it in PHASES.

    python bench/s3.py [--size-mib 1024] [--block-kib 1024] [--part-mib 5] [--concurrency 16]
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import resource
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from functools import partial
from pathlib import Path
from typing import Any

import blake3
import obstore
from obstore.store import S3Store

from hoard.content.chunker import FixedChunker
from hoard.content.index import build_index, walk_index
from hoard.content.manifest import Manifest
from hoard.ids.cid import CID
from hoard.store import open_blobstore
from hoard.store._s3 import parse_s3_url
from hoard.store.blobs import BlobStore
from hoard.store.s3_testing import SeaweedServer

PIECE = 8 << 20
UPLOADERS = 2  # batches uploading at once
PREFETCH = 2  # batches downloading ahead of the consumer


# -- helpers ------------------------------------------------------------------------------
def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def proc_cpu(pid: int) -> float:
    """CPU seconds (user + system) of another process, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def make_file(path: Path, size: int) -> None:
    with open(path, "wb") as fh:
        left = size
        while left:
            n = min(PIECE, left)
            fh.write(os.urandom(n))
            left -= n


def pieces(path: Path, size: int) -> Iterator[bytes]:
    with open(path, "rb", buffering=0) as fh:
        while piece := fh.read(size):
            yield piece


def raw_client(args: argparse.Namespace) -> S3Store:
    s = parse_s3_url(args.url)
    return S3Store(s.bucket, prefix=s.prefix or None, endpoint=s.endpoint, region=s.region,
                   client_options={"allow_http": True})


def bounded(pool: ThreadPoolExecutor, limit: int, jobs: Iterator[Callable[[], Any]]) -> int:
    """Run `jobs` on `pool` with at most `limit` in flight; returns how many ran."""
    inflight: list[Future[Any]] = []
    count = 0
    for job in jobs:
        if len(inflight) >= limit:
            inflight.pop(0).result()
        inflight.append(pool.submit(job))
        count += 1
    for fut in inflight:
        fut.result()
    return count


# -- phases (each runs in a child process) -------------------------------------------------
def phase_raw_put_multipart(args: argparse.Namespace) -> dict[str, Any]:
    obstore.put(raw_client(args), "raw/multipart", Path(args.file), chunk_size=args.part,
                max_concurrency=args.concurrency)
    return {}


def phase_raw_put_objects(args: argparse.Namespace) -> dict[str, Any]:
    client = raw_client(args)
    def put(i: int, piece: bytes) -> None:
        obstore.put(client, f"raw/objects/{i}", piece, use_multipart=False)

    with ThreadPoolExecutor(args.concurrency) as pool:
        jobs = (partial(put, i, p) for i, p in enumerate(pieces(Path(args.file), args.block)))
        n = bounded(pool, args.concurrency, jobs)
    return {"objects": n}


def phase_raw_get_ranges(args: argparse.Namespace) -> dict[str, Any]:
    client = raw_client(args)
    size = int(obstore.head(client, "raw/multipart")["size"])
    got = [0]
    lock = threading.Lock()

    def fetch(start: int) -> None:
        data = obstore.get_range(client, "raw/multipart", start=start, length=min(args.part, size - start))
        with lock:
            got[0] += len(memoryview(data))

    with ThreadPoolExecutor(args.concurrency) as pool:
        bounded(pool, args.concurrency, (partial(fetch, s) for s in range(0, size, args.part)))
    assert got[0] == size
    return {}


def phase_raw_get_objects(args: argparse.Namespace) -> dict[str, Any]:
    client = raw_client(args)
    count = -(-args.size // args.block)
    got = [0]
    lock = threading.Lock()

    def fetch(i: int) -> None:
        data = obstore.get(client, f"raw/objects/{i}").bytes()
        with lock:
            got[0] += len(memoryview(data))

    with ThreadPoolExecutor(args.concurrency) as pool:
        bounded(pool, args.concurrency, (partial(fetch, i) for i in range(count)))
    assert got[0] == args.size
    return {}


def open_store(args: argparse.Namespace, **kw: Any) -> BlobStore:
    return open_blobstore(args.url, holder=None if args.no_hold else "bench-node", **kw)


def phase_hoard_upload(args: argparse.Namespace) -> dict[str, Any]:
    """Chunk and hash on this thread while two batches of `--batch-mib` upload (two, so the
    store's request pool stays busy across a batch's slowest request)."""
    store = open_store(args)
    batches: queue.Queue[list[tuple[CID, bytes]] | None] = queue.Queue(maxsize=1)
    failure: list[BaseException] = []

    def uploader() -> None:
        try:
            while (batch := batches.get()) is not None:
                if not args.no_hold:
                    store.hold([cid for cid, _ in batch])
                store.put_many(batch)
        except BaseException as exc:  # noqa: BLE001 - re-raised on the main thread
            failure.append(exc)
            while batches.get() is not None:  # keep draining so the producer never blocks
                pass

    threads = [threading.Thread(target=uploader) for _ in range(UPLOADERS)]
    for thread in threads:
        thread.start()
    chunker = FixedChunker(args.block)
    digest = blake3.blake3(max_threads=1)
    entries: list[tuple[CID, int]] = []
    batch: list[tuple[CID, bytes]] = []
    try:
        for piece in pieces(Path(args.file), PIECE):
            digest.update(piece)
            for data in chunker.feed(piece):
                cid = CID.of(data)
                entries.append((cid, len(data)))
                batch.append((cid, data))
                if len(batch) >= args.batch:
                    batches.put(batch)
                    batch = []
        for data in chunker.flush():
            cid = CID.of(data)
            entries.append((cid, len(data)))
            batch.append((cid, data))
        if batch:
            batches.put(batch)
    finally:
        for _ in threads:
            batches.put(None)
        for thread in threads:
            thread.join()
    if failure:
        raise failure[0]
    root, nodes = build_index(entries)
    manifest = Manifest(args.size, args.block, len(entries), "fixed", digest.digest(), root, filename="bench.bin")
    manifest_cid, manifest_bytes = manifest.encode()
    tail = [*nodes, (manifest_cid, manifest_bytes)]
    if not args.no_hold:
        store.hold([cid for cid, _ in tail])
    store.put_many(tail)
    missing = store.confirm([cid for cid, _ in entries] + [cid for cid, _ in tail])
    assert not missing, f"{len(missing)} blocks missing after upload"
    store.close()
    return {"manifest": str(manifest_cid), "blocks": len(entries)}


def download(store: BlobStore, manifest_cid: CID, batch: int) -> int:
    """Read a dataset in order, `PREFETCH` batches of `batch` blocks fetched ahead of the one
    consumed. Returns the bytes read."""
    manifest = Manifest.decode(store.get(manifest_cid) or b"", manifest_cid)
    cids = [cid for cid, _ in walk_index(manifest.index, manifest.block_count, manifest.dataset_size, store.get)]
    got = 0
    batches = [cids[i:i + batch] for i in range(0, len(cids), batch)]
    with ThreadPoolExecutor(PREFETCH) as prefetch:
        ahead = [prefetch.submit(store.get_many, b) for b in batches[:PREFETCH]]
        for i in range(len(batches)):
            blocks = ahead.pop(0).result()
            if i + PREFETCH < len(batches):
                ahead.append(prefetch.submit(store.get_many, batches[i + PREFETCH]))
            for data in blocks:
                assert data is not None
                got += len(data)
    assert got == manifest.dataset_size
    return got


def phase_hoard_download(args: argparse.Namespace) -> dict[str, Any]:
    store = open_store(args)
    download(store, CID.parse(args.manifest), args.batch)
    store.close()
    return {}


def _hot_reads(args: argparse.Namespace, store: BlobStore) -> dict[str, Any]:
    manifest_cid = CID.parse(args.manifest)
    manifest = Manifest.decode(store.get(manifest_cid) or b"", manifest_cid)
    hot = [cid for cid, _ in walk_index(manifest.index, manifest.block_count, manifest.dataset_size, store.get)][: max(1, (args.hot_mib << 20) // args.block)]
    rounds = []
    for _ in range(args.hot_rounds):
        start = time.perf_counter()
        for i in range(0, len(hot), args.batch):
            assert all(b is not None for b in store.get_many(hot[i:i + args.batch]))
        rounds.append(time.perf_counter() - start)
    hot_bytes = len(hot) * args.block
    store.close()
    warm = rounds[1:] or rounds
    return {"hot_mib": hot_bytes >> 20, "first_round_MBps": round(hot_bytes / rounds[0] / 1e6, 1),
            "warm_MBps": round(hot_bytes * len(warm) / sum(warm) / 1e6, 1)}


def phase_hot_reads_bucket(args: argparse.Namespace) -> dict[str, Any]:
    return _hot_reads(args, open_store(args))


def phase_hot_reads_memory_cache(args: argparse.Namespace) -> dict[str, Any]:
    return _hot_reads(args, open_store(args, cache_bytes=(args.hot_mib + 16) << 20))


def phase_hot_reads_disk_cache(args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="hoard-bench-cache-") as tmp:
        return _hot_reads(args, open_store(args, cache_bytes=(args.hot_mib + 16) << 20, cache_dir=tmp))


def _node(args: argparse.Namespace, data_dir: str) -> Any:
    import hoard

    return hoard.Node({"data-dir": data_dir, "repo-kind": "s3", "storage-url": args.url, "storage-cache": 0,
                       "dataset-format": args.node_format, "listen-addrs": ["/ip4/127.0.0.1/tcp/0"],
                       "api-port": 0, "grpc-port": 0})


def phase_node_upload(args: argparse.Namespace) -> dict[str, Any]:
    with _node(args, args.node_dir) as node:
        start = time.perf_counter()
        cid = node.upload_file(node.upload_init(str(args.file), args.block))
        took = time.perf_counter() - start
    return {"manifest": str(cid), "transfer_seconds": took}


def phase_node_download(args: argparse.Namespace) -> dict[str, Any]:
    got = 0
    with _node(args, args.node_dir) as node:
        start = time.perf_counter()
        stream = node.stream_open(args.manifest)
        while data := node.stream_read(stream.id, 8 << 20):
            got += len(data)
        node.stream_close(stream.id)
        took = time.perf_counter() - start
    assert got == args.size, (got, args.size)
    return {"transfer_seconds": took}


PHASES: dict[str, Callable[[argparse.Namespace], dict[str, Any]]] = {
    "raw_put_multipart": phase_raw_put_multipart,
    "raw_put_objects": phase_raw_put_objects,
    "hoard_upload": phase_hoard_upload,
    "raw_get_ranges": phase_raw_get_ranges,
    "raw_get_objects": phase_raw_get_objects,
    "hoard_download": phase_hoard_download,
    "node_upload": phase_node_upload,
    "node_download": phase_node_download,
    "hot_reads_bucket": phase_hot_reads_bucket,
    "hot_reads_memory_cache": phase_hot_reads_memory_cache,
    "hot_reads_disk_cache": phase_hot_reads_disk_cache,
}


# -- driver -------------------------------------------------------------------------------
def run_child(args: argparse.Namespace) -> None:
    start, cpu = time.perf_counter(), cpu_seconds()
    extra = PHASES[args.phase](args)
    elapsed = time.perf_counter() - start
    print(json.dumps({"seconds": elapsed, "cpu_s": cpu_seconds() - cpu, "peak_rss_mb": peak_rss_mb(), **extra}))


def run_phase(name: str, args: argparse.Namespace, env: dict[str, str], server_pid: int | None,
              **more: str) -> dict[str, Any]:
    cmd = [sys.executable, __file__, "--phase", name, "--url", args.url, "--file", str(args.file),
           "--size-mib", str(args.size_mib), "--block-kib", str(args.block_kib), "--part-mib", str(args.part_mib),
           "--concurrency", str(args.concurrency), "--batch-mib", str(args.batch_mib), "--hot-mib", str(args.hot_mib),
           "--hot-rounds", str(args.hot_rounds)]
    if args.no_hold:
        cmd.append("--no-hold")
    cmd += ["--node-format", args.node_format]
    for key, value in more.items():
        cmd += [f"--{key}", value]
    server_cpu = proc_cpu(server_pid) if server_pid else None
    out = subprocess.run(cmd, check=False, env=env, capture_output=True, text=True, timeout=3600)
    if out.returncode != 0:
        raise RuntimeError(f"phase {name} failed:\n{out.stderr[-4000:]}")
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    if server_pid and server_cpu is not None:
        result["server_cpu_s"] = round(proc_cpu(server_pid) - server_cpu, 2)
    if name.startswith(("raw_", "hoard_", "node_")):
        # node phases: the transfer alone (not the node's start and stop, reported in `seconds`)
        result["MBps"] = round(args.size / result.get("transfer_seconds", result["seconds"]) / 1e6, 1)
    for key in ("seconds", "transfer_seconds", "cpu_s", "peak_rss_mb"):
        if key in result:
            result[key] = round(result[key], 2)
    print(f"{name}: {result}", file=sys.stderr)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--block-kib", type=int, default=1024, help="hoard block size (max 4096)")
    parser.add_argument("--part-mib", type=int, default=5, help="raw multipart part and range size (S3 minimum 5)")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--batch-mib", type=int, default=32,
                        help="bytes per put_many/get_many batch: memory is bounded by ~3 batches")
    parser.add_argument("--repeat", type=int, default=2, help="runs of each up/down phase (best is reported)")
    parser.add_argument("--hot-mib", type=int, default=64)
    parser.add_argument("--hot-rounds", type=int, default=4)
    parser.add_argument("--no-hold", action="store_true", help="no holder markers (a private bucket)")
    parser.add_argument("--endpoint", help="use this S3 server instead of starting SeaweedFS")
    parser.add_argument("--bucket", default="hoard-test")
    parser.add_argument("--dir", default=tempfile.gettempdir())
    parser.add_argument("--phase", choices=sorted(PHASES), help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--file", help=argparse.SUPPRESS)
    parser.add_argument("--manifest", help=argparse.SUPPRESS)
    parser.add_argument("--node-dir", help=argparse.SUPPRESS)
    parser.add_argument("--node-format", default="logos", choices=["logos", "hoard"],
                        help="the dataset format of the node phases")
    args = parser.parse_args()
    args.size, args.block, args.part = args.size_mib << 20, args.block_kib << 10, args.part_mib << 20
    args.batch = max(1, (args.batch_mib << 20) // args.block)
    if args.phase:
        run_child(args)
        return

    server = None if args.endpoint else SeaweedServer.start()
    env = dict(os.environ)
    try:
        if server is not None:
            env.update(server.environment())
            args.url = server.url(f"bench-{os.getpid()}", concurrency=str(args.concurrency))
        else:
            args.url = f"s3://{args.bucket}/bench-{os.getpid()}?endpoint={args.endpoint}&concurrency={args.concurrency}"
        pid = server.process.pid if server is not None else None
        with tempfile.TemporaryDirectory(dir=args.dir, prefix="hoard-s3-bench-") as tmp:
            args.file = Path(tmp) / "data.bin"
            make_file(args.file, args.size)
            runs: dict[str, list[dict[str, Any]]] = {}
            manifest = node_manifest = node_dir = ""
            for i in range(args.repeat):  # alternating, so a busy moment hits every phase alike
                for name in ("raw_put_multipart", "raw_put_objects", "hoard_upload"):
                    runs.setdefault(name, []).append(run_phase(name, args, env, pid))
                manifest = runs["hoard_upload"][-1]["manifest"]
                node_dir = str(Path(tmp) / f"node-{i}")
                runs.setdefault("node_upload", []).append(run_phase("node_upload", args, env, pid, **{"node-dir": node_dir}))
                node_manifest = runs["node_upload"][-1]["manifest"]
            for _ in range(args.repeat):
                for name in ("raw_get_ranges", "raw_get_objects", "hoard_download"):
                    runs.setdefault(name, []).append(run_phase(name, args, env, pid, manifest=manifest))
                runs.setdefault("node_download", []).append(
                    run_phase("node_download", args, env, pid, manifest=node_manifest, **{"node-dir": node_dir}))
            for name in ("hot_reads_bucket", "hot_reads_memory_cache", "hot_reads_disk_cache"):
                runs[name] = [run_phase(name, args, env, pid, manifest=manifest)]
            # best run by throughput (noise on a shared machine only ever slows a run down);
            # peak RSS is the worst of the runs
            results: dict[str, dict[str, Any]] = {}
            for name, rs in runs.items():
                best: dict[str, Any] = max(rs, key=lambda r: float(r.get("MBps", 0)))
                results[name] = {**best, "peak_rss_mb": max(r["peak_rss_mb"] for r in rs),
                                 "runs_MBps": [r.get("MBps") for r in rs]}
    finally:
        if server is not None:
            server.stop()

    def ratio(a: str, b: str) -> float:
        return round(float(results[a]["MBps"]) / float(results[b]["MBps"]), 3)

    print(json.dumps({
        "bench": "s3", "server": "seaweedfs (local)" if server is not None else args.endpoint,
        "size_mib": args.size_mib, "block_kib": args.block_kib, "part_mib": args.part_mib,
        "concurrency": args.concurrency, "batch_mib": args.batch_mib, "repeat": args.repeat, "holder_markers": not args.no_hold, "cpus": os.cpu_count(),
        "phases": results,
        "ratios": {
            "upload_vs_raw_multipart": ratio("hoard_upload", "raw_put_multipart"),
            "upload_vs_raw_objects": ratio("hoard_upload", "raw_put_objects"),
            "download_vs_raw_ranges": ratio("hoard_download", "raw_get_ranges"),
            "download_vs_raw_objects": ratio("hoard_download", "raw_get_objects"),
            "node_upload_vs_raw_objects": ratio("node_upload", "raw_put_objects"),
            "node_download_vs_raw_objects": ratio("node_download", "raw_get_objects"),
        },
        "goals": {"ratio_min": 0.70, "rss_max_mb": 300},
    }, indent=2))


if __name__ == "__main__":
    main()
