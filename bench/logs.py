"""Log benchmark: signed durable appends and subscription delivery latency. Prints JSON.

    python bench/logs.py [--records 50000] [--size 100] [--workdir DIR]

Measured in one run, on this machine:

* `crypto`: raw Ed25519 signing and verifying per second (PyNaCl/libsodium, what hoard uses;
  and `cryptography`/OpenSSL for comparison), on a message the size of a record's signed bytes;
* `local`: a `hoard.Node` (not started) on DIR: appends by one writer, synchronous (each
  waits until durable: one fsync per record) and pipelined with `append_async` (group
  commit), with the CPU they took; the subscription delivery latency (a subscriber's callback
  minus the record's timestamp, which the writer stamps when it signs, so it includes the
  durable commit) p50/p99, with the writer appending synchronously at `--rate` records/s
  (`delivery`) and back to back as fast as it can (`delivery_back_to_back`: then the two
  cores are saturated and the figure is mostly queueing);
* `remote`: two node processes on 127.0.0.1 (this one, B, and a child, A, hosting the log):
  B appending to A's log over `/hoard/logs/1` (signed at B, verified and committed at A),
  synchronous and pipelined; and the delivery latency to a subscriber on B while A appends,
  paced and back to back as above;
* `raw_libp2p`: the reference for `remote`'s delivery, in the same run: two bare py-libp2p hosts
  (TCP + Noise + yamux, as a node's; TCP_NODELAY is trio's default) in two processes, one
  sending messages the size of a record's DATA frame at the same pace on one stream, each
  stamped with its send time; the other's latency is its receive time minus the stamp.

Goals: >= 10,000 appends/s with append_async (local), p99 delivery < 10 ms on loopback.
DIR defaults to a fresh temporary directory (on disk: appends are fsynced, and the synchronous
rate is the disk's fsync rate); `--workdir /dev/shm` takes the disk out.
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

import hoard
from hoard import EVENT_CREATED, EVENT_DATA, EVENT_EOS

GOAL_APPENDS = 10_000
GOAL_P99_MS = 10.0
LATENCY_RECORDS = 2000
DATA_OVERHEAD = 5 + 55 + 64  # what a DATA frame body adds to an Ed25519 record's data: sid, header, signature


def cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def rate(n: int, seconds: float) -> float:
    return round(n / seconds, 1) if seconds > 0 else 0.0


def percentiles(latencies_ns: list[int]) -> dict[str, float]:
    ms = sorted(x / 1e6 for x in latencies_ns)
    return {"n": len(ms), "p50_ms": round(statistics.median(ms), 3),
            "p99_ms": round(ms[min(len(ms) - 1, int(len(ms) * 0.99))], 3), "max_ms": round(ms[-1], 3)}


# -- raw crypto ---------------------------------------------------------------------------

def crypto(size: int, seconds: float = 1.0) -> dict:
    import nacl.bindings
    import nacl.signing
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    message = os.urandom(32 + 20 + size + 32)  # name, recno/ts, data, prevhash
    seed = bytes(nacl.signing.SigningKey.generate())
    public, secret = nacl.bindings.crypto_sign_seed_keypair(seed)
    signature = nacl.bindings.crypto_sign(message, secret)[:64]
    key = Ed25519PrivateKey.from_private_bytes(seed)
    public_key = key.public_key()

    def per_second(fn) -> float:
        n, start = 0, time.perf_counter()
        while time.perf_counter() - start < seconds:
            for _ in range(100):
                fn()
            n += 100
        return round(n / (time.perf_counter() - start), 1)

    return {
        "sign_per_s": per_second(lambda: nacl.bindings.crypto_sign(message, secret)),
        "verify_per_s": per_second(lambda: nacl.bindings.crypto_sign_open(signature + message, public)),
        "cryptography_sign_per_s": per_second(lambda: key.sign(message)),
        "cryptography_verify_per_s": per_second(lambda: public_key.verify(signature, message)),
    }


# -- appends and latency through a node ------------------------------------------------------

def sync_appends(log, n: int, data: bytes) -> dict:
    start, cpu0 = time.perf_counter(), cpu()
    for _ in range(n):
        log.append(data)
    seconds = time.perf_counter() - start
    return {"records": n, "appends_per_s": rate(n, seconds), "cpu_us_per_append": round((cpu() - cpu0) / n * 1e6, 1)}


def async_appends(log, n: int, data: bytes) -> dict:
    done = threading.Event()
    count = [0]
    failed = []

    def on_event(event) -> None:
        count[0] += 1
        if event.type != EVENT_CREATED:
            failed.append(event)
        if count[0] == n:
            done.set()

    start, cpu0 = time.perf_counter(), cpu()
    for _ in range(n):
        log.append_async(data, on_event)
    submitted = time.perf_counter() - start
    done.wait()
    seconds = time.perf_counter() - start
    if failed:
        raise SystemExit(f"{len(failed)} appends failed: {failed[0].error}")
    return {"records": n, "appends_per_s": rate(n, seconds), "submit_per_s": rate(n, submitted),
            "cpu_us_per_append": round((cpu() - cpu0) / n * 1e6, 1)}


class Latency:
    """A subscription callback recording (receive time - record timestamp)."""

    def __init__(self) -> None:
        self.latencies: list[int] = []
        self.done = threading.Event()

    def __call__(self, event) -> None:
        now = time.time_ns()
        if event.type == EVENT_DATA:
            self.latencies.append(now - event.datum.ts)
        elif event.type == EVENT_EOS:
            self.done.set()
        else:
            print(f"unexpected event {event}", file=sys.stderr)
            self.done.set()


def paced_appends(log, n: int, data: bytes, rate_per_s: float) -> None:
    """`n` synchronous appends, at most `rate_per_s` a second (0: back to back)."""
    start = time.monotonic()
    for i in range(n):
        if rate_per_s:
            delay = start + i / rate_per_s - time.monotonic()
            if delay > 0:
                time.sleep(delay)  # the writer's pace, not a synchronisation
        log.append(data)


def delivery(subscriber, writer, n: int, data: bytes, rate_per_s: float) -> dict:
    probe = Latency()
    subscriber.subscribe_by_recno(writer.nrecs + 1, n, probe)
    paced_appends(writer, n, data, rate_per_s)
    probe.done.wait()
    return percentiles(probe.latencies)


def local(work: Path, records: int, size: int, rate_per_s: float) -> dict:
    data = os.urandom(size)
    with hoard.Node({"data-dir": str(work / "local")}) as node:
        log = node.logs.create()
        out = {"sync": sync_appends(log, min(2000, records), data),
               "async": async_appends(log, records, data)}
        reader = node.logs.open(str(log.name), "ro")
        out["delivery"] = {"rate_per_s": rate_per_s,
                           **delivery(reader, log, LATENCY_RECORDS, data, rate_per_s)}
        out["delivery_back_to_back"] = delivery(reader, log, LATENCY_RECORDS, data, 0)
    return out


# -- two processes ----------------------------------------------------------------------------

def child(config: str) -> None:
    """The host process: a started node; commands as JSON lines on stdin."""
    node = hoard.Node(json.loads(config))
    node.start()
    logs = {}

    def reply(obj) -> None:
        sys.stdout.write(json.dumps(obj) + "\n")
        sys.stdout.flush()

    reply({"peerId": str(node.peer_id()), "addrs": list(node.debug().addrs)})
    for line in sys.stdin:
        command = json.loads(line)
        if command["op"] == "create":
            log = node.logs.create()
            logs[str(log.name)] = log
            reply({"name": str(log.name), "key": str(node.components.logs.keydir / f"{log.name}.pem")})
        elif command["op"] == "append":
            log = logs[command["name"]]
            data = os.urandom(command["size"])
            try:
                log.append(data)
            except hoard.errors.LogError:  # the client appended meanwhile: the writer has resynchronised
                log.append(data)
            paced_appends(log, command["n"] - 1, data, command["rate"])
            reply({"nrecs": log.nrecs})
        else:
            node.close()
            reply({})
            return


def remote(work: Path, records: int, size: int, rate_per_s: float) -> dict:
    config = {"data-dir": str(work / "host"), "listen-addrs": ["/ip4/127.0.0.1/tcp/0"]}
    proc = subprocess.Popen([sys.executable, __file__, "--child", json.dumps(config)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True, bufsize=1)

    def call(**command):
        proc.stdin.write(json.dumps(command) + "\n")
        proc.stdin.flush()
        return json.loads(proc.stdout.readline())

    try:
        host = json.loads(proc.stdout.readline())
        data = os.urandom(size)
        with hoard.Node({"data-dir": str(work / "client"), "listen-addrs": ["/ip4/127.0.0.1/tcp/0"]}) as node:
            node.start()
            node.connect(host["peerId"], host["addrs"])
            created = call(op="create")
            log = node.logs.open(created["name"], "ra", signing_key=created["key"])
            out = {"sync": sync_appends(log, min(1000, records), data),
                   "async": async_appends(log, max(records // 2, 1), data)}
            for key, pace in (("delivery", rate_per_s), ("delivery_back_to_back", 0)):
                probe = Latency()
                log.subscribe_by_recno(log.nrecs + 1, LATENCY_RECORDS, probe)
                call(op="append", name=created["name"], n=LATENCY_RECORDS, size=size, rate=pace)
                probe.done.wait()
                out[key] = {"rate_per_s": pace, **percentiles(probe.latencies)} if pace else percentiles(probe.latencies)
        call(op="quit")
    finally:
        proc.wait(timeout=60)
    return out


# -- the raw py-libp2p reference ---------------------------------------------------------------

RAW_PROTOCOL = "/hoard/bench/latency/1"


def raw_child() -> None:
    """A bare py-libp2p host: on RAW_PROTOCOL, read (n, rate, size), then send n stamped frames."""
    import trio

    from hoard.ids.peer import Identity
    from hoard.net.host import Host

    async def serve(stream) -> None:
        request = b""
        while len(request) < 16:
            chunk = await stream.read(16 - len(request))
            if not chunk:
                return  # the driver went away
            request += chunk
        n, rate_per_s, size = int.from_bytes(request[:4], "big"), int.from_bytes(request[4:12], "big"), \
            int.from_bytes(request[12:], "big")
        pad = os.urandom(max(size - 8, 0))
        start = time.monotonic()
        for i in range(n):
            if rate_per_s:
                delay = start + i / rate_per_s - time.monotonic()
                if delay > 0:
                    await trio.sleep(delay)
            body = time.time_ns().to_bytes(8, "big") + pad
            await stream.write(len(body).to_bytes(4, "big") + body)
        await stream.close()

    async def run() -> None:
        host = Host(Identity.generate(), ["/ip4/127.0.0.1/tcp/0"])
        async with host.run():
            host.libp2p.set_stream_handler(RAW_PROTOCOL, serve)
            sys.stdout.write(json.dumps({"peerId": str(host.peer_id), "addrs": [str(a) for a in host.addrs]}) + "\n")
            sys.stdout.flush()
            await trio.to_thread.run_sync(sys.stdin.readline)  # until the driver is done

    trio.run(run)


def raw_libp2p(size: int, rate_per_s: float, n: int = LATENCY_RECORDS) -> dict:
    """One-way latency of paced frames on a bare py-libp2p stream between two processes."""
    import trio

    from hoard.ids.peer import Identity, PeerId
    from hoard.net.host import Host

    proc = subprocess.Popen([sys.executable, __file__, "--raw-child"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            text=True, bufsize=1)
    latencies: list[int] = []

    async def run() -> None:
        hello = json.loads(await trio.to_thread.run_sync(proc.stdout.readline))
        host = Host(Identity.generate(), ["/ip4/127.0.0.1/tcp/0"])
        async with host.run():
            peer = PeerId(hello["peerId"])
            await host.connect(peer, hello["addrs"])
            stream = await host.libp2p.new_stream(peer.libp2p, [RAW_PROTOCOL])
            frame = size + DATA_OVERHEAD
            await stream.write(n.to_bytes(4, "big") + int(rate_per_s).to_bytes(8, "big") + frame.to_bytes(4, "big"))
            buffer = b""
            while len(latencies) < n:
                chunk = await stream.read(1 << 16)
                if not chunk:
                    raise SystemExit("the raw stream ended early")
                now = time.time_ns()
                buffer += chunk
                while len(buffer) >= 4 and len(buffer) >= 4 + int.from_bytes(buffer[:4], "big"):
                    length = int.from_bytes(buffer[:4], "big")
                    latencies.append(now - int.from_bytes(buffer[4:12], "big"))
                    buffer = buffer[4 + length:]
            await stream.close()

    try:
        trio.run(run)
    finally:
        proc.stdin.close()
        proc.wait(timeout=60)
    return {"rate_per_s": rate_per_s, **percentiles(latencies)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--records", type=int, default=50_000, help="records per pipelined append run")
    parser.add_argument("--size", type=int, default=100, help="bytes of data per record")
    parser.add_argument("--workdir", default=None, help="where the nodes' data dirs go (default: a temp dir)")
    parser.add_argument("--rate", type=float, default=500, help="records/s the writer appends at for `delivery`")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--raw-child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child)
        return
    if args.raw_child:
        raw_child()
        return
    with tempfile.TemporaryDirectory(prefix="hoard-logs-bench-", dir=args.workdir) as tmp:
        work = Path(tmp)
        result = {"record_bytes": args.size, "crypto": crypto(args.size)}
        result["local"] = local(work, args.records, args.size, args.rate)
        result["remote"] = remote(work, args.records, args.size, args.rate)
        result["raw_libp2p"] = {"delivery": raw_libp2p(args.size, args.rate)}
    appends = result["local"]["async"]["appends_per_s"]
    result["ratios"] = {
        "local_async_appends_to_raw_sign": round(appends / result["crypto"]["sign_per_s"], 3),
        "remote_async_appends_to_raw_verify": round(
            result["remote"]["async"]["appends_per_s"] / result["crypto"]["verify_per_s"], 3),
        # remote - raw: the log protocol and the host's commit over a bare stream's one-way latency;
        # remote - local: what crossing to another process adds to a local subscriber's latency
        "remote_minus_raw_p50_ms": round(
            result["remote"]["delivery"]["p50_ms"] - result["raw_libp2p"]["delivery"]["p50_ms"], 3),
        "remote_minus_local_p50_ms": round(
            result["remote"]["delivery"]["p50_ms"] - result["local"]["delivery"]["p50_ms"], 3),
    }
    result["goals"] = {
        "async_appends_per_s": {"goal": GOAL_APPENDS, "local": appends, "met": appends >= GOAL_APPENDS},
        "delivery_p99_ms": {"goal": GOAL_P99_MS, "local": result["local"]["delivery"]["p99_ms"],
                            "remote": result["remote"]["delivery"]["p99_ms"],
                            "raw_libp2p_reference": result["raw_libp2p"]["delivery"]["p99_ms"],
                            "met": max(result["local"]["delivery"]["p99_ms"],
                                       result["remote"]["delivery"]["p99_ms"]) < GOAL_P99_MS},
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
