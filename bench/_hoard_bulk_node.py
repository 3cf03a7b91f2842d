"""A hoard node in its own process with the bulk path switched on (bench harness, JSON lines).

The node's network does not offer the bulk path yet (see docs/network.md, "Bulk path"); this
harness adds it to a started `hoard.Node` from outside, on the node's worker loop: a
`BulkServer` on the node's libp2p host serving the node's block store, and a
`BulkChannelOpener` (falling back to the libp2p stream) as its fetcher's opener. Everything
else is the node as it is: `upload_init/upload_file`, `connect`, `download_stream`.

Protocol: that of tests/node_harness.py (`{"op", "args"}` → `{"ok"}` / `{"error"}`), with the
ops `upload_init`, `upload_file`, `connect`, `download_stream`, `rusage`, `bulk_stats`, `quit`.
"""

from __future__ import annotations

import json
import logging
import resource
import sys
from typing import Any

import trio

import hoard
from hoard.api import shapes
from hoard.net import StreamChannelOpener
from hoard.net.bulk import BulkCertificate, BulkChannelOpener, BulkServer

_bulk: dict[str, Any] = {}


async def _enable_bulk(node: Any) -> None:
    """On the worker loop: serve the bulk path and fetch through it (fallback: the libp2p stream)."""
    network = node.components.net.network
    identity = node.components.context.identity
    server = BulkServer(network.host, identity, node.components.context.store.get)
    cert = await trio.to_thread.run_sync(BulkCertificate.create, identity)
    started = trio.Event()

    async def run() -> None:
        try:
            async with server.run():
                started.set()
                await trio.sleep_forever()
        finally:
            cert.remove()

    node._worker.spawn(run)
    await started.wait()
    opener = BulkChannelOpener(network.host, cert, StreamChannelOpener(network.host))
    network.fetcher.opener = opener
    _bulk.update(server=server, opener=opener)


def main() -> None:
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s")
    node = hoard.Node(json.loads(sys.argv[1]))
    node.start()
    node._worker.call(_enable_bulk, node)

    def reply(obj: Any) -> None:
        sys.stdout.write(json.dumps(obj) + "\n")
        sys.stdout.flush()

    reply({"ready": {"peerId": str(node.peer_id()), "addrs": list(node.debug().addrs), "spr": node.spr()}})
    for line in sys.stdin:
        request = json.loads(line)
        op, args = request["op"], request.get("args", [])
        try:
            if op == "quit":
                node.close()
                reply({"ok": None})
                return
            if op == "rusage":
                usage = resource.getrusage(resource.RUSAGE_SELF)
                result: Any = {"cpu_s": usage.ru_utime + usage.ru_stime, "maxrss_mib": usage.ru_maxrss / 1024}
            elif op == "bulk_stats":
                stats = _bulk["server"].stats
                result = {"opened": _bulk["opener"].opened, "served_connections": stats.connections,
                          "served_bytes": stats.bytes_sent}
            elif op in ("upload_init", "upload_file", "connect", "download_stream"):
                result = shapes.to_json(getattr(node, op)(*args))
            else:
                raise ValueError(f"unknown op {op!r}")
            reply({"ok": result})
        except hoard.HoardError as exc:
            reply({"error": {"type": type(exc).__name__, "message": exc.message}})
        except Exception as exc:  # noqa: BLE001 - reported to the bench
            reply({"error": {"type": type(exc).__name__, "message": str(exc)}})


if __name__ == "__main__":
    main()
