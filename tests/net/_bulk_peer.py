"""A hoard network peer (with the bulk path unless --no-bulk), in its own process, for tests and benches.

`python _bulk_peer.py COUNT SIZE SEED [--no-bulk]` serves COUNT deterministic blocks of SIZE bytes
(`_net_kit.make_blocks`) over `/hoard/blocks/1` and, unless `--no-bulk`, the bulk path; prints
one JSON line `{"spr", "peerId"}` when it listens, and runs until its stdin closes.
"""

from __future__ import annotations

import json
import sys

import trio
from _net_kit import LOOPBACK, make_blocks, store_with

from hoard.ids.peer import Identity
from hoard.net import Network
from hoard.net.bulk import BulkServer


async def main(count: int, size: int, seed: int, bulk: bool) -> None:
    store = store_with(make_blocks(count, size, seed))
    identity = Identity.generate()
    network = Network(identity, LOOPBACK, block_source=store)
    server = BulkServer(network.host, identity, store) if bulk else None
    async with network.run():
        if server is not None:
            async with server.run():
                print(json.dumps({"spr": network.spr(), "peerId": str(network.peer_id)}), flush=True)
                await trio.to_thread.run_sync(sys.stdin.buffer.read, abandon_on_cancel=True)
        else:
            print(json.dumps({"spr": network.spr(), "peerId": str(network.peer_id)}), flush=True)
            await trio.to_thread.run_sync(sys.stdin.buffer.read, abandon_on_cancel=True)


if __name__ == "__main__":
    trio.run(main, *map(int, sys.argv[1:4]), "--no-bulk" not in sys.argv)
