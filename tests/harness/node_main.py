"""A real hoard node in its own process, driven by JSON lines on stdin (harness/node.py starts it).

`python node_main.py CONFIG_JSON [--bench]`. Each request `{"op": name, "args": [...], "kwargs":
{...}}` calls that `hoard.Node` method ("net.peers": a method of a namespace) and answers
`{"ok": result}` (results as their Logos JSON) or `{"error": {"type", "message", "code"}}`.
Logging goes to stderr. Test ops, all through the node's public surface:

  served()                         → {"blocks", "bytes"} this node served (/hoard/blocks/1 and the bulk path)
  exchange_stats()                 → the block exchanges' counters (bitswap, /hoard/blocks/1, bulk)
  raw_stream(peer_id, nbytes)      → {"bytes", "seconds"} of a raw stream (`--bench` nodes serve it)
  rusage()                         → {"cpu_s", "maxrss_mib"} of this process
  corrupt(cid)                     → overwrite every data block of a dataset with other bytes
  download_slowly(cid, path)       → download_stream(local=False) with a slow consumer; a
                                     {"progress": n} line comes first, at the first chunk
  dt(name, *args)                  → a data-transfer operation of tests/transfer_node/_dt_ops.py

Log handles stay in this process, named by the log's printable name plus mode:

  log_create()                     → name (the handle is kept, mode "ra")
  log_open(name, mode, key_path)   → name
  key_path(name)                   → the writer key file of a log this node created
  append(name, mode, [data...])    → [recno...] (append_async, then wait: durable)
  read(name, mode, recno)          → {"recno", "data"}
  subscribe(name, mode, start, numrecs, multiread=False) → request id; events are kept
  events(rid, n, timeout)          → the first n events of the request (waits up to timeout s)
  providers(name)                  → the peers the DHT names as hosting the log

Event records carry their data as text.
"""

import json
import logging
import os
import sys
import threading

import hoard
from hoard.api import shapes


class Requests:
    """The events of each log request (subscribe/multiread), kept for `events`."""

    def __init__(self):
        self.events = {}
        self.cond = threading.Condition()
        self.next = 1

    def new(self):
        with self.cond:
            rid, self.next = self.next, self.next + 1
            self.events[rid] = []
            return rid

    def callback(self, rid):
        def on_event(event):
            item = {"type": event.type, "stat": event.stat}
            if event.datum is not None:
                item.update(recno=event.datum.recno, data=event.datum.data.decode("utf-8", "replace"))
            if event.error is not None:
                item["error"] = event.error.message
            with self.cond:
                self.events[rid].append(item)
                self.cond.notify_all()
        return on_event

    def wait(self, rid, n, timeout):
        with self.cond:
            self.cond.wait_for(lambda: len(self.events[rid]) >= n, timeout)
            return self.events[rid][:n] if n else list(self.events[rid])


