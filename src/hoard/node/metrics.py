"""`NodeCounters`: what a node counts as it happens (uploads, downloads, fetches).

Components call it at the few places where such an event ends (`context.counters.upload(...)`,
`.download(...)`, `.fetch(...)`, `.fetch_failed(...)`); it adds to plain counters, which
`hoard.node.observability` reads at scrape time, and logs the event once (INFO for uploads
and fetches, with their rate; DEBUG for downloads). Everything else the metrics report is read
from the node's typed surface when scraped, not counted.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field

from hoard.ids.cid import CID

log = logging.getLogger("hoard.node.metrics")


@dataclass
class Totals:
    """One kind of event: how many, how many bytes, how many seconds in all."""

    count: int = 0
    bytes: int = 0
    seconds: float = 0.0

    def add(self, nbytes: int, seconds: float) -> None:
        self.count += 1
        self.bytes += nbytes
        self.seconds += seconds


def _rate(nbytes: int, seconds: float) -> str:
    return f"{nbytes / seconds / (1 << 20):.1f} MiB/s" if seconds > 0 else "-"


@dataclass
class NodeCounters:
    """The node's event counters (read by `observability.samples`)."""

    uploads: Totals = field(default_factory=Totals)
    downloads: Totals = field(default_factory=Totals)
    fetches: Totals = field(default_factory=Totals)
    fetches_failed: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def upload(self, cid: CID, nbytes: int, seconds: float) -> None:
        with self._lock:
            self.uploads.add(nbytes, seconds)
        log.info("stored upload %s: %d bytes in %.2fs (%s)", cid, nbytes, seconds, _rate(nbytes, seconds))

    def download(self, cid: CID, nbytes: int, seconds: float, local: bool) -> None:
        with self._lock:
            self.downloads.add(nbytes, seconds)
        log.debug("downloaded %s (%s): %d bytes in %.2fs (%s)", cid, "local" if local else "network", nbytes, seconds,
                  _rate(nbytes, seconds))

    def fetch(self, cid: CID, nbytes: int, seconds: float) -> None:
        with self._lock:
            self.fetches.add(nbytes, seconds)
        log.info("fetched %s: %d bytes in %.2fs (%s)", cid, nbytes, seconds, _rate(nbytes, seconds))

    def fetch_failed(self, cid: CID, error: BaseException | str) -> None:
        with self._lock:
            self.fetches_failed += 1
        log.info("fetch of %s failed: %s", cid, error)


__all__ = ["NodeCounters", "Totals"]
