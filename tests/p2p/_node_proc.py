"""A real hoard node in its own process, driven by JSON lines on stdin (test harness).

Each request `{"op": name, "args": [...], "kwargs": {...}}` calls that `hoard.Node` method and
answers `{"ok": result}` or `{"error": {"type", "message"}}`. A few test-only ops inspect or
damage the node's own state (`served`, `corrupt`). Logging goes to stderr.
"""

import json
import logging
import os
import sys
import threading

import hoard
from hoard.api import shapes


def main() -> None:
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s")
    config = json.loads(sys.argv[1])
    node = hoard.Node(config)
    if "--bench" in sys.argv:  # serve the raw-stream source protocol (benchmarks only)
        from hoard.net.rawbench import SOURCE_PROTOCOL, serve_source

        node.components.net.serve({SOURCE_PROTOCOL: serve_source})
    node.start()
    out_lock = threading.Lock()

    def reply(obj) -> None:
        with out_lock:
            sys.stdout.write(json.dumps(obj) + "\n")
            sys.stdout.flush()

    reply({"ready": {"peerId": str(node.peer_id()), "addrs": list(node.debug().addrs), "spr": node.spr()}})
    for line in sys.stdin:
        request = json.loads(line)
        op, args, kwargs = request["op"], request.get("args", []), request.get("kwargs", {})
        try:
            if op == "served":
                result = node._worker.call(_served, node)
            elif op == "corrupt":
                result = _corrupt(node, args[0])
            elif op == "raw_stream":
                result = node._worker.call(_raw_stream, node, args[0], args[1])
            elif op == "rusage":
                result = _rusage()
            elif op == "dt":  # a data-transfer operation from tests/transfer_node/_dt_ops.py
                result = getattr(_dt_ops(), args[0])(node, *args[1:], **kwargs)
            elif op == "download_slowly":
                result = _download_slowly(node, args[0], args[1], reply)
            elif op == "quit":
                node.close()
                reply({"ok": None})
                return
            else:
                target = node
                for part in op.split("."):  # "net.peers": an operation of a namespace
                    target = getattr(target, part)
                result = target(*args, **kwargs)
            reply({"ok": shapes.to_json(result)})  # results as their Logos JSON
        except hoard.HoardError as exc:
            reply({"error": {"type": type(exc).__name__, "message": exc.message}})
        except TimeoutError as exc:  # a dt wait that did not see its event
            reply({"error": {"type": "TimeoutError", "message": str(exc)}})


async def _served(node):
    stats = node.components.net.network.server_stats()
    return {"blocks": stats.blocks_sent, "bytes": stats.bytes_sent}


async def _raw_stream(node, peer_id, nbytes):
    result = await node.components.net.network.measure_raw_stream(peer_id, nbytes)
    return {"bytes": result.bytes, "seconds": result.seconds}


def _rusage():
    import resource

    usage = resource.getrusage(resource.RUSAGE_SELF)
    return {"cpu_s": usage.ru_utime + usage.ru_stime, "maxrss_mib": usage.ru_maxrss / 1024}


def _dt_ops():
    """tests/transfer_node/_dt_ops.py, loaded once (its event recorder lives for the process)."""
    module = sys.modules.get("_dt_ops")
    if module is None:
        import importlib.util
        from pathlib import Path

        path = Path(__file__).resolve().parents[1] / "transfer_node" / "_dt_ops.py"
        spec = importlib.util.spec_from_file_location("_dt_ops", path)
        module = importlib.util.module_from_spec(spec)
        sys.modules["_dt_ops"] = module
        spec.loader.exec_module(module)
    return module


def _corrupt(node, cid_text):
    """Overwrite every data block of a dataset with other bytes, bypassing all checks."""
    content = node.components.context.content
    manifest = content.manifest(hoard.CID.parse(cid_text))
    env = node.components.context.store._env
    with env.begin(write=True, db=node.components.context.store._blocks) as txn:
        for block, size in content.iter_blocks(manifest):
            txn.put(block.binary, os.urandom(size))
    return True


def _download_slowly(node, cid, path, reply):
    """download_stream(local=False), announcing the first chunk and slowing the consumer, so a
    test can act mid-download while most of the dataset is still to come."""
    import time

    first = []

    def on_chunk(chunk):
        if not first:
            first.append(len(chunk))
            reply({"progress": len(chunk)})
        time.sleep(0.01)

    return node.download_stream(cid, path, 0, False, on_progress=on_chunk)


if __name__ == "__main__":
    main()
