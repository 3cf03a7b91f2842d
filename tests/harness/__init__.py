"""The tests' one harness for real hoard processes, all on 127.0.0.1.

- `NodeProcess` (harness/node.py): a `hoard.Node` in a child process (harness/node_main.py),
  driven by JSON lines: `node.call("upload_init", path)`, `node.call("net.peers")`, plus a few
  test ops (data transfer, logs, counters). `spawner(tmp_path)` starts several; the `spawn`
  fixture (tests/conftest.py) closes them after the test.
- `Daemon` (harness/daemon.py): a real `hoard node start` daemon, REST and gRPC on free ports,
  started and stopped by the test (`with Daemon(root) as d:`), with `cli(...)` to run `hoard`
  against it.

Everything a harness writes lives under the directory the test gives it (its `tmp_path`).
"""

from harness.daemon import Daemon
from harness.node import NodeProcess, spawner

__all__ = ["Daemon", "NodeProcess", "spawner"]
