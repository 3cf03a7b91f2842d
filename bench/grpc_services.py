"""castore Put/Read of one large blob over gRPC on loopback, against raw grpcio streaming.

    python bench/grpc_services.py [--size-mib 1024] [--repeat 1] [--out FILE]

Measures, in the same run and on the same data file:
  raw    grpcio streaming of 1 MiB messages with identity (bytes) serializers to a server
         process that only counts them (Put) or sends them (Read): the transport's limit,
         and the goal's reference.
  raw_protobuf  the same with castore's BlobChunk messages (what the protocol itself costs).
  raw_durable   Put only: raw grpcio whose server appends each message to a new file and
         fsyncs it at the end (files kept to the end of the run): what durably storing new
         bytes costs on this machine. On this VM that is mostly the first touch of new page
         cache pages (the hypervisor backs guest memory lazily), which hoard pays too.
  hoard  `tvix.castore.v1.BlobService` Put and Read of the same bytes against a real
         `hoard node start` process (CDC chunking, hashing, LMDB, a durable commit).
Raw and hoard runs are interleaved, each run on new random bytes; each figure is the best of
--repeat runs: MB/s (10^6 bytes), wall seconds, and the CPU seconds of the client and the
server process. Prints one JSON object; the goal is
hoard ≥ 0.5 of raw for Put and ≥ 0.7 for Read (issue 16).
"""

from __future__ import annotations

import argparse
import json
import os
import select
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import grpc
import psutil

MESSAGE = 1 << 20
GOALS = {"put": 0.5, "read": 0.7}
CHANNEL_OPTIONS = [("grpc.max_receive_message_length", 64 << 20), ("grpc.max_send_message_length", 64 << 20)]
_identity: Callable[[bytes], bytes] = lambda b: b


# -- the raw server (run as a child process) --------------------------------------------------
def raw_server(files: Path) -> None:
    """Serve /bench.Raw/Put (count bytes), /bench.Raw/PutDurable (write them to a new file in
    `files`, fsync) and /bench.Raw/Read (send N bytes), print the port."""
    payload = os.urandom(MESSAGE)
    written = iter(range(1 << 30))

    def put_durable(requests: Iterator[bytes], context: Any) -> bytes:
        total = 0
        with open(files / f"raw-{next(written)}.bin", "wb", buffering=0) as fh:
            for r in requests:
                total += fh.write(r)
            os.fsync(fh.fileno())
        return total.to_bytes(8, "big")

    def put(requests: Iterator[bytes], context: Any) -> bytes:
        return sum(len(r) for r in requests).to_bytes(8, "big")

    def read(request: bytes, context: Any) -> Iterator[bytes]:
        left = int.from_bytes(request, "big")
        while left > 0:
            piece = payload if left >= MESSAGE else payload[:left]
            left -= len(piece)
            yield piece

    from hoard.api.grpc import load

    messages, _ = load("tvix/castore/v1/rpc_blobstore.proto")
    chunk = messages.BlobChunk(data=payload)

    def put_pb(requests: Iterator[Any], context: Any) -> bytes:
        return sum(len(r.data) for r in requests).to_bytes(8, "big")

    def read_pb(request: bytes, context: Any) -> Iterator[Any]:
        left = int.from_bytes(request, "big")
        while left > 0:
            piece = chunk if left >= MESSAGE else messages.BlobChunk(data=payload[:left])
            left -= len(piece.data)
            yield piece

    handlers = {
        "Put": grpc.stream_unary_rpc_method_handler(put, request_deserializer=_identity, response_serializer=_identity),
        "PutDurable": grpc.stream_unary_rpc_method_handler(put_durable, request_deserializer=_identity,
                                                           response_serializer=_identity),
        "Read": grpc.unary_stream_rpc_method_handler(read, request_deserializer=_identity,
                                                     response_serializer=_identity),
        "PutPb": grpc.stream_unary_rpc_method_handler(put_pb, request_deserializer=messages.BlobChunk.FromString,
                                                      response_serializer=_identity),
        "ReadPb": grpc.unary_stream_rpc_method_handler(read_pb, request_deserializer=_identity,
                                                       response_serializer=messages.BlobChunk.SerializeToString),
    }
    server = grpc.server(ThreadPoolExecutor(max_workers=4), options=CHANNEL_OPTIONS)
    server.add_generic_rpc_handlers([grpc.method_handlers_generic_handler("bench.Raw", handlers)])
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    print(json.dumps({"grpcAddr": f"127.0.0.1:{port}"}), flush=True)
    signal.sigwait({signal.SIGTERM, signal.SIGINT})
    server.stop(grace=1).wait()


