"""A raw py-libp2p stream benchmark: the ceiling `/hoard/blocks/1` is compared against.

`/hoard/bench/source/1`: the client sends the number of bytes it wants (8 bytes, big-endian);
the server writes that many bytes in 1 MiB writes and closes; the client reads and discards
them. Data flows provider → fetcher, as in a block fetch, over the same TCP + Noise + yamux
connection, so `fetch MB/s ÷ raw MB/s` is the protocol's efficiency.

The handler is only registered when a node enables it (`Network(..., bench=True)`): it makes
the node send as much data as asked.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass

import trio

from hoard.errors import PeerError
from hoard.ids.peer import PeerId

__all__ = ["SOURCE_PROTOCOL", "RawStreamResult", "measure_raw_stream", "serve_source"]

SOURCE_PROTOCOL = "/hoard/bench/source/1"
CHUNK = 1 << 20
MAX_REQUEST = 64 << 30
_PAYLOAD = os.urandom(CHUNK)


@dataclass(frozen=True)
class RawStreamResult:
    """Bytes moved over one raw stream, and how long it took (from request to last byte)."""

    bytes: int
    seconds: float

    @property
    def mb_per_s(self) -> float:
        return self.bytes / self.seconds / 1e6 if self.seconds else 0.0

    def to_dict(self) -> dict[str, float]:
        return {"bytes": self.bytes, "seconds": round(self.seconds, 4), "MBps": round(self.mb_per_s, 1)}


async def serve_source(stream: object) -> None:
    """Stream handler for `SOURCE_PROTOCOL`."""
    try:
        request = b""
        while len(request) < 8:
            chunk = await stream.read(8 - len(request))  # type: ignore[attr-defined]
            if not chunk:
                raise EOFError
            request += chunk
        remaining = min(int.from_bytes(request, "big"), MAX_REQUEST)
        view = memoryview(_PAYLOAD)
        while remaining > 0:
            n = min(remaining, CHUNK)
            await stream.write(_PAYLOAD if n == CHUNK else bytes(view[:n]))  # type: ignore[attr-defined]
            remaining -= n
        await stream.close()  # type: ignore[attr-defined]
    except BaseException as exc:
        with trio.CancelScope(shield=True):
            try:
                await stream.reset()  # type: ignore[attr-defined]
            except Exception:  # noqa: BLE001, S110 - already failing; the stream may be gone
                pass
        if not isinstance(exc, Exception):
            raise


async def measure_raw_stream(host: object, peer_id: PeerId, nbytes: int) -> RawStreamResult:
    """Ask `peer_id` (serving `SOURCE_PROTOCOL`) for `nbytes` and time receiving them."""
    stream = await host.open_stream(peer_id, SOURCE_PROTOCOL)  # type: ignore[attr-defined]
    try:
        started = time.perf_counter()
        await stream.write(nbytes.to_bytes(8, "big"))
        received = 0
        while received < nbytes:
            try:
                chunk = await stream.read(CHUNK)
            except EOFError:
                break
            if not chunk:
                break
            received += len(chunk)
        seconds = time.perf_counter() - started
    except Exception as exc:
        raise PeerError(f"raw stream from {peer_id} failed: {exc!r}", peer_id=str(peer_id)) from exc
    finally:
        with trio.CancelScope(shield=True):
            try:
                await stream.close()
            except Exception:  # noqa: BLE001, S110 - the peer may have gone; the count below tells
                pass
    if received < nbytes:
        raise PeerError(f"raw stream from {peer_id} ended after {received} of {nbytes} bytes", peer_id=str(peer_id))
    return RawStreamResult(received, seconds)
