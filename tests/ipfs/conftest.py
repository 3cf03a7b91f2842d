"""Session-scoped real IPFS peers (kubo, Helia) on 127.0.0.1: see peers.py."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from ipfs.peers import HeliaPeer, KuboPeer, ensure_helia


@pytest.fixture(scope="session")
def kubo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KuboPeer]:
    peer = KuboPeer(tmp_path_factory.mktemp("kubo"))
    try:
        yield peer
    finally:
        peer.close()


@pytest.fixture(scope="session")
def helia_install() -> Path:
    return ensure_helia()


@pytest.fixture(scope="session")
def helia(tmp_path_factory: pytest.TempPathFactory, helia_install: Path) -> Iterator[HeliaPeer]:
    peer = HeliaPeer(tmp_path_factory.mktemp("helia"), helia_install)
    try:
        yield peer
    finally:
        peer.close()
