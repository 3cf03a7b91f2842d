"""A real hoard node in its own process, driven by JSON lines on stdin (log tests).

Like tests/p2p/_node_proc.py: `{"op", "args", "kwargs"}` calls that `hoard.Node` method and
answers `{"ok": result}` or `{"error": {"type", "message", "code"}}`. Log handles stay in
this process, named by the log's printable name plus mode; ops on them:

  log_create()                     → name (the handle is kept, mode "ra")
  log_open(name, mode, key_path)   → name
  key_path(name)                   → the writer key file of a log this node created
  append(name, mode, [data...])    → [recno...] (append_async, then flush: durable)
  read(name, mode, recno)          → {"recno", "data"}
  subscribe(name, mode, start, numrecs, multiread=False) → request id; events are kept
  events(rid, n, timeout)          → the first n events of the request (waits up to timeout s)
  providers(name)                  → the peers the DHT names as hosting the log

Event records carry their data as text. Logging goes to stderr.
"""

import json
import logging
import sys
import threading

import hoard
from hoard.api import shapes


class Requests:
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
    node = hoard.Node(json.loads(sys.argv[1]))
    node.start()
    handles = {}
    requests = Requests()

    def reply(obj):
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
                log = handles[(args[0], args[1])]
                results = []
                done = threading.Event()

                def on_event(event, total=len(args[2])):
                    results.append(event)
                    if len(results) == total:
                        done.set()

                for data in args[2]:
                    log.append_async(data.encode(), on_event)
                done.wait(60)
                failed = [e for e in results if e.type != hoard.EVENT_CREATED]
                if failed:
                    raise failed[0].error
                result = sorted(e.datum.recno for e in results)
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
                result = node._worker.call(_providers, node, args[0])
            else:
                target = node
                for part in op.split("."):  # "net.peers": an operation of a namespace
                    target = getattr(target, part)
                result = target(*args, **kwargs)
            reply({"ok": shapes.to_json(result)})  # results as their Logos JSON
        except hoard.HoardError as exc:
            reply({"error": {"type": type(exc).__name__, "message": exc.message, "code": exc.code}})


async def _providers(node, name):
    from hoard.logs.remote import provider_key

    found = await node.components.net.network.find_providers(provider_key(hoard.parse_name(name)))
    return [str(p) for p in found]


if __name__ == "__main__":
    main()
