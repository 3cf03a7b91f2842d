"""Both backends pass the conformance suite and the model-based state machine."""

import tempfile

from hypothesis import HealthCheck, settings

from hoard.store import LmdbBlockStore, MemoryBlockStore
from hoard.store.testing import BlockStoreConformance, make_state_machine


class TestMemoryBlockStore(BlockStoreConformance):
    def make_store(self, tmp_path):
        return MemoryBlockStore()


class TestLmdbBlockStore(BlockStoreConformance):
    reopenable = True

    def make_store(self, tmp_path):
        return LmdbBlockStore(tmp_path / "lmdb")

    def reopen_store(self, store, tmp_path):
        store.close()
        return LmdbBlockStore(tmp_path / "lmdb")


_fast = settings(max_examples=40, stateful_step_count=25, deadline=None,
                 suppress_health_check=[HealthCheck.too_slow])

TestMemoryModel = make_state_machine(MemoryBlockStore).TestCase
TestMemoryModel.settings = _fast
TestLmdbModel = make_state_machine(lambda: LmdbBlockStore(tempfile.mkdtemp(prefix="hoard-sm-"))).TestCase
TestLmdbModel.settings = _fast
