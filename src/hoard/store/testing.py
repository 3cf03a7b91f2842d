"""The BlockStore conformance suite. Every backend's tests subclass `BlockStoreConformance`.

    class TestMyStore(BlockStoreConformance):
        def make_store(self, tmp_path): return MyStore(...)

Each test gets a fresh temporary directory (`self.tmp_path`, removed afterwards) and, when it
uses `self.store`, a store made there. The class uses pytest's xunit-style `setup_method` /
`teardown_method` and `unittest.SkipTest`, so importing this module needs neither pytest nor
Hypothesis: any runner that honours those hooks can run it.

It also provides `make_state_machine(factory)`: a Hypothesis rule-based test that drives a
backend and a dict model with the same random operations and checks they always agree
(it imports Hypothesis, from the `test` extra, when called).
"""

from __future__ import annotations

import shutil
import tempfile
import threading
import unittest
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from hoard.ids.cid import CID, DAG_CBOR, RAW
from hoard.store.base import Batch, BlockStore

if TYPE_CHECKING:
    from hypothesis.stateful import RuleBasedStateMachine


def block(data: bytes, codec: int = RAW) -> tuple[CID, bytes]:
    return CID.of(data, codec), data


class BlockStoreConformance:
    """Behaviours every BlockStore must have."""

    reopenable = False  # set True for persistent backends; then implement reopen_store

    def make_store(self, tmp_path: Path) -> BlockStore:
        raise NotImplementedError

    def reopen_store(self, store: BlockStore, tmp_path: Path) -> BlockStore:
        raise NotImplementedError

    def setup_method(self, method: object = None) -> None:
        self.tmp_path = Path(tempfile.mkdtemp(prefix="hoard-conformance-"))
        self._store: BlockStore | None = None

    def teardown_method(self, method: object = None) -> None:
        try:
            if self._store is not None:
                self._store.close()
        finally:
            shutil.rmtree(self.tmp_path, ignore_errors=True)

    @property
    def store(self) -> BlockStore:
        """The store under test, made in `tmp_path` on first use and closed after the test."""
        if self._store is None:
            self._store = self.make_store(self.tmp_path)
        return self._store

    def test_missing_block_is_none(self) -> None:
        store = self.store
        cid, _ = block(b"absent")
        assert store.get(cid) is None
        assert not store.has(cid)
        assert store.size_of(cid) is None

    def test_put_then_get_returns_same_bytes(self) -> None:
        store = self.store
        cid, data = block(b"hello world")
        store.put(cid, data)
        assert store.get(cid) == data
        assert store.has(cid)
        assert store.size_of(cid) == len(data)

    def test_put_accepts_memoryview(self) -> None:
        store = self.store
        cid, data = block(b"viewed bytes")
        store.put(cid, memoryview(data))
        assert store.get(cid) == data

    def test_put_twice_counts_once(self) -> None:
        store = self.store
        cid, data = block(b"x" * 100)
        store.put(cid, data)
        store.put(cid, data)
        assert store.stats().blocks == 1
        assert store.stats().bytes == 100

    def test_delete_removes_and_reports(self) -> None:
        store = self.store
        cid, data = block(b"bye")
        store.put(cid, data)
        assert store.delete(cid) is True
        assert store.delete(cid) is False
        assert store.get(cid) is None
        assert store.stats().blocks == 0 and store.stats().bytes == 0

    def test_put_many_and_iterate_in_binary_order(self) -> None:
        store = self.store
        items = [block(bytes([i]) * (i + 1)) for i in range(20)]
        store.put_many(items)
        assert list(store.iter_cids()) == sorted(c for c, _ in items)
        assert store.get_many([c for c, _ in items]) == [d for _, d in items]

    def test_iteration_is_a_snapshot(self) -> None:
        store = self.store
        store.put_many([block(b"a"), block(b"b")])
        seen = []
        for cid in store.iter_cids():
            seen.append(cid)
            store.put(*block(b"new" + bytes(len(seen))))
        assert len(seen) == 2

    def test_dag_cbor_and_raw_blocks_are_distinct(self) -> None:
        store = self.store
        raw, data = block(b"same bytes", RAW)
        dag, _ = block(b"same bytes", DAG_CBOR)
        store.put(raw, data)
        assert not store.has(dag)

    def test_stats_track_bytes(self) -> None:
        store = self.store
        store.put_many([block(b"1" * 10), block(b"2" * 20)])
        assert (store.stats().blocks, store.stats().bytes) == (2, 30)

    def test_meta_put_get_delete(self) -> None:
        store = self.store
        store.commit(Batch().meta_put("t", b"k", b"v"))
        assert store.meta_get("t", b"k") == b"v"
        assert store.meta_get("other", b"k") is None
        store.commit(Batch().meta_delete("t", b"k"))
        assert store.meta_get("t", b"k") is None

    def test_meta_iter_by_prefix_in_key_order(self) -> None:
        store = self.store
        store.commit(Batch().meta_put("t", b"b2", b"3").meta_put("t", b"a", b"0")
                     .meta_put("t", b"b1", b"2").meta_put("t", b"c", b"4"))
        assert list(store.meta_iter("t", b"b")) == [(b"b1", b"2"), (b"b2", b"3")]
        assert [k for k, _ in store.meta_iter("t")] == [b"a", b"b1", b"b2", b"c"]

    def test_batch_applies_blocks_and_meta_together(self) -> None:
        store = self.store
        cid, data = block(b"together")
        gone, gone_data = block(b"gone")
        store.put(gone, gone_data)
        store.commit(Batch().put(cid, data).delete(gone).meta_put("refs", cid.binary, b"\x01"))
        assert store.get(cid) == data and not store.has(gone)
        assert store.meta_get("refs", cid.binary) == b"\x01"

    def test_batch_last_write_wins_within_a_batch(self) -> None:
        store = self.store
        cid, data = block(b"flip")
        store.commit(Batch().put(cid, data).delete(cid))
        assert not store.has(cid)
        store.commit(Batch().delete(cid).put(cid, data))
        assert store.has(cid)

    def test_empty_block_is_storable(self) -> None:
        store = self.store
        cid, data = block(b"")
        store.put(cid, data)
        assert store.get(cid) == b"" and store.has(cid)

    def test_concurrent_readers_and_writer(self) -> None:
        store = self.store
        items = [block(i.to_bytes(4, "big") * 256) for i in range(200)]
        errors: list[BaseException] = []

        def write() -> None:
            for i in range(0, len(items), 10):
                store.put_many(items[i:i + 10])

        def read() -> None:
            try:
                for _ in range(5):
                    for cid, data in items:
                        got = store.get(cid)
                        assert got is None or got == data
            except BaseException as exc:  # noqa: BLE001
                errors.append(exc)

        threads = [threading.Thread(target=write)] + [threading.Thread(target=read) for _ in range(3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
        assert not errors
        assert store.stats().blocks == len(items)

    def test_close_is_idempotent(self) -> None:
        tmp_path = self.tmp_path
        s = self.make_store(tmp_path)
        s.close()
        s.close()

    def test_data_survives_reopen(self) -> None:
        tmp_path = self.tmp_path
        if not self.reopenable:
            raise unittest.SkipTest("backend is not persistent")
        s = self.make_store(tmp_path)
        cid, data = block(b"persist me")
        s.commit(Batch().put(cid, data).meta_put("t", b"k", b"v"), durable=True)
        s = self.reopen_store(s, tmp_path)
        try:
            assert s.get(cid) == data
            assert s.meta_get("t", b"k") == b"v"
            assert s.stats().blocks == 1
        finally:
            s.close()


def make_state_machine(factory: Callable[[], BlockStore]) -> type[RuleBasedStateMachine]:
    """A Hypothesis state machine checking a backend against a dict model."""
    from hypothesis import strategies as st
    from hypothesis.stateful import Bundle, RuleBasedStateMachine, invariant, rule

    _payloads = st.binary(min_size=0, max_size=64)
    _keys = st.binary(min_size=1, max_size=4)

    class StoreMachine(RuleBasedStateMachine):
        cids = Bundle("cids")

        def __init__(self) -> None:
            super().__init__()
            self.store = factory()
            self.blocks: dict[CID, bytes] = {}
            self.meta: dict[tuple[str, bytes], bytes] = {}

        @rule(target=cids, data=_payloads)
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

        @rule(puts=st.lists(_payloads, max_size=5), dels=st.lists(cids, max_size=3),
              metas=st.lists(st.tuples(st.sampled_from(["a", "b"]), _keys, st.one_of(st.none(), _payloads)), max_size=4))
        def batch(self, puts: list[bytes], dels: list[CID], metas: list[tuple[str, bytes, bytes | None]]) -> None:
            batch = Batch()
            for cid in dels:
                batch.delete(cid)
            for data in puts:
                batch.put(CID.of(data), data)
            for table, key, value in metas:
                if value is None:
                    batch.meta_delete(table, key)
                else:
                    batch.meta_put(table, key, value)
            self.store.commit(batch)
            for cid in batch.deletes:
                self.blocks.pop(cid, None)
            for cid, stored in batch.puts.items():
                self.blocks[cid] = bytes(stored)
            for (table, key), value in batch.meta.items():
                if value is None:
                    self.meta.pop((table, key), None)
                else:
                    self.meta[(table, key)] = value

        @invariant()
        def agrees_with_model(self) -> None:
            assert set(self.store.iter_cids()) == set(self.blocks)
            stats = self.store.stats()
            assert stats.blocks == len(self.blocks)
            assert stats.bytes == sum(len(d) for d in self.blocks.values())
            for table in ("a", "b"):
                expected = sorted((k, v) for (t, k), v in self.meta.items() if t == table)
                assert list(self.store.meta_iter(table)) == expected

        def teardown(self) -> None:
            self.store.close()

    return StoreMachine
