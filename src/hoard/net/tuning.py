"""Process-wide adjustments to py-libp2p 0.8.1, measured on loopback (docs/network.md).

`tune_py_libp2p()` is idempotent and called by every `Host`:

- yamux DATA frames are sized to fit one Noise transport message (65535 - 16 bytes of tag).
  py-libp2p's default, 64 KiB + header, is split into two Noise messages per frame: two
  encryptions and two writes; the fit costs ~30% less sender CPU per byte. Only the sending
  size changes (receivers accept any frame up to the window), so it interoperates.
- yamux window updates follow go-yamux (one once half the window is consumed), not py-libp2p's
  default "release on read" (one encrypted WINDOW_UPDATE frame and syscall per read): ~28%
  less CPU per byte on a raw stream. An explicit `PY_YAMUX_RELEASE_ON_READ` still wins.
  py-libp2p reads its `PY_YAMUX_*` knobs from os.environ on every frame; they are read once.
- py-libp2p's DHT server logs "Failed to read DHT message from stream: " (WARNING, no reason)
  each time a client closes a stream after its request; that routine line is filtered out.
"""

from __future__ import annotations

import logging
import os

__all__ = ["tune_py_libp2p"]

_YAMUX_FRAME = 65535 - 16


class _DropRoutineDhtWarnings(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.levelno == logging.WARNING and record.getMessage().startswith("Failed to read DHT message"))


_tuned = False


def tune_py_libp2p() -> None:
    """Apply hoard's adjustments to py-libp2p in this process. Idempotent."""
    global _tuned
    if _tuned:
        return
    from libp2p.stream_muxer.yamux import yamux

    yamux.MAX_MESSAGE_SIZE = min(yamux.MAX_MESSAGE_SIZE, _YAMUX_FRAME)
    release_on_read = os.environ.get("PY_YAMUX_RELEASE_ON_READ", "0").upper() not in ("0", "FALSE", "NO")
    debug = yamux._perf_yamux_debug_enabled()
    hysteresis_off = yamux._yamux_disable_hysteresis()
    divisor = yamux._yamux_batch_threshold_divisor()
    read_timeout = yamux._yamux_data_read_timeout()
    yamux._yamux_release_on_read = lambda: release_on_read
    yamux._perf_yamux_debug_enabled = lambda: debug
    yamux._yamux_disable_hysteresis = lambda: hysteresis_off
    yamux._yamux_batch_threshold_divisor = lambda: divisor
    yamux._yamux_data_read_timeout = lambda: read_timeout
    logging.getLogger("libp2p.kad_dht.kad_dht").addFilter(_DropRoutineDhtWarnings())
    _tuned = True
