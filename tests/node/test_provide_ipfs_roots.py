"""A node announces its IPFS roots in the DHT as it does its datasets: when it starts (and every
`reprovide_interval`), not only when a root is added."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

import hoard

pytestmark = pytest.mark.timeout(120)
LOCAL = {"listen-addrs": ["/ip4/127.0.0.1/tcp/0"], "api-port": 0, "grpc-port": 0, "bulk": False}


def test_a_restarted_node_provides_its_ipfs_roots(tmp_path: Path) -> None:
    source = tmp_path / "f.bin"
    source.write_bytes(os.urandom(300_000))
    with hoard.Node({"data-dir": str(tmp_path / "a"), **LOCAL}) as a:
        root = a.ipfs.add(str(source)).cid
    with hoard.Node({"data-dir": str(tmp_path / "a"), **LOCAL}) as a, \
            hoard.Node({"data-dir": str(tmp_path / "b"), **LOCAL}) as b:
        a.start()
        b.start()
        b.connect(str(a.peer_id()), list(a.debug().addrs))
        network = b.components.net.network
        assert network is not None
        deadline = time.monotonic() + 30
        while True:  # the restarted node's announcement runs in the background: poll with a deadline
            found = b._call(network.find_providers, root)
            if a.peer_id() in found or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert a.peer_id() in found