def main() -> None:
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s")
    config = json.loads(sys.argv[1])
    node = hoard.Node(config)
    if "--bench" in sys.argv:  # serve the raw-stream source protocol (benchmarks only)
        from hoard.net.rawbench import SOURCE_PROTOCOL, serve_source

        node.components.net.serve({SOURCE_PROTOCOL: serve_source})
    node.start()
    worker = node.components.context.worker  # runs a coroutine on the node's own loop
    out_lock = threading.Lock()
    handles = {}
    requests = Requests()

    def reply(obj) -> None:
        with out_lock:
            sys.stdout.write(json.dumps(obj) + "\n")
            sys.stdout.flush()

    reply({"ready": {"peerId": str(node.peer_id()), "addrs": list(node.debug().addrs), "spr": node.spr()}})
    for line in sys.stdin:
        request = json.loads(line)
        op, args, kwargs = request["op"], request.get("args", []), request.get("kwargs", {})
        try:
            if op == "quit":
                node.close()
                reply({"ok": None})
                return
            if op == "served":
                result = worker.call(_served, node)
            elif op == "corrupt":
                result = _corrupt(node, args[0])
            elif op == "raw_stream":
                result = worker.call(_raw_stream, node, args[0], args[1])
            elif op == "exchange_stats":
                result = worker.call(_exchange_stats, node)
            elif op == "rusage":
                result = _rusage()
            elif op == "dt":
                result = getattr(_dt_ops(), args[0])(node, *args[1:], **kwargs)
            elif op == "download_slowly":
                result = _download_slowly(node, args[0], args[1], reply)
            elif op == "log_create":
                log = node.logs.create(*args, **kwargs)
                handles[(str(log.name), "ra")] = log
                result = str(log.name)
            elif op == "log_open":
                name, mode = args[0], args[1]
                log = node.logs.open(name, mode, *args[2:])
                handles[(str(log.name), mode)] = log
                result = str(log.name)
            elif op == "key_path":
                result = str(node.components.logs.keydir / f"{args[0]}.pem")
            elif op == "append":
                result = _append(handles[(args[0], args[1])], args[2])
            elif op == "read":
                datum = handles[(args[0], args[1])].read_by_recno(args[2])
                result = {"recno": datum.recno, "data": datum.data.decode()}
            elif op == "subscribe":
                log = handles[(args[0], args[1])]
                rid = requests.new()
                method = log.multiread if kwargs.get("multiread") else log.subscribe_by_recno
                method(args[2], args[3], requests.callback(rid))
                result = rid
            elif op == "events":
                result = requests.wait(args[0], args[1], args[2])
            elif op == "providers":
                result = worker.call(_providers, node, args[0])
            else:
                target = node
                for part in op.split("."):  # "net.peers": an operation of a namespace
                    target = getattr(target, part)
                result = target(*args, **kwargs)
            reply({"ok": shapes.to_json(result)})
        except hoard.HoardError as exc:
            reply({"error": {"type": type(exc).__name__, "message": exc.message, "code": exc.code}})
        except TimeoutError as exc:  # a dt wait that did not see its event
            reply({"error": {"type": "TimeoutError", "message": str(exc)}})


async def _served(node):
    """Blocks served to other hoard nodes: on /hoard/blocks/1 and over the bulk path."""
    stats = node.components.net.exchange_stats()
    bulk = stats.get("bulk", {}).get("served", {})
    return {"blocks": stats["blocks"]["blocks_sent"] + bulk.get("blocks_sent", 0),
            "bytes": stats["blocks"]["bytes_sent"] + bulk.get("bytes_sent", 0)}


async def _exchange_stats(node):
    return node.components.net.exchange_stats()


async def _raw_stream(node, peer_id, nbytes):
    result = await node.components.net.network.measure_raw_stream(peer_id, nbytes)
    return {"bytes": result.bytes, "seconds": result.seconds}


async def _providers(node, name):
    from hoard.logs.remote import provider_key

    found = await node.components.net.network.find_providers(provider_key(hoard.parse_name(name)))
    return [str(p) for p in found]


def _rusage():
    import resource

    usage = resource.getrusage(resource.RUSAGE_SELF)
    return {"cpu_s": usage.ru_utime + usage.ru_stime, "maxrss_mib": usage.ru_maxrss / 1024}


def _append(log, texts):
    """append_async every text, then wait for all of them: the recnos, or the first failure."""
    results = []
    done = threading.Event()
    total = len(texts)

    def on_event(event):
        results.append(event)
        if len(results) == total:
            done.set()

    for data in texts:
        log.append_async(data.encode(), on_event)
    done.wait(60)
    failed = [e for e in results if e.type != hoard.EVENT_CREATED]
    if failed:
        raise failed[0].error
    return sorted(e.datum.recno for e in results)


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
    """Overwrite every data block of a dataset with other bytes of the same size, through the
    block store's own delete and put (which check nothing): what a damaged disk would serve."""
    context = node.components.context
    content, cid = context.content, hoard.CID.parse(cid_text)
    if content.dataset_info(cid).format == "logos":  # padded blocks, listed by the leaf-list parts
        size = content.logos_manifest(cid).block_size
        blocks = [(block, size) for block in dict.fromkeys(content.logos_blocks(cid))]
    else:
        blocks = list(content.iter_blocks(content.manifest(cid)))
    for block, size in blocks:
        content.blobs.delete(block)
        content.blobs.put(block, os.urandom(size))
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
