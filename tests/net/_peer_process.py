"""A hoard network peer in its own process, for tests.

`python _peer_process.py COUNT SIZE SEED` serves COUNT deterministic blocks of SIZE bytes
(`_net_kit.make_blocks`), prints one JSON line `{"spr", "peerId"}` when it listens, and runs
until its stdin closes.
"""

from __future__ import annotations

import json
import sys

import trio
from _net_kit import LOOPBACK, make_blocks, store_with

from hoard.ids.peer import Identity
from hoard.net import Network


async def main(count: int, size: int, seed: int) -> None:
    store = store_with(make_blocks(count, size, seed))
    network = Network(Identity.generate(), LOOPBACK, block_source=store)
    async with network.run():
        print(json.dumps({"spr": network.spr(), "peerId": str(network.peer_id)}), flush=True)
        await trio.to_thread.run_sync(sys.stdin.buffer.read, abandon_on_cancel=True)


if __name__ == "__main__":
    trio.run(main, *map(int, sys.argv[1:4]))
