"""An iroh 0.35 node in its own process, for bench/peers.py (JSON lines on stdin/stdout).

iroh 0.35 (`iroh==0.35.0` on PyPI, the last release with blobs) is driven through its Python
bindings (uniffi, asyncio). Two things are adjusted, both said in the bench's output:

- **The bindings' byte copy.** `_UniffiRustBufferBuilder.write` copies a bytes argument into the
  Rust buffer one byte at a time in Python; it is replaced by one `ctypes.memmove`. (The
  path-based add used here passes paths, not data, so this only matters for small arguments.)
- **Local only.** The node binds 127.0.0.1 (`ipv4_addr`), node discovery is off
  (`NodeDiscoveryConfig.NONE`: no pkarr/DNS publishing, no mDNS). The bindings cannot switch
  off iroh's relay client; run the bench inside a network namespace with only loopback
  (`bench/peers.py` does, with `unshare -n`) so nothing leaves the machine.

Protocol: that of tests/ipfs/peers.py's `PeerProcess` (`{id, op, ...}` → `{id, ok, result|error}`).
Ops: `info` → {nodeId, addrs}; `add` {path} → hash (path-based add, copied into the store);
`export` {hash, dest}; `download` {hash, nodeId, addrs} → {progress_events}; `stop`.
"""

from __future__ import annotations

import asyncio
import ctypes
import json
import sys
from typing import Any

import iroh as _iroh
from iroh import iroh_ffi as _iroh_ffi

iroh: Any = _iroh  # the bindings are untyped
iroh_ffi: Any = _iroh_ffi


def _patch_buffer_write() -> None:
    builder = iroh_ffi._UniffiRustBufferBuilder

    def write(self: Any, value: bytes) -> None:
        with self._reserve(len(value)):
            ctypes.memmove(ctypes.addressof(self.rbuf.data.contents) + self.rbuf.len, value, len(value))

    builder.write = write


class _AddDone:
    def __init__(self) -> None:
        self.hash: Any = None
        self.error: str | None = None
        self.done = asyncio.Event()

    async def progress(self, event: Any) -> None:
        kind = event.type()
        if kind == iroh.AddProgressType.ALL_DONE:
            self.hash = event.as_all_done().hash
            self.done.set()
        elif kind == iroh.AddProgressType.ABORT:
            self.error = str(event.as_abort().error)
            self.done.set()


class _DownloadDone:
    def __init__(self) -> None:
        self.error: str | None = None
        self.done = asyncio.Event()
        self.events = 0

    async def progress(self, event: Any) -> None:
        self.events += 1  # the bindings call back into asyncio for every progress event
        kind = event.type()
        if kind == iroh.DownloadProgressType.ALL_DONE:
            self.done.set()
        elif kind == iroh.DownloadProgressType.ABORT:
            self.error = str(event.as_abort().error)
            self.done.set()


async def main(repo: str) -> None:
    _patch_buffer_write()
    iroh_ffi.uniffi_set_event_loop(asyncio.get_running_loop())
    options = iroh.NodeOptions(gc_interval_millis=0, enable_docs=False, ipv4_addr="127.0.0.1:0",
                               node_discovery=iroh.NodeDiscoveryConfig.NONE)
    node = await iroh.Iroh.persistent_with_options(repo, options)
    blobs = node.blobs()
    loop = asyncio.get_running_loop()

    async def op(req: dict[str, Any]) -> Any:
        name = req["op"]
        if name == "info":
            addr = await node.net().node_addr()
            return {"nodeId": await node.net().node_id(), "addrs": addr.direct_addresses()}
        if name == "add":
            cb = _AddDone()
            await blobs.add_from_path(req["path"], False, iroh.SetTagOption.auto(), iroh.WrapOption.no_wrap(), cb)
            await cb.done.wait()
            if cb.error:
                raise RuntimeError(cb.error)
            return str(cb.hash)
        if name == "export":
            await blobs.export(iroh.Hash.from_string(req["hash"]), req["dest"], iroh.BlobExportFormat.BLOB,
                               iroh.BlobExportMode.COPY)
            return None
        if name == "download":
            addr = iroh.NodeAddr(iroh.PublicKey.from_string(req["nodeId"]), None, req["addrs"])
            opts = iroh.BlobDownloadOptions(iroh.BlobFormat.RAW, [addr], iroh.SetTagOption.auto())
            cb2 = _DownloadDone()
            await blobs.download(iroh.Hash.from_string(req["hash"]), opts, cb2)
            await cb2.done.wait()
            if cb2.error:
                raise RuntimeError(cb2.error)
            return {"progress_events": cb2.events}
        raise ValueError(f"unknown op {name!r}")

    print(json.dumps({"id": 0, "ok": True, "result": "ready"}), flush=True)
    while True:
        line = await loop.run_in_executor(None, sys.stdin.readline)
        if not line:
            break
        req = json.loads(line)
        if req["op"] == "stop":
            print(json.dumps({"id": req.get("id"), "ok": True, "result": None}), flush=True)
            break
        try:
            answer = {"id": req.get("id"), "ok": True, "result": await op(req)}
        except Exception as exc:  # noqa: BLE001 - reported to the bench
            answer = {"id": req.get("id"), "ok": False, "error": f"{type(exc).__name__}: {exc}"}
        print(json.dumps(answer), flush=True)
    await node.node().shutdown()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
