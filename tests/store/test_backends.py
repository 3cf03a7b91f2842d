"""Both backends pass the conformance suite and the model-based state machine."""

import shutil
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
class _OwnDirLmdbBlockStore(LmdbBlockStore):
    """An LMDB store in a temporary directory of its own, removed when the store closes (the state
    machine makes one per example and closes it in its teardown)."""

    def __init__(self) -> None:
        self._own_dir = tempfile.mkdtemp(prefix="hoard-sm-")
        super().__init__(self._own_dir)

    def close(self) -> None:
        try:
            super().close()
        finally:
            shutil.rmtree(self._own_dir, ignore_errors=True)


TestLmdbModel = make_state_machine(_OwnDirLmdbBlockStore).TestCase
TestLmdbModel.settings = _fast
