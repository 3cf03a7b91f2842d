"""Child process for test_logs_durability: appends forever, printing an ACK line per durable record.

Usage: python _logs_durable_child.py STORE_DIR KEY_DIR. Prints `NAME <printable>` once, then
`ACK <recno> <i>` for each acknowledged record whose data is b"rec-<i>" (sync appends on the
main thread, append_async acknowledgements on the callback thread), until it is killed.
"""

import sys
import threading

from hoard.logs import EVENT_CREATED, LogService
from hoard.store import open_blockstore

_out = threading.Lock()


def say(line: str) -> None:
    with _out:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()


def main() -> None:
    store = open_blockstore(sys.argv[1])
    service = LogService(store, sys.argv[2])
    log = service.log_create(name="durable")
    say(f"NAME {log.name}")

    def acked(event) -> None:
        if event.type == EVENT_CREATED:
            say(f"ACK {event.datum.recno} {event.udata}")

    i = 0
    while True:
        i += 1
        if i % 4 == 0:
            say(f"ACK {log.append(b'rec-%d' % i).recno} {i}")
        else:
            log.append_async(b"rec-%d" % i, acked, udata=i)
        if i % 256 == 0:
            log.flush()


if __name__ == "__main__":
    main()