# -- child processes ---------------------------------------------------------------------------
class Child:
    """A server process that prints one JSON line with its `grpcAddr` when ready."""

    def __init__(self, args: list[str], stderr: Path) -> None:
        self._err = open(stderr, "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=self._err,
                                     env={**os.environ, "PYTHONUNBUFFERED": "1"})
        self.info = json.loads(self._line(120.0))
        self.ps = psutil.Process(self.proc.pid)

    def _line(self, timeout: float) -> str:
        assert self.proc.stdout is not None
        buf, deadline = b"", time.monotonic() + timeout
        while b"\n" not in buf:
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise RuntimeError(f"server did not start: {self.proc.args}")
            if select.select([self.proc.stdout], [], [], 1.0)[0]:
                buf += os.read(self.proc.stdout.fileno(), 65536)
        return buf.split(b"\n", 1)[0].decode()

    def cpu(self) -> float:
        times = self.ps.cpu_times()
        return times.user + times.system

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(60)
        self._err.close()


# -- measuring ---------------------------------------------------------------------------------
def file_pieces(path: Path) -> Iterator[bytes]:
    with open(path, "rb", buffering=0) as fh:
        while piece := fh.read(MESSAGE):
            yield piece


def measure(server: Child, size: int, run: Callable[[], int]) -> dict[str, float]:
    cpu0, scpu0, t0 = time.process_time(), server.cpu(), time.perf_counter()
    moved = run()
    seconds = time.perf_counter() - t0
    if moved != size:
        raise RuntimeError(f"moved {moved} bytes, expected {size}")
    return {"mb_s": round(size / seconds / 1e6, 1), "seconds": round(seconds, 3),
            "client_cpu_s": round(time.process_time() - cpu0, 3), "server_cpu_s": round(server.cpu() - scpu0, 3)}


def best(runs: list[dict[str, float]]) -> dict[str, float]:
    return max(runs, key=lambda r: r["mb_s"])


class RawClient:
    """Put and Read against the raw server: bytes messages, nothing stored."""

    def __init__(self, server: Child) -> None:
        self.server = server
        self.channel = grpc.insecure_channel(server.info["grpcAddr"], options=CHANNEL_OPTIONS)
        self._put = self.channel.stream_unary("/bench.Raw/Put", request_serializer=_identity,
                                              response_deserializer=_identity)
        self._read = self.channel.unary_stream("/bench.Raw/Read", request_serializer=_identity,
                                               response_deserializer=_identity)

    def put(self, data: Path, size: int) -> int:
        return int.from_bytes(self._put(file_pieces(data)), "big")

    def read(self, size: int) -> int:
        return sum(len(m) for m in self._read(size.to_bytes(8, "big")))


class RawProtobufClient(RawClient):
    """The same, with castore's BlobChunk messages: what the protocol costs, nothing stored."""

    def __init__(self, server: Child) -> None:
        from hoard.api.grpc import load

        super().__init__(server)
        self.messages, _ = load("tvix/castore/v1/rpc_blobstore.proto")
        self._put = self.channel.stream_unary("/bench.Raw/PutPb", request_serializer=_serialize,
                                              response_deserializer=_identity)
        self._read = self.channel.unary_stream("/bench.Raw/ReadPb", request_serializer=_identity,
                                               response_deserializer=self.messages.BlobChunk.FromString)

    def put(self, data: Path, size: int) -> int:
        chunk = self.messages.BlobChunk
        return int.from_bytes(self._put(chunk(data=p) for p in file_pieces(data)), "big")

    def read(self, size: int) -> int:
        return sum(len(m.data) for m in self._read(size.to_bytes(8, "big")))


class RawDurableClient(RawClient):
    """Put only, to the raw server writing each message to a file and fsyncing it."""

    def __init__(self, server: Child) -> None:
        super().__init__(server)
        self._put = self.channel.stream_unary("/bench.Raw/PutDurable", request_serializer=_identity,
                                              response_deserializer=_identity)


def _serialize(message: Any) -> bytes:
    return message.SerializeToString()


