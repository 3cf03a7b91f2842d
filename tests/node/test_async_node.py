"""`AsyncNode` under both event loops it promises: asyncio and trio (issue 11), and the
generated facade kept in step with `Node`."""

from __future__ import annotations

import asyncio
import subprocess
import sys

import trio

import hoard
from hoard.errors import InvalidCidError


async def _round_trip(node: hoard.AsyncNode, payload: bytes) -> tuple[str, bytes, int]:
    session = await node.upload_open("a.bin", "application/octet-stream")
    await node.upload_chunk(session, payload)
    cid = await node.upload_finalize(session)
    pieces: list[bytes] = []
    size = await node.download_stream(cid, on_progress=pieces.append)
    return cid, b"".join(pieces), size


def test_async_node_works_under_asyncio(tmp_path):
    async def main() -> None:
        async with hoard.AsyncNode({"data-dir": str(tmp_path / "d")}) as node:
            cid, data, size = await asyncio.wait_for(_round_trip(node, b"asyncio" * 1000), 60)
            assert (data, size) == (b"asyncio" * 1000, 7000)
            assert await node.exists(cid)
            blob = await node.blobs.put(b"blob bytes")
            assert b"".join([piece async for piece in await node.blobs.read(blob.digest)]) == b"blob bytes"
        assert node.closed

    asyncio.run(main())


def test_async_node_works_under_trio(tmp_path):
    async def main() -> None:
        with trio.fail_after(60):
            async with hoard.AsyncNode({"data-dir": str(tmp_path / "d")}) as node:
                cid, data, size = await _round_trip(node, b"trio" * 1000)
                assert (data, size) == (b"trio" * 1000, 4000)
                assert await node.exists(cid)
                blob = await node.blobs.put(b"blob bytes")
                assert b"".join([piece async for piece in await node.blobs.read(blob.digest)]) == b"blob bytes"
            assert node.closed

    trio.run(main)


def test_async_node_errors_arrive_as_hoard_errors_under_trio(tmp_path):
    async def main() -> None:
        with trio.fail_after(60):
            async with hoard.AsyncNode({"data-dir": str(tmp_path / "d")}) as node:
                try:
                    await node.download_manifest("not-a-cid")
                except InvalidCidError as exc:
                    assert "Failed to download manifest" in str(exc)
                else:
                    raise AssertionError("a bad CID was accepted")

    trio.run(main)


def test_generated_async_facade_is_up_to_date():
    result = subprocess.run([sys.executable, "-m", "hoard.node.codegen", "--check"], capture_output=True, text=True, check=False,
                            timeout=60)
    assert result.returncode == 0, result.stderr
