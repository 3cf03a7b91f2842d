"""Fixtures for the log layer: a BlockStore of each backend, a LogService on it, a 20-record log."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from _logs_kit import TickClock

from hoard.logs import Log, LogService
from hoard.store import BlockStore, open_blockstore


@pytest.fixture(params=["memory", "lmdb"])
def blockstore(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[BlockStore]:
    store = open_blockstore("memory://" if request.param == "memory" else str(tmp_path / "store"))
    yield store
    store.close()


@pytest.fixture
def keydir(tmp_path: Path) -> Path:
    return tmp_path / "keys"


@pytest.fixture
def service(blockstore: BlockStore, keydir: Path) -> Iterator[LogService]:
    svc = LogService(blockstore, keydir, clock=TickClock())
    yield svc
    svc.close()


@pytest.fixture
def log20(service: LogService) -> Log:
    """A log holding records 1..20 with data b"r1".."r20"."""
    log = service.log_create()
    for i in range(1, 21):
        log.append(b"r%d" % i)
    return log
