"""Data-transfer pull against a plain network download of the same dataset, measured in the same run.

    python bench/transfer.py [--size-mib 1024] [--rounds 3] [--block-kib 64]

Node processes on 127.0.0.1: a provider that uploads SIZE random bytes (every block
distinct) and a client connected to it, both with the bulk path off (`"bulk": false`); then a
second pair with it on. Each round, in alternating order:

  download  the client's `download_stream(cid, path, local=False)`: blocks fetched over
            `/hoard/blocks/1` on the libp2p stream and written to a file, nothing stored (the
            limit to compare with: a transfer channel runs on the same libp2p connection);
  bulk      the same download by the second pair, over the bulk path (TLS 1.3, docs/network.md),
            which data transfers do not use: printed for context;
  pull      the client's `data_transfer.open_pull_data_channel(provider, DefaultVoucher(), cid)`
            until the channel is Completed: blocks streamed on `/hoard/transfer/1`, verified,
            stored in the client's LMDB store and committed as a pinned dataset, with every
            per-block event (queued, sent, received) fired on both sides and delivered to the
            client's subscriber (which waits for the end); then the dataset is deleted for the
            next round.

The best round of each counts (the median is printed too). Prints JSON: MB/s of each, CPU
milliseconds per MB of both processes in the best round, and the ratio pull / download with the
goal (>= 0.9).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

GOAL = 0.9


# -- the node processes -------------------------------------------------------------------------
def child(config_json: str) -> None:
    """A node driven by JSON lines on stdin: {"op", "args"} -> {"ok": result} or {"error": text}."""
    import logging

    import hoard
    from hoard.transfer import Status
    from hoard.transfer.builtin import DefaultVoucher

    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    node = hoard.Node(json.loads(config_json))
    node.start()
    finished: dict[str, threading.Event] = {}
    lock = threading.Lock()

    def on_event(event, state) -> None:
        if state.status in (Status.Completed, Status.Failed, Status.Cancelled):
            with lock:
                finished.setdefault(str(state.channel_id), threading.Event()).set()

    subscribed = []  # only the pulling node listens (for the end of its channel), as a real client would

    def cpu() -> float:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        return usage.ru_utime + usage.ru_stime

    def reply(value) -> None:
        sys.stdout.write(json.dumps(value) + "\n")
        sys.stdout.flush()

    reply({"peer_id": str(node.peer_id()), "addrs": list(node.debug().addrs)})
    for line in sys.stdin:
        request = json.loads(line)
        op, args = request["op"], request.get("args", [])
        try:
            if op == "quit":
                node.close()
                reply({"ok": None})
                return
            if op == "cpu":
                result = cpu()
            elif op == "upload":
                path, chunk = args
                result = str(node.upload_file(node.upload_init(path, chunk)))
            elif op == "pull":
                peer, cid = args
                if not subscribed:
                    subscribed.append(node.data_transfer.subscribe_to_events(on_event))
                start = time.perf_counter()
                chid = node.data_transfer.open_pull_data_channel(peer, DefaultVoucher("bench"), cid)
                with lock:
                    done = finished.setdefault(str(chid), threading.Event())
                done.wait(600)
                state = node.data_transfer.channel_state(chid)
                result = {"seconds": time.perf_counter() - start, "status": state.status.name,
                          "received": state.received, "message": state.message}
            elif op == "download":
                cid, path = args
                start = time.perf_counter()
                size = node.download_stream(cid, path, 1 << 20, False)
                result = {"seconds": time.perf_counter() - start, "bytes": size}
            else:
                result = getattr(node, op)(*args)
            reply({"ok": result})
        except Exception as exc:  # noqa: BLE001 - reported to the driver
            reply({"error": f"{type(exc).__name__}: {exc}"})


class Proc:
    def __init__(self, data_dir: Path, *, bulk: bool = True) -> None:
        config = {"data-dir": str(data_dir), "listen-addrs": ["/ip4/127.0.0.1/tcp/0"],
                  "storage-quota": 64 << 30, "log-level": "WARN", "bulk": bulk,
                  "dataset-format": "hoard"}  # a transfer moves a DAG: hoard's format (docs/storage.md)
        self.proc = subprocess.Popen([sys.executable, __file__, "--child", json.dumps(config)], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True, bufsize=1)
        hello = json.loads(self.proc.stdout.readline())
        self.peer_id, self.addrs = hello["peer_id"], hello["addrs"]

    def call(self, op: str, *args):
        self.proc.stdin.write(json.dumps({"op": op, "args": list(args)}) + "\n")
        self.proc.stdin.flush()
        answer = json.loads(self.proc.stdout.readline())
        if "error" in answer:
            raise RuntimeError(answer["error"])
        return answer["ok"]

    def close(self) -> None:
        try:
            self.call("quit")
        finally:
            self.proc.wait(60)


# -- the run -----------------------------------------------------------------------------------
def measure(provider: Proc, client: Proc, what: str, cid: str, out: Path) -> dict:
    cpu_p, cpu_c = provider.call("cpu"), client.call("cpu")
    if what in ("download", "bulk"):
        result = client.call("download", cid, str(out))
        out.unlink()
    else:
        result = client.call("pull", provider.peer_id, cid)
        if result["status"] != "Completed":
            raise RuntimeError(f"pull ended {result['status']}: {result['message']}")
    cpu = {"provider": provider.call("cpu") - cpu_p, "client": client.call("cpu") - cpu_c}
    if what == "pull":
        client.call("delete", cid)
    return {"seconds": result["seconds"], "cpu": cpu}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--block-kib", type=int, default=64)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child)
        return
    size = args.size_mib << 20
    with tempfile.TemporaryDirectory(prefix="hoard-bench-transfer-") as tmp:
        root = Path(tmp)
        source = root / "data.bin"
        with open(source, "wb") as fh:
            fh.writelines(os.urandom(1 << 20) for _ in range(args.size_mib))
        runs: dict[str, list[dict]] = {"download": [], "pull": [], "bulk": []}
        provider, client = Proc(root / "provider", bulk=False), Proc(root / "client", bulk=False)
        try:
            cid = provider.call("upload", str(source), args.block_kib << 10)
            client.call("connect", provider.peer_id, provider.addrs)
            for i in range(args.rounds):
                for what in (["download", "pull"] if i % 2 == 0 else ["pull", "download"]):
                    runs[what].append(measure(provider, client, what, cid, root / "out.bin"))
        finally:
            provider.close()
            client.close()
        # the bulk path's download, for context: a pair of its own, so that neither node of the
        # first pair ever offers or asks for it
        provider, client = Proc(root / "bulk-provider"), Proc(root / "bulk-client")
        try:
            cid = provider.call("upload", str(source), args.block_kib << 10)
            source.unlink()
            client.call("connect", provider.peer_id, provider.addrs)
            for _ in range(args.rounds):
                runs["bulk"].append(measure(provider, client, "bulk", cid, root / "out.bin"))
        finally:
            provider.close()
            client.close()
    mb = size / 1e6
    report: dict = {"size_mib": args.size_mib, "block_kib": args.block_kib, "rounds": args.rounds}
    for what, results in runs.items():
        best = min(results, key=lambda r: r["seconds"])
        report[what] = {
            "mb_per_s": round(mb / best["seconds"], 1),
            "median_mb_per_s": round(mb / statistics.median(r["seconds"] for r in results), 1),
            "all_mb_per_s": [round(mb / r["seconds"], 1) for r in results],
            "cpu_ms_per_mb": {side: round(1000 * cpu / mb, 2) for side, cpu in best["cpu"].items()},
        }
    report["ratio"] = round(report["pull"]["mb_per_s"] / report["download"]["mb_per_s"], 3)
    report["ratio_to_bulk"] = round(report["pull"]["mb_per_s"] / report["bulk"]["mb_per_s"], 3)
    report["median_ratio"] = round(report["pull"]["median_mb_per_s"] / report["download"]["median_mb_per_s"], 3)
    report["goal"] = GOAL
    report["meets_goal"] = report["ratio"] >= GOAL
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
