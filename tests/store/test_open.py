"""Backends are opened from a URL with strictly validated schemes."""

import pytest

from hoard.errors import InvalidArgumentError
from hoard.store import LmdbBlockStore, MemoryBlockStore, open_blockstore


def test_memory_url_opens_memory_backend():
    assert isinstance(open_blockstore("memory://"), MemoryBlockStore)


def test_lmdb_url_and_bare_path_open_lmdb(tmp_path):
    for url in (f"lmdb://{tmp_path}/a", str(tmp_path / "b")):
        store = open_blockstore(url)
        assert isinstance(store, LmdbBlockStore)
        store.close()


@pytest.mark.parametrize("url", ["memory://x", "s4://bucket", "lmdb://"])
def test_bad_urls_are_rejected(url):
    with pytest.raises(InvalidArgumentError):
        open_blockstore(url)
