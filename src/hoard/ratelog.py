"""Rate-limited logging of protocol violations, so a hostile peer cannot flood the log.

Each peer protocol reports a violation with `violation(logger, peer, "what %s", arg)`. Per
(logger, peer) at most `hoard.limits.VIOLATION_LOG_BURST` messages are logged per
`VIOLATION_LOG_WINDOW` seconds; the rest are counted, and the next message after the window
says how many were suppressed. Memory is bounded: at most `VIOLATION_LOG_KEYS` peers are
tracked (the least recently seen is forgotten first). Messages are escaped (peer-supplied
text may hold control characters) and cut to a bounded length.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable

from hoard.limits import VIOLATION_LOG_BURST, VIOLATION_LOG_KEYS, VIOLATION_LOG_WINDOW

__all__ = ["RateLog", "violation"]

_MAX_MESSAGE = 500


def _clean(text: str) -> str:
    text = text if len(text) <= _MAX_MESSAGE else text[:_MAX_MESSAGE] + "..."
    return "".join(c if c.isprintable() else f"\\x{ord(c):02x}" if ord(c) < 0x100 else f"\\u{ord(c):04x}"
                   for c in text)


class RateLog:
    """A bounded token window per key; `log()` says whether the message was emitted."""

    def __init__(self, logger: logging.Logger, *, burst: int = VIOLATION_LOG_BURST,
                 window: float = VIOLATION_LOG_WINDOW, max_keys: int = VIOLATION_LOG_KEYS,
                 level: int = logging.WARNING, clock: Callable[[], float] = time.monotonic) -> None:
        self.logger, self.burst, self.window, self.max_keys, self.level = logger, burst, window, max_keys, level
        self._clock = clock
        self._lock = threading.Lock()
        self._keys: OrderedDict[str, list[float]] = OrderedDict()  # key -> [window start, logged, suppressed]

    def __len__(self) -> int:
        """How many keys it keeps a window for (at most `max_keys`)."""
        with self._lock:
            return len(self._keys)

    def log(self, key: str, message: str, *args: object) -> bool:
        now = self._clock()
        with self._lock:
            state = self._keys.get(key)
            if state is None:
                state = [now, 0.0, 0.0]
                self._keys[key] = state
                while len(self._keys) > self.max_keys:
                    self._keys.popitem(last=False)
            else:
                self._keys.move_to_end(key)
            suppressed = 0
            if now - state[0] >= self.window:
                suppressed = int(state[2])
                state[:] = [now, 0.0, 0.0]
            if state[1] >= self.burst:
                state[2] += 1
                return False
            state[1] += 1
        if not self.logger.isEnabledFor(self.level):
            return True
        try:
            text = message % args if args else message
        except (TypeError, ValueError):
            text = f"{message} {args!r}"
        if suppressed:
            text += f" ({suppressed} similar messages suppressed in the last {self.window:.0f} s)"
        self.logger.log(self.level, "%s", _clean(f"{key}: {text}"))
        return True


_LOGS: dict[str, RateLog] = {}
_LOGS_LOCK = threading.Lock()


def violation(logger: logging.Logger, peer: object, message: str, *args: object, level: int = logging.WARNING) -> bool:
    """Log a protocol violation by `peer` (at WARNING, or `level`), rate-limited per peer and logger.

    Also for anything a peer can make the node log once per request (a rejected request at
    INFO, say): the peer cannot flood the log with it.
    """
    key = f"{logger.name}:{level}"
    with _LOGS_LOCK:
        rate = _LOGS.get(key)
        if rate is None:
            rate = _LOGS[key] = RateLog(logger, level=level)
    return rate.log(str(peer), message, *args)
