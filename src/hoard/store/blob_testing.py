"""The BlobStore conformance suite. Every blob backend's tests subclass `BlobStoreConformance`.

    class TestMyBlobs(BlobStoreConformance):
        def make_store(self, path): return MyBlobStore(...)

Importable without pytest: the suite uses xunit-style `setup_method`/`teardown_method` (pytest
runs them; so can any runner) and a fresh temporary directory per test. Persistent backends
subclass `PersistentBlobStoreConformance`, which adds the reopen test.
`make_blob_state_machine(factory)` builds a Hypothesis rule-based test that drives a backend
and a dict model with the same random operations; it imports Hypothesis when called.
"""

from __future__ import annotations

import hashlib
import shutil
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hoard.ids.cid import CID, DAG_CBOR, RAW
from hoard.store.blobs import BlobStore

__all__ = ["BlobStoreConformance", "PersistentBlobStoreConformance", "block", "make_blob_state_machine"]


def block(data: bytes, codec: int = RAW) -> tuple[CID, bytes]:
    """A (BLAKE3 CID, bytes) pair."""
    return CID.of(data, codec), data


class BlobStoreConformance:
    """Behaviours every BlobStore must have. Subclasses implement `make_store`; persistent
    backends subclass `PersistentBlobStoreConformance` instead."""

    store: BlobStore
    tmp: Path

    def make_store(self, path: Path) -> BlobStore:
        """A new, empty store keeping any files under `path`."""
        raise NotImplementedError

    def setup_method(self, method: Any = None) -> None:
        self.tmp = Path(tempfile.mkdtemp(prefix="hoard-blobs-"))
        self.store = self.make_store(self.tmp)

    def teardown_method(self, method: Any = None) -> None:
        try:
            self.store.close()
        finally:
            shutil.rmtree(self.tmp, ignore_errors=True)

    # -- single blocks -------------------------------------------------------------------
    def test_missing_block_is_none(self) -> None:
        cid, _ = block(b"absent")
        assert self.store.get(cid) is None
        assert not self.store.has(cid)
        assert self.store.size_of(cid) is None
        assert self.store.delete(cid) is False

    def test_put_then_get_returns_same_bytes(self) -> None:
        cid, data = block(b"hello world")
        self.store.put(cid, data)
        assert self.store.get(cid) == data
        assert self.store.has(cid)
        assert self.store.size_of(cid) == len(data)

    def test_put_accepts_memoryview(self) -> None:
        cid, data = block(b"viewed bytes")
        self.store.put(cid, memoryview(data))
        assert self.store.get(cid) == data

    def test_get_returns_bytes(self) -> None:
        cid, data = block(b"typed")
        self.store.put(cid, data)
        assert type(self.store.get(cid)) is bytes

    def test_put_twice_stores_once(self) -> None:
        cid, data = block(b"x" * 100)
        self.store.put(cid, data)
        self.store.put(cid, data)
        assert list(self.store.iter_cids()) == [cid]
        assert (self.store.stats().blocks, self.store.stats().bytes) == (1, 100)

    def test_delete_removes_and_reports(self) -> None:
        cid, data = block(b"bye")
        self.store.put(cid, data)
        assert self.store.delete(cid) is True
        assert self.store.delete(cid) is False
        assert self.store.get(cid) is None
        assert (self.store.stats().blocks, self.store.stats().bytes) == (0, 0)

    def test_empty_block_is_storable(self) -> None:
        cid, data = block(b"")
        self.store.put(cid, data)
        assert self.store.get(cid) == b"" and self.store.has(cid) and self.store.size_of(cid) == 0

    def test_largest_block_round_trips(self) -> None:
        data = bytes(range(256)) * (4 << 12)  # 4 MiB, the largest block hoard makes
        cid, _ = block(data)
        self.store.put(cid, data)
        assert self.store.get(cid) == data

    def test_codecs_and_hashes_are_distinct_keys(self) -> None:
        raw, data = block(b"same bytes", RAW)
        dag, _ = block(b"same bytes", DAG_CBOR)
        sha = CID.sha256(data)
        v0 = CID.v0(hashlib.sha256(data).digest())
        self.store.put(raw, data)
        assert not self.store.has(dag) and not self.store.has(sha) and not self.store.has(v0)
        self.store.put(v0, data)
        assert self.store.get(v0) == data
        assert set(self.store.iter_cids()) == {raw, v0}

    # -- batches -------------------------------------------------------------------------
    def test_batched_forms_keep_order(self) -> None:
        items = [block(bytes([i]) * (i + 1)) for i in range(40)]
        absent, _ = block(b"not stored")
        self.store.put_many(items)
        cids = [c for c, _ in items]
        assert self.store.get_many([*cids, absent]) == [d for _, d in items] + [None]
        assert self.store.has_many([absent, *cids]) == [False] + [True] * len(cids)
        assert sorted(self.store.iter_cids()) == sorted(cids)

    def test_batched_forms_accept_empty_and_repeats(self) -> None:
        cid, data = block(b"again")
        self.store.put_many([])
        assert self.store.get_many([]) == [] and self.store.has_many([]) == []
        self.store.put_many([(cid, data), (cid, data)])
        assert self.store.get_many([cid, cid]) == [data, data]
        self.store.delete_many([])

    def test_delete_many_removes_only_those_named(self) -> None:
        items = [block(b"keep %d" % i) for i in range(5)] + [block(b"drop %d" % i) for i in range(5)]
        self.store.put_many(items)
        absent, _ = block(b"never stored")
        self.store.delete_many([c for c, _ in items[5:]] + [absent])
        assert sorted(self.store.iter_cids()) == sorted(c for c, _ in items[:5])

    def test_stats_count_blocks_and_bytes(self) -> None:
        self.store.put_many([block(b"1" * 10), block(b"2" * 20)])
        assert (self.store.stats().blocks, self.store.stats().bytes) == (2, 30)

    def test_concurrent_readers_and_writer(self) -> None:
        items = [block(i.to_bytes(4, "big") * 256) for i in range(120)]
        errors: list[BaseException] = []

        def write() -> None:
            try:
                for i in range(0, len(items), 10):
                    self.store.put_many(items[i:i + 10])
            except BaseException as exc:  # noqa: BLE001 - reported below
                errors.append(exc)

        def read() -> None:
            try:
                for _ in range(2):
                    for cid, data in items:
                        got = self.store.get(cid)
                        assert got is None or got == data
            except BaseException as exc:  # noqa: BLE001 - reported below
                errors.append(exc)

        threads = [threading.Thread(target=write)] + [threading.Thread(target=read) for _ in range(3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=120)
        assert not any(t.is_alive() for t in threads)
        assert not errors, errors
        assert self.store.stats().blocks == len(items)

    # -- holders ------------------------------------------------------------------------
    def test_confirm_reports_missing_held_blocks(self) -> None:
        there, data = block(b"there")
        gone, _ = block(b"gone")
        self.store.hold([there, gone])
        self.store.put(there, data)
        assert self.store.confirm([there, gone]) == [gone]

    def test_held_blocks_are_listed_as_held(self) -> None:
        cid, data = block(b"mine")
        self.store.hold([cid])
        self.store.put(cid, data)
        assert list(self.store.held()) == [cid]

    def test_release_by_the_only_holder_deletes(self) -> None:
        cid, data = block(b"released")
        absent, _ = block(b"released but never stored")
        self.store.hold([cid])
        self.store.put(cid, data)
        released = self.store.release([cid, absent])
        assert cid in released and not self.store.has(cid)

    # -- lifecycle -------------------------------------------------------------------------
    def test_close_is_idempotent(self) -> None:
        other = self.make_store(self.tmp / "second")
        other.close()
        other.close()



class PersistentBlobStoreConformance(BlobStoreConformance):
    """The suite plus persistence, for backends whose data outlives the store object."""

    def reopen_store(self, store: BlobStore, path: Path) -> BlobStore:
        """Close `store` and open the same data again."""
        raise NotImplementedError

    def test_data_survives_reopen(self) -> None:
        cid, data = block(b"persist me")
        self.store.put(cid, data)
        self.store.sync()
        self.store = self.reopen_store(self.store, self.tmp)
        assert self.store.get(cid) == data
        assert self.store.stats().blocks == 1


def make_blob_state_machine(factory: Callable[[], BlobStore]) -> Any:
    """A Hypothesis `RuleBasedStateMachine` class checking a backend against a dict model.
    Use its `.TestCase` as a test. Requires Hypothesis (the `test` extra)."""
    from hypothesis import strategies as st
    from hypothesis.stateful import Bundle, RuleBasedStateMachine, invariant, rule

    payloads = st.binary(min_size=0, max_size=64)

    class BlobMachine(RuleBasedStateMachine):
        cids = Bundle("cids")

        def __init__(self) -> None:
            super().__init__()
            self.store = factory()
            self.blocks: dict[CID, bytes] = {}

        @rule(target=cids, data=payloads)
        def put(self, data: bytes) -> CID:
            cid = CID.of(data)
            self.store.put(cid, data)
            self.blocks[cid] = data
            return cid

        @rule(cid=cids)
        def delete(self, cid: CID) -> None:
            assert self.store.delete(cid) == (cid in self.blocks)
            self.blocks.pop(cid, None)

        @rule(cid=cids)
        def get(self, cid: CID) -> None:
            assert self.store.get(cid) == self.blocks.get(cid)
            assert self.store.has(cid) == (cid in self.blocks)

        @rule(puts=st.lists(payloads, max_size=5), dels=st.lists(cids, max_size=3))
        def batches(self, puts: list[bytes], dels: list[CID]) -> None:
            self.store.delete_many(dels)
            for cid in dels:
                self.blocks.pop(cid, None)
            items = [(CID.of(data), data) for data in puts]
            self.store.put_many(items)
            self.blocks.update(items)
            assert self.store.get_many([c for c, _ in items]) == [d for _, d in items]

        @invariant()
        def agrees_with_model(self) -> None:
            assert sorted(self.store.iter_cids()) == sorted(self.blocks)
            stats = self.store.stats()
            assert (stats.blocks, stats.bytes) == (len(self.blocks), sum(map(len, self.blocks.values())))

        def teardown(self) -> None:
            self.store.close()

    return BlobMachine