class HoardClient:
    """castore Put and Read against the node, with hoard's stubs of the unchanged contract."""

    def __init__(self, server: Child) -> None:
        from hoard.api.grpc import load

        self.server = server
        self.messages, services = load("tvix/castore/v1/rpc_blobstore.proto")
        self.channel = grpc.insecure_channel(server.info["grpcAddr"], options=CHANNEL_OPTIONS)
        self.blobs = services.BlobServiceStub(self.channel)
        self.digest = b""

    def put(self, data: Path, size: int) -> int:
        self.digest = self.blobs.Put(self.messages.BlobChunk(data=p) for p in file_pieces(data)).digest
        return size

    def read(self, size: int) -> int:
        return sum(len(m.data) for m in self.blobs.Read(self.messages.ReadBlobRequest(digest=self.digest)))

    def chunks(self) -> int:
        return len(self.blobs.Stat(self.messages.StatBlobRequest(digest=self.digest, send_chunks=True)).chunks)


def write_random(path: Path, size: int) -> None:
    with open(path, "wb") as fh:
        fh.writelines(os.urandom(min(8 << 20, size - start)) for start in range(0, size, 8 << 20))


def run(root: Path, size: int, repeat: int) -> dict[str, dict[str, Any]]:
    """Interleave raw and hoard runs (so both see the same machine load); each run puts new
    random bytes, so hoard never deduplicates a repeat."""
    (root / "config.json").write_text(json.dumps({"grpc-port": 0, "api-port": 0,
                                                   "listen-addrs": ["/ip4/127.0.0.1/tcp/0"]}))
    (root / "raw-files").mkdir()
    raw_server = Child([sys.executable, __file__, "--raw-server", str(root / "raw-files")], root / "raw.stderr")
    node = Child([sys.executable, "-m", "hoard.cli.main", "--json", "--data-dir", str(root / "node"),
                  "--config", str(root / "config.json"), "node", "start"], root / "node.stderr")
    runs: dict[str, dict[str, list[dict[str, float]]]] = {name: {"put": [], "read": []}
                                                          for name in ("raw", "raw_protobuf", "raw_durable", "hoard")}
    try:
        hoard = HoardClient(node)
        clients = (("raw", RawClient(raw_server)), ("raw_protobuf", RawProtobufClient(raw_server)),
                   ("raw_durable", RawDurableClient(raw_server)), ("hoard", hoard))
        data = root / "blob.bin"
        for _ in range(repeat):
            write_random(data, size)
            for name, client in clients:
                runs[name]["put"].append(measure(client.server, size, lambda c=client: c.put(data, size)))
            for name, client in clients:
                if name != "raw_durable":
                    runs[name]["read"].append(measure(client.server, size, lambda c=client: c.read(size)))
        chunks = hoard.chunks()
    finally:
        raw_server.stop()
        node.stop()
    results: dict[str, dict[str, Any]] = {name: {op: best(r) for op, r in ops.items() if r}
                                          for name, ops in runs.items()}
    results["hoard"]["chunks"] = chunks
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size-mib", type=int, default=1024, help="blob size in MiB (default 1024)")
    parser.add_argument("--repeat", type=int, default=1, help="runs per figure; the best counts")
    parser.add_argument("--out", type=Path, help="also write the JSON here")
    parser.add_argument("--raw-server", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.raw_server:
        raw_server(args.raw_server)
        return
    size = args.size_mib << 20
    with tempfile.TemporaryDirectory(prefix="hoard-bench-") as tmp:
        results = run(Path(tmp), size, args.repeat)
    raw_result, hoard_result = results["raw"], results["hoard"]
    ratio = {op: round(hoard_result[op]["mb_s"] / raw_result[op]["mb_s"], 3) for op in ("put", "read")}
    report = {"bench": "grpc_services", "size_bytes": size, "message_bytes": MESSAGE, "repeat": args.repeat,
              "cpus": os.cpu_count(), "load_avg_1m": round(os.getloadavg()[0], 2), "raw_grpc": raw_result,
              "raw_grpc_protobuf": results["raw_protobuf"], "hoard_castore": hoard_result, "ratio": ratio,
              "ratio_to_protobuf": {op: round(hoard_result[op]["mb_s"] / results["raw_protobuf"][op]["mb_s"], 3)
                                    for op in ("put", "read")},
              "raw_grpc_durable": results["raw_durable"],
              "put_ratio_to_durable": round(hoard_result["put"]["mb_s"] / results["raw_durable"]["put"]["mb_s"], 3),
              "goal": GOALS, "meets_goal": {op: ratio[op] >= goal for op, goal in GOALS.items()}}
    text = json.dumps(report, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
